#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;
program!(0xFFFFFFFE, "GPL");
#[map]
static mut OUT: Array<u64> = Array::with_max_entries(1);
fn collatz(n: u64, steps: u64) -> u64 {
    if n <= 1 || steps > 1000 {
        steps
    } else if n % 2 == 0 {
        collatz(n / 2, steps + 1)
    } else {
        collatz(3 * n + 1, steps + 1) + collatz(n - 1, 0)
    }
}
#[kprobe("vfs_read")]
fn not_inlinable(regs: Registers) {
    let s = collatz(regs.parm1(), 0);
    unsafe { OUT.set(0, &s) };
}
