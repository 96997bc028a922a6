//! The bpf_trace_printk hello world: "Hello World" in trace_pipe on every execve.
#![no_std]
#![no_main]
use redbpf_macros::printk;
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[kprobe("sys_execve")]
fn hello(_regs: Registers) {
    printk!("Hello World");
}
