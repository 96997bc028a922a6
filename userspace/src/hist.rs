//! log2 histograms: a map whose key is a bucket index (`--hist MAP`, or any map whose key
//! struct has a field named `slot` or `bucket`) rendered as bpftrace renders `hist()`:
//! `[{"min":..,"max":..,"count":..}]` in JSON, bars in the table. Bucket `k` holds the
//! values of log2 `k`: 0 and 1 in bucket 0, then `[2^k, 2^(k+1) - 1]`. A struct key's other
//! fields tell histograms apart (one per pid, say). Pure.

use std::fmt::Write as _;

use serde_json::Value;

use crate::dwarf::Type;

/// The field of key type `key` that holds the bucket, if the map is a histogram by its
/// key's shape; `"key"` for a plain integer key named by `--hist`.
pub fn slot_field(key: Option<&Type>, named: bool) -> Option<String> {
    match key {
        Some(Type::Struct { fields, .. }) => fields
            .iter()
            .find(|f| f.name == "slot" || f.name == "bucket")
            .map(|f| f.name.clone()),
        Some(Type::Int { .. }) | None if named => Some("key".to_owned()),
        _ => None,
    }
}

/// One bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// smallest value
    pub min: u64,
    /// largest value
    pub max: u64,
    /// values counted
    pub count: u64,
}

/// The value range of bucket `k`.
fn range(k: u32) -> (u64, u64) {
    match k {
        0 => (0, 1),
        k if k >= 63 => (1 << 63, u64::MAX),
        k => (1 << k, (1 << (k + 1)) - 1),
    }
}

fn count_of(entry: &Value) -> Option<u64> {
    let v = entry.get("sum").or_else(|| entry.get("value"))?;
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// A histogram being gathered: the key's other fields, and `(bucket, count)` pairs.
type Group = (Option<Value>, Vec<(u32, u64)>);

/// The histograms in a map's dump `entries`: `(the key's other fields, buckets)`, each
/// with its buckets from the lowest to the highest filled one (the empty ones between
/// included, as bpftrace prints them).
pub fn histograms(entries: &[Value], slot: &str) -> Vec<(Option<Value>, Vec<Bucket>)> {
    let mut groups: Vec<Group> = Vec::new();
    for e in entries {
        let key = &e["key"];
        let (k, rest) = match key {
            Value::Object(fields) => {
                let Some(k) = fields.get(slot).and_then(Value::as_u64) else {
                    continue;
                };
                let mut rest = fields.clone();
                rest.remove(slot);
                (k, (!rest.is_empty()).then_some(Value::Object(rest)))
            }
            other => match other.as_u64() {
                Some(k) => (k, None),
                None => continue,
            },
        };
        let (Ok(k), Some(count)) = (u32::try_from(k), count_of(e)) else {
            continue;
        };
        match groups.iter_mut().find(|(g, _)| *g == rest) {
            Some((_, slots)) => slots.push((k, count)),
            None => groups.push((rest, vec![(k, count)])),
        }
    }
    groups
        .into_iter()
        .filter_map(|(rest, mut slots)| {
            slots.retain(|&(_, c)| c > 0);
            slots.sort();
            let (lo, hi) = (slots.first()?.0, slots.last()?.0);
            let buckets = (lo..=hi.min(64))
                .map(|k| {
                    let (min, max) = range(k);
                    let count = slots.iter().filter(|s| s.0 == k).map(|s| s.1).sum();
                    Bucket { min, max, count }
                })
                .collect();
            Some((rest, buckets))
        })
        .collect()
}

/// bpftrace's bars: one line per bucket, the largest 52 characters wide.
pub fn bars(buckets: &[Bucket]) -> String {
    let top = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let mut out = String::new();
    for b in buckets {
        let width = (b.count * 52).div_ceil(top) as usize;
        let label = format!("[{}, {}]", b.min, b.max);
        writeln!(
            out,
            "{label:<24} {:>8} |{:<52}|",
            b.count,
            "@".repeat(width)
        )
        .ok();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn buckets_are_log2_ranges_with_the_gaps_between_filled_ones() {
        let entries = vec![
            json!({"key": 0, "value": 2}),
            json!({"key": 3, "value": 5}),
            json!({"key": 1, "value": 0}),
            json!({"key": 5, "value": 1}),
        ];
        let h = histograms(&entries, "key");
        assert_eq!(h.len(), 1);
        let (rest, buckets) = &h[0];
        assert!(rest.is_none());
        let got: Vec<(u64, u64, u64)> = buckets.iter().map(|b| (b.min, b.max, b.count)).collect();
        assert_eq!(
            got,
            [
                (0, 1, 2),
                (2, 3, 0),
                (4, 7, 0),
                (8, 15, 5),
                (16, 31, 0),
                (32, 63, 1)
            ]
        );
        let text = bars(buckets);
        assert!(
            text.lines()
                .nth(3)
                .unwrap()
                .ends_with(&format!("|{}|", "@".repeat(52))),
            "{text}"
        );
        assert!(text.lines().next().unwrap().starts_with("[0, 1]"), "{text}");
    }

    #[test]
    fn struct_keys_give_one_histogram_per_other_field_value() {
        let entries = vec![
            json!({"key": {"pid": 1, "slot": 2}, "values": [1, 2], "sum": 3}),
            json!({"key": {"pid": 2, "slot": 2}, "value": 4}),
            json!({"key": {"pid": 1, "slot": 4}, "value": 1}),
        ];
        let h = histograms(&entries, "slot");
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].0, Some(json!({"pid": 1})));
        assert_eq!(
            h[0].1.iter().map(|b| b.count).collect::<Vec<_>>(),
            [3, 0, 1]
        );
        assert_eq!(
            h[1].1,
            [Bucket {
                min: 4,
                max: 7,
                count: 4
            }]
        );
        let key = Type::Struct {
            name: "k".into(),
            size: 8,
            fields: vec![crate::dwarf::Field {
                name: "bucket".into(),
                offset: 0,
                ty: Type::Int {
                    size: 4,
                    signed: false,
                },
            }],
        };
        assert_eq!(slot_field(Some(&key), false).as_deref(), Some("bucket"));
        assert_eq!(
            slot_field(
                Some(&Type::Int {
                    size: 4,
                    signed: false
                }),
                false
            ),
            None
        );
        assert_eq!(slot_field(None, true).as_deref(), Some("key"));
    }
}
