//! Record bytes -> JSON over real record types: the types `run` would use for every perf
//! and dumped map of the built objects (`target/bpf/{programs,compat}/*/*.elf`, or the
//! directory in `LOADER_FUZZ_BPF`), plus hand-made ones covering every `Type` shape.
//! Input: byte 0 picks the type, byte 1 the CPU, the rest is the record. Checks that
//! `JsonSink::record` lines are valid JSON and carry exactly what `decode::record` writes
//! (the cached-prefix / compiled-plan path must match the generic decoder), and that map
//! keys/values (`maps::write_typed`) and the human table do not panic.

#![no_main]

#[path = "common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use loader::decode;
use loader::dwarf::{Field, Type};
use loader::object::Object;
use loader::maps;
use loader::message::Record;
use loader::sink::json::JsonSink;
use loader::sink::table::TableSink;
use loader::sink::Sink;

fn objects_dir() -> PathBuf {
    std::env::var_os("LOADER_FUZZ_BPF")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bpf"))
}

/// Every `<dir>/{programs,compat}/<name>/<name>.elf`, sorted (the type index must mean
/// the same type from one run to the next).
fn objects(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for kind in ["programs", "compat"] {
        let Ok(entries) = std::fs::read_dir(dir.join(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let elf = e
                .path()
                .join(format!("{}.elf", e.file_name().to_string_lossy()));
            if elf.is_file() {
                found.push(elf);
            }
        }
    }
    found.sort();
    found
}

fn int(size: u32, signed: bool) -> Type {
    Type::Int { size, signed }
}

fn field(name: &str, offset: u32, ty: Type) -> Field {
    Field {
        name: name.to_owned(),
        offset,
        ty,
    }
}

/// One of each shape, including the odd ones debug info can produce.
fn synthetic() -> Vec<Type> {
    let bytes = |count| Type::Array {
        elem: Box::new(Type::Char { size: 1 }),
        count,
    };
    let scalars = vec![
        int(1, false),
        int(2, true),
        int(4, false),
        int(8, true),
        int(8, false),
        int(16, true),
        int(16, false),
        int(3, false),
        Type::Bool { size: 1 },
        Type::Char { size: 1 },
        Type::Char { size: 4 },
        Type::Float { size: 4 },
        Type::Float { size: 8 },
        Type::Float { size: 2 },
        Type::Enum {
            size: 4,
            signed: true,
            variants: vec![
                (-1, "Neg".into()),
                (1, "One".into()),
                (2, "\"quoted\\".into()),
            ],
        },
        Type::Enum {
            size: 8,
            signed: false,
            variants: vec![(0, "Zero".into())],
        },
        Type::Pointer { size: 8 },
        Type::Opaque { size: 12 },
    ];
    let mut all = scalars.clone();
    let fields: Vec<Field> = scalars
        .iter()
        .scan(0u32, |at, t| {
            let f = field(&format!("f\u{1}{}", at), *at, t.clone());
            *at += t.size();
            Some(f)
        })
        .collect();
    let all_size = fields.iter().map(|f| f.ty.size()).sum();
    all.push(Type::Struct {
        name: "every_scalar".into(),
        size: all_size,
        fields,
    });
    // execsnoop-style: fixed header, then a flexible `argv: [u8; 0]`.
    all.push(Type::Struct {
        name: "flex".into(),
        size: 24,
        fields: vec![
            field("pid", 0, int(4, false)),
            field("comm", 4, bytes(16)),
            field("ret", 20, int(4, true)),
            field("argv", 24, bytes(0)),
        ],
    });
    // Fields past the struct's size, overlapping, nested, arrays of structs.
    let inner = Type::Struct {
        name: "inner".into(),
        size: 8,
        fields: vec![
            field("a", 0, int(4, false)),
            field("b", 4, Type::Bool { size: 4 }),
        ],
    };
    all.push(Type::Struct {
        name: "odd".into(),
        size: 16,
        fields: vec![
            field("past_end", 12, int(8, false)),
            field("overlap", 2, int(4, true)),
            field("inner", 0, inner.clone()),
            field("far", u32::MAX, int(1, false)),
        ],
    });
    all.push(Type::Array {
        elem: Box::new(inner),
        count: 3,
    });
    all.push(Type::Array {
        elem: Box::new(Type::Array {
            elem: Box::new(int(2, true)),
            count: 2,
        }),
        count: 2,
    });
    all.push(Type::Array {
        elem: Box::new(int(4, false)),
        count: u32::MAX,
    });
    all.push(Type::Struct {
        name: "empty".into(),
        size: 0,
        fields: Vec::new(),
    });
    all
}

fn types() -> &'static [Type] {
    static TYPES: OnceLock<Vec<Type>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut all = synthetic();
        for path in objects(&objects_dir()) {
            let Ok(data) = std::fs::read(&path) else {
                continue;
            };
            let Ok(obj) = Object::parse("corpus", data) else {
                continue;
            };
            let table = &obj.types;
            for m in &obj.info.maps {
                let (k, v) = table.map_kv_types(&m.name);
                for ty in [table.perf_record_type(&m.name), k, v]
                    .into_iter()
                    .flatten()
                {
                    if !all.contains(&ty) {
                        all.push(ty);
                    }
                }
            }
        }
        eprintln!("decode: {} record types", all.len());
        all
    })
}

const PREFIX: &[u8] = br#"{"type":"event","object":"obj","map":"EVENTS","cpu":"#;

fuzz_target!(|data: &[u8]| {
    let [pick, cpu, record @ ..] = data else {
        return;
    };
    let all = types();
    let ty = &all[usize::from(*pick) % all.len()];
    let cpu = u32::from(*cpu);

    let mut expected = Vec::new();
    decode::record(&mut expected, Some(ty), record);
    common::assert_json(&expected);

    // Twice: the second record reuses the cached prefix and compiled plan.
    let mut out = Vec::new();
    {
        let mut sink = JsonSink::new(&mut out, Vec::new());
        let rec = |ty| Record {
            object: "obj",
            map: "EVENTS",
            cpu,
            ty,
            data: record,
            stacks: &[],
        };
        for _ in 0..2 {
            sink.record(&rec(Some(ty))).unwrap();
        }
        sink.record(&rec(None)).unwrap();
        sink.flush().unwrap();
    }
    let lines: Vec<&[u8]> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 3);
    for line in &lines[..2] {
        common::assert_json(line);
        let data_at = PREFIX.len() + cpu.to_string().len() + br#","data":"#.len();
        assert!(line.starts_with(PREFIX));
        assert_eq!(
            &line[data_at..line.len() - 1],
            expected.as_slice(),
            "JsonSink::record and decode::record disagree"
        );
    }
    common::assert_json(lines[2]);

    let mut human = Vec::new();
    {
        let mut sink = TableSink::new(&mut human, Vec::new());
        let rec = Record {
            object: "obj",
            map: "EVENTS",
            cpu,
            ty: Some(ty),
            data: record,
            stacks: &[],
        };
        sink.record(&rec).unwrap();
        sink.flush().unwrap();
    }

    for bytes in [record, record.get(..ty.size() as usize).unwrap_or(record)] {
        let mut kv = Vec::new();
        maps::write_typed(&mut kv, Some(ty), bytes);
        common::assert_json(&kv);
    }
});
