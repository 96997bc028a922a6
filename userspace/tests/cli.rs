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
    assert_eq!(out.status.code(), Some(1), "{out:?}");
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
