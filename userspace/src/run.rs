//! The loader's run, stage by stage: inputs -> parsed objects ([`crate::object`]) ->
//! loaded and attached programs ([`crate::attach`]) -> the event loop ([`crate::stream`])
//! -> teardown.

use std::path::Path;
use std::time::Instant;

use crate::attach::{self, Env, LoadError, Outcome};
use crate::cli::Cli;
use crate::error_chain;
use crate::kernel;
use crate::message::Message;
use crate::object::Object;
use crate::programs::Context;
use crate::setup;
use crate::sink;
use crate::stream::{self, Signals, State};
use crate::sys;

/// One object to load: its name and its bytes, or why they could not be read.
pub(crate) struct Input {
    name: String,
    bytes: Result<Vec<u8>, LoadError>,
}

fn object_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The objects named on the command line, or the built-in probes when none is.
fn inputs(cli: &Cli, builtin: &[(&str, &[u8])]) -> Result<Vec<Input>, String> {
    if cli.objects.is_empty() {
        if builtin.is_empty() {
            return Err("no OBJECT given and no probes were built into this binary (build them with `cargo bpf build`, then rebuild the loader)".to_owned());
        }
        return Ok(builtin
            .iter()
            .map(|(name, bytes)| Input {
                name: (*name).to_owned(),
                bytes: Ok(bytes.to_vec()),
            })
            .collect());
    }
    Ok(cli
        .objects
        .iter()
        .map(|path| Input {
            name: object_name(path),
            bytes: std::fs::read(path).map_err(|e| LoadError::Read(path.display().to_string(), e)),
        })
        .collect())
}

/// Parses every input once; the ones that cannot be read or parsed are reported (each
/// alone) and marked fatal.
fn parse_all(st: &mut State, inputs: Vec<Input>, outcome: &mut Outcome) -> Vec<Object> {
    let mut objects = Vec::new();
    for Input { name, bytes } in inputs {
        match bytes.and_then(|b| Object::parse(name.clone(), b).map_err(LoadError::from)) {
            Ok(obj) => objects.push(obj),
            Err(e) => {
                st.summary.errors += 1;
                outcome.fatal = true;
                let r = st.sink.message(&Message::Error {
                    object: &name,
                    program: None,
                    section: None,
                    error: &error_chain(&e),
                    verifier_log: None,
                });
                st.check(r);
            }
        }
    }
    objects
}

/// What the command line and the kernel make of the attach context.
fn context(cli: &Cli, setup: &setup::KernelSetup, objects: &[Object]) -> Context {
    let mut ctx = Context::new(
        cli.iface.clone(),
        cli.uprobe_target.as_ref().map(|p| p.display().to_string()),
        cli.uprobe_pid,
    );
    ctx.kprobes = setup.mode.kprobes;
    // aya's XDP load sets expected_attach_type (4.17): below, the loader loads XDP itself.
    ctx.own_xdp_load = below(cli, (4, 17));
    // Only kprobes resolve symbols; listing /proc/kallsyms costs ~0.1 s of a core.
    if objects.iter().any(Object::has_kprobes) {
        ctx.prefetch_kallsyms();
    }
    ctx
}

/// `--legacy`, or a running kernel older than `v`.
fn below(cli: &Cli, v: (u32, u32)) -> bool {
    cli.legacy || kernel::running_version().is_some_and(|r| (r.0, r.1) < v)
}

/// Runs the loader; returns the process exit code.
pub async fn run(cli: Cli, builtin: &[(&str, &[u8])]) -> u8 {
    let started = Instant::now();
    let mut st = State::new(sink::for_terminal(cli.json));
    let event_types = match cli.event_types() {
        Ok(v) => v,
        Err(e) => {
            crate::say!("loader: {e}");
            return 2;
        }
    };
    if sys::euid() != 0 {
        crate::say!(
            "loader: warning: not running as root; loading needs CAP_BPF + CAP_PERFMON (CAP_NET_ADMIN for XDP)"
        );
    }
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            crate::say!("loader: {e}");
            return 1;
        }
    };
    // `_run_lock` is held until the end, after every kprobe event is removed.
    let setup = setup::kernel(&cli, &mut st);
    let inputs = match inputs(&cli, builtin) {
        Ok(v) => v,
        Err(e) => {
            crate::say!("loader: {e}");
            return 2;
        }
    };
    let mut outcome = Outcome::default();
    let objects = parse_all(&mut st, inputs, &mut outcome);
    let mut ctx = context(&cli, &setup, &objects);
    let pages = stream::pow2_pages(
        cli.pages
            .unwrap_or_else(|| stream::default_pages(stream::online_count())),
    );
    let env = Env {
        cli: &cli,
        mode: &setup.mode,
        kern_version: setup.kern_version,
        // Global data (.rodata/.data/.bss maps) came in 5.2: programs using it are left out.
        no_global_data: below(&cli, (5, 2)),
        event_types: &event_types,
        pages,
        watermark: cli
            .wakeup_bytes
            .unwrap_or_else(|| (pages * sys::page_size() / 4) as u32),
        online: kernel::online_cpus(),
    };
    let mut aya_loader = aya::EbpfLoader::new();
    aya_loader.allow_unsupported_maps();
    for obj in objects {
        attach::load_and_attach(&mut st, &mut ctx, &mut aya_loader, &env, obj, &mut outcome);
    }
    st.flush();
    let code = finish_attach(&cli, &st, &outcome);
    if code.is_none() {
        stream::event_loop(&cli, &mut st, &mut ctx, outcome.printk, &mut signals).await;
    }
    if cli.verify {
        // Everything loaded was only verified; dropping the objects unloads it.
        return code.unwrap_or(0);
    }
    st.teardown(started);
    drop(setup.run_lock);
    code.unwrap_or(0)
}

/// After every object: the exit code when there is nothing to run (`--verify`, nothing
/// attached, or a fatal error), else None.
fn finish_attach(cli: &Cli, st: &State, outcome: &Outcome) -> Option<u8> {
    if cli.verify {
        crate::say!(
            "loader: verify: {} program(s) rejected or unloadable",
            st.summary.errors
        );
        return Some(u8::from(outcome.fatal || st.summary.errors > 0));
    }
    if outcome.fatal && (cli.strict || st.summary.attached == 0) {
        return Some(1);
    }
    if st.summary.attached == 0 {
        crate::say!("loader: no program attached; nothing to do");
        return Some(1);
    }
    None
}
