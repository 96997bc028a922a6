//! Counts execve calls; the Array's second slot holds what build.rs found through
//! cargo_bpf_lib (the source-file count and the size of the ethhdr it generated).
#![no_std]
#![no_main]
use redbpf_macros::tracepoint;
use redbpf_probes::kprobe::prelude::*;

#[allow(non_camel_case_types, dead_code)]
mod eth {
    include!(concat!(env!("OUT_DIR"), "/eth.rs"));
    include!(concat!(env!("OUT_DIR"), "/sources.rs"));
}

program!(0xFFFFFFFE, "GPL");

#[map]
static mut EXECS: Array<u64> = Array::with_max_entries(2);

#[tracepoint("syscalls:sys_enter_execve")]
fn execve(_args: *const c_void) {
    unsafe {
        if let Some(n) = EXECS.get_mut(0) {
            *n += 1;
        }
        if let Some(found) = EXECS.get_mut(1) {
            *found = eth::SOURCES * 100 + core::mem::size_of::<eth::ethhdr>() as u64;
        }
    }
}
