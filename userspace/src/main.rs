//! `loader`: load redbpf-era and C BPF objects, attach every program by its ELF section
//! name, stream perf records / map dumps / printk as JSON lines.
//!
//! Data path, one module per stage:
//! `elf` (section/program/map model, rewrite for aya) -> `dwarf` (types) ->
//! `programs/*` (load + attach per kind) -> `sys::perf` (batched per-CPU rings) ->
//! `decode` (record -> JSON) -> `output` (one buffered writer). `run` wires them.

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}
mod cli;
mod decode;
mod dwarf;
mod elf;
mod json;
mod kernel;
mod maps;
mod output;
mod programs;
mod run;
mod section;
mod sys;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loader: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run::run(cli, builtin::BUILTIN));
    ExitCode::from(code)
}
