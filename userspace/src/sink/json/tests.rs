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
