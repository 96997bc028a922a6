//! `--pid`, `--comm`, `--uid`, `--failed`: filters applied by the loader to the records it
//! reads (post-filters, as `grep` would, not in the kernel), on any record type that has
//! the field: `pid` (or `tgid`), `comm`, `uid`, `ret` (or `retval`). A record without the
//! field a filter names does not pass it. printk lines pass `--pid` and `--comm` the same
//! way (their pid and command come from trace_pipe). Pure.

use crate::dwarf::Type;

/// What the command line asks records to match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `--pid`
    pub pid: Option<u32>,
    /// `--comm` (the kernel's 16-byte comm, so at most 15 characters compare)
    pub comm: Option<String>,
    /// `--uid`
    pub uid: Option<u32>,
    /// `--failed`: only records whose `ret` is negative
    pub failed: bool,
}

/// Where a field sits in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    offset: usize,
    size: usize,
    signed: bool,
}

/// The fields of one record type the filters read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterPlan {
    pid: Option<At>,
    comm: Option<At>,
    uid: Option<At>,
    ret: Option<At>,
}

fn field_at(ty: Option<&Type>, names: &[&str]) -> Option<At> {
    let Some(Type::Struct { fields, .. }) = ty else {
        return None;
    };
    let f = fields.iter().find(|f| names.contains(&f.name.as_str()))?;
    let (size, signed) = match &f.ty {
        Type::Int { size, signed } => (*size as usize, *signed),
        Type::Array { elem, count } if elem.size() == 1 => (*count as usize, false),
        _ => return None,
    };
    Some(At {
        offset: f.offset as usize,
        size,
        signed,
    })
}

fn int(data: &[u8], at: At) -> Option<i128> {
    let b = data.get(at.offset..at.offset.checked_add(at.size)?)?;
    if !matches!(at.size, 1 | 2 | 4 | 8) {
        return None;
    }
    let u = b.iter().rev().fold(0u128, |a, &x| (a << 8) | u128::from(x));
    Some(if at.signed {
        let shift = 128 - 8 * at.size as u32;
        ((u << shift) as i128) >> shift
    } else {
        u as i128
    })
}

impl Filter {
    /// Whether no filter is set (then nothing is read).
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether a printk line of `pid`/`comm` passes.
    pub fn keeps_printk(&self, pid: u32, comm: &str) -> bool {
        self.pid.is_none_or(|p| p == pid)
            && self
                .comm
                .as_deref()
                .is_none_or(|c| comm_eq(c, comm.as_bytes()))
    }
}

/// The map a probe declares to have the filters applied in the kernel too (see the probes
/// crate's `filter` module): an array of one 32-byte value.
pub const KERNEL_MAP: &str = "LOADER_FILTER";

impl Filter {
    /// The value written into a probe's [`KERNEL_MAP`]: `set` (1 pid, 2 uid, 4 comm,
    /// 8 failed), pid, uid, a pad word, then the comm NUL-padded to 16 bytes (15 at most,
    /// as the kernel keeps it). Little-endian.
    pub fn kernel_value(&self) -> [u8; 32] {
        let mut v = [0u8; 32];
        let mut set = 0u32;
        if let Some(p) = self.pid {
            set |= 1;
            v[4..8].copy_from_slice(&p.to_le_bytes());
        }
        if let Some(u) = self.uid {
            set |= 2;
            v[8..12].copy_from_slice(&u.to_le_bytes());
        }
        if let Some(c) = &self.comm {
            set |= 4;
            let c = &c.as_bytes()[..c.len().min(15)];
            v[16..16 + c.len()].copy_from_slice(c);
        }
        if self.failed {
            set |= 8;
        }
        v[..4].copy_from_slice(&set.to_le_bytes());
        v
    }
}

/// `--comm` against a NUL-padded comm: the first 15 bytes, as the kernel keeps them.
fn comm_eq(wanted: &str, comm: &[u8]) -> bool {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    let w = wanted.as_bytes();
    let w = &w[..w.len().min(15)];
    comm.get(..end) == Some(w)
}

impl FilterPlan {
    /// The filter fields of record type `ty`.
    pub fn new(ty: Option<&Type>) -> FilterPlan {
        FilterPlan {
            pid: field_at(ty, &["pid", "tgid"]),
            comm: field_at(ty, &["comm"]),
            uid: field_at(ty, &["uid"]),
            ret: field_at(ty, &["ret", "retval"]),
        }
    }

    /// The record's `pid` (or `tgid`), when it has one.
    pub fn pid(&self, data: &[u8]) -> Option<u32> {
        self.pid
            .and_then(|a| int(data, a))
            .and_then(|p| u32::try_from(p).ok())
    }

    /// Whether record `data` passes `f`.
    pub fn keeps(&self, f: &Filter, data: &[u8]) -> bool {
        let eq = |at: Option<At>, want: Option<u32>| match want {
            None => true,
            Some(w) => at.and_then(|a| int(data, a)) == Some(i128::from(w)),
        };
        if !eq(self.pid, f.pid) || !eq(self.uid, f.uid) {
            return false;
        }
        if let Some(c) = &f.comm {
            let comm = self
                .comm
                .and_then(|a| data.get(a.offset..a.offset.checked_add(a.size)?));
            if !comm.is_some_and(|b| comm_eq(c, b)) {
                return false;
            }
        }
        !f.failed || self.ret.and_then(|a| int(data, a)).is_some_and(|r| r < 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dwarf::Field;

    #[test]
    fn kernel_values_say_which_filters_are_set() {
        assert_eq!(Filter::default().kernel_value(), [0; 32]);
        let v = Filter {
            pid: Some(0x0102_0304),
            comm: Some("a-very-long-command".into()),
            uid: None,
            failed: true,
        }
        .kernel_value();
        assert_eq!(v[..4], 13u32.to_le_bytes(), "pid, comm and failed");
        assert_eq!(v[4..8], [4, 3, 2, 1]);
        assert_eq!(v[8..16], [0; 8]);
        assert_eq!(&v[16..31], b"a-very-long-com");
        assert_eq!(v[31], 0, "15 characters and a NUL");
    }

    fn record_type() -> Type {
        let int = |size, signed| Type::Int { size, signed };
        let field = |name: &str, offset, ty| Field {
            name: name.into(),
            offset,
            ty,
        };
        Type::Struct {
            name: "event".into(),
            size: 28,
            fields: vec![
                field("pid", 0, int(4, false)),
                field("uid", 4, int(4, false)),
                field("ret", 8, int(4, true)),
                field(
                    "comm",
                    12,
                    Type::Array {
                        elem: Box::new(Type::Char { size: 1 }),
                        count: 16,
                    },
                ),
            ],
        }
    }

    fn record(pid: u32, uid: u32, ret: i32, comm: &str) -> Vec<u8> {
        let mut b = [pid.to_le_bytes(), uid.to_le_bytes(), ret.to_le_bytes()].concat();
        let mut c = comm.as_bytes().to_vec();
        c.resize(16, 0);
        b.extend(c);
        b
    }

    #[test]
    fn each_filter_reads_its_field() {
        let ty = record_type();
        let plan = FilterPlan::new(Some(&ty));
        let r = record(42, 1000, -2, "bash");
        let keeps = |f: Filter| plan.keeps(&f, &r);
        assert!(keeps(Filter::default()));
        assert!(keeps(Filter {
            pid: Some(42),
            ..Default::default()
        }));
        assert!(!keeps(Filter {
            pid: Some(43),
            ..Default::default()
        }));
        assert!(keeps(Filter {
            uid: Some(1000),
            ..Default::default()
        }));
        assert!(keeps(Filter {
            comm: Some("bash".into()),
            ..Default::default()
        }));
        assert!(!keeps(Filter {
            comm: Some("bas".into()),
            ..Default::default()
        }));
        assert!(keeps(Filter {
            failed: true,
            ..Default::default()
        }));
        assert!(!plan.keeps(
            &Filter {
                failed: true,
                ..Default::default()
            },
            &record(1, 1, 0, "x")
        ));
        // A name longer than the kernel's comm compares on its first 15 bytes.
        let long = record(1, 1, 0, "a_very_long_nam");
        let f = Filter {
            comm: Some("a_very_long_name_indeed".into()),
            ..Default::default()
        };
        assert!(plan.keeps(&f, &long));
    }

    #[test]
    fn records_without_the_field_do_not_pass_and_short_ones_do_not_panic() {
        let plan = FilterPlan::new(None);
        assert!(plan.keeps(&Filter::default(), b"anything"));
        assert!(!plan.keeps(
            &Filter {
                pid: Some(1),
                ..Default::default()
            },
            b"anything"
        ));
        let ty = record_type();
        let plan = FilterPlan::new(Some(&ty));
        assert!(!plan.keeps(
            &Filter {
                comm: Some("bash".into()),
                ..Default::default()
            },
            &[0; 5]
        ));
        assert!(Filter {
            pid: Some(7),
            ..Default::default()
        }
        .keeps_printk(7, "sh"));
        assert!(!Filter {
            comm: Some("bash".into()),
            ..Default::default()
        }
        .keeps_printk(7, "sh"));
    }
}
