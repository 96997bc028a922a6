//! printk! used the way redbpf master's signature allows: expect, match and `?`.
#![no_std]
#![no_main]
// Master's kprobe prelude re-exports printk; crates.io's redbpf-probes 2.3 (this crate's)
// has no printk in its prelude, so it is imported from the macros crate.
use redbpf_macros::{printk, tracepoint};
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut FAILED: Array<u64> = Array::with_max_entries(1);

fn say(pid: u32) -> Result<i32, ()> {
    let written = printk!("printk-master again %u", pid)?;
    Ok(written)
}

#[tracepoint("syscalls:sys_enter_getppid")]
fn getppid(_args: *const c_void) {
    let pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    printk!("printk-master pid %u", pid).expect("bpf_trace_printk failed");
    let failed = match say(pid) {
        Ok(_) => 0,
        Err(()) => 1,
    };
    unsafe {
        if let Some(n) = FAILED.get_mut(0) {
            *n += failed;
        }
    }
}
