//! Minimal JSON writing into a byte buffer: no allocation, no intermediate values.
//! Writing into a `Vec<u8>` cannot fail, so these functions return nothing.

/// Largest integer a JSON consumer using doubles (jq, JavaScript) represents exactly.
pub const MAX_SAFE_INT: u64 = 1 << 53;

/// "00" "01" ... "99": two digits per division.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Decimal digits of a u64 (the hot path: every integer field of every record).
fn digits64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        tmp[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&tmp[i..]);
}

fn digits(out: &mut Vec<u8>, mut v: u128) {
    if let Ok(small) = u64::try_from(v) {
        return digits64(out, small);
    }
    // 128-bit division is a library call: only for values that need it.
    let mut tmp = [0u8; 40];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// An unsigned integer; quoted beyond 2^53 so it survives double-based parsers.
pub fn uint(out: &mut Vec<u8>, v: u128) {
    if v > u128::from(MAX_SAFE_INT) {
        out.push(b'"');
        digits(out, v);
        out.push(b'"');
    } else {
        digits(out, v);
    }
}

/// A signed integer; quoted when its magnitude exceeds 2^53.
pub fn int(out: &mut Vec<u8>, v: i128) {
    let mag = v.unsigned_abs();
    let quote = mag > u128::from(MAX_SAFE_INT);
    if quote {
        out.push(b'"');
    }
    if v < 0 {
        out.push(b'-');
    }
    digits(out, mag);
    if quote {
        out.push(b'"');
    }
}

/// A float; non-finite values become `null`. Very large and very small magnitudes take
/// an exponent (`1.7976931348623157e308`): written out in full they are 300-digit numbers
/// that serde_json refuses as out of range.
pub fn float(out: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    let r = if !v.is_finite() {
        out.extend_from_slice(b"null");
        Ok(())
    } else if v != 0.0 && !(1e-5..1e16).contains(&v.abs()) {
        write!(out, "{v:e}")
    } else {
        write!(out, "{v}")
    };
    if r.is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Whether JSON needs `b` escaped (quote, backslash, control characters, DEL).
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

fn escape_str_body(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    // Copy runs that need no escaping in one go; most strings are a single run.
    let mut start = 0;
    while let Some(n) = bytes[start..].iter().position(|&b| needs_escape(b)) {
        let at = start + n;
        out.extend_from_slice(&bytes[start..at]);
        let b = bytes[at];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A string, JSON-escaped and quoted.
pub fn str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_str_body(out, s);
    out.push(b'"');
}

/// Bytes that should be text (a filename, an argument): a JSON string when they are
/// UTF-8, else `{"bytes":"<base64>"}` (as ripgrep does), so that nothing is lost and a
/// name with a backslash in it cannot be confused with an escaped byte.
pub fn bytes_str(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.iter().all(|&b| b.is_ascii() && !needs_escape(b)) {
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => str(out, text),
        Err(_) => {
            use base64::Engine as _;
            out.extend_from_slice(b"{\"bytes\":\"");
            let start = out.len();
            out.resize(start + bytes.len().div_ceil(3) * 4, 0);
            let n = base64::engine::general_purpose::STANDARD
                .encode_slice(bytes, &mut out[start..])
                .unwrap_or(0);
            out.truncate(start + n);
            out.extend_from_slice(b"\"}");
        }
    }
}

/// Bytes as a quoted lowercase hex string.
pub fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
    out.push(b'"');
}

/// `"key":` (the key is escaped).
pub fn key(out: &mut Vec<u8>, k: &str) {
    str(out, k);
    out.push(b':');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn integers_beyond_2_53_are_strings() {
        assert_eq!(s(|o| uint(o, 42)), "42");
        assert_eq!(s(|o| uint(o, 1 << 53)), "9007199254740992");
        assert_eq!(s(|o| uint(o, (1 << 53) + 1)), "\"9007199254740993\"");
        assert_eq!(
            s(|o| uint(o, u128::from(u64::MAX))),
            "\"18446744073709551615\""
        );
        assert_eq!(s(|o| int(o, -5)), "-5");
        assert_eq!(
            s(|o| int(o, i128::from(i64::MIN))),
            "\"-9223372036854775808\""
        );
        assert_eq!(s(|o| uint(o, 0)), "0");
        for v in [1u64, 9, 10, 99, 100, 101, 999, 1000, 4_294_967_295, 1 << 53] {
            assert_eq!(s(|o| uint(o, u128::from(v))), v.to_string());
        }
        assert_eq!(s(|o| uint(o, u128::MAX)), format!("\"{}\"", u128::MAX));
    }

    #[test]
    fn strings_escape_and_keep_invalid_bytes() {
        assert_eq!(s(|o| str(o, "a\"b\\c\n\u{1}")), r#""a\"b\\c\n\u0001""#);
        assert_eq!(s(|o| bytes_str(o, b"ok\xffz")), r#"{"bytes":"b2v/eg=="}"#);
        // A real backslash stays a string.
        assert_eq!(s(|o| bytes_str(o, b"a\\xff")), r#""a\\xff""#);
        assert_eq!(s(|o| bytes_str(o, b"plain")), r#""plain""#);
        assert_eq!(s(|o| bytes_str(o, b"t\tab")), r#""t\tab""#);
        assert_eq!(s(|o| str(o, "\u{7f}é\"")), "\"\\u007fé\\\"\"");
        let v: serde_json::Value = serde_json::from_str(&s(|o| bytes_str(o, b"\xc3("))).unwrap();
        use base64::Engine as _;
        let back = base64::engine::general_purpose::STANDARD
            .decode(v["bytes"].as_str().unwrap())
            .unwrap();
        assert_eq!(back, b"\xc3(");
        assert_eq!(s(|o| bytes_str(o, "é".as_bytes())), r#""é""#);
        assert_eq!(s(|o| hex(o, &[0, 0xab])), "\"00ab\"");
    }

    #[test]
    fn extreme_floats_take_an_exponent_and_parse() {
        // Found by fuzz/ (target `decode`): -f64::MAX was 309 digits serde_json refused.
        assert_eq!(s(|o| float(o, -f64::MAX)), "-1.7976931348623157e308");
        assert_eq!(s(|o| float(o, 5e-324)), "5e-324");
        assert_eq!(s(|o| float(o, 1.5)), "1.5");
        assert_eq!(s(|o| float(o, 100.0)), "100");
        assert_eq!(s(|o| float(o, f64::NAN)), "null");
        for v in [
            f64::MAX,
            f64::MIN_POSITIVE,
            1e16,
            9.99e15,
            1e-5,
            9.99e-6,
            -0.0,
            0.1,
        ] {
            let text = s(|o| float(o, v));
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back.as_f64(), Some(v), "{text}");
        }
    }
}
