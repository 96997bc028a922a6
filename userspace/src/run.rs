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

/// The built-in probe `arg` names, when `arg` is no file: `loader execsnoop`.
fn builtin_named<'a>(arg: &Path, builtin: &[(&str, &'a [u8])]) -> Option<&'a [u8]> {
    if arg.exists() || arg.components().count() != 1 {
        return None;
    }
    let name = arg.to_str()?;
    builtin.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The objects named on the command line (files, or built-in probes by name), or every
/// built-in probe when none is.
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
            bytes: match builtin_named(path, builtin) {
                Some(b) => Ok(b.to_vec()),
                None => {
                    std::fs::read(path).map_err(|e| LoadError::Read(path.display().to_string(), e))
                }
            },
        })
        .collect())
}

/// An input that could not be read or parsed: one error, and the run fails.
fn report_unreadable(st: &mut State, name: &str, error: &str, outcome: &mut Outcome) {
    st.summary.errors += 1;
    outcome.fatal = true;
    let r = st.sink.message(&Message::Error {
        object: name,
        program: None,
        section: None,
        error,
        verifier_log: None,
    });
    st.check(r);
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

/// Parsed objects, and `(name, error)` of the inputs that could not be read or parsed.
type Prepared = (Vec<Object>, Vec<(String, String)>);

/// The objects of the run, parsed, with the inputs that could not be read or parsed
/// (reported once the `kernel` line is out); or the exit code of a run that ends here
/// (usage errors, `--list`).
fn prepare(cli: &Cli, builtin: &[(&str, &[u8])], st: &mut State) -> Result<Prepared, u8> {
    let inputs = inputs(cli, builtin).map_err(|e| {
        crate::say!("loader: {e}");
        2
    })?;
    let mut objects = Vec::new();
    let mut failed = Vec::new();
    for Input { name, bytes } in inputs {
        match bytes.and_then(|b| Object::parse(name.clone(), b).map_err(LoadError::from)) {
            Ok(obj) if obj.info.programs.is_empty() => failed.push((
                name,
                "no BPF program in it (no code section other than .text)".to_owned(),
            )),
            Ok(obj) => objects.push(obj),
            Err(e) => failed.push((name, error_chain(&e))),
        }
    }
    let selection = cli.selection();
    let mut unmatched = selection.unmatched(&objects);
    unmatched.extend(unknown_attach_sections(cli, &objects));
    unmatched.extend(unknown_event_types(cli, &objects));
    if !unmatched.is_empty() {
        let of = if cli.objects.is_empty() {
            "the built-in probes"
        } else {
            "the objects given"
        };
        crate::say!(
            "loader: {}: nothing of that name in {of}; `loader --list` shows the programs",
            unmatched.join(", ")
        );
        return Err(2);
    }
    if cli.list {
        for (name, e) in &failed {
            crate::say!("loader: error: {name}: {e}");
        }
        list(st, &objects);
        return Err(u8::from(!failed.is_empty()));
    }
    if !sys::may_load_bpf() {
        crate::say!(
            "loader: needs root, or CAP_BPF and CAP_PERFMON (CAP_NET_ADMIN for XDP and socket filters)"
        );
        return Err(1);
    }
    // Objects none of whose programs is selected are not loaded: no maps created, none dumped.
    objects.retain(|o| selection.wants_any(o));
    Ok((objects, failed))
}

/// Runs the loader; returns the process exit code.
pub async fn run(cli: Cli, builtin: &[(&str, &[u8])]) -> u8 {
    let started = Instant::now();
    let out: Box<dyn std::io::Write> = match &cli.output {
        Some(path) => match sink::OutputFile::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                crate::say!("loader: --output {}: {e}", path.display());
                return 2;
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let mut st = State::new(sink::new(cli.json, cli.folded, out));
    st.filter = cli.filter();
    st.no_foreign_printk = cli.no_foreign_printk;
    let event_types = match cli.event_types() {
        Ok(v) => v,
        Err(e) => {
            crate::say!("loader: {e}");
            return 2;
        }
    };
    let (objects, failed) = match prepare(&cli, builtin, &mut st) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let mut signals = match Signals::install(cli.output.is_some()) {
        Ok(s) => s,
        Err(e) => {
            crate::say!("loader: {e}");
            return 1;
        }
    };
    // `setup.run_lock` is held until the end, after every kprobe event is removed.
    let setup = setup::kernel(&cli, &mut st);
    let mut outcome = Outcome {
        unreadable: failed.len(),
        inputs: failed.len() + objects.len(),
        ..Outcome::default()
    };
    for (name, e) in failed {
        report_unreadable(&mut st, &name, &e, &mut outcome);
    }
    let selection = cli.selection();
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
        selection: &selection,
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
    if cli.folded {
        st.plan_folds(&cli.stack);
    }
    st.flush();
    let mut code = finish_attach(&cli, &st, &outcome);
    let metrics = match cli.metrics {
        Some(addr) if code.is_none() => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                crate::say!("loader: --metrics {addr}: cannot listen: {e}");
                code = Some(1);
                None
            }
        },
        _ => None,
    };
    if code.is_none() {
        let printk = std::mem::take(&mut outcome.printk);
        let ran = stream::event_loop(&cli, &mut st, &mut ctx, printk, &mut signals, metrics).await;
        if !ran && cli.strict {
            code = Some(1);
        }
    }
    if cli.verify {
        // Everything loaded was only verified; dropping the objects unloads it.
        return code.unwrap_or(0);
    }
    st.teardown(started);
    drop(setup.run_lock);
    code.unwrap_or(0)
}

/// `--attach` sections no object has.
fn unknown_attach_sections(cli: &Cli, objects: &[Object]) -> Vec<String> {
    cli.attach
        .iter()
        .filter(|(section, _)| {
            !objects
                .iter()
                .any(|o| o.info.programs.iter().any(|p| &p.section == section))
        })
        .map(|(section, target)| format!("--attach {section}={target}"))
        .collect()
}

/// `--event-type MAP=STRUCT` pairs whose map no object has, or whose type is not in the
/// debug info of the objects that have the map.
fn unknown_event_types(cli: &Cli, objects: &[Object]) -> Vec<String> {
    let Ok(pairs) = cli.event_types() else {
        return Vec::new();
    };
    pairs
        .iter()
        .filter(|(map, ty)| {
            let with_map: Vec<&Object> = objects
                .iter()
                .filter(|o| o.map(map).is_some() || o.btf_maps.iter().any(|m| &m.name == map))
                .collect();
            with_map.is_empty() || with_map.iter().all(|o| o.types.named_type(ty).is_none())
        })
        .map(|(map, ty)| format!("--event-type {map}={ty}"))
        .collect()
}

/// `--list`: one line per program of every object.
fn list(st: &mut State, objects: &[Object]) {
    for obj in objects {
        for (p, spec) in obj.programs() {
            let r = st.sink.message(&Message::Program {
                object: &obj.name,
                program: &p.symbol,
                section: &p.section,
                kind: spec.kind(),
                target: &spec.target(),
            });
            st.check(r);
        }
    }
    st.flush();
}

/// After every object: the exit code when there is nothing to run (`--verify`, nothing
/// attached, or a fatal error), else None.
fn finish_attach(cli: &Cli, st: &State, outcome: &Outcome) -> Option<u8> {
    if outcome.unreadable > 0 && outcome.unreadable == outcome.inputs {
        // Every OBJECT was unreadable: bad input, as `loader check` says it.
        return Some(2);
    }
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
