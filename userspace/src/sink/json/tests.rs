use serde_json::{json, Value};

use super::*;
use crate::message::{KernelLine, MapCount, Summary};

fn lines(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn record<'a>(map: &'a str, data: &'a [u8]) -> Record<'a> {
    Record {
        object: "o",
        map,
        cpu: 1,
        ty: None,
        data,
        stacks: &[],
    }
}

#[test]
fn every_message_is_one_flat_type_tagged_line() {
    let mut sink = JsonSink::new(Vec::new(), Vec::new());
    let kernel = KernelLine {
        release: "4.15.0-213-generic",
        version: "4.15.18",
        version_code: 266002,
        legacy: true,
        kprobes: "kprobe_events",
        btf: false,
        memlock: "raised",
        leftovers: 0,
        reason: "4.15 < 4.17",
    };
    sink.message(&Message::Kernel(&kernel)).unwrap();
    sink.message(&Message::Attached {
        object: "o",
        program: "prog",
        section: "tracepoint/a/b",
        kind: "tracepoint",
        target: "a:b",
    })
    .unwrap();
    sink.record(&record("EVENTS", &[0xab])).unwrap();
    sink.record(&record("EVENTS", &[0xcd])).unwrap();
    sink.record(&record("OTHER", &[0xef])).unwrap();
    sink.message(&Message::Lost {
        object: "o",
        map: "EVENTS",
        cpu: 0,
        count: 3,
    })
    .unwrap();
    sink.message(&Message::Error {
        object: "o",
        program: Some("prog"),
        section: None,
        error: "bad \"thing\"",
        verifier_log: Some("log\nline"),
    })
    .unwrap();
    sink.message(&Message::Printk {
        pid: 7,
        comm: "sh",
        cpu: Some(1),
        msg: "hi",
        origin: Some(("o", "prog")),
    })
    .unwrap();
    sink.map_dump("o", "COUNTS", "hash", &mut |b| {
        b.extend_from_slice(b"{\"key\":1,\"value\":2}")
    })
    .unwrap();
    let summary = Summary {
        events: 1,
        lost: 3,
        maps: vec![MapCount {
            object: "o".into(),
            map: "EVENTS".into(),
            events: 1,
            lost: 3,
            hex: 0,
        }],
        ..Default::default()
    };
    sink.message(&Message::Summary(&summary)).unwrap();
    let (out, diag) = sink.into_parts();
    let v = lines(&out);
    assert_eq!(v[0]["type"], "kernel");
    assert_eq!(v[0]["version_code"], 266002);
    assert_eq!(v[0]["legacy"], true);
    assert_eq!(v[1]["type"], "attached");
    assert_eq!(v[1]["target"], "a:b");
    assert_eq!(
        v[2],
        json!({"type":"event","object":"o","map":"EVENTS","cpu":1,"data":{"hex":"ab"}})
    );
    assert_eq!(v[3]["data"]["hex"], "cd", "the cached prefix is reused");
    assert_eq!(
        v[4],
        json!({"type":"event","object":"o","map":"OTHER","cpu":1,"data":{"hex":"ef"}})
    );
    assert_eq!(
        v[5],
        json!({"type":"lost","object":"o","map":"EVENTS","cpu":0,"count":3})
    );
    assert_eq!(v[6]["section"], Value::Null);
    assert_eq!(v[6]["verifier_log"], "log\nline");
    assert_eq!(
        v[7],
        json!({"type":"printk","pid":7,"comm":"sh","cpu":1,"msg":"hi","object":"o","program":"prog"})
    );
    assert_eq!(v[8]["entries"][0]["value"], 2);
    assert_eq!(v[9]["maps"][0]["lost"], 3);
    assert_eq!(v.len(), 10);
    // The error and the summary are said on the diagnostics writer too, in words.
    let diag = String::from_utf8(diag).unwrap();
    assert!(
        diag.contains("loader: error: o/prog: bad \"thing\"\nloader: verifier log:\nlog\nline"),
        "{diag}"
    );
    assert!(diag.contains("loader: summary: 1 events, 3 lost"), "{diag}");
    assert!(!diag.contains("loader: attached"), "{diag}");
}

#[test]
fn a_closed_out_keeps_only_diagnostics() {
    let mut sink = JsonSink::new(Vec::new(), Vec::new());
    sink.message(&Message::Loaded {
        object: "o",
        program: "p",
        section: "xdp",
    })
    .unwrap();
    sink.flush().unwrap();
    sink.close_out();
    sink.message(&Message::Summary(&Summary::default()))
        .unwrap();
    let (out, diag) = sink.into_parts();
    assert_eq!(lines(&out).len(), 1);
    assert!(String::from_utf8(diag).unwrap().contains("summary"));
}

#[test]
fn no_verifier_log_means_no_key_and_printk_without_cpu_has_none() {
    let mut buf = Vec::new();
    render(
        &mut buf,
        &Message::Error {
            object: "o",
            program: None,
            section: Some("maps"),
            error: "e",
            verifier_log: None,
        },
    );
    assert_eq!(
        std::str::from_utf8(&buf).unwrap(),
        r#"{"type":"error","object":"o","program":null,"section":"maps","error":"e"}"#
    );
    buf.clear();
    render(
        &mut buf,
        &Message::Printk {
            pid: 1,
            comm: "c",
            cpu: None,
            msg: "m",
            origin: None,
        },
    );
    assert_eq!(
        std::str::from_utf8(&buf).unwrap(),
        r#"{"type":"printk","pid":1,"comm":"c","msg":"m","foreign":true}"#
    );
}

/// `{ts: u64, pid: u32, neg: i16, comm: [u8; 8]}`, 24 bytes.
fn call_type() -> Type {
    use crate::dwarf::Field;
    let f = |name: &str, offset, ty| Field {
        name: name.into(),
        offset,
        ty,
    };
    Type::Struct {
        name: "Call".into(),
        size: 24,
        fields: vec![
            f(
                "ts",
                0,
                Type::Int {
                    size: 8,
                    signed: false,
                },
            ),
            f(
                "pid",
                8,
                Type::Int {
                    size: 4,
                    signed: false,
                },
            ),
            f(
                "neg",
                12,
                Type::Int {
                    size: 2,
                    signed: true,
                },
            ),
            f(
                "comm",
                16,
                Type::Array {
                    elem: Box::new(Type::Char { size: 1 }),
                    count: 8,
                },
            ),
        ],
    }
}

fn call(ts: u64, comm: &[u8; 8]) -> Vec<u8> {
    let mut b = ts.to_le_bytes().to_vec();
    b.extend_from_slice(&(ts as u32).to_le_bytes());
    b.extend_from_slice(&(-(ts as i16)).to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(comm);
    b
}

#[test]
fn template_lines_keep_their_order_and_bytes_among_every_other_line() {
    let ty = call_type();
    let mut sink = JsonSink::new(Vec::new(), Vec::new());
    let mut want = Vec::new();
    let event = |sink: &mut JsonSink<Vec<u8>, Vec<u8>>, want: &mut Vec<u8>, cpu, data: &[u8]| {
        let r = Record {
            object: "obj",
            map: "EVENTS",
            cpu,
            ty: Some(&ty),
            data,
            stacks: &[],
        };
        sink.record(&r).unwrap();
        want.extend_from_slice(
            format!(r#"{{"type":"event","object":"obj","map":"EVENTS","cpu":{cpu},"data":"#)
                .as_bytes(),
        );
        decode::record(want, Some(&ty), data);
        want.extend_from_slice(b"}\n");
    };
    // Enough lines to fill the stage several times, on two CPUs, with records the fast
    // path leaves to the general writers (an escape, invalid UTF-8, a short record, a
    // tail) and messages in between.
    for i in 0..3000u64 {
        let comm: &[u8; 8] = match i % 7 {
            3 => b"tab\there",
            5 => b"\xff\xfe\0\0\0\0\0\0",
            _ => b"loadgen\0",
        };
        let mut data = call(i * 1_000_003, comm);
        match i % 11 {
            4 => data.truncate(13),
            6 => data.extend_from_slice(b"argv\0x\0\0\0"),
            8 => data.extend_from_slice(&[9, 9, 9, 9]), // perf padding: ignored
            _ => {}
        }
        event(&mut sink, &mut want, (i % 2) as u32, &data);
        if i % 500 == 0 {
            sink.message(&Message::Lost {
                object: "obj",
                map: "EVENTS",
                cpu: 0,
                count: i,
            })
            .unwrap();
            let mut line = Vec::new();
            render(
                &mut line,
                &Message::Lost {
                    object: "obj",
                    map: "EVENTS",
                    cpu: 0,
                    count: i,
                },
            );
            want.extend_from_slice(&line);
            want.push(b'\n');
        }
        if i % 1000 == 999 {
            sink.flush().unwrap();
        }
    }
    let (out, _) = sink.into_parts();
    assert_eq!(out.len(), want.len());
    assert!(out == want, "the lines differ");
    assert_eq!(lines(&out).len(), 3006);
}

#[test]
fn names_compare_equal_exactly_when_they_are() {
    let names = [
        "",
        "a",
        "ab",
        "abc",
        "abcd",
        "abce",
        "EVENTS",
        "EVENTs",
        "getppid",
        "getppie",
        "12345678",
        "123456789",
        "123456788",
        "exactly-sixteen!",
        "exactly-sixteen?",
        "seventeen-bytes!!",
        "seventeen-bytes!?",
        "Xeventeen-bytes!!",
    ];
    for a in names {
        for b in names {
            assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
        }
        let copy: String = a.chars().collect(); // equal bytes elsewhere in memory
        assert!(same(a, &copy));
    }
}
