//! CLI behaviour that needs no kernel access.

mod common;

use std::process::Command;

#[test]
fn malformed_elf_is_an_error_not_a_panic() {
    let bad = common::tmp().join("garbage.elf");
    std::fs::write(&bad, b"\x7fELF\x02\x01\x01 definitely not an object").unwrap();
    let out = Command::new(common::loader_bin())
        .args(["--json", bad.to_str().unwrap()])
        .output()
        .unwrap();
    // Bad input, as `loader check` says of the same file.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let check = Command::new(common::loader_bin())
        .args(["check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), out.status.code());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "error")
        .unwrap_or_else(|| panic!("no error line: {stdout}"));
    assert_eq!(line["object"], "garbage");
}

#[test]
fn help_and_version() {
    let out = Command::new(common::loader_bin())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--json",
        "--duration",
        "--interval",
        "--iface",
        "--uprobe-target",
        "--event-type",
        "--pages",
        "--flush-ms",
        "--strict",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let out = Command::new(common::loader_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("loader "));
}

#[test]
fn help_names_check_examples_and_exit_codes_and_help_works() {
    let run = |args: &[&str]| {
        let out = Command::new(common::loader_bin())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let help = run(&["--help"]);
    for text in [
        "loader check",
        "Examples:",
        "sudo loader execsnoop",
        "Exit status:",
        "--list",
        "--pid",
    ] {
        assert!(help.contains(text), "--help lacks {text}");
    }
    assert_eq!(run(&["help"]), help, "`loader help` is `loader --help`");
    let check = run(&["check", "--help"]);
    assert!(
        check.contains("what a kernel release cannot run"),
        "{check}"
    );
    assert!(
        !check.contains("stream perf records"),
        "check's help describes check: {check}"
    );
}

#[test]
fn an_object_without_programs_is_called_that() {
    // A BPF ELF with a license and nothing else.
    let path = common::tmp().join("empty.elf");
    let mut w = object::write::Object::new(
        object::BinaryFormat::Elf,
        object::Architecture::Bpf,
        object::Endianness::Little,
    );
    let id = w.add_section(Vec::new(), b"license".to_vec(), object::SectionKind::Data);
    w.append_section_data(id, b"GPL\0", 1);
    std::fs::write(&path, w.write().unwrap()).unwrap();
    let out = Command::new(common::loader_bin())
        .args(["--json", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(r#""object":"empty""#) && stdout.contains("no BPF program in it"),
        "{stdout}"
    );
}

/// Every numeric flag with values people mistype: a usage error (exit 2) naming the flag,
/// never a panic; the ones a number fits run (`--list` keeps those runs short).
#[test]
fn numeric_flags_take_numbers_or_say_which_flag_is_wrong() {
    let flags = [
        "--pid",
        "--uid",
        "--pages",
        "--wakeup-bytes",
        "--flush-ms",
        "--uprobe-pid",
    ];
    let values = [
        "-1",
        "x",
        "",
        "99999999999999999999999",
        "1e400",
        "0x10",
        "3",
    ];
    for flag in flags {
        for value in values {
            let out = Command::new(common::loader_bin())
                .args(["--list", &format!("{flag}={value}")])
                .output()
                .unwrap();
            let code = out.status.code();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{flag} {value:?}: {stderr}");
            if value == "3" {
                assert_eq!(code, Some(0), "{flag} {value:?}: {stderr}");
            } else {
                assert_eq!(code, Some(2), "{flag} {value:?}: {stderr}");
                assert!(
                    stderr.contains(flag),
                    "{flag} {value:?} not named: {stderr}"
                );
            }
        }
    }
}
