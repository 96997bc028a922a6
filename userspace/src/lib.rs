//! `loader`: load redbpf-era and C BPF objects, attach every program by its ELF section
//! name, stream perf records / map dumps / printk as JSON lines.
//!
//! Data path, one module per stage:
//! `elf` (section/program/map model, rewrite for aya) -> `dwarf` (types) ->
//! `programs/*` (load + attach per kind) -> `sys::perf` (batched per-CPU rings) ->
//! `decode` (record -> JSON) -> `output` (one buffered writer). `run` wires them.

// Input-derived data never panics the loader: no unwrap/expect outside tests (indexing is
// bounds-checked with `get`; the few table lookups left are bounded by construction).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

/// `eprintln!` that never panics: a closed stderr (`loader 2>&1 | head -1`) loses the
/// message instead of killing the loader before it detaches its programs.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        ::std::writeln!(::std::io::stderr().lock(), $($arg)*).ok();
    }};
}

pub mod attach;
pub mod check;
pub mod cli;
pub mod decode;
pub mod dwarf;
pub mod elf;
pub mod json;
pub mod kernel;
pub mod legacy;
pub mod maps;
pub mod message;
pub mod object;
pub mod programs;
pub mod relocate;
pub mod run;
pub mod section;
pub mod setup;
pub mod sink;
pub mod stream;
pub mod sys;
