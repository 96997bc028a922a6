use super::*;
use crate::dwarf::{Field, Type};

fn u(size: u32) -> Type {
    Type::Int {
        size,
        signed: false,
    }
}

fn field(name: &str, offset: u32, ty: Type) -> Field {
    Field {
        name: name.into(),
        offset,
        ty,
    }
}

/// An exec record the way C tools lay it out: pid, comm, flags, then the arguments.
fn exec_type() -> Type {
    Type::Struct {
        name: "event".into(),
        size: 32,
        fields: vec![
            field("pid", 0, u(4)),
            field("flags", 4, u(4)),
            field(
                "comm",
                8,
                Type::Array {
                    elem: Box::new(Type::Char { size: 1 }),
                    count: 16,
                },
            ),
            field("ktime_ns", 24, u(8)),
        ],
    }
}

fn exec_record(pid: u32, comm: &str, args: &[&str]) -> Vec<u8> {
    let mut b = pid.to_le_bytes().to_vec();
    b.extend_from_slice(&0x80000u32.to_le_bytes());
    let mut c = comm.as_bytes().to_vec();
    c.resize(16, 0);
    b.extend_from_slice(&c);
    b.extend_from_slice(&0u64.to_le_bytes());
    for a in args {
        b.extend_from_slice(a.as_bytes());
        b.push(0);
    }
    b
}

fn text(sink: TableSink<Vec<u8>, Vec<u8>>) -> (String, String) {
    let (out, diag) = sink.into_parts();
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(diag).unwrap(),
    )
}

#[test]
fn records_get_their_own_header_a_probe_column_and_readable_cells() {
    let exec = exec_type();
    let count = u(8);
    let mut sink = TableSink::new(Vec::new(), Vec::new());
    for (pid, comm) in [(41, "bash"), (42, "ls")] {
        let data = exec_record(pid, comm, &["ls", "-l"]);
        sink.record(&Record {
            object: "execsnoop",
            map: "events",
            cpu: 0,
            ty: Some(&exec),
            data: &data,
            stacks: &[],
        })
        .unwrap();
    }
    sink.record(&Record {
        object: "counter",
        map: "hits",
        cpu: 1,
        ty: Some(&count),
        data: &7u64.to_le_bytes(),
        stacks: &[],
    })
    .unwrap();
    sink.message(&Message::Attached {
        object: "execsnoop",
        program: "p",
        section: "tracepoint/syscalls/sys_enter_execve",
        kind: "tracepoint",
        target: "syscalls:sys_enter_execve",
    })
    .unwrap();
    sink.message(&Message::Printk {
        pid: 9,
        comm: "sh",
        cpu: None,
        msg: "hello",
        origin: None,
    })
    .unwrap();
    let (out, diag) = text(sink);
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["TIME", "PROBE", "PID", "FLAGS", "COMM", "ARGS"],
        "{out}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("TIME")).count(),
        1,
        "one header for records of one layout: {out}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &row[1..],
        ["execsnoop", "41", "0x80000", "bash", "ls", "-l"],
        "{out}"
    );
    assert!(
        lines[2].contains(" 42 ") && lines[2].contains(" ls -l"),
        "{out}"
    );
    assert!(lines[3].ends_with("counter/hits 7"), "{out}");
    assert_eq!(lines[4], "printk: sh[9]: hello");
    assert!(
        diag.contains(
            "loader: attached 1 program:\n  execsnoop  tracepoint syscalls:sys_enter_execve\n"
        ),
        "{diag}"
    );
    assert!(!out.contains("attached"), "{out}");
}

#[test]
fn map_dumps_are_one_entry_per_line_without_the_zero_ones() {
    let mut sink = TableSink::new(Vec::new(), Vec::new());
    sink.map_dump("xdpcount", "COUNTS", "array", &mut |b| {
        b.extend_from_slice(
            br#"{"key":0,"value":0},{"key":6,"value":12},{"key":"tcp","values":[1,2],"sum":3}"#,
        )
    })
    .unwrap();
    let (out, _) = text(sink);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "map xdpcount/COUNTS (array): 3 entries, 1 zero ones not shown"
    );
    assert_eq!(lines[1], "@COUNTS[6]: 12", "bpftrace's shape");
    assert_eq!(lines[2], "@COUNTS[tcp]: 3", "per-CPU values summed");
    assert_eq!(lines.len(), 3);
}

#[test]
fn untyped_records_are_hex_with_their_origin() {
    let mut sink = TableSink::new(Vec::new(), Vec::new());
    sink.record(&Record {
        object: "c",
        map: "events",
        cpu: 3,
        ty: None,
        data: &[0xde, 0xad],
        stacks: &[],
    })
    .unwrap();
    let (out, _) = text(sink);
    assert!(out.trim_end().ends_with("c/events cpu3 dead"), "{out}");
}

#[test]
fn negative_returns_carry_their_errno_name() {
    let ty = Type::Struct {
        name: "open".into(),
        size: 8,
        fields: vec![
            field("pid", 0, u(4)),
            field(
                "ret",
                4,
                Type::Int {
                    size: 4,
                    signed: true,
                },
            ),
        ],
    };
    let mut sink = TableSink::new(Vec::new(), Vec::new());
    for ret in [-2i32, 3, -9999] {
        let data = [7u32.to_le_bytes(), ret.to_le_bytes()].concat();
        sink.record(&Record {
            object: "opensnoop",
            map: "events",
            cpu: 0,
            ty: Some(&ty),
            data: &data,
            stacks: &[],
        })
        .unwrap();
    }
    let (out, _) = text(sink);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    assert_eq!(rows[0], ["opensnoop", "7", "-2", "ENOENT"], "{out}");
    assert_eq!(rows[1], ["opensnoop", "7", "3"], "{out}");
    assert_eq!(rows[2], ["opensnoop", "7", "-9999"], "{out}");
}

#[test]
fn attached_lines_are_one_block_per_object_after_the_errors() {
    let mut sink = TableSink::new(Vec::new(), Vec::new());
    let attach = |sink: &mut TableSink<Vec<u8>, Vec<u8>>, object, kind, target| {
        sink.message(&Message::Attached {
            object,
            program: "p",
            section: "s",
            kind,
            target,
        })
        .unwrap();
    };
    attach(
        &mut sink,
        "execsnoop",
        "tracepoint",
        "syscalls:sys_enter_execve",
    );
    attach(
        &mut sink,
        "execsnoop",
        "tracepoint",
        "syscalls:sys_exit_execve",
    );
    sink.message(&Message::Decode {
        object: "execsnoop",
        map: "EVENTS",
        records: true,
        key: None,
        value: Some(("ExecEvent", "the map's PerfMap<T>")),
    })
    .unwrap();
    attach(&mut sink, "tcpconnect", "kprobe", "tcp_v4_connect");
    sink.message(&Message::Error {
        object: "tcpconnect",
        program: Some("q"),
        section: None,
        error: "refused",
        verifier_log: None,
    })
    .unwrap();
    attach(&mut sink, "tcpconnect", "kretprobe", "tcp_v4_connect");
    attach(
        &mut sink,
        "execsnoop",
        "tracepoint",
        "sched:sched_process_fork",
    );
    let before = String::from_utf8(sink.diag.clone()).unwrap();
    assert_eq!(
        before, "loader: error: tcpconnect/q: refused\n",
        "errors are not held"
    );
    sink.flush().unwrap();
    let (_, diag) = text(sink);
    assert_eq!(
        diag,
        "loader: error: tcpconnect/q: refused\n\
         loader: attached 5 programs:\n\
         \x20 execsnoop   tracepoint syscalls:sys_enter_execve, syscalls:sys_exit_execve, sched:sched_process_fork\n\
         \x20 tcpconnect  kprobe tcp_v4_connect; kretprobe tcp_v4_connect\n\
         loader: execsnoop/EVENTS: records are ExecEvent (the map's PerfMap<T>)\n"
    );
}
