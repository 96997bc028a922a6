//! Host-side judgement of one scenario's console output against its [`Expect`].

use serde_json::Value;

use crate::console::StepOutput;
use crate::scenario::{Expect, Probe, Scenario, Workload, EXEC_PROGRAMS};

/// The verdict on one scenario on one kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub scenario: &'static str,
    /// `attached` lines seen.
    pub attached: usize,
    /// `event` lines seen; for counting scenarios the count (selftest hits, map value).
    pub events: u64,
    pub elapsed: Option<f64>,
    pub failures: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

pub fn check(s: &Scenario, out: Option<&StepOutput>) -> Outcome {
    check_on(s, out, (6, 1), &[])
}

/// What `loader check --kernel <the booted kernel>` says of one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    /// The object's file stem (the loader's `object` field).
    pub object: String,
    pub program: String,
    pub ok: bool,
    /// Its problems, `what needs X.Y; ...`.
    pub why: String,
}

/// The `check` lines of `loader check --json` output.
pub fn parse_predictions(stdout: &str) -> Vec<Prediction> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| type_of(v) == "check")
        .filter_map(|v| {
            let d = &v;
            let path = d["object"].as_str()?;
            let object = std::path::Path::new(path)
                .file_stem()?
                .to_string_lossy()
                .into_owned();
            let why = d["problems"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let s = |k: &str| p[k].as_str().unwrap_or("").to_owned();
                            format!("{} needs {}", s("what"), s("needs"))
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            Some(Prediction {
                object,
                program: d["program"].as_str()?.to_owned(),
                ok: d["ok"].as_bool()?,
                why,
            })
        })
        .collect()
}

/// Each predicted program has its `loaded` line (check said ok) or its `error` line (check
/// said no); no other error line. Returns how many agreed.
fn check_agrees(predictions: &[Prediction], lines: &[Value], failures: &mut Vec<String>) -> u64 {
    // An object-level error (`program` null: a map the kernel refuses) stands for each of
    // the object's programs.
    let line_for = |kind: &str, p: &Prediction| {
        lines.iter().find(|v| {
            type_of(v) == kind
                && v["object"].as_str() == Some(p.object.as_str())
                && (v["program"].as_str() == Some(p.program.as_str())
                    || (kind == "error" && v["program"].is_null()))
        })
    };
    let mut agreed = 0;
    for p in predictions {
        match (p.ok, line_for("loaded", p), line_for("error", p)) {
            (true, Some(_), None) | (false, None, Some(_)) => agreed += 1,
            (true, _, Some(e)) => failures.push(format!(
                "{}/{}: check says ok on this kernel, the kernel refused it: {e}",
                p.object, p.program
            )),
            (false, Some(_), _) => failures.push(format!(
                "{}/{}: check says it cannot run here ({}), yet it loaded",
                p.object, p.program, p.why
            )),
            (_, None, None) => failures.push(format!(
                "{}/{}: neither a loaded nor an error line",
                p.object, p.program
            )),
        }
    }
    let refused = predictions.iter().filter(|p| !p.ok).count();
    let errors: Vec<&Value> = lines.iter().filter(|v| type_of(v) == "error").collect();
    let unexplained = errors.iter().any(|e| {
        !predictions.iter().any(|p| {
            !p.ok
                && e["object"].as_str() == Some(p.object.as_str())
                && (e["program"].is_null() || e["program"].as_str() == Some(p.program.as_str()))
        })
    });
    if errors.len() > refused || unexplained {
        let shown: Vec<String> = errors.iter().map(|v| v.to_string()).collect();
        failures.push(format!(
            "{} error lines for {refused} programs check refuses: {}",
            errors.len(),
            shown.join(" | ")
        ));
    }
    agreed
}

/// Kernels below 4.17 have no kprobe PMU: the loader takes kprobe_events by itself there.
const KPROBE_PMU: (u32, u32) = (4, 17);

/// [`check`] for a scenario that ran on kernel `(major, minor)`.
pub fn check_on(
    s: &Scenario,
    out: Option<&StepOutput>,
    kernel: (u32, u32),
    predictions: &[Prediction],
) -> Outcome {
    let mut o = Outcome {
        scenario: s.name,
        attached: 0,
        events: 0,
        elapsed: None,
        failures: Vec::new(),
    };
    let Some(out) = out else {
        o.failures
            .push("no output: the guest never started this scenario".to_owned());
        return o;
    };
    o.elapsed = out.elapsed();
    check_exit(s, out, predictions, &mut o.failures);
    let lines = json_lines(out, &mut o.failures);
    if let Expect::Refused(needle) = s.expect {
        check_refused(needle, &lines, &mut o.failures);
    } else if s.expect == Expect::CheckAgrees {
        // Judged program by program below.
    } else {
        for v in lines.iter().filter(|v| type_of(v) == "error") {
            o.failures.push(format!("error line: {v}"));
        }
    }
    o.attached = lines.iter().filter(|v| type_of(v) == "attached").count();
    if o.attached != s.attached {
        o.failures.push(format!(
            "{} program(s) attached, expected {}",
            o.attached, s.attached
        ));
    }
    if !out.kprobe_events.is_empty() {
        o.failures.push(format!(
            "kprobe_events/uprobe_events not empty after exit: {}",
            out.kprobe_events.join(" | ")
        ));
    }
    if let Probe::Loader { legacy, .. } = s.probe {
        let legacy = legacy || kernel < KPROBE_PMU;
        check_kernel_line(s, legacy, out, &lines, &mut o.failures);
        check_kprobes_during(s, legacy, out, &lines, &mut o.failures);
    }
    if s.companion {
        check_companion(s, out, &lines, &mut o.failures);
    }
    o.events = lines.iter().filter(|v| type_of(v) == "event").count() as u64;
    check_expected(s, kernel, out, predictions, &lines, &mut o);
    o
}

/// The exit status the scenario expects: 1 for a refused object, and for --verify with a
/// rejection; else 0.
fn check_exit(
    s: &Scenario,
    out: &StepOutput,
    predictions: &[Prediction],
    failures: &mut Vec<String>,
) {
    let expected_exit = match s.expect {
        Expect::Refused(_) => "1",
        Expect::CheckAgrees if predictions.iter().any(|p| !p.ok) => "1",
        _ => "0",
    };
    match out.exit() {
        None => failures.push("no VMTEST-END: the guest stopped during this scenario".to_owned()),
        Some(code) if code == expected_exit => {}
        Some(other) => failures.push(format!("exit={other} (expected {expected_exit})")),
    }
}

/// The loader's stdout, every line a JSON object with a `type` (else a failure).
fn json_lines(out: &StepOutput, failures: &mut Vec<String>) -> Vec<Value> {
    let mut lines = Vec::new();
    for (i, l) in out.stdout.iter().enumerate() {
        match serde_json::from_str::<Value>(l) {
            Ok(v) if v.is_object() && !type_of(&v).is_empty() => lines.push(v),
            Ok(_) => failures.push(format!(
                "stdout line {} is JSON but not an object with a \"type\": {l}",
                i + 1
            )),
            Err(e) => failures.push(format!("stdout line {} is not JSON ({e}): {l}", i + 1)),
        }
    }
    lines
}

/// kprobe_events while the loader ran: one entry per attached kprobe in legacy mode, none
/// with the perf PMU.
fn check_kprobes_during(
    s: &Scenario,
    legacy: bool,
    out: &StepOutput,
    lines: &[Value],
    failures: &mut Vec<String>,
) {
    let during = out.kprobe_during.len();
    let kprobes = lines
        .iter()
        .filter(|v| type_of(v) == "attached")
        .filter(|v| matches!(v["kind"].as_str(), Some("kprobe" | "kretprobe")))
        .count();
    if legacy && s.uses_kprobes() && (during < kprobes || kprobes == 0) {
        failures.push(format!(
            "--legacy: {during} kprobe_events entries while the loader ran, expected \
             {kprobes} (one per attached kprobe/kretprobe, at least one)"
        ));
    }
    if !legacy && during != 0 {
        failures.push(format!(
            "perf PMU mode, yet kprobe_events had entries while the loader ran: {}",
            out.kprobe_during.join(" | ")
        ));
    }
}

/// What the scenario's `expect` asks of the output (and the event count it reports).
fn check_expected(
    s: &Scenario,
    kernel: (u32, u32),
    out: &StepOutput,
    predictions: &[Prediction],
    lines: &[Value],
    o: &mut Outcome,
) {
    let events: Vec<&Value> = lines.iter().filter(|v| type_of(v) == "event").collect();
    let expected_execs = s.workload.expected_execs();
    match s.expect {
        Expect::SelftestHits => {
            let hits = lines
                .iter()
                .find(|v| type_of(v) == "selftest")
                .and_then(|v| v.get("hits"))
                .and_then(Value::as_u64);
            match hits {
                None => o.failures.push("no selftest line with hits".to_owned()),
                Some(h) => {
                    o.events = h;
                    if h != expected_execs {
                        o.failures.push(format!(
                            "kprobe hit {h} times, expected exactly {expected_execs} execs"
                        ));
                    }
                }
            }
        }
        Expect::ExecCount => {
            let (count, failure) = exec_count(lines, expected_execs);
            o.events = count;
            o.failures.extend(failure);
        }
        Expect::ExecSnoop => {
            let driver = workload_pid(&out.info);
            check_execsnoop(s.workload, driver, &events, &mut o.failures)
        }
        Expect::TcpConnect => check_tcpconnect(s.workload, &events, &mut o.failures),
        Expect::Ufunc => check_ufunc(s.workload, &events, &mut o.failures),
        Expect::Refused(_) => {}
        Expect::RingFallback => {
            o.events =
                crate::c_objects::check_ring_fallback(kernel, s.workload, lines, &mut o.failures)
        }
        Expect::BtfKprobes => {
            o.events = crate::c_objects::check_btf_kprobes(s.workload, lines, &mut o.failures)
        }
        Expect::KernelStacks => {
            let driver = workload_pid(&out.info);
            o.events =
                crate::c_objects::check_kernel_stacks(s.workload, driver, lines, &mut o.failures)
        }
        Expect::LegacyLayouts => {
            let driver = workload_pid(&out.info);
            o.events =
                crate::c_objects::check_legacy_layouts(s.workload, driver, lines, &mut o.failures)
        }
        Expect::CheckAgrees => o.events = check_agrees(predictions, lines, &mut o.failures),
        Expect::Printk(msg) => {
            o.events = check_printk(msg, expected_execs, lines, &mut o.failures);
        }
        Expect::PacketCount { map, key, field } => {
            let min = match s.workload {
                Workload::TcpConnect { connects, .. } => u64::from(connects) * 3,
                Workload::Exec { .. } | Workload::Ufunc { .. } | Workload::Getppid { .. } => 1,
            };
            o.events = packet_count(lines, map, key, field);
            if o.events < min {
                o.failures.push(format!(
                    "map {map} counts {} packets at key {key}, expected at least {min} (3 per connect); map lines: {}",
                    o.events,
                    map_lines(lines, map)
                ));
            }
        }
    }
}

/// The exec count in the map dumps among `lines`: `expected` if one holds it, else the
/// first count found, with a failure.
/// Every program of the object has its own error line naming it and its section, with
/// `needle` in the message; no map, event or printk line.
fn check_refused(needle: &str, lines: &[Value], failures: &mut Vec<String>) {
    let errors: Vec<&Value> = lines.iter().filter(|v| type_of(v) == "error").collect();
    if errors.is_empty() {
        failures.push("no error line: the refused program was not reported".to_owned());
    }
    for e in &errors {
        let msg = e.get("error").and_then(Value::as_str).unwrap_or("");
        if !e["program"].is_string() || !e["section"].is_string() || !msg.contains(needle) {
            failures.push(format!(
                "error line without program, section or {needle:?}: {e}"
            ));
        }
    }
}

/// One call event (is_return 0, the arguments) and one return event (is_return 1, the
/// result) per workload call, each from the guest driver's pid.
fn check_ufunc(w: Workload, events: &[&Value], failures: &mut Vec<String>) {
    let Workload::Ufunc { calls } = w else {
        failures.push("ufunc needs the ufunc workload".to_owned());
        return;
    };
    let field = |e: &Value, k: &str| e["data"][k].as_u64();
    for i in 1..=u64::from(calls) {
        let (a, b) = crate::scenario::ufunc_args(i);
        let call = events.iter().any(|e| {
            field(e, "is_return") == Some(0)
                && field(e, "arg0") == Some(a)
                && field(e, "arg1") == Some(b)
        });
        let ret = crate::scenario::ufunc_result(a, b);
        let returned = events
            .iter()
            .any(|e| field(e, "is_return") == Some(1) && field(e, "ret") == Some(ret));
        if !call || !returned {
            failures.push(format!(
                "ufunc_target({a}, {b}): call event {call}, return event with {ret} {returned}; events: {}",
                events.iter().take(6).map(|e| e.to_string()).collect::<Vec<_>>().join(" | ")
            ));
        }
    }
    if events.len() as u64 != 2 * u64::from(calls) {
        failures.push(format!(
            "{} events, expected exactly {} (a call and a return per workload call)",
            events.len(),
            2 * calls
        ));
    }
}

/// The count at `key` in the last dump of map `map`: the largest `field` (or any number of
/// the value) there, so a per-CPU map's sum counts.
fn packet_count(lines: &[Value], map: &str, key: u64, field: Option<&str>) -> u64 {
    let Some(dump) = lines
        .iter()
        .rev()
        .find(|v| type_of(v) == "map" && v.get("map").and_then(Value::as_str) == Some(map))
    else {
        return 0;
    };
    let entries = dump.get("entries").and_then(Value::as_array);
    let Some(entry) = entries.and_then(|e| e.iter().find(|e| e["key"] == key)) else {
        return 0;
    };
    let mut nums = Vec::new();
    match field {
        Some(f) => collect_field(entry, f, &mut nums),
        None => collect_values(entry, false, &mut nums),
    }
    nums.into_iter().max().unwrap_or(0)
}

/// Every number under a key named `field`, at any depth.
fn collect_field(v: &Value, field: &str, out: &mut Vec<u64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect_field(x, field, out)),
        Value::Object(m) => {
            for (k, x) in m {
                if k == field {
                    collect_values(x, true, out);
                } else {
                    collect_field(x, field, out);
                }
            }
        }
        _ => {}
    }
}

fn map_lines(lines: &[Value], map: &str) -> String {
    let shown: Vec<String> = lines
        .iter()
        .filter(|v| type_of(v) == "map" && v.get("map").and_then(Value::as_str) == Some(map))
        .map(|v| v.to_string())
        .collect();
    if shown.is_empty() {
        "none".to_owned()
    } else {
        shown.join(" | ")
    }
}

/// Exactly `expected` printk lines carrying `msg`, each with a pid and comm; returns how many.
fn check_printk(msg: &str, expected: u64, lines: &[Value], failures: &mut Vec<String>) -> u64 {
    let printk: Vec<&Value> = lines.iter().filter(|v| type_of(v) == "printk").collect();
    let ours = printk
        .iter()
        .filter(|v| v.get("msg").and_then(Value::as_str) == Some(msg))
        .filter(|v| v.get("pid").and_then(Value::as_u64).is_some_and(|p| p > 0))
        .filter(|v| {
            v.get("comm")
                .and_then(Value::as_str)
                .is_some_and(|c| !c.is_empty())
        })
        .count() as u64;
    if ours != expected {
        let shown: Vec<String> = printk.iter().take(8).map(|v| v.to_string()).collect();
        failures.push(format!(
            "{ours} printk lines {msg:?} with pid and comm, expected exactly {expected} (one per exec); printk lines: {}",
            if shown.is_empty() { "none".to_owned() } else { shown.join(" | ") }
        ));
    }
    ours
}

fn exec_count(lines: &[Value], expected: u64) -> (u64, Option<String>) {
    let maps: Vec<&Value> = lines.iter().filter(|v| type_of(v) == "map").collect();
    // The count: a value equal to the expectation, else the sum of the values (per-CPU
    // maps hold one partial count per CPU).
    let counts: Vec<u64> = maps
        .iter()
        .map(|m| {
            let mut nums = Vec::new();
            collect_values(m, false, &mut nums);
            if nums.contains(&expected) {
                expected
            } else {
                nums.iter().sum()
            }
        })
        .collect();
    if counts.contains(&expected) {
        return (expected, None);
    }
    let shown = if maps.is_empty() {
        "none".to_owned()
    } else {
        maps.iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    (
        counts.first().copied().unwrap_or(0),
        Some(format!(
            "no map dump holds the count {expected}; map lines: {shown}"
        )),
    )
}

/// A companion loader (renamed binary) ran alongside: its kprobe events must have survived
/// the checked loader's start and exit, and it must have counted the workload too.
fn check_companion(s: &Scenario, out: &StepOutput, lines: &[Value], failures: &mut Vec<String>) {
    let kept = out
        .kprobe_companion
        .iter()
        .filter(|l| l.contains("redbpf_loader/"))
        .count();
    if kept != s.attached {
        failures.push(format!(
            "companion: {kept} of its {} kprobe_events entries left once the checked loader \
             exited: {}",
            s.attached,
            out.kprobe_companion.join(" | ")
        ));
    }
    // The kernel refuses (EBUSY) to delete an event a perf event holds, so trying is the
    // mistake to catch: it only fails between the other loader's write to kprobe_events
    // and its perf_event_open, and then breaks that loader's attach.
    for l in out.stderr.iter().filter(|l| l.contains("leftover")) {
        failures.push(format!(
            "companion: the checked loader went for a live loader's event: {l}"
        ));
    }
    let removed = lines
        .iter()
        .find(|v| type_of(v) == "kernel")
        .and_then(|k| k.get("leftovers_removed"))
        .and_then(Value::as_u64);
    if removed != Some(0) {
        failures.push(format!(
            "companion: the checked loader removed {removed:?} leftover(s) of a live loader"
        ));
    }
    let companion: Vec<Value> = out
        .companion
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // It was attached before the checked loader was started: that exec counts too.
    if let (_, Some(f)) = exec_count(&companion, s.workload.expected_execs() + 1) {
        failures.push(format!("companion: {f}"));
    }
    if !out.info.iter().any(|l| l == "companion exit=0") {
        failures.push(format!(
            "companion: did not exit 0 after SIGINT: {}",
            out.info
                .iter()
                .filter(|l| l.starts_with("companion"))
                .cloned()
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
}

/// The numbers under `value`/`values` keys (at any depth) of a map dump; `inside` is true
/// below such a key.
fn collect_values(v: &Value, inside: bool, out: &mut Vec<u64>) {
    match v {
        Value::Number(n) if inside => out.extend(n.as_u64()),
        Value::Array(a) => a.iter().for_each(|x| collect_values(x, inside, out)),
        Value::Object(m) => {
            for (k, x) in m {
                let under = inside || matches!(k.as_str(), "value" | "values");
                if k != "key" && k != "cpu" {
                    collect_values(x, under, out);
                }
            }
        }
        _ => {}
    }
}

/// The guest driver's pid, from the workload's console line (`workload=exec ... pid=N`).
fn workload_pid(info: &[String]) -> Option<u64> {
    info.iter()
        .filter(|l| l.starts_with("workload="))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("pid=")?.parse().ok())
        })
}

/// Every workload exec succeeded (`ret` 0) and was forked by the guest driver (`ppid`).
fn check_exec_result(driver: Option<u64>, events: &[&Value], failures: &mut Vec<String>) {
    for e in events {
        let d = &e["data"];
        if d["ret"].as_i64() != Some(0)
            || d["ppid"].as_u64().is_none()
            || d["ppid"].as_u64() != driver
        {
            failures.push(format!(
                "event {d} should have ret 0 and ppid {driver:?} (the guest driver forked it)"
            ));
        }
    }
}

fn check_execsnoop(
    w: Workload,
    driver: Option<u64>,
    events: &[&Value],
    failures: &mut Vec<String>,
) {
    let Workload::Exec { rounds } = w else {
        failures.push("execsnoop needs the exec workload".to_owned());
        return;
    };
    check_exec_result(driver, events, failures);
    let expected = w.expected_execs();
    if events.len() as u64 != expected {
        failures.push(format!(
            "{} events, expected exactly {expected} (the workload's execs)",
            events.len()
        ));
    }
    for p in EXEC_PROGRAMS {
        let mine: Vec<&&Value> = events
            .iter()
            .filter(|e| e["data"]["filename"].as_str() == Some(p.path))
            .collect();
        if mine.len() as u32 != rounds {
            failures.push(format!(
                "{} events with filename {}, expected {rounds}",
                mine.len(),
                p.path
            ));
        }
        for e in mine {
            // `argv` as an array, or (loader decoding a flexible `argv[]` member) the
            // record's `tail` strings.
            let data = &e["data"];
            let Some(argv) = data["argv"].as_array().or(data["tail"].as_array()) else {
                continue;
            };
            let argv: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
            // A probe may cap the number of arguments it copies, never change them.
            let n = argv.len().min(p.argv.len());
            if argv.is_empty() || argv[..n] != p.argv[..n] || argv.len() > p.argv.len() {
                failures.push(format!(
                    "event for {} has argv {argv:?}, expected {:?}",
                    p.path, p.argv
                ));
            }
        }
    }
    let unknown: Vec<String> = events
        .iter()
        .filter(|e| {
            let f = e["data"]["filename"].as_str();
            !EXEC_PROGRAMS.iter().any(|p| Some(p.path) == f)
        })
        .map(|e| e.to_string())
        .collect();
    if !unknown.is_empty() {
        failures.push(format!(
            "events that are not the workload's: {}",
            unknown.join(" | ")
        ));
    }
}

/// Whether an event's data mentions a destination of 127.0.0.1:`port`, in any of the
/// usual encodings (host or network byte order integers, dotted string, "ip:port").
fn is_loopback_connect(data: &Value, port: u16) -> bool {
    let mut nums = Vec::new();
    let mut strings = Vec::new();
    fn walk<'a>(v: &'a Value, nums: &mut Vec<u64>, strings: &mut Vec<&'a str>) {
        match v {
            Value::Number(n) => nums.extend(n.as_u64()),
            Value::String(s) => strings.push(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, nums, strings)),
            Value::Object(m) => m.values().for_each(|x| walk(x, nums, strings)),
            _ => {}
        }
    }
    walk(data, &mut nums, &mut strings);
    let port_ok = nums.contains(&u64::from(port))
        || nums.contains(&u64::from(port.swap_bytes()))
        || strings.iter().any(|s| s.ends_with(&format!(":{port}")));
    let addr_ok = nums.contains(&0x7f00_0001)
        || nums.contains(&0x0100_007f)
        || strings.iter().any(|s| s.contains("127.0.0.1"));
    port_ok && addr_ok
}

fn check_tcpconnect(w: Workload, events: &[&Value], failures: &mut Vec<String>) {
    let Workload::TcpConnect { port, connects } = w else {
        failures.push("tcpconnect needs the tcp_connect workload".to_owned());
        return;
    };
    let matching = events
        .iter()
        .filter(|e| is_loopback_connect(&e["data"], port))
        .count();
    if matching as u32 != connects {
        failures.push(format!(
            "{matching} events for a connect to 127.0.0.1:{port}, expected {connects}; events: {}",
            events
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    if events.len() != matching {
        failures.push(format!(
            "{} events besides the workload's connects",
            events.len() - matching
        ));
    }
}

/// LINUX_VERSION_CODE by the stable series' rule: the sublevel pinned to 255 from 4.4.257,
/// 4.9.257, 4.14.252 and 4.19.222 on, clamped to 255 elsewhere.
fn version_code(major: u32, minor: u32, patch: u32) -> u32 {
    let pinned_from = match (major, minor) {
        (4, 4) | (4, 9) => 257,
        (4, 14) => 252,
        (4, 19) => 222,
        _ => u32::MAX,
    };
    let sub = if patch >= pinned_from {
        255
    } else {
        patch.min(255)
    };
    (major << 16) | (minor << 8) | sub
}

/// The loader's `kernel` line: the upstream version read from Debian's /proc/version (the
/// release string only says `6.1.0-56`), its LINUX_VERSION_CODE, the mode the scenario
/// asked for, and after a killed run, the leftovers it removed.
fn check_kernel_line(
    s: &Scenario,
    legacy: bool,
    out: &StepOutput,
    lines: &[Value],
    failures: &mut Vec<String>,
) {
    let Some(k) = lines.iter().find(|v| type_of(v) == "kernel") else {
        failures.push("no kernel line".to_owned());
        return;
    };
    let str_of = |key: &str| k.get(key).and_then(Value::as_str).unwrap_or("");
    let release = str_of("release");
    let version = str_of("version");
    let nums: Vec<u32> = version.split('.').filter_map(|n| n.parse().ok()).collect();
    let series = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    match nums.as_slice() {
        [major, minor, patch] if series(release) == format!("{major}.{minor}") && *patch > 0 => {
            let code = version_code(*major, *minor, *patch);
            if k.get("version_code").and_then(Value::as_u64) != Some(u64::from(code)) {
                failures.push(format!("kernel line: version_code is not {code} for {version}: {k}"));
            }
        }
        _ => failures.push(format!(
            "kernel line: version {version:?} is not the upstream version of release {release:?}: {k}"
        )),
    }
    let want_kprobes = if legacy { "kprobe_events" } else { "perf_pmu" };
    if k.get("legacy").and_then(Value::as_bool) != Some(legacy) || str_of("kprobes") != want_kprobes
    {
        failures.push(format!(
            "kernel line: expected legacy={legacy} kprobes={want_kprobes}: {k}"
        ));
    }
    if s.kill_first {
        let left = out.kprobe_leftover.len();
        if left < s.attached {
            failures.push(format!(
                "kill -9: {left} kprobe_events entries left by the killed loader, expected {}",
                s.attached
            ));
        }
        let removed = k.get("leftovers_removed").and_then(Value::as_u64);
        if removed != Some(left as u64) {
            failures.push(format!(
                "kill -9: the next loader removed {removed:?} leftover(s), {left} were there"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::CATALOGUE;

    #[track_caller]
    fn scenario(name: &str) -> Scenario {
        *CATALOGUE.iter().find(|s| s.name == name).unwrap()
    }

    fn kernel_line(legacy: bool, removed: u64) -> String {
        serde_json::json!({
            "type": "kernel", "release": "6.1.0-56-cloud-amd64", "version": "6.1.192",
            "version_code": 0x0601c0, "legacy": legacy,
            "kprobes": if legacy { "kprobe_events" } else { "perf_pmu" },
            "btf": !legacy, "memlock": "unchanged", "leftovers_removed": removed, "reason": "",
        })
        .to_string()
    }

    fn output(stdout: &[String]) -> StepOutput {
        let mut all = vec![kernel_line(false, 0)];
        all.extend_from_slice(stdout);
        StepOutput {
            stdout: all,
            end: Some("exit=0 elapsed=1.5".to_owned()),
            info: vec!["workload=exec execs=6 pid=42".to_owned()],
            ..Default::default()
        }
    }

    fn attached() -> String {
        attached_as("kprobe")
    }

    fn attached_as(kind: &str) -> String {
        format!(r#"{{"type":"attached","object":"x","program":"p","kind":"{kind}"}}"#)
    }

    /// execsnoop's programs: entry, return and the fork tracepoint.
    fn snoop_attached() -> Vec<String> {
        vec![
            attached(),
            attached_as("kretprobe"),
            attached_as("tracepoint"),
        ]
    }

    #[test]
    fn verify_runs_must_agree_with_check() {
        let check_out = concat!(
            r#"{"type":"check","object":"/t/a/a.elf","program":"p","ok":true,"problems":[]}"#,
            "\n",
            r#"{"type":"check","object":"/t/b.elf","program":"q","ok":false,"problems":[{"kind":"global_data","what":".rodata","needs":"5.2"}]}"#,
            "\n",
            r#"{"type":"summary","objects":2}"#,
        );
        let preds = parse_predictions(check_out);
        assert_eq!(preds.len(), 2);
        assert_eq!((preds[0].object.as_str(), preds[0].ok), ("a", true));
        assert_eq!(preds[1].why, ".rodata needs 5.2");
        let s = scenario("check-agrees");
        let mut out = output(&[
            r#"{"type":"loaded","object":"a","program":"p","section":"kprobe/x"}"#.to_owned(),
            r#"{"type":"error","object":"b","program":"q","section":"xdp","error":"needs 5.2"}"#
                .to_owned(),
        ]);
        out.end = Some("exit=1 elapsed=1.0".to_owned());
        let o = check_on(&s, Some(&out), (6, 1), &preds);
        assert!(o.ok(), "{:?}", o.failures);
        assert_eq!(o.events, 2);
        // The kernel refusing what check called ok is a failure, and so is exit 0.
        let mut out = output(&[
            r#"{"type":"error","object":"a","program":"p","section":"kprobe/x","error":"EINVAL"}"#
                .to_owned(),
            r#"{"type":"error","object":"b","program":"q","section":"xdp","error":"needs 5.2"}"#
                .to_owned(),
        ]);
        out.end = Some("exit=1 elapsed=1.0".to_owned());
        let f = check_on(&s, Some(&out), (6, 1), &preds).failures;
        assert!(f.iter().any(|f| f.contains("check says ok")), "{f:?}");
        let f = check_on(&s, Some(&output(&[])), (6, 1), &preds).failures;
        assert!(f.iter().any(|f| f.contains("neither")), "{f:?}");
        assert!(f.iter().any(|f| f.contains("expected 1")), "{f:?}");
    }

    fn exec_event(path: &str, argv: &[&str]) -> String {
        serde_json::json!({
            "type": "event", "object": "execsnoop", "map": "EVENTS", "cpu": 0,
            "data": {"pid": 43, "ppid": 42, "ret": 0, "comm": "vm-tests", "filename": path, "argv": argv},
        })
        .to_string()
    }

    fn snoop_lines() -> Vec<String> {
        let mut v = snoop_attached();
        for _ in 0..3 {
            for p in EXEC_PROGRAMS {
                v.push(exec_event(p.path, p.argv));
            }
        }
        v.push(r#"{"type":"summary","events":6}"#.to_owned());
        v
    }

    #[test]
    fn execsnoop_exact_events_pass() {
        let o = check(&scenario("execsnoop"), Some(&output(&snoop_lines())));
        assert!(o.ok(), "{:?}", o.failures);
        assert_eq!((o.attached, o.events, o.elapsed), (3, 6, Some(1.5)));
    }

    #[test]
    fn execsnoop_extra_missing_and_wrong_argv_fail() {
        let mut lines = snoop_lines();
        lines.push(exec_event("/bin/sh", &["sh"]));
        let o = check(&scenario("execsnoop"), Some(&output(&lines)));
        assert!(
            o.failures.iter().any(|f| f.contains("7 events")),
            "{:?}",
            o.failures
        );
        assert!(o.failures.iter().any(|f| f.contains("not the workload's")));

        let mut lines = snoop_lines();
        lines.remove(3);
        let o = check(&scenario("execsnoop"), Some(&output(&lines)));
        assert!(o
            .failures
            .iter()
            .any(|f| f.contains("with filename /bin/true, expected 3")));

        let mut lines = snoop_lines();
        lines[3] = exec_event("/bin/true", &["true", "wrong"]);
        let o = check(&scenario("execsnoop"), Some(&output(&lines)));
        assert!(
            o.failures.iter().any(|f| f.contains("argv")),
            "{:?}",
            o.failures
        );

        // A failed exec, or one another process forked, is no workload exec.
        let mut lines = snoop_lines();
        lines[3] = lines[3].replace(r#""ret":0"#, r#""ret":-2"#);
        lines[4] = lines[4].replace(r#""ppid":42"#, r#""ppid":1"#);
        let f = check(&scenario("execsnoop"), Some(&output(&lines))).failures;
        assert_eq!(
            f.iter().filter(|f| f.contains("should have ret 0")).count(),
            2,
            "{f:?}"
        );

        // A probe that copies only the first two arguments is fine.
        let mut lines = snoop_lines();
        lines[3] = exec_event("/bin/true", &["true", "vmtest-exec"]);
        assert!(check(&scenario("execsnoop"), Some(&output(&lines))).ok());
    }

    #[test]
    fn execsnoop_argv_from_tail_strings() {
        let mut lines = snoop_attached();
        for _ in 0..3 {
            for p in EXEC_PROGRAMS {
                let ev = serde_json::json!({"type": "event", "data": {
                    "pid": 7, "ppid": 42, "ret": 0, "argc": p.argv.len(), "comm": "vm-tests",
                    "filename": p.path, "argv": "", "tail": p.argv,
                }});
                lines.push(ev.to_string());
            }
        }
        assert!(check(&scenario("execsnoop"), Some(&output(&lines))).ok());
        lines[3] = lines[3].replace("alpha", "omega");
        let f = check(&scenario("execsnoop"), Some(&output(&lines))).failures;
        assert!(f.iter().any(|f| f.contains("omega")), "{f:?}");
    }

    #[test]
    fn common_failures() {
        let s = scenario("execsnoop");
        assert!(!check(&s, None).ok());
        let mut out = output(&snoop_lines());
        out.end = None;
        assert!(check(&s, Some(&out)).failures[0].contains("VMTEST-END"));
        let mut out = output(&snoop_lines());
        out.end = Some("exit=1".into());
        assert!(check(&s, Some(&out)).failures[0].contains("exit=1"));
        let mut out = output(&snoop_lines());
        out.kprobe_events
            .push("p:kprobes/p___x64_sys_execve __x64_sys_execve".into());
        assert!(check(&s, Some(&out)).failures[0].contains("kprobe_events"));
        let mut lines = snoop_lines();
        lines.push("garbage".into());
        lines.push(r#"{"type":"error","message":"attach failed"}"#.into());
        let f = check(&s, Some(&output(&lines))).failures;
        assert!(f.iter().any(|f| f.contains("not JSON")), "{f:?}");
        assert!(f.iter().any(|f| f.contains("attach failed")), "{f:?}");
        let f = check(&s, Some(&output(&snoop_lines()[3..]))).failures;
        assert!(
            f.iter().any(|f| f.contains("0 program(s) attached")),
            "{f:?}"
        );
    }

    #[test]
    fn a_companion_must_keep_its_events_and_count_too() {
        let s = scenario("concurrent-legacy");
        let map = r#"{"type":"map","map":"EXEC_COUNT","entries":[{"key":0,"value":6}]}"#;
        let mut out = output(&[attached(), map.to_owned()]);
        out.stdout[0] = kernel_line(true, 0);
        out.kprobe_during = vec![
            "p:redbpf_loader/p90_0___x64_sys_execve __x64_sys_execve".into(),
            "p:redbpf_loader/p91_0___x64_sys_execve __x64_sys_execve".into(),
        ];
        out.kprobe_companion =
            vec!["p:redbpf_loader/p90_0___x64_sys_execve __x64_sys_execve".into()];
        let seven = map.replace("6}", "7}");
        out.companion = vec![kernel_line(true, 0), attached(), seven];
        out.info.push("companion exit=0".into());
        let o = check(&s, Some(&out));
        assert!(o.ok(), "{:?}", o.failures);

        // The checked loader took the live companion's events for leftovers.
        let mut bad = out.clone();
        bad.kprobe_companion.clear();
        bad.stdout[0] = kernel_line(true, 1);
        bad.stderr
            .push("loader: cannot remove leftover kprobe event redbpf_loader/p90_0_x: busy".into());
        let f = check(&s, Some(&bad)).failures;
        assert!(f.iter().any(|f| f.contains("0 of its 1")), "{f:?}");
        assert!(f.iter().any(|f| f.contains("went for a live")), "{f:?}");
        assert!(f.iter().any(|f| f.contains("removed Some(1)")), "{f:?}");
        // The companion missed execs, or did not stop cleanly.
        let mut bad = out.clone();
        bad.companion[2] = map.to_owned();
        bad.info.clear();
        let f = check(&s, Some(&bad)).failures;
        assert!(
            f.iter().any(|f| f.starts_with("companion: no map dump")),
            "{f:?}"
        );
        assert!(f.iter().any(|f| f.contains("did not exit 0")), "{f:?}");
    }

    #[test]
    fn legacy_mode_must_use_kprobe_events() {
        let map = r#"{"type":"map","map":"EXEC_COUNT","entries":[{"key":0,"value":6}]}"#;
        let mut out = output(&[attached(), map.to_owned()]);
        out.stdout[0] = kernel_line(true, 0);
        let f = check(&scenario("execcount-legacy"), Some(&out)).failures;
        assert!(
            f.iter().any(|f| f.contains("--legacy: 0 kprobe_events")),
            "{f:?}"
        );
        out.kprobe_during
            .push("p:kprobes/execve_enter __x64_sys_execve".to_owned());
        let o = check(&scenario("execcount-legacy"), Some(&out));
        assert!(o.ok(), "{:?}", o.failures);
        let f = check(&scenario("execcount"), Some(&out)).failures;
        assert!(f.iter().any(|f| f.contains("perf PMU mode")), "{f:?}");
        assert!(
            f.iter().any(|f| f.contains("expected legacy=false")),
            "{f:?}"
        );
    }

    #[test]
    fn kernel_line_versions_and_leftovers() {
        let map = r#"{"type":"map","map":"EXEC_COUNT","entries":[{"key":0,"value":6}]}"#;
        let mut out = output(&[attached(), map.to_owned()]);
        assert!(check(&scenario("execcount"), Some(&out)).ok());
        // The release's 6.1.0 is not the upstream version.
        out.stdout[0] = out.stdout[0].replace("6.1.192", "6.1.0");
        let f = check(&scenario("execcount"), Some(&out)).failures;
        assert!(f.iter().any(|f| f.contains("upstream version")), "{f:?}");
        out.stdout.remove(0);
        let f = check(&scenario("execcount"), Some(&out)).failures;
        assert!(f.iter().any(|f| f.contains("no kernel line")), "{f:?}");

        let s = scenario("kill9-legacy");
        let mut out = output(&[attached(), map.to_owned()]);
        out.stdout[0] = kernel_line(true, 1);
        out.kprobe_during
            .push("p:redbpf_loader/p9_0_x __x64_sys_execve".to_owned());
        let f = check(&s, Some(&out)).failures;
        assert!(
            f.iter().any(|f| f.contains("0 kprobe_events entries left")),
            "{f:?}"
        );
        out.kprobe_leftover
            .push("p:redbpf_loader/p7_0_x __x64_sys_execve".to_owned());
        let o = check(&s, Some(&out));
        assert!(o.ok(), "{:?}", o.failures);
        out.stdout[0] = kernel_line(true, 0);
        let f = check(&s, Some(&out)).failures;
        assert!(f.iter().any(|f| f.contains("removed Some(0)")), "{f:?}");
    }

    #[test]
    fn execcount_map_value() {
        let s = scenario("execcount");
        let map =
            r#"{"type":"map","object":"execcount","map":"COUNT","entries":[{"key":0,"value":6}]}"#;
        let o = check(&s, Some(&output(&[attached(), map.to_owned()])));
        assert!(o.ok(), "{:?}", o.failures);
        assert_eq!(o.events, 6);
        // Per-CPU values add up.
        let map = r#"{"type":"map","map":"COUNT","entries":[{"key":6,"values":[{"cpu":6,"value":2},{"cpu":1,"value":4}]}]}"#;
        assert!(check(&s, Some(&output(&[attached(), map.to_owned()]))).ok());
        // The key or cpu being 6 is no count.
        let map = r#"{"type":"map","map":"COUNT","entries":[{"key":6,"value":5}]}"#;
        let o = check(&s, Some(&output(&[attached(), map.to_owned()])));
        assert!(o.failures[0].contains("count 6"), "{:?}", o.failures);
        assert_eq!(o.events, 5);
    }

    #[test]
    fn selftest_hits() {
        let s = scenario("kprobe-selftest");
        let ok = [attached(), r#"{"type":"selftest","hits":6}"#.to_owned()];
        let o = check(&s, Some(&output(&ok)));
        assert!(o.ok(), "{:?}", o.failures);
        assert_eq!(o.events, 6);
        let bad = [attached(), r#"{"type":"selftest","hits":7}"#.to_owned()];
        assert!(!check(&s, Some(&output(&bad))).ok());
    }

    #[test]
    fn tcpconnect_encodings() {
        let s = scenario("tcpconnect");
        let ev = |data: Value| serde_json::json!({"type": "event", "data": data}).to_string();
        let lines = [
            attached(),
            attached(),
            ev(serde_json::json!({"daddr": "127.0.0.1", "dport": 4242})),
            ev(serde_json::json!({"daddr": 0x0100_007f_u32, "dport": 4242u16.swap_bytes()})),
        ];
        let o = check(&s, Some(&output(&lines)));
        assert!(o.ok(), "{:?}", o.failures);
        // As the loader printed the tcpconnect probe's ConnectEvent on 6.1 and 5.10.
        let real = r#"{"type":"event","object":"tcpconnect","map":"EVENTS","cpu":0,"data":{"pid":87,"uid":0,"saddr":16777343,"daddr":16777343,"dport":4242,"sport":34278,"ret":0,"comm":"vm-tests"}}"#;
        let lines = [attached(), attached(), real.to_owned(), real.to_owned()];
        assert!(check(&s, Some(&output(&lines))).ok());
        let lines = [
            attached(),
            attached(),
            ev(serde_json::json!({"daddr": "10.0.0.1", "dport": 4242})),
        ];
        let f = check(&s, Some(&output(&lines))).failures;
        assert!(
            f.iter().any(|f| f.contains("0 events for a connect")),
            "{f:?}"
        );
    }
}
