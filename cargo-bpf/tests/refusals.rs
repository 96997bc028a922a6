//! `cargo bpf build` refuses what BPF kernels cannot run, naming the function and line.
//! Builds the probe crate in tests/refusals (needs kernel headers: `make kernel-headers`,
//! or KERNEL_SOURCE; without them the test says it skips).

use std::path::Path;
use std::process::Command;

/// Builds `program` of the refusals crate; None when there are no kernel headers.
fn build(program: &str) -> Option<(std::process::Output, std::path::PathBuf)> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let headers = here.join("../kernel-headers/bookworm/version");
    if std::env::var_os("KERNEL_SOURCE").is_none() && !headers.is_file() {
        eprintln!("skipping: no kernel headers (run `make kernel-headers`)");
        return None;
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
    Some((out, out_dir))
}

#[track_caller]
fn refused(program: &str, expected: &[&str]) {
    let Some((out, out_dir)) = build(program) else {
        return;
    };
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

#[test]
fn floating_point_is_refused() {
    refused(
        "float",
        &[
            "src/float/main.rs:9",
            "outer_scaled_by_a_float",
            "floating point",
        ],
    );
}

#[test]
fn a_memcpy_of_run_time_length_is_refused() {
    refused(
        "memcpy",
        &[
            "copies_a_runtime_length",
            "memcpy",
            "known only at run time",
        ],
    );
}

#[test]
fn calls_to_functions_bpf_does_not_have_are_refused() {
    refused(
        "extern_call",
        &[
            "src/extern_call/main.rs:12",
            "getpid",
            "does not exist in a BPF program",
        ],
    );
}

#[test]
fn global_data_builds_with_a_warning_naming_it() {
    let Some((out, out_dir)) = build("global") else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "global was refused:\n{stderr}");
    assert!(
        stderr.contains("cargo-bpf: warning: global:")
            && stderr.contains("CALLS")
            && stderr.contains("kernels before 5.2 cannot load it"),
        "no global-data warning in:\n{stderr}"
    );
    assert!(out_dir.join("global/global.elf").is_file());
    std::fs::remove_dir_all(&out_dir).ok();
}
