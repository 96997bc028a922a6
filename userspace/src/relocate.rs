//! The final instructions of one program, for the loader's own BPF_PROG_LOAD where aya's
//! cannot run (XDP below 4.17: aya 0.14 sets `expected_attach_type`, a `bpf_attr` field
//! those kernels refuse). aya-obj parses and relocates the same aya-ready bytes aya
//! loaded: map references become the fds of the maps aya created, BPF-to-BPF calls are
//! linked. Pure: no syscalls.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::RawFd;

use aya_obj::generated::bpf_insn;

/// Why a program's instructions could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum RelocateError {
    /// aya-obj could not parse the object.
    #[error("parsing the object")]
    Parse(#[source] aya_obj::ParseError),
    /// A map or call relocation failed.
    #[error("relocating")]
    Relocate(#[source] aya_obj::relocation::EbpfRelocationError),
    /// The object has no program of that name.
    #[error("no program {0} in the object")]
    NoProgram(String),
}

/// A program ready for BPF_PROG_LOAD.
#[derive(Debug)]
pub struct ProgramCode {
    /// The instructions, 8 bytes each, as the kernel takes them.
    pub insns: Vec<u8>,
    /// The object's license.
    pub license: CString,
}

/// One instruction in the kernel's layout: code, dst | src << 4, off, imm (little endian:
/// BPF objects here are bpfel).
fn insn_bytes(i: &bpf_insn) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = i.code;
    b[1] = (i.dst_reg() & 0x0f) | (i.src_reg() << 4);
    b[2..4].copy_from_slice(&i.off.to_le_bytes());
    b[4..8].copy_from_slice(&i.imm.to_le_bytes());
    b
}

/// The relocated instructions of program `name` (aya's name: the function symbol) in the
/// aya-ready object `bytes`, whose maps have the fds `map_fds` (by aya's map name).
pub fn program_code(
    bytes: &[u8],
    name: &str,
    map_fds: &[(String, RawFd)],
) -> Result<ProgramCode, RelocateError> {
    let mut obj = aya_obj::Object::parse(bytes).map_err(RelocateError::Parse)?;
    let text: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
    let defs = obj.maps.clone();
    let mut maps = Vec::new();
    // Maps aya did not create (global data below 5.2) are left out: a reference to one
    // fails the relocation of the program that makes it, not of the others.
    for (map_name, def) in &defs {
        if let Some((_, fd)) = map_fds.iter().find(|(n, _)| n == map_name) {
            maps.push((map_name.as_str(), *fd, def));
        }
    }
    obj.relocate_maps(maps.into_iter(), &text)
        .map_err(RelocateError::Relocate)?;
    obj.relocate_calls(&text).map_err(RelocateError::Relocate)?;
    let program = obj
        .programs
        .get(name)
        .ok_or_else(|| RelocateError::NoProgram(name.to_owned()))?;
    let function = obj
        .functions
        .get(&program.function_key())
        .ok_or_else(|| RelocateError::NoProgram(name.to_owned()))?;
    Ok(ProgramCode {
        insns: function.instructions.iter().flat_map(insn_bytes).collect(),
        license: obj.license.clone(),
    })
}
