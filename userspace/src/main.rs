//! The `loader` binary: the library's `run` with the probes built into this binary.

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

use std::process::ExitCode;

use clap::Parser;
use loader::{cli, run};

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "help") {
        use clap::CommandFactory;
        let mut cmd = cli::Cli::command();
        return ExitCode::from(u8::from(cmd.print_long_help().is_err()));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "check") {
        return ExitCode::from(loader::check::cli::main(std::env::args_os().skip(1)));
    }
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            loader::say!("loader: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run::run(cli, builtin::BUILTIN));
    ExitCode::from(code)
}
