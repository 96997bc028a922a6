//! `--metrics ADDR`: Prometheus text exposition on `http://ADDR/metrics`, rendered at
//! scrape time from the loader's own counters and from every dumped hash/array map whose
//! values are numbers or structs of numbers (the same decoding as the JSON dumps).
//!
//! Series (names lower-cased, other characters than `[a-z0-9_]` as `_`):
//! - `loader_events_total{object,map}`, `loader_lost_total{object,map}`,
//!   `loader_records_hex_total{object,map}` (records no type decoded),
//!   `loader_programs_attached`, `loader_errors_total`,
//!   `loader_metrics_series_dropped_total{object,map}` (past `--metrics-max-series`)
//! - `bpf_<object>_<map>{key labels}` for number values, `bpf_<object>_<map>_<field>` for
//!   each number field of a struct value (nested fields joined with `_`); per-CPU maps
//!   summed, or one series per CPU with a `cpu` label under `--metrics-per-cpu`. Key labels:
//!   a struct key's number and string fields by name (`pid="42"`), any other key as `key`.
//!
//! The HTTP side is the least HTTP/1.1 a Prometheus scraper needs (one GET, a
//! Content-Length response, the connection closed), served from the event loop between
//! drains so that maps are read with no lock and no second thread.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;

/// One series' labels.
type Labels = Vec<(String, String)>;
/// A family of f64 gauges (counters of the kernel's making are exposed as gauges of their
/// current value; the loader's own totals as counters by name).
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// `[a-z0-9_]` only, lower case: a metric name part.
pub fn name_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// What the loader counted, per perf/ring map.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// `(object, map, events, lost, records decoded as hex)`
    pub maps: Vec<(String, String, u64, u64, u64)>,
    /// programs attached
    pub attached: u64,
    /// errors reported
    pub errors: u64,
}

/// The series of one dumped map, built from its JSON `entries`.
pub struct MapSeries<'a> {
    /// object name
    pub object: &'a str,
    /// map name
    pub map: &'a str,
    /// the `entries` array of its dump
    pub entries: &'a [Value],
}

/// Key labels of an entry's key.
fn key_labels(key: &Value) -> Labels {
    match key {
        Value::Object(fields) => {
            let mut out = Labels::new();
            flatten_labels("", fields, &mut out);
            out
        }
        other => vec![("key".to_owned(), text(other))],
    }
}

fn flatten_labels(prefix: &str, fields: &serde_json::Map<String, Value>, out: &mut Labels) {
    for (k, v) in fields {
        let name = format!("{prefix}{}", name_part(k));
        match v {
            Value::Object(inner) => flatten_labels(&format!("{name}_"), inner, out),
            Value::Array(_) | Value::Null => {}
            other => out.push((name, text(other))),
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON number, or a u64 above 2^53 the decoder wrote as a string.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.parse::<u128>().ok().map(|n| n as f64),
        _ => None,
    }
}

/// `(field suffix, value)` of every number in a value: `("", v)` for a number, one per
/// number field of a struct (nested fields joined with `_`).
fn numbers(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Object(fields) => {
            for (k, f) in fields {
                numbers(&format!("{prefix}_{}", name_part(k)), f, out);
            }
        }
        other => {
            if let Some(n) = number(other) {
                out.push((prefix.to_owned(), n));
            }
        }
    }
}

/// The numbers of one map entry with their labels: per CPU (a `cpu` label) when asked and
/// the map is per-CPU, else the value, the per-CPU sum, or per-CPU structs summed field by
/// field.
fn entry_numbers(entry: &Value, per_cpu: bool) -> Vec<(Labels, Vec<(String, f64)>)> {
    let labels = key_labels(&entry["key"]);
    if let (true, Some(Value::Array(cpus))) = (per_cpu, entry.get("values")) {
        return cpus
            .iter()
            .enumerate()
            .map(|(cpu, v)| {
                let mut l = labels.clone();
                l.push(("cpu".to_owned(), cpu.to_string()));
                let mut nums = Vec::new();
                numbers("", v, &mut nums);
                (l, nums)
            })
            .collect();
    }
    let mut nums = Vec::new();
    if let Some(v) = entry.get("sum").or_else(|| entry.get("value")) {
        numbers("", v, &mut nums);
    } else if let Some(Value::Array(cpus)) = entry.get("values") {
        for v in cpus {
            let mut n = Vec::new();
            numbers("", v, &mut n);
            for (k, x) in n {
                match nums.iter_mut().find(|(pk, _)| *pk == k) {
                    Some((_, acc)) => *acc += x,
                    None => nums.push((k, x)),
                }
            }
        }
    }
    vec![(labels, nums)]
}

/// Adds map `s`'s series to `families` (one family per map and value field), at most
/// `max_series`; returns how many were left out.
fn map_series(
    s: &MapSeries<'_>,
    per_cpu: bool,
    max_series: usize,
    families: &mut Vec<(String, Gauges)>,
) -> u64 {
    let base = format!("bpf_{}_{}", name_part(s.object), name_part(s.map));
    let (mut count, mut over) = (0usize, 0u64);
    for entry in s.entries {
        for (labels, nums) in entry_numbers(entry, per_cpu) {
            for (suffix, n) in nums {
                if count >= max_series {
                    over += 1;
                    continue;
                }
                count += 1;
                let name = format!("{base}{suffix}");
                let i = match families.iter().position(|(f, _)| *f == name) {
                    Some(i) => i,
                    None => {
                        families.push((name, Gauges::default()));
                        families.len() - 1
                    }
                };
                families[i].1.get_or_create(&labels).set(n);
            }
        }
    }
    over
}

/// Renders the exposition text: the loader's counters and the maps' series, at most
/// `max_series` per map (the rest counted as dropped).
pub fn render(
    counters: &Counters,
    maps: &[MapSeries<'_>],
    per_cpu: bool,
    max_series: usize,
) -> String {
    let mut registry = Registry::default();
    let map_labels = |o: &str, m: &str| {
        vec![
            ("object".to_owned(), o.to_owned()),
            ("map".to_owned(), m.to_owned()),
        ]
    };
    let (events, lost, hex, dropped) = (
        Gauges::default(),
        Gauges::default(),
        Gauges::default(),
        Gauges::default(),
    );
    for (o, m, e, l, h) in &counters.maps {
        events.get_or_create(&map_labels(o, m)).set(*e as f64);
        lost.get_or_create(&map_labels(o, m)).set(*l as f64);
        hex.get_or_create(&map_labels(o, m)).set(*h as f64);
    }
    let mut families: Vec<(String, Gauges)> = Vec::new();
    for s in maps {
        let over = map_series(s, per_cpu, max_series, &mut families);
        if over > 0 {
            dropped
                .get_or_create(&map_labels(s.object, s.map))
                .set(over as f64);
        }
    }
    registry.register(
        "loader_events",
        "records delivered, per perf or ring buffer map",
        events,
    );
    registry.register("loader_lost", "records the kernel dropped, per map", lost);
    registry.register(
        "loader_records_hex",
        "records no type decoded (printed as hex)",
        hex,
    );
    registry.register(
        "loader_metrics_series_dropped",
        "map series left out past --metrics-max-series",
        dropped,
    );
    let attached = Gauge::<f64, AtomicU64>::default();
    attached.set(counters.attached as f64);
    registry.register("loader_programs_attached", "programs attached", attached);
    let errors = Gauge::<f64, AtomicU64>::default();
    errors.set(counters.errors as f64);
    registry.register("loader_errors", "errors reported", errors);
    for (name, family) in families {
        registry.register(name, "a BPF map's values, read at scrape time", family);
    }
    let mut out = String::new();
    if encode(&mut out, &registry).is_err() {
        out.clear();
        writeln!(out, "# the metrics could not be encoded").ok();
    }
    out
}

/// The request line of an HTTP request head, if it is one.
pub fn request_path(head: &[u8]) -> Option<&str> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(path)) => Some(path),
        _ => None,
    }
}

/// A whole HTTP/1.1 response.
pub fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn struct_keys_become_labels_and_struct_values_series_per_field() {
        let entries = vec![
            json!({"key": {"pid": 42, "kind": 1}, "value": 5}),
            json!({"key": {"pid": 42, "kind": 2}, "value": 3}),
        ];
        let stats = vec![
            json!({"key": 7, "value": {"calls": 9, "last": {"ns": "18446744073709551615"}, "comm": "sh"}}),
        ];
        let percpu = vec![json!({"key": 0, "values": [1, 2], "sum": 3})];
        let maps = [
            MapSeries {
                object: "metrics",
                map: "COUNTS",
                entries: &entries,
            },
            MapSeries {
                object: "o",
                map: "stats",
                entries: &stats,
            },
            MapSeries {
                object: "o",
                map: "pc",
                entries: &percpu,
            },
        ];
        let counters = Counters {
            maps: vec![("o".into(), "EVENTS".into(), 10, 1, 2)],
            attached: 2,
            errors: 0,
        };
        let text = render(&counters, &maps, false, 100);
        for line in [
            r#"bpf_metrics_counts{kind="1",pid="42"} 5.0"#,
            r#"bpf_metrics_counts{kind="2",pid="42"} 3.0"#,
            r#"bpf_o_stats_calls{key="7"} 9.0"#,
            r#"bpf_o_stats_last_ns{key="7"} 18446744073709553000.0"#,
            r#"bpf_o_pc{key="0"} 3.0"#,
            r#"loader_events{object="o",map="EVENTS"} 10.0"#,
            r#"loader_programs_attached 2.0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(!text.contains("comm"), "strings are no series: {text}");
        let per_cpu = render(&counters, &maps, true, 100);
        assert!(
            per_cpu.contains(r#"bpf_o_pc{key="0",cpu="1"} 2.0"#),
            "{per_cpu}"
        );
        let capped = render(&counters, &maps, false, 1);
        assert!(
            capped.contains(r#"loader_metrics_series_dropped{object="metrics",map="COUNTS"} 1.0"#),
            "{capped}"
        );
    }

    #[test]
    fn only_a_get_request_line_is_taken() {
        assert_eq!(
            request_path(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("/metrics")
        );
        assert_eq!(request_path(b"POST /metrics HTTP/1.1\r\n"), None);
        assert_eq!(request_path(b"\xff\xfe"), None);
        let r = String::from_utf8(response("200 OK", "text/plain", "abc")).unwrap();
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n")
                && r.ends_with("\r\n\r\nabc")
                && r.contains("Content-Length: 3")
        );
    }
}
