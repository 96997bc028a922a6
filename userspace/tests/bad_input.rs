//! Bad input: broken ELF files, lying section headers, maps the kernel refuses, relocations
//! to nowhere, unknown section kinds, programs the verifier rejects, attach targets that do
//! not exist, records shorter and longer than their type. Each fails alone, with an error
//! naming the object (and the program and section where there is one); nothing panics; the
//! good programs of the same run attach and deliver.
//!
//! Exit status (documented in the README): 0 when at least one program ran (errors are
//! reported as lines), 1 when nothing could run or, with `--strict`, on any error, 2 on
//! usage errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// Little-endian ELF64 section headers: (name, file offset of the header).
fn sections(elf: &[u8]) -> Vec<(String, usize)> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let strtab = u64_at(shoff + shstrndx * shentsize + 24);
    (0..shnum)
        .map(|i| {
            let hdr = shoff + i * shentsize;
            let name_off =
                strtab + u32::from_le_bytes(elf[hdr..hdr + 4].try_into().unwrap()) as usize;
            let end = elf[name_off..].iter().position(|&b| b == 0).unwrap();
            (
                String::from_utf8_lossy(&elf[name_off..name_off + end]).into_owned(),
                hdr,
            )
        })
        .collect()
}

fn header_of(elf: &[u8], name: &str) -> usize {
    sections(elf)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no section {name}"))
        .1
}

fn data_of(elf: &[u8], name: &str) -> usize {
    let hdr = header_of(elf, name);
    u64::from_le_bytes(elf[hdr + 24..hdr + 32].try_into().unwrap()) as usize
}

fn put_u32(elf: &mut [u8], at: usize, v: u32) {
    elf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(elf: &mut [u8], at: usize, v: u64) {
    elf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The broken variants of `good`, each written to `dir/<name>.elf`.
fn broken_objects(good: &[u8], dir: &Path) -> Vec<(&'static str, PathBuf)> {
    const PROG: &str = "tracepoint/syscalls/sys_enter_getppid";
    let mut out = Vec::new();
    let mut emit = |name: &'static str, bytes: Vec<u8>| {
        let p = dir.join(format!("{name}.elf"));
        std::fs::write(&p, bytes).unwrap();
        out.push((name, p));
    };
    emit("zero_length", Vec::new());
    emit("truncated_header", good[..40].to_vec());
    emit("truncated_half", good[..good.len() / 2].to_vec());

    let mut b = good.to_vec();
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    emit("wrong_machine", b);

    let mut b = good.to_vec();
    b[5] = 2; // ELFDATA2MSB
    emit("wrong_endian", b);

    let mut b = good.to_vec();
    let hdr = header_of(&b, PROG);
    put_u64(&mut b, hdr + 32, 0x7fff_ffff_ffff_fff8); // sh_size
    emit("lying_size", b);

    let mut b = good.to_vec();
    let hdr = header_of(&b, PROG);
    put_u64(&mut b, hdr + 24, good.len() as u64 + 4096); // sh_offset past the end
    emit("lying_offset", b);

    // The first map definition of `maps` (tp_getppid: the perf array `events`), made a
    // hash map without sizes (a perf array without sizes is completed, as libbpf does).
    let mut b = good.to_vec();
    let maps = data_of(&b, "maps");
    put_u32(&mut b, maps, 1); // BPF_MAP_TYPE_HASH
    put_u32(&mut b, maps + 4, 0); // key_size
    put_u32(&mut b, maps + 8, 0); // value_size
    emit("zero_size_map", b);

    let mut b = good.to_vec();
    let maps = data_of(&b, "maps");
    put_u32(&mut b, maps, 1); // BPF_MAP_TYPE_HASH
    put_u32(&mut b, maps + 8, 0x7fff_ffff); // value_size
    put_u32(&mut b, maps + 12, 0xffff_ffff); // max_entries
    emit("absurd_map", b);

    // r_info of the first relocation of the program: symbol index far past the table.
    let mut b = good.to_vec();
    let rel = data_of(&b, &format!(".rel{PROG}"));
    let info = u64::from_le_bytes(b[rel + 8..rel + 16].try_into().unwrap());
    put_u64(&mut b, rel + 8, (0x00ff_ffff << 32) | (info & 0xffff_ffff));
    emit("missing_symbol", b);
    out
}

fn errors_of<'a>(lines: &'a [Value], object: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["type"] == "error" && v["object"] == object)
        .collect()
}

#[test]
fn every_bad_input_fails_alone_and_the_good_programs_run() {
    let Some(_g) = root_serial() else { return };
    let dir = tmp().join("bad_input");
    std::fs::create_dir_all(&dir).unwrap();
    let good = bpf_object("tp_getppid", &[]);
    let mix = bpf_object("bad_mix", &[]);
    let broken = broken_objects(&std::fs::read(&good).unwrap(), &dir);

    let mut args: Vec<String> = ["--json", "--event-type", "records=rec"]
        .map(String::from)
        .to_vec();
    args.extend(broken.iter().map(|(_, p)| p.display().to_string()));
    args.push(good.display().to_string());
    args.push(mix.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let l = Loader::spawn(&argv);
    let me = u64::from(std::process::id());
    let start = std::time::Instant::now();
    loop {
        getppid_n(3);
        let v = l.values();
        let attached = v.iter().filter(|x| x["type"] == "attached").count();
        let mine = v
            .iter()
            .filter(|x| x["object"] == "bad_mix.bpf" && x["data"]["pid"].as_u64() == Some(me))
            .count();
        // tp_getppid's program and bad_mix's good one; three records per call.
        if attached >= 2 && mine >= 3 {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 20,
            "good programs did not deliver: {v:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "exit {status} (good programs ran)");

    // Each broken file: one error line naming it, a message, no program.
    for (name, _) in &broken {
        let errs = errors_of(&lines, name);
        assert_eq!(errs.len(), 1, "{name}: {errs:#?}");
        let msg = errs[0]["error"].as_str().unwrap();
        assert!(!msg.is_empty() && !msg.contains('\n'), "{name}: {msg:?}");
        eprintln!("{name}: {msg}");
    }
    let no_map = errors_of(&lines, "zero_size_map")[0]["error"].to_string();
    assert!(
        no_map.contains("events"),
        "map error names no map: {no_map}"
    );

    // bad_mix: the four bad programs, each named with its section.
    let errs = errors_of(&lines, "bad_mix.bpf");
    let by_program = |p: &str| -> &Value {
        errs.iter()
            .find(|e| e["program"] == p)
            .unwrap_or_else(|| panic!("no error for {p}: {errs:#?}"))
    };
    assert_eq!(errs.len(), 4, "{errs:#?}");
    let e = by_program("unknown_kind");
    assert_eq!(e["section"], "weird/thing");
    assert!(e["error"]
        .as_str()
        .unwrap()
        .contains("unsupported program section kind 'weird'"));
    let e = by_program("rejected");
    assert_eq!(e["section"], "tracepoint/syscalls/sys_enter_getpid");
    assert!(
        e["error"].as_str().unwrap().contains("verifier rejected"),
        "{e}"
    );
    assert!(!e["verifier_log"].as_str().unwrap_or("").is_empty(), "{e}");
    let e = by_program("missing_kprobe");
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("no_such_kernel_function_for_redbpf_tests") || msg.contains("kprobe"),
        "{e}"
    );
    let e = by_program("missing_tracepoint");
    assert!(e["error"].as_str().unwrap().contains("no_such"), "{e}");
    let attached: Vec<_> = lines.iter().filter(|v| v["type"] == "attached").collect();
    assert_eq!(attached.len(), 2, "{attached:#?}");

    // Records: as long as the type, shorter, longer.
    let recs: Vec<&Value> = lines
        .iter()
        .filter(|v| v["object"] == "bad_mix.bpf" && v["data"]["pid"].as_u64() == Some(me))
        .map(|v| &v["data"])
        .collect();
    let of_kind = |k: u64| {
        recs.iter()
            .find(|r| r["kind"].as_u64() == Some(k))
            .unwrap_or_else(|| panic!("no record of kind {k}: {recs:#?}"))
    };
    let exact = of_kind(1);
    assert_eq!(exact["a"], 0x1111);
    assert_eq!(exact["b"], 0x2222);
    assert!(exact.get("_missing_bytes").is_none() && exact.get("tail").is_none());
    let short = of_kind(2);
    assert_eq!(short["_missing_bytes"], 12, "{short}");
    assert!(short.get("a").is_none(), "{short}");
    let long = of_kind(3);
    assert_eq!(long["b"], 0x2222);
    assert_eq!(long["tail"], serde_json::json!(["A"]), "{long}");
}

#[test]
fn strict_turns_any_error_into_exit_1_and_nothing_loadable_is_exit_1() {
    let Some(_g) = root_serial() else { return };
    let good = bpf_object("tp_getppid", &[]);
    let mix = bpf_object("bad_mix", &[]);
    let out = Command::new(loader_bin())
        .args(["--json", "--strict", "--duration", "1"])
        .arg(&good)
        .arg(&mix)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let empty = tmp().join("empty.elf");
    std::fs::write(&empty, b"").unwrap();
    let out = Command::new(loader_bin())
        .args(["--json", "--duration", "1"])
        .arg(&empty)
        .output()
        .unwrap();
    // No OBJECT could be read at all: bad input, 2, as `loader check` says.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("empty"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let out = Command::new(loader_bin())
        .args(["--json", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// `--duration`/`--interval` take finite, positive, bounded seconds: anything else is a
/// usage error (exit 2) on one line naming the flag, never a panic or a silent accept.
#[test]
fn bad_seconds_are_usage_errors() {
    for (flag, value) in [
        ("--duration", "inf"),
        ("--duration", "nan"),
        ("--duration", "-1"),
        ("--duration", "0"),
        ("--duration", "1e300"),
        ("--interval", "0"),
        ("--interval", "-1"),
        ("--interval", "nan"),
        ("--interval", "0.001"),
    ] {
        let out = Command::new(loader_bin())
            .arg(format!("{flag}={value}"))
            .arg("/nonexistent.elf")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}={value}: {stderr}");
        assert!(stderr.contains(flag), "{flag}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// A closed stderr (`loader 2>&1 | head -1` once head exits) loses messages, nothing else:
/// no panic (exit 101), the ordinary exit status.
#[test]
fn closed_stderr_is_not_a_panic() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two fds, owned right away.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both fds are fresh from pipe(2).
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read); // nobody will read: every write to stderr fails with EPIPE
    let out = Command::new(loader_bin())
        .args(["--json", "/nonexistent.elf"])
        .stderr(write)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(101), "panicked");
    assert_eq!(out.status.code(), Some(2), "{:?}", out.status);
}

/// A missing interface is said the same way for every network program kind, naming it;
/// a uprobe target that is not there, or lacks the symbol, is said as such.
#[test]
fn wrong_interfaces_and_uprobe_targets_say_what_is_wrong() {
    let Some(_g) = root_serial() else { return };
    let run = |args: &[&str]| {
        let out = Command::new(loader_bin())
            .args(["--json", "--duration", "0.5"])
            .args(args)
            .output()
            .unwrap();
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out.status.code(), lines)
    };
    for probe in ["xdpcount", "sockfilter"] {
        let (code, lines) = run(&[probe, "--iface", "nosuch0"]);
        assert_eq!(code, Some(1), "{probe}: nothing attached");
        let errors: Vec<&Value> = lines.iter().filter(|v| v["type"] == "error").collect();
        assert_eq!(errors.len(), 1, "{probe}: {errors:?}");
        assert_eq!(
            errors[0]["error"], "no network interface named nosuch0 (`ip link` lists them)",
            "{probe}"
        );
    }
    let dir = tmp();
    std::fs::write(dir.join("text"), "not a binary").unwrap();
    let text = dir.join("text");
    let cases = [
        ("/nonexistent/bin", "No such file"),
        ("/usr", "not a regular file"),
        (text.to_str().unwrap(), "not an ELF binary"),
        ("/bin/true", "has no symbol ufunc_target"),
    ];
    for (target, says) in cases {
        let (code, lines) = run(&["ufunc", "--uprobe-target", target]);
        assert_eq!(code, Some(1), "{target}");
        let errors: Vec<&Value> = lines.iter().filter(|v| v["type"] == "error").collect();
        assert_eq!(
            errors.len(),
            2,
            "uprobe and uretprobe, {target}: {errors:?}"
        );
        for e in errors {
            let msg = e["error"].as_str().unwrap();
            assert!(
                msg.starts_with("uprobe target ") && msg.contains(says),
                "{target}: {msg}"
            );
        }
    }
}
