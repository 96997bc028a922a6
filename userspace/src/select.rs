//! Which programs and maps a run is about: `--programs`, `--skip` and `--maps`, matched
//! against the names people see. Pure.
//!
//! A program is named by its object (`execsnoop`), `object/program`, its function symbol
//! (with or without redbpf's `outer_` prefix), its section (`tracepoint/syscalls/...`) or
//! the section's last part (`sys_enter_execve`); a map by `object/map` or its name. Every
//! name may be a glob pattern (`exec*`, `*/EVENTS`).

use glob::Pattern;

use crate::elf::{map_type, MapInfo};
use crate::object::Object;

/// One `--programs`/`--skip`/`--maps` name.
#[derive(Debug, Clone)]
struct Name {
    text: String,
    pattern: Option<Pattern>,
}

impl Name {
    fn new(text: &str) -> Name {
        Name {
            text: text.to_owned(),
            pattern: Pattern::new(text).ok(),
        }
    }

    fn hits(&self, candidates: &[&str]) -> bool {
        candidates
            .iter()
            .any(|c| *c == self.text || self.pattern.as_ref().is_some_and(|p| p.matches(c)))
    }
}

/// The selection of a run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    programs: Vec<Name>,
    skip: Vec<Name>,
    maps: Vec<Name>,
}

/// The names a program answers to.
fn program_names<'a>(
    object: &'a str,
    symbol: &'a str,
    section: &'a str,
    joined: &'a str,
) -> [&'a str; 6] {
    let short = section.rsplit(['/', ':']).next().unwrap_or(section);
    let stripped = symbol.strip_prefix("outer_").unwrap_or(symbol);
    [object, joined, symbol, stripped, section, short]
}

/// Values above this size in a one-entry per-CPU array are a buffer, not a counter.
const SCRATCH_VALUE: u32 = 64;

/// Array values above this size cannot have been built on the 512-byte BPF stack: they are
/// records under construction, not numbers a person reads.
const BUFFER_VALUE: u32 = 512;

/// Scratch maps: one-entry per-CPU arrays of values too big to be counters and arrays of
/// values bigger than the BPF stack (where a program builds a record too big for its
/// stack), redbpf's `PARMS_*` (a kprobe's arguments kept for its kretprobe) and maps named
/// `INFLIGHT*` (state kept between a call's entry and its return), and the loader's own
/// `LOADER_FILTER`. Nobody reads them; they
/// are dumped only when `--maps` names them. A one-entry per-CPU counter (8 bytes) is no
/// scratch map.
pub fn is_scratch(m: &MapInfo) -> bool {
    let array = matches!(m.def.map_type, map_type::ARRAY | map_type::PERCPU_ARRAY);
    (m.def.map_type == map_type::PERCPU_ARRAY
        && m.def.max_entries == 1
        && m.def.value_size > SCRATCH_VALUE)
        || (array && m.def.value_size > BUFFER_VALUE)
        || m.name.starts_with("PARMS_")
        || m.name.to_ascii_uppercase().starts_with("INFLIGHT")
        || m.name == crate::filter::KERNEL_MAP
}

impl Selection {
    /// From the command line's lists.
    pub fn new(programs: &[String], skip: &[String], maps: &[String]) -> Selection {
        let names = |v: &[String]| v.iter().map(|s| Name::new(s)).collect();
        Selection {
            programs: names(programs),
            skip: names(skip),
            maps: names(maps),
        }
    }

    /// Whether program `symbol` (in `section`) of `object` is selected.
    pub fn wants(&self, object: &str, symbol: &str, section: &str) -> bool {
        let joined = format!("{object}/{symbol}");
        let names = program_names(object, symbol, section, &joined);
        (self.programs.is_empty() || self.programs.iter().any(|n| n.hits(&names)))
            && !self.skip.iter().any(|n| n.hits(&names))
    }

    /// Whether any program of `obj` is selected.
    pub fn wants_any(&self, obj: &Object) -> bool {
        obj.info
            .programs
            .iter()
            .any(|p| self.wants(&obj.name, &p.symbol, &p.section))
    }

    /// Whether map `m` of `object` is dumped.
    pub fn wants_map(&self, object: &str, m: &MapInfo) -> bool {
        if self.maps.is_empty() {
            return !is_scratch(m);
        }
        let joined = format!("{object}/{}", m.name);
        self.maps.iter().any(|n| n.hits(&[&joined, &m.name]))
    }

    /// The `--programs`, `--skip` and `--maps` names that match nothing in `objects`, each
    /// with its flag: a typo is a usage error, not a silent no-op.
    pub fn unmatched(&self, objects: &[Object]) -> Vec<String> {
        let program_hit = |n: &Name| {
            objects.iter().any(|o| {
                o.info.programs.iter().any(|p| {
                    let joined = format!("{}/{}", o.name, p.symbol);
                    n.hits(&program_names(&o.name, &p.symbol, &p.section, &joined))
                })
            })
        };
        let map_hit = |n: &Name| {
            objects.iter().any(|o| {
                let legacy = o.info.maps.iter().map(|m| m.name.as_str());
                let btf = o.btf_maps.iter().map(|m| m.name.as_str());
                legacy.chain(btf).any(|name| {
                    let joined = format!("{}/{name}", o.name);
                    n.hits(&[&joined, name])
                })
            })
        };
        let mut out = Vec::new();
        for (flag, names, hit) in [
            (
                "--programs",
                &self.programs,
                &program_hit as &dyn Fn(&Name) -> bool,
            ),
            ("--skip", &self.skip, &program_hit),
            ("--maps", &self.maps, &map_hit),
        ] {
            out.extend(
                names
                    .iter()
                    .filter(|n| !hit(n))
                    .map(|n| format!("{flag} {}", n.text)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::MapDef;

    fn sel(programs: &[&str], skip: &[&str]) -> Selection {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Selection::new(&v(programs), &v(skip), &[])
    }

    #[test]
    fn programs_answer_to_object_symbol_section_and_globs() {
        let tp = "tracepoint/syscalls/sys_enter_execve";
        for name in [
            "execsnoop",
            "execsnoop/outer_execve_enter",
            "outer_execve_enter",
            "execve_enter",
            tp,
            "sys_enter_execve",
            "exec*",
            "*/outer_*",
        ] {
            assert!(
                sel(&[name], &[]).wants("execsnoop", "outer_execve_enter", tp),
                "{name}"
            );
        }
        assert!(!sel(&["execcount"], &[]).wants("execsnoop", "outer_execve_enter", tp));
        assert!(!sel(&["tcp*"], &[]).wants("execsnoop", "outer_execve_enter", tp));
        assert!(!sel(&[], &["execsnoop"]).wants("execsnoop", "p", tp));
        assert!(sel(&[], &["execsnoop"]).wants("execsnoop_kprobe", "p", "kprobe/x"));
        assert!(sel(&[], &[]).wants("any", "p", "xdp"));
    }

    fn map(name: &str, map_type: u32, max_entries: u32, value_size: u32) -> MapInfo {
        MapInfo {
            name: name.into(),
            section: "maps".into(),
            def: MapDef {
                map_type,
                key_size: 4,
                value_size,
                max_entries,
                flags: 0,
            },
            def_offset: None,
        }
    }

    #[test]
    fn scratch_maps_are_dumped_only_when_named() {
        let buf = map("BUF", map_type::PERCPU_ARRAY, 1, 4096);
        let parms = map("PARMS_tcp_v4_connect", map_type::HASH, 1024, 16);
        let counts = map("COUNTS", map_type::PERCPU_ARRAY, 256, 8);
        let counter = map("sent", map_type::PERCPU_ARRAY, 1, 8);
        let slots = map("INFLIGHT", map_type::ARRAY, 1024, 2480);
        let starts = map("inflight_start", map_type::HASH, 10240, 8);
        let records = map("last", map_type::ARRAY, 64, 512);
        let all = Selection::default();
        assert!(!all.wants_map("o", &buf));
        assert!(!all.wants_map("o", &parms));
        assert!(!all.wants_map("o", &slots));
        assert!(!all.wants_map("o", &starts));
        assert!(all.wants_map("o", &records), "512 bytes fit on the stack");
        assert!(all.wants_map("o", &counts));
        assert!(
            all.wants_map("o", &counter),
            "a per-CPU counter is read by people"
        );
        let named = Selection::new(&[], &[], &["o/BUF".into()]);
        assert!(named.wants_map("o", &buf));
        assert!(!named.wants_map("o", &counts));
        let glob = Selection::new(&[], &[], &["PARMS_*".into()]);
        assert!(glob.wants_map("o", &parms));
    }
}
