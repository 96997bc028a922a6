//! Host-target LTO bitcode -> BPF ELF object, through the LLVM C API of rustc's own libLLVM.

mod api;
mod ir;
pub mod retarget;

pub use api::{toolchain_llvm, Api};
