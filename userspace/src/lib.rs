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

/// `error: cause: cause`, on one line: how every error is printed (error types name the
/// thing that failed and carry the cause as `source()`, never in their message).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_str = c.to_string();
        // aya's own messages sometimes carry their cause already.
        if !s.contains(&c_str) {
            s.push_str(": ");
            s.push_str(&c_str);
        }
        cause = c.source();
    }
    s.replace('\n', " ")
}

/// The first OS error code in `e`'s chain of causes.
pub fn errno_of(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(code) = c
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            return Some(code);
        }
        cause = c.source();
    }
    None
}

pub mod attach;
pub mod check;
pub mod cli;
pub mod decode;
pub mod dwarf;
pub mod elf;
pub mod filter;
pub mod folded;
pub mod hist;
pub mod json;
pub mod kernel;
pub mod legacy;
pub mod maps;
pub mod message;
pub mod metrics;
pub mod object;
pub mod printk;
pub mod programs;
pub mod relocate;
pub mod run;
pub mod section;
pub mod select;
pub mod setup;
pub mod sink;
pub mod stacks;
pub mod stream;
pub mod sys;
