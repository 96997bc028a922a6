//! Types and helpers shared by the built-in probes. Record layouts are `#[repr(C)]` and
//! described by the object's debug info: the loader decodes them with no per-probe code.
#![no_std]
#![allow(static_mut_refs)]

pub mod exec;
pub mod filter;
pub mod net;
pub mod perf;
