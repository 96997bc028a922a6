//! Helpers shared by the fuzz targets (each includes this file with `#[path]`).

#![allow(dead_code)]

/// Up to `max` distinct runs of printable ASCII found between NUL bytes in `data`: the
/// names a string table may hold (types, variables, maps), to query a table built from
/// the same bytes.
pub fn names(data: &[u8], max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in data.split(|&b| b == 0) {
        if out.len() >= max {
            break;
        }
        if piece.is_empty() || piece.len() > 128 || !piece.iter().all(|b| b.is_ascii_graphic()) {
            continue;
        }
        let s = String::from_utf8_lossy(piece).into_owned();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Panics unless `buf` is lines of JSON, each one complete value.
#[track_caller]
pub fn assert_json_lines(buf: &[u8]) {
    for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert_json(line);
    }
}

/// Panics unless `bytes` is exactly one JSON value.
#[track_caller]
pub fn assert_json(bytes: &[u8]) {
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(bytes) {
        panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(bytes));
    }
}
