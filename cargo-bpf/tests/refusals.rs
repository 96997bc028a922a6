//! `cargo bpf build` refuses what BPF kernels cannot run, naming the function and line.
//! Builds the probe crate in tests/refusals (needs kernel headers: `make kernel-headers`,
//! or KERNEL_SOURCE; without them the test says it skips).

use std::path::Path;
use std::process::Command;

#[track_caller]
fn refused(program: &str, expected: &[&str]) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let headers = here.join("../kernel-headers/bookworm/version");
    if std::env::var_os("KERNEL_SOURCE").is_none() && !headers.is_file() {
        eprintln!("skipping: no kernel headers (run `make kernel-headers`)");
        return;
    }
    let out_dir = std::env::temp_dir().join(format!("refusals-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-bpf"))
        .args(["bpf", "build", "--target-dir"])
        .arg(here.join("../target"))
        .arg("-o")
        .arg(&out_dir)
        .arg(program)
        .current_dir(here.join("tests/refusals"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{program} was not refused:\n{stderr}"
    );
    for text in expected {
        assert!(
            stderr.contains(text),
            "{program}: no `{text}` in:\n{stderr}"
        );
    }
    assert!(
        !out_dir
            .join(program)
            .join(format!("{program}.elf"))
            .exists(),
        "{program}: object written anyway"
    );
}

#[test]
fn signed_division_is_refused() {
    refused(
        "sdiv",
        &[
            "src/sdiv/main.rs:9",
            "outer_signed_division",
            "signed division",
            "6.6",
        ],
    );
}

#[test]
fn u128_arithmetic_is_refused() {
    refused("wide", &["src/wide/main.rs:9", "128-bit arithmetic"]);
}

#[test]
fn calls_that_cannot_be_inlined_are_refused() {
    refused(
        "recursive",
        &["recursive::collatz", "was not inlined", "4.16"],
    );
}
