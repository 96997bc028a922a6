//! `cargo bpf new`, `add`, `build`, `load` as redbpf's tutorial uses them, in temporary
//! directories: the generated tracepoint probe (kprobe prelude + `#[tracepoint]`) builds,
//! passes the verifier and delivers its events; `--features`, `--version`, `--color`, the
//! kernel-headers messages and the loader lookup.
//!
//! Building needs kernel headers (`make kernel-headers`, or KERNEL_SOURCE); loading needs
//! root and a built loader (`make loader`, or `cargo build -p loader`; LOADER=path also
//! works). Each test says "skipping: <why>" when one is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

fn here() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cargo_bpf() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-bpf"));
    cmd.arg("bpf");
    cmd
}

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cargo-bpf-{name}-{}", std::process::id()));
    let _gone = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn headers() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KERNEL_SOURCE") {
        return Some(dir.into());
    }
    let dir = here().join("../kernel-headers/bookworm");
    if dir.join("version").is_file() {
        return Some(dir);
    }
    eprintln!("skipping: no kernel headers (run `make kernel-headers` or set KERNEL_SOURCE)");
    None
}

#[track_caller]
fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?} failed:\n{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[track_caller]
fn fails(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{cmd:?}:\n{stderr}");
    stderr
}

/// `cargo bpf build` of the crate at `dir` into the workspace's target directory (the
/// compiled redbpf-probes is shared), objects to `out`.
fn build(dir: &Path, out: &Path, headers: &Path) -> Command {
    let mut cmd = cargo_bpf();
    cmd.arg("build")
        .arg("--target-dir")
        .arg(here().join("../target"))
        .arg("-o")
        .arg(out)
        .arg("--kernel-headers")
        .arg(headers)
        .current_dir(dir);
    cmd
}

/// `cargo bpf new` + `cargo bpf add PROGRAM` in `root`; the crate's directory.
fn scaffold(root: &Path, krate: &str, program: &str) -> PathBuf {
    run(cargo_bpf().args(["new", krate]).current_dir(root));
    let dir = root.join(krate);
    run(cargo_bpf().args(["add", program]).current_dir(&dir));
    dir
}

/// The loader `cargo bpf load` will find (next to cargo-bpf, else on PATH), as a PATH
/// entry; None (said) when there is none or when not root.
fn loader_dir() -> Option<PathBuf> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    {
        eprintln!("skipping load: not root");
        return None;
    }
    let exe = Path::new(env!("CARGO_BIN_EXE_cargo-bpf"));
    let candidates = [
        std::env::var_os("LOADER").map(PathBuf::from),
        exe.parent().map(|d| d.join("loader")),
        Some(here().join("../target/release/loader")),
        Some(here().join("../target/debug/loader")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "skipping load: NO LOADER BUILT (looked at $LOADER, next to cargo-bpf, \
             target/release/loader, target/debug/loader): run `make loader`"
        );
    }
    found.and_then(|p| p.parent().map(Path::to_path_buf))
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn new_add_build_load_a_tracepoint_probe() {
    let root = scratch("tutorial");
    let dir = scaffold(&root, "hello-bpf", "openmonitor");
    // The layout of redbpf's tutorial.
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    for line in [
        "name = \"hello-bpf\"",
        "redbpf-probes = \"2.3.0\"",
        "redbpf-macros = \"2.3.0\"",
        "probes = []",
        "[[bin]]\nname = \"openmonitor\"\npath = \"src/openmonitor/main.rs\"\nrequired-features = [\"probes\"]\n",
    ] {
        assert!(manifest.contains(line), "no {line:?} in\n{manifest}");
    }
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert_eq!(lib, "#![no_std]\npub mod openmonitor;\n");
    assert!(dir.join("src/openmonitor/mod.rs").is_file());
    let main = std::fs::read_to_string(dir.join("src/openmonitor/main.rs")).unwrap();
    // The kprobe prelude and #[tracepoint], without importing it: program! brings it.
    assert!(
        main.contains("use redbpf_probes::kprobe::prelude::*;"),
        "{main}"
    );
    assert!(!main.contains("use redbpf_macros"), "{main}");

    let Some(headers) = headers() else { return };
    let out = root.join("programs");
    // stderr is a pipe here: no colour codes from cargo or rustc.
    let (_, stderr) = run(&mut build(&dir, &out, &headers));
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in a redirected log:\n{stderr}"
    );
    assert!(stderr.contains("Compiled openmonitor"), "{stderr}");
    let elf = out.join("openmonitor/openmonitor.elf");
    assert!(elf.is_file());
    let (_, coloured) = run(build(&dir, &out, &headers).arg("--color").arg("always"));
    assert!(coloured.contains('\x1b'), "--color always:\n{coloured}");
    std::fs::remove_dir_all(dir.join("target")).ok();
    // Nothing written into the crate but what `new` and `add` wrote (and no lock).
    assert!(!dir.join("Cargo.lock").exists());

    let Some(loader_dir) = loader_dir() else {
        return;
    };
    let path = std::env::join_paths(std::iter::once(loader_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    // --verify: one `loaded` line for the program.
    let (stdout, _) = run(cargo_bpf()
        .args(["load", "--output-dir"])
        .arg(&out)
        .args(["--", "--verify", "--json"])
        .env("PATH", &path)
        .current_dir(&dir));
    let lines = json_lines(&stdout);
    assert!(
        lines.iter().any(
            |l| l["type"] == "loaded" && l["section"] == "tracepoint/syscalls:sys_enter_execve"
        ),
        "{stdout}"
    );
    // A second of events, with execs made meanwhile.
    let done = AtomicBool::new(false);
    let stdout = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let _status = Command::new("true").status();
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let result = cargo_bpf()
            .args(["load", "--output-dir"])
            .arg(&out)
            .args(["--", "--duration", "1", "--json"])
            .env("PATH", &path)
            .current_dir(&dir)
            .output();
        done.store(true, Ordering::Relaxed);
        let output = result.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "cargo bpf load:\n{stderr}");
        assert!(stderr.contains("Running `"), "{stderr}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    });
    let lines = json_lines(&stdout);
    let of = |kind: &'static str| lines.iter().filter(move |l| l["type"] == kind);
    assert!(
        of("attached").any(|l| l["target"] == "syscalls:sys_enter_execve"),
        "{stdout}"
    );
    assert!(
        of("event").any(|l| l["map"] == "EVENTS" && l["data"]["pid"].as_u64() > Some(0)),
        "no event from the execs:\n{stdout}"
    );
    let summary = of("summary").next().unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(summary["errors"], 0, "{stdout}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn features_are_passed_to_cargo_and_select_programs() {
    let root = scratch("features");
    let dir = scaffold(&root, "featured", "always_built");
    run(cargo_bpf().args(["add", "needs-extra"]).current_dir(&dir));
    // `needs-extra` requires a feature `extra`; `always_built` gains a program with it.
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .unwrap()
        .replace("probes = []", "probes = []\nextra = []")
        .replace(
            "path = \"src/needs-extra/main.rs\"\nrequired-features = [\"probes\"]",
            "path = \"src/needs-extra/main.rs\"\nrequired-features = [\"probes\", \"extra\"]",
        );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("#[path = \"needs-extra/mod.rs\"]\npub mod needs_extra;"),
        "{lib}"
    );
    let main = dir.join("src/always_built/main.rs");
    let code = std::fs::read_to_string(&main).unwrap()
        + "\n#[cfg(feature = \"extra\")]\n#[tracepoint(\"syscalls:sys_enter_getppid\")]\n\
           fn only_with_extra(_args: *const c_void) {}\n";
    std::fs::write(&main, code).unwrap();
    // An explicit import of the attribute still works next to program!'s.
    let other = dir.join("src/needs-extra/main.rs");
    let code = std::fs::read_to_string(&other).unwrap().replace(
        "use redbpf_probes",
        "use redbpf_macros::tracepoint;\nuse redbpf_probes",
    );
    std::fs::write(&other, code).unwrap();

    let Some(headers) = headers() else { return };
    let out = root.join("programs");
    let has_getppid = || {
        let elf = std::fs::read(out.join("always_built/always_built.elf")).unwrap();
        elf.windows(b"sys_enter_getppid".len())
            .any(|w| w == b"sys_enter_getppid")
    };
    let (_, stderr) = run(&mut build(&dir, &out, &headers));
    assert!(stderr.contains("Compiled always_built"), "{stderr}");
    assert!(
        !out.join("needs-extra").exists(),
        "built without its feature:\n{stderr}"
    );
    assert!(!has_getppid());
    let refused = fails(build(&dir, &out, &headers).arg("needs-extra"));
    assert!(
        refused.contains(
            "program needs-extra needs the feature(s) extra: `cargo bpf build --features extra`"
        ),
        "{refused}"
    );
    let (_, stderr) = run(build(&dir, &out, &headers).args(["--features", "extra"]));
    assert!(stderr.contains("Compiled needs-extra"), "{stderr}");
    assert!(stderr.contains("Compiled always_built"), "{stderr}");
    assert!(has_getppid(), "--features extra did not reach cargo");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn version_is_accepted_everywhere() {
    let version = env!("CARGO_PKG_VERSION");
    for args in [
        &["--version"][..],
        &["build", "--version"],
        &["load", "--version"],
        &["new", "-V"],
    ] {
        let (stdout, _) = run(cargo_bpf().args(args));
        assert!(stdout.contains(version), "{args:?}: {stdout}");
    }
    let (stdout, _) = run(Command::new(env!("CARGO_BIN_EXE_cargo-bpf")).arg("--version"));
    assert_eq!(stdout.trim(), format!("cargo-bpf {version}"));
}

#[test]
fn the_headers_message_fits_where_the_crate_is() {
    let root = scratch("headers");
    let dir = scaffold(&root, "outside", "prog");
    let missing = root.join("no-headers");
    std::fs::create_dir_all(&missing).unwrap();
    let outside = fails(
        cargo_bpf()
            .args(["build", "--target-dir"])
            .arg(here().join("../target"))
            .arg("--kernel-headers")
            .arg(&missing)
            .env_remove("KERNEL_SOURCE")
            .env_remove("KERNEL_VERSION")
            .current_dir(&dir),
    );
    for text in [
        "given with --kernel-headers",
        "pass --kernel-headers DIR",
        "KERNEL_SOURCE=DIR",
        "KERNEL_VERSION=x.y.z",
    ] {
        assert!(outside.contains(text), "no {text:?} in:\n{outside}");
    }
    assert!(!outside.contains("make kernel-headers"), "{outside}");
    // A crate inside this project: `make kernel-headers` works there.
    let inside = fails(
        cargo_bpf()
            .args(["build", "--target-dir"])
            .arg(here().join("../target"))
            .env("KERNEL_SOURCE", &missing)
            .current_dir(here().join("tests/refusals")),
    );
    assert!(inside.contains("set by KERNEL_SOURCE"), "{inside}");
    assert!(inside.contains("run `make kernel-headers` in"), "{inside}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn load_says_what_is_missing_in_one_line() {
    let root = scratch("load");
    // A cargo-bpf with no loader beside it and none on PATH.
    let lonely = root.join("cargo-bpf");
    std::fs::copy(env!("CARGO_BIN_EXE_cargo-bpf"), &lonely).unwrap();
    std::fs::write(root.join("x.elf"), b"").unwrap();
    let stderr = fails(
        Command::new(&lonely)
            .args(["bpf", "load", "x.elf"])
            .env("PATH", root.join("empty"))
            .current_dir(&root),
    );
    assert!(
        stderr.starts_with("cargo-bpf: error: no `loader` next to")
            && stderr.contains("nor on PATH"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let stderr = fails(
        cargo_bpf()
            .args(["load", "--output-dir"])
            .arg(root.join("nothing"))
            .current_dir(&root),
    );
    assert!(stderr.contains("no BPF objects in"), "{stderr}");
    assert!(stderr.contains("cargo bpf build"), "{stderr}");
    // `new` refuses an existing directory, `add` a directory without a crate.
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let stderr = fails(cargo_bpf().args(["new", "empty"]).current_dir(&root));
    assert!(stderr.contains("already exists"), "{stderr}");
    let stderr = fails(
        cargo_bpf()
            .args(["add", "p"])
            .current_dir(root.join("empty")),
    );
    assert!(stderr.contains("no Cargo.toml in"), "{stderr}");
    std::fs::remove_dir_all(&root).ok();
}
