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

// Writers into a slice of known room, for the compiled record plans (`decode::RecordPlan`):
// each writes at `dst[pos..]` and returns the position after what it wrote, or None
// (having written nothing that counts) when the room is short or the value needs the
// general writer above; the caller then uses that one. Fixed-size moves only: no
// `memcpy` call per piece, no capacity check per byte.

/// Static JSON text (keys, commas, braces, an event's prefix) split into 16-byte chunks,
/// the last one zero-padded, so that [`put_text`] copies it with fixed-size moves; the
/// first chunk is kept inline (most keys fit in it).
#[derive(Debug, Clone, Default)]
pub struct Text {
    head: [u8; 16],
    rest: Vec<[u8; 16]>,
    len: usize,
}

impl Text {
    /// `bytes` as chunks.
    pub fn new(bytes: &[u8]) -> Text {
        let mut chunks = bytes.chunks(16).map(|c| {
            let mut chunk = [0u8; 16];
            chunk[..c.len()].copy_from_slice(c);
            chunk
        });
        Text {
            head: chunks.next().unwrap_or_default(),
            rest: chunks.collect(),
            len: bytes.len(),
        }
    }

    /// Appends the text to `out` (the general writers' way).
    pub fn extend(&self, out: &mut Vec<u8>) {
        let head = self.len.min(16);
        out.extend_from_slice(self.head.get(..head).unwrap_or(&[]));
        let rest = self.rest.as_flattened();
        out.extend_from_slice(rest.get(..self.len - head).unwrap_or(rest));
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes [`put_text`] touches: the text and its last chunk's padding (16 at
    /// least).
    pub fn room(&self) -> usize {
        16 + self.rest.len() * 16
    }
}

/// Writes `t` (its chunks whole: up to 16 bytes past its end are scribbled on, for the
/// next writer to overwrite or the caller to truncate).
#[inline(always)]
pub fn put_text(dst: &mut [u8], pos: usize, t: &Text) -> Option<usize> {
    *dst.get_mut(pos..)?.first_chunk_mut::<16>()? = t.head;
    if !t.rest.is_empty() {
        let room = dst.get_mut(pos + 16..pos + 16 + t.rest.len() * 16)?;
        for (d, c) in room.chunks_exact_mut(16).zip(&t.rest) {
            d.copy_from_slice(c);
        }
    }
    Some(pos + t.len)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight decimal digits of `x` (< 10^8, leading zeros included) as byte values 0-9,
/// the first digit in the lowest byte: the halves, quarters and digits split in parallel
/// lanes of one u64 (multiplications by reciprocals that are exact below these bounds).
#[inline(always)]
fn eight_digits(x: u64) -> u64 {
    // Two 4-digit halves in 32-bit lanes, the first half low.
    let v = (x / 10_000) | ((x % 10_000) << 32);
    // Each half (< 10^4) into its hundreds and the rest: d * 10486 >> 20 == d / 100.
    let hundreds = ((v * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let v = ((v - hundreds * 100) << 16) | hundreds;
    // Each pair (< 100) into tens and ones: t * 103 >> 10 == t / 10.
    let tens = ((v * 103) >> 10) & 0x000f_000f_000f_000f;
    ((v - tens * 10) << 8) | tens
}

/// Writes `x` (0 < x < 10^8) without leading zeros in one 8-byte store; returns the
/// number of digits.
#[inline(always)]
fn put_short(dst: &mut [u8], x: u64) -> Option<usize> {
    let d = eight_digits(x);
    let zeros = (d.trailing_zeros() / 8) as usize; // x > 0: some byte is not 0
    let ascii = (d >> (8 * zeros)) + 0x30 * ONES;
    *dst.first_chunk_mut::<8>()? = ascii.to_le_bytes();
    Some(8 - zeros)
}

/// Writes all eight digits of `x` (< 10^8), leading zeros included.
#[inline(always)]
fn put_eight(dst: &mut [u8], x: u64) -> Option<()> {
    let ascii = eight_digits(x) + 0x30 * ONES;
    *dst.first_chunk_mut::<8>()? = ascii.to_le_bytes();
    Some(())
}

/// The decimal digits of `v`, as [`uint`] writes them (up to 24 bytes touched).
#[inline(always)]
fn put_digits(dst: &mut [u8], pos: usize, v: u64) -> Option<usize> {
    const E8: u64 = 100_000_000;
    if v < 10 {
        *dst.get_mut(pos)? = b'0' + v as u8;
        return Some(pos + 1);
    }
    let d = dst.get_mut(pos..)?;
    let n = if v < E8 {
        put_short(d, v)?
    } else if v < E8 * E8 {
        let n = put_short(d, v / E8)?;
        put_eight(d.get_mut(n..)?, v % E8)?;
        n + 8
    } else {
        let n = put_short(d, v / (E8 * E8))?;
        put_eight(d.get_mut(n..)?, v / E8 % E8)?;
        put_eight(d.get_mut(n + 8..)?, v % E8)?;
        n + 16
    };
    Some(pos + n)
}

/// What [`uint`] writes for `v`.
#[inline(always)]
pub fn put_uint(dst: &mut [u8], pos: usize, v: u64) -> Option<usize> {
    if v > MAX_SAFE_INT {
        *dst.get_mut(pos)? = b'"';
        let end = put_digits(dst, pos + 1, v)?;
        *dst.get_mut(end)? = b'"';
        return Some(end + 1);
    }
    put_digits(dst, pos, v)
}

/// What [`uint`] writes for a `v` of 32 bits or less (never quoted, at most 10 digits).
#[inline(always)]
pub fn put_u32(dst: &mut [u8], pos: usize, v: u32) -> Option<usize> {
    const E8: u32 = 100_000_000;
    if v < 10 {
        *dst.get_mut(pos)? = b'0' + v as u8;
        return Some(pos + 1);
    }
    let d = dst.get_mut(pos..)?;
    let n = if v < E8 {
        put_short(d, v.into())?
    } else {
        let n = put_short(d, (v / E8).into())?;
        put_eight(d.get_mut(n..)?, (v % E8).into())?;
        n + 8
    };
    Some(pos + n)
}

/// What [`int`] writes for a `v` of 32 bits or less.
#[inline(always)]
pub fn put_i32(dst: &mut [u8], pos: usize, v: i32) -> Option<usize> {
    if v < 0 {
        *dst.get_mut(pos)? = b'-';
        return put_u32(dst, pos + 1, v.unsigned_abs());
    }
    put_u32(dst, pos, v.unsigned_abs())
}

/// What [`int`] writes for `v`.
#[inline(always)]
pub fn put_int(dst: &mut [u8], pos: usize, v: i64) -> Option<usize> {
    let mag = v.unsigned_abs();
    let mut at = pos;
    let quote = mag > MAX_SAFE_INT;
    if quote {
        *dst.get_mut(at)? = b'"';
        at += 1;
    }
    if v < 0 {
        *dst.get_mut(at)? = b'-';
        at += 1;
    }
    let end = put_digits(dst, at, mag)?;
    if quote {
        *dst.get_mut(end)? = b'"';
        return Some(end + 1);
    }
    Some(end)
}

/// Room the `put_*` number writers touch at most: a quote, a sign, 24 bytes of digit
/// stores, a quote.
pub const NUMBER_ROOM: usize = 27;

/// High bit of each byte of `w` that is NUL or ends a plain string (a control character,
/// `"`, `\`, DEL or a non-ASCII byte). Only the lowest flag is exact: a borrow can flag
/// bytes above it, which are never looked at.
#[inline]
fn stops(w: u64) -> u64 {
    let below_space = w.wrapping_sub(0x20 * ONES) & !w;
    let del = (w & !HIGHS).wrapping_add(ONES); // 0x7f (and 0xff) reach the high bit
    let quote = w ^ (u64::from(b'"') * ONES);
    let backslash = w ^ (u64::from(b'\\') * ONES);
    let is_quote = quote.wrapping_sub(ONES) & !quote;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | del | w | is_quote | is_backslash) & HIGHS
}

/// What [`bytes_str`] writes for `bytes` cut at its first NUL, when that is plain
/// printable ASCII (a `comm`, a filename): a quoted copy, eight bytes at a time. None
/// for anything to escape or to check as UTF-8.
#[inline]
pub fn put_plain_cstr(dst: &mut [u8], pos: usize, bytes: &[u8]) -> Option<usize> {
    let room = dst.get_mut(pos..)?.get_mut(..bytes.len() + 2)?;
    let (quote, body) = room.split_first_mut()?;
    *quote = b'"';
    let mut n = 0;
    // Eight bytes at a time while eight are left, copied whole (past the NUL too: the
    // closing quote and the next writer overwrite them).
    while let (Some(src), Some(out)) = (
        bytes.get(n..).and_then(|b| b.first_chunk::<8>()),
        body.get_mut(n..).and_then(|b| b.first_chunk_mut::<8>()),
    ) {
        *out = *src;
        let flags = stops(u64::from_le_bytes(*src));
        if flags != 0 {
            let at = (flags.trailing_zeros() / 8) as usize;
            if src.get(at) != Some(&0) {
                return None;
            }
            n += at;
            *body.get_mut(n)? = b'"';
            return Some(pos + n + 2);
        }
        n += 8;
    }
    for &b in bytes.get(n..)? {
        if b == 0 {
            break;
        }
        if !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\' {
            return None;
        }
        *body.get_mut(n)? = b;
        n += 1;
    }
    *body.get_mut(n)? = b'"';
    Some(pos + n + 2)
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

    /// What a slice writer gives, from a position past the start of a short slice.
    fn put(f: impl FnOnce(&mut [u8], usize) -> Option<usize>) -> Option<String> {
        let mut room = vec![b'#'; 80];
        let end = f(&mut room, 3)?;
        Some(String::from_utf8(room[3..end].to_vec()).unwrap())
    }

    #[test]
    fn slice_number_writers_write_what_the_general_ones_write() {
        let mut values = vec![0u64, u64::MAX, MAX_SAFE_INT, MAX_SAFE_INT + 1];
        for p in 0..20 {
            let ten = 10u64.pow(p);
            values.extend([ten - 1, ten, ten + 1, ten.wrapping_mul(7) / 3]);
        }
        values.extend((0..2000).map(|i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (i % 64)));
        for &v in &values {
            assert_eq!(
                put(|d, p| put_uint(d, p, v)),
                Some(s(|o| uint(o, v.into())))
            );
            for i in [v as i64, (v as i64).wrapping_neg(), i64::MIN, i64::MAX] {
                assert_eq!(put(|d, p| put_int(d, p, i)), Some(s(|o| int(o, i.into()))));
            }
        }
        for v in values.iter().map(|&v| v as u32).chain([0, 9, 10, u32::MAX]) {
            assert_eq!(put(|d, p| put_u32(d, p, v)), Some(s(|o| uint(o, v.into()))));
            for i in [v as i32, (v as i32).wrapping_neg(), i32::MIN, i32::MAX] {
                assert_eq!(put(|d, p| put_i32(d, p, i)), Some(s(|o| int(o, i.into()))));
            }
        }
        // Too little room: nothing, never a panic.
        assert_eq!(put_uint(&mut [0; 10], 0, u64::MAX), None);
        assert_eq!(put_int(&mut [0; 3], 2, -5), None);
    }

    #[test]
    fn slice_string_writer_takes_plain_ascii_and_leaves_the_rest() {
        let plain: [&[u8]; 7] = [
            b"",
            b"\0abc",
            b"loadgen\0garbage",
            b"exactly8",
            b"sixteen-bytes-ok",
            b"seventeen bytes!!",
            b"a b~c{}[]:,0123456789abcdef\0\xff",
        ];
        for b in plain {
            let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
            let want = s(|o| bytes_str(o, &b[..end]));
            assert_eq!(put(|d, p| put_plain_cstr(d, p, b)), Some(want), "{b:?}");
        }
        let escaped: [&[u8]; 8] = [
            b"tab\there",
            b"q\"",
            b"back\\slash-in-a-long-word",
            b"del\x7f",
            b"\xc3\xa9t\xc3\xa9",
            b"\xff",
            b"12345678\n",
            b"1234567\x1f",
        ];
        for b in escaped {
            assert_eq!(put(|d, p| put_plain_cstr(d, p, b)), None, "{b:?}");
        }
        assert_eq!(put_plain_cstr(&mut [0; 4], 0, b"abcd"), None);
    }

    #[test]
    fn text_is_copied_whole_and_reported_by_length() {
        for len in [0, 1, 15, 16, 17, 40] {
            let bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let t = Text::new(&bytes);
            let mut back = b"x".to_vec();
            t.extend(&mut back);
            assert_eq!(back[1..], bytes);
            assert_eq!(t.len(), len);
            assert!(t.room() >= len.max(16) && t.room() < len + 16 + 16 * usize::from(len == 0));
            assert_eq!(
                put(|d, p| put_text(d, p, &t)),
                Some(String::from_utf8(bytes).unwrap())
            );
        }
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
