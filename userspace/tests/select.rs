//! Picking probes by the names people see: `loader execsnoop`, `--programs OBJECT`,
//! globs, `--list`; a name that matches nothing is a usage error; maps of unselected
//! objects are not created, scratch maps are not dumped unless named.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

fn run(args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(loader_bin()).args(args).output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(object, program symbol)` of every program in the objects `cargo bpf build` wrote,
/// read with the loader's own parser from the files themselves.
fn built_programs() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bpf/programs");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(dir.join(&name).join(format!("{name}.elf"))).unwrap();
        let obj = loader::object::Object::parse(name.clone(), bytes).unwrap();
        for p in &obj.info.programs {
            out.push((name.clone(), p.symbol.clone()));
        }
    }
    out.sort();
    out
}

#[test]
fn list_shows_every_program_of_every_built_in_probe() {
    let (code, lines, stderr) = run(&["--list", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let mut listed: Vec<(String, String)> = lines
        .iter()
        .filter(|v| v["type"] == "program")
        .map(|v| {
            assert!(v["kind"].is_string() && v["target"].is_string(), "{v}");
            (
                v["object"].as_str().unwrap().to_owned(),
                v["program"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(listed, built_programs());
    assert!(
        lines.iter().all(|v| v["type"] == "program"),
        "only program lines: {lines:?}"
    );
}

#[test]
fn names_that_match_nothing_are_usage_errors_naming_them() {
    for args in [
        &["--programs", "execsnop"][..],
        &["--skip", "nosuch*"],
        &["--maps", "NOPE"],
        &["--programs", "execsnoop", "--maps", "execsnoop/NOPE"],
    ] {
        let (code, lines, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(lines.is_empty(), "{args:?}: nothing on stdout: {lines:?}");
        let named = args[args.len() - 1];
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(stderr.contains("loader --list"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn a_built_in_probe_runs_by_name_alone_with_its_own_maps() {
    let Some(_guard) = root_serial() else {
        eprintln!("skipping: not root");
        return;
    };
    for args in [
        &["exectrack", "--json", "--duration", "1.5"][..],
        &["--programs", "exectrack", "--json", "--duration", "1.5"],
        &["--programs", "exect*", "--json", "--duration", "1.5"],
    ] {
        let (code, lines, stderr) = run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        let attached: Vec<&Value> = lines.iter().filter(|v| v["type"] == "attached").collect();
        assert_eq!(attached.len(), 1, "{args:?}: {attached:?}");
        assert_eq!(attached[0]["object"], "exectrack");
        let maps: Vec<&Value> = lines.iter().filter(|v| v["type"] == "map").collect();
        assert!(!maps.is_empty(), "{args:?}: exectrack's EXECS is dumped");
        assert!(
            maps.iter().all(|m| m["object"] == "exectrack"),
            "{args:?}: maps of other probes: {maps:?}"
        );
    }
}

#[test]
fn scratch_maps_are_dumped_only_when_asked_for() {
    let Some(_guard) = root_serial() else {
        eprintln!("skipping: not root");
        return;
    };
    let dumped = |extra: &[&str]| {
        let mut args = vec!["execsnoop", "--json", "--duration", "1"];
        args.extend_from_slice(extra);
        let (code, lines, stderr) = run(&args);
        assert_eq!(code, 0, "{stderr}");
        lines
            .iter()
            .filter(|v| v["type"] == "map")
            .map(|v| v["map"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // execsnoop's in-flight records (an array of 2.5 KB values) and its pid -> parent
    // map (INFLIGHT_PARENTS): scratch.
    assert!(dumped(&[]).is_empty());
    assert_eq!(dumped(&["--maps", "execsnoop/INFLIGHT"]), ["INFLIGHT"]);
}
