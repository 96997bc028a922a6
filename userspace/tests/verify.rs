//! Every object `cargo bpf build` made (the built-in probes and the compat crate) passes the
//! verifier of the host kernel. Kprobes load here even though they cannot attach: loading
//! is the test. Root only; `make test` builds the objects first.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Objects whose program kinds the loader does not handle yet (stream parser/verdict):
/// each of their programs must be reported as such, nothing else.
const NOT_LOADABLE: &[&str] = &["compat_sockmap"];

/// The compat crate's objects; none, said loudly, when `make compat-probes` has not run
/// (`make run` builds the built-in probes only; `make test` builds both).
fn compat_objects(target: &Path) -> Vec<PathBuf> {
    let dir = target.join("compat");
    if !dir.is_dir() {
        eprintln!(
            "skipping the compat crate's objects: {} not built (run `make compat-probes`)",
            dir.display()
        );
        return Vec::new();
    }
    objects(&dir)
}

fn objects(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `make probes compat-probes` first",
                dir.display()
            )
        })
        .filter_map(|e| e.ok())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            e.path().join(format!("{name}.elf"))
        })
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_built_object_passes_the_verifier() {
    if !common::have_root() {
        eprintln!("skipping: not root (the verifier needs CAP_BPF)");
        return;
    }
    let _guard = common::serial();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bpf");
    let mut objs = objects(&target.join("programs"));
    assert!(
        objs.len() >= 10,
        "expected the 10 built-in probes, found {objs:?}"
    );
    objs.extend(compat_objects(&target));
    let mut verified = 0;
    for obj in objs {
        let name = obj.file_stem().unwrap().to_string_lossy().into_owned();
        let out = Command::new(common::loader_bin())
            .args(["--json", "--verify"])
            .arg(&obj)
            .output()
            .unwrap();
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let errors: Vec<&Value> = lines.iter().filter(|v| v["type"] == "error").collect();
        if NOT_LOADABLE.contains(&name.as_str()) {
            assert!(
                !errors.is_empty(),
                "{name}: unsupported programs not reported"
            );
            for e in &errors {
                let msg = e["error"].as_str().unwrap_or("");
                assert!(
                    msg.starts_with("unsupported program section kind"),
                    "{name}: {e}"
                );
                assert!(e["section"].is_string(), "{name}: {e}");
            }
            assert_eq!(out.status.code(), Some(1), "{name}: --verify must fail");
            eprintln!(
                "note: {name}: {} program(s) of kinds the loader does not run, reported",
                errors.len()
            );
            continue;
        }
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let loaded = lines.iter().filter(|v| v["type"] == "loaded").count();
        assert!(loaded > 0, "{name}: no program loaded");
        eprintln!("{name}: {loaded} program(s) verified");
        verified += loaded;
    }
    assert!(verified >= 29, "only {verified} programs verified");
}

/// The `.BTF` cargo-bpf writes is what the kernel's BTF loader accepts by name, for any
/// loader (not only aya, which would fix it up itself): pointers, arrays, qualifiers and
/// prototypes anonymous, every other name a C identifier (DATASEC names are sections).
#[test]
fn cargo_bpf_btf_names_are_what_the_kernel_accepts() {
    use btf_reader::{kind, Btf};
    use object::{Object, ObjectSection};
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bpf");
    let mut objs = objects(&target.join("programs"));
    objs.extend(compat_objects(&target));
    let ident = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let mut checked = 0;
    for path in &objs {
        let data = std::fs::read(path).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let Some(section) = file.section_by_name(".BTF") else {
            continue;
        };
        let btf = Btf::parse(section.data().unwrap()).unwrap();
        for (id, t) in btf.types.iter().enumerate().skip(1) {
            let name = btf.name(t.name_off);
            let anonymous = matches!(
                t.kind,
                kind::PTR
                    | kind::ARRAY
                    | kind::CONST
                    | kind::VOLATILE
                    | kind::RESTRICT
                    | kind::FUNC_PROTO
            );
            let where_ = format!("{}: type {id} (kind {}) {name:?}", path.display(), t.kind);
            if anonymous {
                assert_eq!(t.name_off, 0, "{where_}");
            } else if t.kind != kind::DATASEC {
                assert!(ident(name), "{where_}");
            }
            for m in btf.members(t) {
                assert!(ident(btf.name(m.name_off)), "{where_} member");
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} BTF types in {objs:?}");
}
