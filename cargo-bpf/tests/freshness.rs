//! An object is rebuilt when what it was compiled with changes, not only its bitcode:
//! `--cpu v3` after `--cpu v1` compiles again (it reported Fresh and kept the v1 object).
//! Uses the `global` program of tests/refusals (it builds, with a warning).

use std::path::Path;
use std::process::Command;

fn build(cpu: &str, out_dir: &Path) -> Option<String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let headers = here.join("../kernel-headers/bookworm/version");
    if std::env::var_os("KERNEL_SOURCE").is_none() && !headers.is_file() {
        eprintln!("skipping: no kernel headers (run `make kernel-headers`)");
        return None;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-bpf"))
        .args(["bpf", "build", "--cpu", cpu, "--target-dir"])
        .arg(here.join("../target"))
        .arg("-o")
        .arg(out_dir)
        .arg("global")
        .current_dir(here.join("tests/refusals"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "--cpu {cpu}:\n{stderr}");
    Some(stderr)
}

#[test]
fn changing_the_cpu_rebuilds_and_an_unchanged_build_is_fresh() {
    let out_dir = std::env::temp_dir().join(format!("freshness-{}", std::process::id()));
    let Some(_) = build("v1", &out_dir) else {
        return;
    };
    let elf = out_dir.join("global/global.elf");
    let v1 = std::fs::read(&elf).unwrap();
    let again = build("v1", &out_dir).unwrap();
    assert!(again.contains("Fresh global"), "{again}");
    let v3 = build("v3", &out_dir).unwrap();
    assert!(v3.contains("Compiled global"), "{v3}");
    assert!(!v3.contains("Fresh global"), "{v3}");
    // e_flags or code differ: the object is really the v3 one.
    assert_ne!(std::fs::read(&elf).unwrap(), v1, "the v1 object was kept");
    assert!(build("v3", &out_dir).unwrap().contains("Fresh global"));
    std::fs::remove_dir_all(&out_dir).ok();
}
