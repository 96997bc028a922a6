//! The command line: any argument list (NUL-separated) is parsed by the loader's clap
//! definition without a panic, and whatever parses goes through what `run` derives from
//! it first (event types, the selection with its globs, the filters) and is matched
//! against a few names, as a run would. A parse error is what main turns into exit 2.

#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use loader::cli::Cli;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args = std::iter::once("loader").chain(text.split('\0'));
    let Ok(cli) = Cli::try_parse_from(args) else {
        return;
    };
    cli.event_types().ok();
    let sel = cli.selection();
    for (object, symbol, section) in [
        ("execsnoop", "outer_execve_enter", "tracepoint/syscalls/sys_enter_execve"),
        ("x", "", ""),
    ] {
        sel.wants(object, symbol, section);
    }
    let filter = cli.filter();
    filter.keeps_printk(1, "sh");
    loader::filter::FilterPlan::new(None).keeps(&filter, data);
});
