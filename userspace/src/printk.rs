//! Which program wrote a bpf_trace_printk line. trace_pipe says only the pid and comm of
//! the task the program ran in; the format string tells the programs apart. Formats are
//! read from each program's code once, at parse time: the straight-line instructions
//! before every `call 6` are followed for `r1` (the format) and `r2` (its size), the format
//! either built on the stack from constants (redbpf's `printk!`, clang's stack copies) or
//! a relocated pointer into a read-only data section (libbpf's `bpf_printk` from 5.2). A
//! line then matches a format when its literal parts appear in order and every
//! conversion (`%d`, `%llx`, `%s`, ...) stands for some text.

use std::collections::HashMap;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget, SectionKind};

use crate::elf::Elf;

/// One bpf_trace_printk call of a program section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// The program section whose code makes the call.
    pub section: String,
    /// The format, up to its NUL, without its trailing newline; None where the code does
    /// not tell (a size or pointer computed at run time).
    pub text: Option<String>,
}

/// The bpf_trace_printk calls of the object's programs with their formats.
pub fn formats(file: &Elf<'_>) -> Vec<Format> {
    let mut out = Vec::new();
    for section in file.sections() {
        if section.kind() != SectionKind::Text {
            continue;
        }
        let (Ok(code), Ok(name)) = (section.data(), section.name()) else {
            continue;
        };
        let mut data_at: HashMap<u64, (Vec<u8>, u64)> = HashMap::new();
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(si) = reloc.target() else {
                continue;
            };
            let Some(sym) = file.symbol_by_index(si).ok() else {
                continue;
            };
            let Some(target) = sym
                .section_index()
                .and_then(|i| file.section_by_index(i).ok())
            else {
                continue;
            };
            if matches!(
                target.kind(),
                SectionKind::ReadOnlyData | SectionKind::ReadOnlyString
            ) {
                if let Ok(bytes) = target.data() {
                    data_at.insert(offset, (bytes.to_vec(), sym.address()));
                }
            }
        }
        for text in scan(code, &data_at) {
            let f = Format {
                section: name.to_owned(),
                text,
            };
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// What a register holds, as far as straight-line code tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Unknown,
    Const(i64),
    /// The frame pointer plus this offset.
    Stack(i64),
    /// Read-only data: the relocation (by instruction offset) plus this addend.
    Data(u64, i64),
}

/// The formats passed at each `call 6` of one section.
fn scan(code: &[u8], data_at: &HashMap<u64, (Vec<u8>, u64)>) -> Vec<Option<String>> {
    let mut regs = [Value::Unknown; 11];
    regs[10] = Value::Stack(0);
    let mut stack: HashMap<i64, u8> = HashMap::new();
    let mut found = Vec::new();
    let mut at = 0usize;
    while let Some(insn) = code.get(at..at + 8) {
        let (op, dst, src) = (
            insn[0],
            usize::from(insn[1] & 0xf).min(10),
            usize::from(insn[1] >> 4).min(10),
        );
        let off = i64::from(i16::from_le_bytes([insn[2], insn[3]]));
        let imm = i64::from(i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]));
        match op {
            0xb7 => regs[dst] = Value::Const(imm),
            0xbf => regs[dst] = regs[src],
            0x07 => {
                regs[dst] = match regs[dst] {
                    Value::Const(c) => Value::Const(c.wrapping_add(imm)),
                    Value::Stack(s) => Value::Stack(s + imm),
                    Value::Data(r, a) => Value::Data(r, a + imm),
                    Value::Unknown => Value::Unknown,
                }
            }
            0x18 => {
                let hi = code
                    .get(at + 12..at + 16)
                    .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                let lo = imm as u32;
                regs[dst] = if data_at.contains_key(&(at as u64)) {
                    Value::Data(at as u64, i64::from(lo as i32))
                } else {
                    Value::Const(((u64::from(hi) << 32) | u64::from(lo)) as i64)
                };
                at += 8;
            }
            // Stores: STX (from a register) and ST (an immediate) of 1, 2, 4 or 8 bytes.
            0x73 | 0x6b | 0x63 | 0x7b | 0x72 | 0x6a | 0x62 | 0x7a => {
                let width = match op & 0x18 {
                    0x10 => 1,
                    0x08 => 2,
                    0x00 => 4,
                    _ => 8,
                };
                let value = if op & 7 == 3 {
                    regs[src]
                } else {
                    Value::Const(imm)
                };
                if let Value::Stack(base) = regs[dst] {
                    let at = base + off;
                    for i in 0..width {
                        match value {
                            Value::Const(c) => stack.insert(at + i, (c >> (8 * i)) as u8),
                            _ => stack.remove(&(at + i)),
                        };
                    }
                }
            }
            0x85 if src == 0 => {
                if imm == 6 {
                    found.push(format_at(regs[1], regs[2], &stack, data_at));
                }
                for r in regs.iter_mut().take(6) {
                    *r = Value::Unknown;
                }
            }
            // Other ALU ops and loads write their destination; jumps and exits write none.
            _ if matches!(op & 7, 0 | 1 | 4 | 7) => regs[dst] = Value::Unknown,
            _ => {}
        }
        at += 8;
    }
    found
}

/// The format `fmt` points at, `size` bytes long at most, up to its NUL.
fn format_at(
    fmt: Value,
    size: Value,
    stack: &HashMap<i64, u8>,
    data_at: &HashMap<u64, (Vec<u8>, u64)>,
) -> Option<String> {
    let Value::Const(size) = size else {
        return None;
    };
    let size = usize::try_from(size).ok().filter(|&n| n > 0 && n <= 4096)?;
    let bytes: Vec<u8> = match fmt {
        Value::Stack(base) => (0..size as i64)
            .map(|i| stack.get(&(base + i)).copied())
            .take_while(|b| *b != Some(0))
            .collect::<Option<_>>()?,
        Value::Data(reloc, addend) => {
            let (data, sym) = data_at.get(&reloc)?;
            let start = usize::try_from(*sym as i64 + addend).ok()?;
            let tail = data.get(start..)?;
            let tail = &tail[..tail.len().min(size)];
            tail.iter().take_while(|&&b| b != 0).copied().collect()
        }
        _ => return None,
    };
    let text = String::from_utf8(bytes).ok()?;
    Some(text.strip_suffix('\n').unwrap_or(&text).to_owned())
}

/// The literal parts of `format` around its conversions (`%%` is a literal `%`): one more
/// than there are conversions.
fn literals(format: &str) -> (String, Vec<String>) {
    let mut first = String::new();
    let mut rest: Vec<String> = Vec::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = match c {
            '%' if chars.peek() == Some(&'%') => {
                chars.next();
                '%'
            }
            '%' => {
                // Flags, width, length modifiers, then the conversion letter.
                while chars
                    .peek()
                    .is_some_and(|c| !c.is_ascii_alphabetic() || matches!(c, 'l' | 'h' | 'z'))
                {
                    chars.next();
                }
                chars.next();
                rest.push(String::new());
                continue;
            }
            c => c,
        };
        rest.last_mut().unwrap_or(&mut first).push(literal);
    }
    (first, rest)
}

/// The bpf_trace_printk user a trace_pipe message comes from: the one user whose known
/// formats match it, else the one whose formats are not all known, else none (several
/// could have written it, or none: another program's line).
pub fn origin<'a, U>(
    users: &'a [U],
    formats: impl Fn(&U) -> &[Option<String>],
    msg: &str,
) -> Option<&'a U> {
    let matched: Vec<&U> = users
        .iter()
        .filter(|u| formats(u).iter().flatten().any(|f| matches(f, msg)))
        .collect();
    let candidates = if matched.is_empty() {
        users
            .iter()
            .filter(|u| formats(u).iter().any(Option::is_none))
            .collect()
    } else {
        matched
    };
    match candidates.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// Whether a trace_pipe message `msg` can have been written with `format`.
pub fn matches(format: &str, msg: &str) -> bool {
    let (first, rest) = literals(format);
    let Some(mut tail) = msg.strip_prefix(first.as_str()) else {
        return false;
    };
    match rest.split_last() {
        None => tail.is_empty(),
        Some((last, middle)) => {
            for p in middle {
                match tail.find(p.as_str()) {
                    Some(i) => tail = &tail[i + p.len()..],
                    None => return false,
                }
            }
            tail.ends_with(last.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_their_formats_only() {
        assert!(matches("Hello World", "Hello World"));
        assert!(!matches("Hello World", "Hello World!"));
        assert!(matches("pid %d opened %s", "pid 42 opened /etc/passwd"));
        assert!(matches("pid %d opened %s", "pid 42 opened "));
        assert!(!matches("pid %d opened %s", "uid 42 opened /x"));
        assert!(matches("%llx-%lu 100%%", "ff-7 100%"));
        assert!(!matches("%llx-%lu 100%%", "ff 7 100%"));
        assert!(matches("%d", "anything"));
    }

    #[test]
    fn origins_follow_the_formats() {
        let users = [
            ("hello", vec![Some("Hello World".to_owned())]),
            ("opens", vec![Some("open %s".to_owned())]),
            ("dynamic", vec![None]),
        ];
        let of = |msg| origin(&users, |u| &u.1, msg).map(|u| u.0);
        assert_eq!(of("Hello World"), Some("hello"));
        assert_eq!(of("open /etc"), Some("opens"));
        assert_eq!(
            of("something else"),
            Some("dynamic"),
            "the one that may have"
        );
        assert_eq!(
            origin(&users[..2], |u| &u.1, "something else").map(|u| u.0),
            None
        );
    }

    fn insn(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> Vec<u8> {
        let mut b = vec![op, dst | (src << 4)];
        b.extend_from_slice(&off.to_le_bytes());
        b.extend_from_slice(&imm.to_le_bytes());
        b
    }

    #[test]
    fn stack_built_formats_are_read_back() {
        // What redbpf's printk!("Hello World") compiles to (see the hello probe).
        let mut code = Vec::new();
        code.extend(insn(0xb7, 1, 0, 0, i32::from_le_bytes(*b"rld\n")));
        code.extend(insn(0x63, 10, 1, -8, 0));
        code.extend(insn(0x18, 1, 0, 0, i32::from_le_bytes(*b"Hell")));
        code.extend(insn(0, 0, 0, 0, i32::from_le_bytes(*b"o Wo")));
        code.extend(insn(0x7b, 10, 1, -16, 0));
        code.extend(insn(0x72, 10, 0, -4, 0));
        code.extend(insn(0xbf, 1, 10, 0, 0));
        code.extend(insn(0x07, 1, 0, 0, -16));
        code.extend(insn(0xb7, 2, 0, 0, 13));
        code.extend(insn(0x85, 0, 0, 0, 6));
        code.extend(insn(0x95, 0, 0, 0, 0));
        assert_eq!(scan(&code, &HashMap::new()), [Some("Hello World".into())]);
        // A size computed at run time: a call whose format is not known.
        let n = code.len() - 24;
        code[n..n + 8].copy_from_slice(&insn(0xbf, 2, 6, 0, 0));
        assert_eq!(scan(&code, &HashMap::new()), [None]);
    }

    #[test]
    fn relocated_formats_are_read_from_their_section() {
        let data = b"xx\0pid %d\n\0".to_vec();
        let mut code = insn(0x18, 1, 0, 0, 3);
        code.extend(insn(0, 0, 0, 0, 0));
        code.extend(insn(0xb7, 2, 0, 0, 8));
        code.extend(insn(0x85, 0, 0, 0, 6));
        let relocs = HashMap::from([(0u64, (data, 0u64))]);
        assert_eq!(scan(&code, &relocs), [Some("pid %d".into())]);
    }
}
