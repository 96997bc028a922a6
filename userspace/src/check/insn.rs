//! BPF instruction decoding for the checker: calls, jumps, loops and the instruction-set
//! extensions (cpu v2, v3, v4, atomics) old kernels reject. Pure; input bytes may be garbage.

use super::Version;

/// Instruction size in bytes.
pub const INSN_SIZE: usize = 8;

const CLASS_LDX: u8 = 0x01;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;

const OP_JA: u8 = 0x00;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;
const OP_JCOND: u8 = 0xe0;

const LD_IMM64: u8 = 0x18;
const MODE_MEMSX: u8 = 0x80;
const MODE_ATOMIC: u8 = 0xc0;

/// `src_reg` of a call to another BPF function.
pub const PSEUDO_CALL: u8 = 1;
/// `src_reg` of a call to a kernel function.
pub const PSEUDO_KFUNC_CALL: u8 = 2;

/// One decoded 8-byte slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register (or the pseudo kind of calls and `ld_imm64`).
    pub src: u8,
    /// Signed offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

impl Insn {
    /// Decodes one little-endian slot.
    pub fn from_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    fn class(self) -> u8 {
        self.code & 0x07
    }

    fn op(self) -> u8 {
        self.code & 0xf0
    }

    /// Slots this instruction takes (`ld_imm64` takes two).
    pub fn width(self) -> usize {
        if self.code == LD_IMM64 {
            2
        } else {
            1
        }
    }
}

/// The constant `reg` holds at slot `at`, when the straight-line code just before sets it
/// with `mov reg, imm` or `ld_imm64` (no branch, call or other write to `reg` in
/// between). A scan backwards: conservative, so None is "not known", never "not constant".
pub fn const_reg_before(body: &[Insn], at: usize, reg: u8) -> Option<i64> {
    let mut i = at;
    while i > 0 {
        i -= 1;
        // The second slot of an ld_imm64 belongs to the slot before it.
        let (start, insn) = match (i.checked_sub(1).map(|j| body[j]), body[i]) {
            (Some(prev), cur) if prev.code == LD_IMM64 && cur.code == 0 => (i - 1, prev),
            (_, cur) => (i, cur),
        };
        i = start;
        let class = insn.class();
        if class == 0x05 || class == 0x06 {
            return None; // a jump, a call or an exit: control flow not followed
        }
        if insn.dst != reg {
            continue;
        }
        return match insn.code {
            0xb7 => Some(i64::from(insn.imm)),
            0xb4 => Some(i64::from(insn.imm as u32)),
            LD_IMM64 => {
                let hi = body.get(start + 1)?.imm as u32;
                Some(((u64::from(hi) << 32) | u64::from(insn.imm as u32)) as i64)
            }
            _ => None,
        };
    }
    None
}

/// Decodes a code section; a trailing partial slot is ignored.
pub fn decode(code: &[u8]) -> Vec<Insn> {
    code.chunks_exact(INSN_SIZE)
        .filter_map(|c| c.try_into().ok())
        .map(Insn::from_bytes)
        .collect()
}

/// What a `call` instruction calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A helper, by `BPF_FUNC_*` id.
    Helper(i32),
    /// Another BPF function: `imm` is the distance in slots from the next instruction.
    Function(i32),
    /// A kernel function (kfunc), by BTF id.
    Kfunc(i32),
}

/// The call an instruction makes, if it is one.
pub fn call(insn: Insn) -> Option<Call> {
    if insn.code != (CLASS_JMP | OP_CALL) {
        return None;
    }
    Some(match insn.src {
        PSEUDO_CALL => Call::Function(insn.imm),
        PSEUDO_KFUNC_CALL => Call::Kfunc(insn.imm),
        _ => Call::Helper(insn.imm),
    })
}

/// An instruction-set extension: its mnemonic, the extension, and the first release that
/// accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension {
    /// e.g. `sdiv`, `jlt`, `atomic fetch_add`.
    pub mnemonic: &'static str,
    /// e.g. `cpu v4`.
    pub set: &'static str,
    /// First release whose verifier accepts it.
    pub since: Version,
}

const fn ext(mnemonic: &'static str, set: &'static str, since: Version) -> Option<Extension> {
    Some(Extension {
        mnemonic,
        set,
        since,
    })
}

const V2: Version = Version::new(4, 14);
const V3: Version = Version::new(5, 1);
const ATOMICS: Version = Version::new(5, 12);
const V4: Version = Version::new(6, 6);

/// The extension an instruction needs beyond the original (cpu v1) instruction set.
pub fn extension(insn: Insn) -> Option<Extension> {
    let (class, op) = (insn.class(), insn.op());
    match class {
        CLASS_ALU | CLASS_ALU64 => match op {
            0x30 if insn.off == 1 => ext("sdiv", "cpu v4", V4),
            0x90 if insn.off == 1 => ext("smod", "cpu v4", V4),
            0xb0 if insn.off != 0 => ext("movsx", "cpu v4", V4),
            0xd0 if class == CLASS_ALU64 => ext("bswap", "cpu v4", V4),
            _ => None,
        },
        CLASS_LDX if insn.code & 0xe0 == MODE_MEMSX => ext("ldsx", "cpu v4", V4),
        CLASS_STX if insn.code & 0xe0 == MODE_ATOMIC => atomic(insn.imm),
        CLASS_JMP => match op {
            0xa0 => ext("jlt", "cpu v2", V2),
            0xb0 => ext("jle", "cpu v2", V2),
            0xc0 => ext("jslt", "cpu v2", V2),
            0xd0 => ext("jsle", "cpu v2", V2),
            OP_JCOND => ext("may_goto", "cpu v4", Version::new(6, 9)),
            _ => None,
        },
        CLASS_JMP32 if op == OP_JA => ext("gotol", "cpu v4", V4),
        CLASS_JMP32 => ext("jmp32", "cpu v3", V3),
        _ => None,
    }
}

fn atomic(imm: i32) -> Option<Extension> {
    match imm {
        // BPF_ADD without BPF_FETCH: the original BPF_XADD.
        0x00 => None,
        0x01 => ext("atomic fetch_add", "atomics", ATOMICS),
        0x40 | 0x50 | 0xa0 => ext("atomic and/or/xor", "atomics", ATOMICS),
        0x41 | 0x51 | 0xa1 => ext("atomic fetch_and/or/xor", "atomics", ATOMICS),
        0xe1 => ext("atomic xchg", "atomics", ATOMICS),
        0xf1 => ext("atomic cmpxchg", "atomics", ATOMICS),
        0x100 => ext("load_acquire", "atomics", Version::new(6, 15)),
        0x110 => ext("store_release", "atomics", Version::new(6, 15)),
        _ => ext("atomic (unknown)", "atomics", Version::new(99, 0)),
    }
}

/// Where control can go after the instruction at `pc` (slot indices, possibly out of
/// range for malformed code).
fn successors(insn: Insn, pc: usize) -> (Option<i64>, Option<i64>) {
    let pc = pc as i64;
    let next = pc + insn.width() as i64;
    let target = |d: i64| Some(pc + 1 + d);
    match insn.class() {
        CLASS_JMP => match insn.op() {
            OP_EXIT => (None, None),
            OP_CALL => (Some(next), None),
            OP_JA => (target(insn.off.into()), None),
            _ => (Some(next), target(insn.off.into())),
        },
        CLASS_JMP32 if insn.op() == OP_JA => (target(insn.imm.into()), None),
        CLASS_JMP32 => (Some(next), target(insn.off.into())),
        _ => (Some(next), None),
    }
}

/// The back-edges of a function's control-flow graph, as `(from, to)` slot pairs: the jumps
/// that close a loop, which verifiers before 5.3 reject. A backward jump that is not part
/// of a cycle is not one. Jumps out of range are ignored (the verifier reports those).
pub fn back_edges(insns: &[Insn]) -> Vec<(usize, usize)> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        OnStack,
        Done,
    }
    let n = insns.len();
    let mut state = vec![State::New; n];
    let mut found = Vec::new();
    if n == 0 {
        return found;
    }
    // (pc, which successor to try next)
    let mut stack: Vec<(usize, u8)> = vec![(0, 0)];
    if let Some(s) = state.get_mut(0) {
        *s = State::OnStack;
    }
    while let Some(top) = stack.last_mut() {
        let (pc, which) = *top;
        top.1 += 1;
        let Some(&insn) = insns.get(pc) else {
            stack.pop();
            continue;
        };
        let (a, b) = successors(insn, pc);
        let succ = match which {
            0 => a,
            1 => b,
            _ => {
                if let Some(s) = state.get_mut(pc) {
                    *s = State::Done;
                }
                stack.pop();
                continue;
            }
        };
        let Some(to) = succ
            .and_then(|t| usize::try_from(t).ok())
            .filter(|&t| t < n)
        else {
            continue;
        };
        match state.get(to) {
            Some(State::New) => {
                if let Some(s) = state.get_mut(to) {
                    *s = State::OnStack;
                }
                stack.push((to, 0));
            }
            Some(State::OnStack) => found.push((pc, to)),
            _ => {}
        }
    }
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(code: u8, dst: u8, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            imm,
            ..Insn::default()
        }
    }

    #[test]
    fn constants_before_a_call() {
        // As in execsnoop: r3 = 0xffffffff ll; r4 = r6; call 25.
        let body = [
            ins(LD_IMM64, 3, -1),
            ins(0, 0, 0),
            ins(0xbf, 4, 0),
            ins(0x85, 0, 25),
        ];
        assert_eq!(const_reg_before(&body, 3, 3), Some(0xffff_ffff));
        let body = [ins(0xb7, 3, 2), ins(0x85, 0, 25)];
        assert_eq!(const_reg_before(&body, 1, 3), Some(2));
        // Set from another register, or across a branch: not known.
        let body = [ins(0xb7, 3, 2), ins(0xbf, 3, 0), ins(0x85, 0, 25)];
        assert_eq!(const_reg_before(&body, 2, 3), None);
        let body = [ins(0xb7, 3, 2), ins(0x15, 1, 0), ins(0x85, 0, 25)];
        assert_eq!(const_reg_before(&body, 2, 3), None);
        assert_eq!(const_reg_before(&[], 0, 3), None);
    }

    fn i(code: u8, regs: u8, off: i16, imm: i32) -> Insn {
        let mut b = [0u8; 8];
        b[0] = code;
        b[1] = regs;
        b[2..4].copy_from_slice(&off.to_le_bytes());
        b[4..8].copy_from_slice(&imm.to_le_bytes());
        Insn::from_bytes(b)
    }

    const EXIT: u8 = 0x95;
    const MOV64_IMM: u8 = 0xb7;

    #[test]
    fn decoding_fields_and_partial_slots() {
        let insn = i(0x85, 0x10, -2, 7);
        assert_eq!((insn.src, insn.dst, insn.off, insn.imm), (1, 0, -2, 7));
        let mut bytes = vec![0xb7, 0x01, 0, 0, 5, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[1, 2, 3]);
        let insns = decode(&bytes);
        assert_eq!(insns.len(), 2);
        assert_eq!(insns[0].dst, 1);
        assert_eq!(insns[0].imm, 5);
    }

    #[test]
    fn calls() {
        assert_eq!(call(i(0x85, 0x00, 0, 113)), Some(Call::Helper(113)));
        assert_eq!(call(i(0x85, 0x10, 0, -1)), Some(Call::Function(-1)));
        assert_eq!(call(i(0x85, 0x20, 0, 1234)), Some(Call::Kfunc(1234)));
        assert_eq!(call(i(EXIT, 0, 0, 0)), None);
    }

    #[test]
    fn cpu_v4_encodings() {
        let name = |insn| extension(insn).map(|e| (e.mnemonic, e.since.to_string()));
        let v4 = |m| Some((m, "6.6".to_owned()));
        // r1 s/= r2 (ALU64 | DIV | X, off 1); w1 s%= 3 (ALU | MOD | K, off 1)
        assert_eq!(name(i(0x3f, 0x21, 1, 0)), v4("sdiv"));
        assert_eq!(name(i(0x94, 0x01, 1, 3)), v4("smod"));
        // plain division is v1
        assert_eq!(name(i(0x3f, 0x21, 0, 0)), None);
        // r1 = (s8) r2
        assert_eq!(name(i(0xbf, 0x21, 8, 0)), v4("movsx"));
        assert_eq!(name(i(0xbf, 0x21, 0, 0)), None);
        // r1 = *(s16 *)(r2 + 0): LDX | MEMSX | H
        assert_eq!(name(i(0x89, 0x21, 0, 0)), v4("ldsx"));
        assert_eq!(name(i(0x69, 0x21, 0, 0)), None);
        // r1 = bswap64 r1 (ALU64 | END) vs the old le/be (ALU | END)
        assert_eq!(name(i(0xd7, 0x01, 0, 64)), v4("bswap"));
        assert_eq!(name(i(0xdc, 0x01, 0, 64)), None);
        // gotol +70000 (JMP32 | JA, offset in imm)
        assert_eq!(name(i(0x06, 0, 0, 70000)), v4("gotol"));
    }

    #[test]
    fn older_extensions() {
        let since = |insn| extension(insn).map(|e| e.since.to_string());
        assert_eq!(since(i(0xad, 0x21, 3, 0)).as_deref(), Some("4.14")); // jlt r1, r2
        assert_eq!(since(i(0xd5, 0x01, 3, 0)).as_deref(), Some("4.14")); // jsle r1, 0
        assert_eq!(since(i(0x16, 0x01, 3, 0)).as_deref(), Some("5.1")); // if w1 == 0
        assert_eq!(since(i(0x2d, 0x21, 3, 0)), None); // jgt: v1
        assert_eq!(since(i(0xdb, 0x21, 0, 0x00)), None); // lock *(u64 *) += (xadd)
        assert_eq!(since(i(0xdb, 0x21, 0, 0x01)).as_deref(), Some("5.12"));
        assert_eq!(since(i(0xdb, 0x21, 0, 0xf1)).as_deref(), Some("5.12"));
        assert_eq!(since(i(0xe5, 0, 2, 0)).as_deref(), Some("6.9")); // may_goto
        assert_eq!(since(i(0x85, 0, 0, 6)), None);
        assert_eq!(since(i(MOV64_IMM, 0, 0, 6)), None);
    }

    #[test]
    fn loops_are_back_edges() {
        // 0: r0 = 0; 1: r0 += 1; 2: if r0 > 9 goto +1; 3: goto -3 (to 1); 4: exit
        let code = [
            i(MOV64_IMM, 0, 0, 0),
            i(0x07, 0, 0, 1),
            i(0x25, 0, 1, 9),
            i(0x05, 0, -3, 0),
            i(EXIT, 0, 0, 0),
        ];
        assert_eq!(back_edges(&code), vec![(3, 1)]);
        // conditional back-edge: 2: if r0 < 10 goto -2 (to 1)
        let code = [
            i(MOV64_IMM, 0, 0, 0),
            i(0x07, 0, 0, 1),
            i(0x35, 0, -2, 10),
            i(EXIT, 0, 0, 0),
        ];
        assert_eq!(back_edges(&code), vec![(2, 1)]);
        // gotol -1: a jump to itself
        let code = [i(0x06, 0, 0, -1)];
        assert_eq!(back_edges(&code), vec![(0, 0)]);
    }

    #[test]
    fn backward_jump_without_cycle_is_no_loop() {
        // 0: if r1 == 0 goto +2 (to 3); 1: r0 = 1; 2: exit; 3: r0 = 2; 4: goto -3 (to 2)
        let code = [
            i(0x15, 0x01, 2, 0),
            i(MOV64_IMM, 0, 0, 1),
            i(EXIT, 0, 0, 0),
            i(MOV64_IMM, 0, 0, 2),
            i(0x05, 0, -3, 0),
        ];
        assert_eq!(back_edges(&code), vec![]);
    }

    #[test]
    fn ld_imm64_second_slot_is_skipped_and_bad_targets_ignored() {
        // 0-1: r1 = ll (second slot holds a jump-looking opcode); 2: goto +100; 3: exit
        let code = [
            i(LD_IMM64, 0x01, 0, 0),
            i(0x05, 0, -2, 0),
            i(0x05, 0, 100, 0),
            i(EXIT, 0, 0, 0),
        ];
        assert_eq!(back_edges(&code), vec![]);
        assert_eq!(back_edges(&[]), vec![]);
        let huge = [i(0x05, 0, i16::MIN, 0), i(0x06, 0, 0, i32::MIN)];
        assert_eq!(back_edges(&huge), vec![]);
    }
}
