//! The kernel side of one parsed object: its maps created and its programs loaded by aya
//! (or, for XDP below 4.17, by the loader itself), every selected program verified or
//! attached by its section, then its perf arrays given rings and its hash/array maps
//! planned for dumps. Every program fails alone, with one error naming it.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use crate::cli::Cli;
use crate::dwarf::Type;
use crate::elf::{map_type, MapDef, MapInfo};
use crate::filter::FilterPlan;
use crate::kernel;
use crate::legacy::Mode;
use crate::maps::DumpMap;
use crate::message::{MapCount, Message};
use crate::object::{AyaPlan, GlobalDataProgram, Object};
use crate::programs::{self, Context};
use crate::section;
use crate::select::Selection;
use crate::stream::{self, map_data, map_fd, OwnedMap, PerfSource, RingSource, Socket, State};
use crate::sys;
use crate::sys::probe_event::ProbeEvent;
use crate::{errno_of, error_chain};

/// Errors loading a whole object.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the file.
    #[error("cannot read {0}")]
    Read(String, #[source] io::Error),
    /// The ELF is malformed.
    #[error(transparent)]
    Elf(#[from] crate::elf::ElfError),
    /// aya rejected the object (maps creation etc.): its message with every cause, and a
    /// hint when one is known.
    #[error("{0}{1}")]
    Aya(String, String),
    /// aya panicked on the input.
    #[error("the object could not be parsed (aya panicked on it)")]
    Panic,
    /// The aya-ready copy could not be made for this kernel.
    #[error(transparent)]
    Prepare(#[from] crate::object::PrepareError),
}

/// One object in the kernel.
pub(crate) struct Loaded {
    pub(crate) name: String,
    /// Legacy-mode kprobes (kprobe_events entries); dropped before the programs.
    probe_events: Vec<ProbeEvent>,
    /// XDP programs the loader attached itself (below 4.17); dropped before the programs.
    xdp_links: Vec<programs::xdp::XdpLink>,
    /// Programs (and their links); dropping it detaches them.
    ebpf: Option<aya::Ebpf>,
}

impl Loaded {
    /// Detaches and unloads every program of the object (its maps live on in [`State`]).
    pub(crate) fn detach(&mut self) {
        self.probe_events.clear();
        self.xdp_links.clear();
        self.ebpf = None;
    }
}

/// What every object is loaded with.
pub(crate) struct Env<'a> {
    pub(crate) cli: &'a Cli,
    pub(crate) mode: &'a Mode,
    pub(crate) kern_version: u32,
    /// Programs using global data are left out (kernels < 5.2, or `--legacy`).
    pub(crate) no_global_data: bool,
    /// `--event-type MAP=STRUCT`
    pub(crate) event_types: &'a [(String, String)],
    /// `--programs`, `--skip`, `--maps`
    pub(crate) selection: &'a Selection,
    /// Ring pages per CPU and the wakeup watermark in bytes.
    pub(crate) pages: usize,
    pub(crate) watermark: u32,
    /// Online CPUs: one ring each.
    pub(crate) online: Vec<u32>,
}

/// An attached program that calls bpf_trace_printk, with the formats it passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrintkUser {
    pub(crate) object: String,
    pub(crate) program: String,
    /// See [`Object::printk_formats_of`].
    pub(crate) formats: Vec<Option<String>>,
}

/// Program `pname` of `obj` as a bpf_trace_printk user, when it calls the helper.
fn printk_user(obj: &Object, pname: &str) -> Option<PrintkUser> {
    obj.calls_printk(pname).then(|| PrintkUser {
        object: obj.name.clone(),
        program: pname.to_owned(),
        formats: obj
            .info
            .program_by_symbol(pname)
            .map_or_else(|| vec![None], |p| obj.printk_formats_of(p)),
    })
}

/// What happened to the selected programs of the objects so far.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Whether the run must fail: an object that could not load, a refused program in
    /// `--verify`, or any error with `--strict`.
    pub(crate) fatal: bool,
    /// The attached programs that call bpf_trace_printk.
    pub(crate) printk: Vec<PrintkUser>,
    /// Inputs that could not be read or parsed, or hold no program; and all inputs.
    pub(crate) unreadable: usize,
    pub(crate) inputs: usize,
}

/// Creates the object's maps and hands its programs to aya (not yet loaded).
/// `aya_loader` is shared by all objects: creating one parses the kernel's BTF (5 MB of
/// /sys/kernel/btf/vmlinux, ~50 ms), which would otherwise be paid per object.
fn load_object(
    aya_loader: &mut aya::EbpfLoader<'_>,
    obj: &Object,
    env: &Env<'_>,
    left_out: &[GlobalDataProgram],
) -> Result<(aya::Ebpf, Vec<u8>), LoadError> {
    let mut plan = AyaPlan {
        as_data: left_out.iter().map(|p| p.section.clone()).collect(),
        ncpus: kernel::possible_cpus(),
        kern_version: env.kern_version,
        // Below 4.18 (legacy mode) the kernel takes no BTF: BTF `.maps` are created from
        // their sizes alone, as libbpf creates them there.
        drop_btf_type_ids: !env.mode.btf,
        ring_buffers: (!obj.fallback_ring_buffers().is_empty()).then(has_ring_buffers),
        resolve_core_locally: obj.info.has_btf_maps && !kernel::has_kernel_btf(),
        // BPF_PROG_LOAD's BTF func/line info fields: 5.0 (KERNEL_VERSION(5, 0, 0)).
        func_info: env.kern_version >= 5 << 16,
    };
    let mut patched = obj.aya_bytes(&plan)?;
    let load = |aya_loader: &mut aya::EbpfLoader<'_>, bytes: &[u8]| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| aya_loader.load(bytes)))
            .map_err(|_| LoadError::Panic)
    };
    let mut loaded = load(aya_loader, &patched)?;
    // A kernel that refuses a map's BTF types (a 4.19 said E2BIG): libbpf retries without
    // them, and so does the loader.
    if let Err(aya::EbpfError::MapError(aya::maps::MapError::CreateError { name, io_error })) =
        &loaded
    {
        let typed = obj
            .btf_maps
            .iter()
            .any(|m| &m.name == name && (m.key.is_some() || m.value.is_some()));
        if typed && !plan.drop_btf_type_ids {
            let why = format!("map {name}: {io_error}");
            plan.drop_btf_type_ids = true;
            let again = obj.aya_bytes(&plan)?;
            loaded = load(aya_loader, &again)?;
            if loaded.is_ok() {
                crate::say!(
                    "loader: {}: {why} with its BTF key/value types; its BTF maps were created without them",
                    obj.name
                );
                patched = again;
            }
        }
    }
    let ebpf = loaded.map_err(|e| {
        let hint = if errno_of(&e) == Some(libc::EPERM) {
            " (not root? loading needs CAP_BPF, or CAP_SYS_ADMIN on kernels < 5.8)".to_owned()
        } else {
            map_type_hint(&e, obj).unwrap_or_default()
        };
        LoadError::Aya(error_chain(&e), hint)
    })?;
    Ok((ebpf, patched))
}

/// Whether the kernel has BPF ring buffers (5.8+): a ring buffer map of one page is
/// created and closed, once per run, as libbpf-tools probes it.
fn has_ring_buffers() -> bool {
    static PROBED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROBED.get_or_init(sys::can_create_ring_buffer)
}

/// Why a map could not be created, when its type is newer than the running kernel.
fn map_type_hint(e: &aya::EbpfError, obj: &Object) -> Option<String> {
    let aya::EbpfError::MapError(aya::maps::MapError::CreateError { name, .. }) = e else {
        return None;
    };
    let (major, minor, _) = kernel::running_version()?;
    obj.map_type_hint(name, (major, minor))
}

/// Loads `obj`, verifies or attaches its selected programs, reports the ones no path
/// handles, and gives its maps rings or dump plans, all into `st`.
pub(crate) fn load_and_attach(
    st: &mut State,
    ctx: &mut Context,
    aya_loader: &mut aya::EbpfLoader<'_>,
    env: &Env<'_>,
    obj: Object,
    outcome: &mut Outcome,
) {
    let left_out = if env.no_global_data {
        obj.global_data_programs()
    } else {
        Vec::new()
    };
    let (mut ebpf, patched) = match load_object(aya_loader, &obj, env, &left_out) {
        Ok(v) => v,
        Err(e) => {
            report_error(st, &obj.name, None, &error_chain(&e), None);
            outcome.fatal = true;
            return;
        }
    };
    if let Some(e) = &obj.types_error {
        crate::say!(
            "loader: {}: no usable debug info ({e}); records print as hex",
            obj.name
        );
    }
    ctx.raw_object = ctx.own_xdp_load.then(|| programs::RawObject {
        bytes: patched,
        map_fds: ebpf
            .maps()
            .map(|(n, m)| (n.to_owned(), map_data(m).fd().as_fd().as_raw_fd()))
            .collect(),
    });
    let mut loaded = Loaded {
        name: obj.name.clone(),
        probe_events: Vec::new(),
        xdp_links: Vec::new(),
        ebpf: None,
    };
    let obj_idx = st.loaded.len();
    write_kernel_filter(st, &obj.name, &mut ebpf);
    let ran = attach_programs(st, ctx, env, &obj, &mut ebpf, &mut loaded, obj_idx, outcome);
    report_unsupported(st, env, &obj, &ebpf, &left_out, outcome);
    take_maps(st, env, &obj, &mut ebpf, obj_idx, ran > 0);
    ctx.raw_object = None;
    loaded.ebpf = Some(ebpf);
    st.loaded.push(loaded);
}

/// Writes `--pid`/`--uid`/`--comm`/`--failed` into the object's [`filter::KERNEL_MAP`],
/// when it declares one, before its programs attach. A map of another shape is said once on
/// stderr; the filters then apply in user space alone, as for any object.
fn write_kernel_filter(st: &mut State, object: &str, ebpf: &mut aya::Ebpf) {
    if st.filter.is_empty() {
        return;
    }
    let Some(map) = ebpf.map_mut(crate::filter::KERNEL_MAP) else {
        return;
    };
    let value = st.filter.kernel_value();
    let r = aya::maps::Array::<_, [u8; 32]>::try_from(map).and_then(|mut a| a.set(0, value, 0));
    if let Err(e) = r {
        crate::say!(
            "loader: {object}/{}: not a one-entry array of 32-byte values ({e}): filters apply in user space only",
            crate::filter::KERNEL_MAP
        );
    }
}

/// An error of a map's section (no program).
fn report_error_at(st: &mut State, object: &str, section: &str, error: &str) {
    st.summary.errors += 1;
    let r = st.sink.message(&Message::Error {
        object,
        program: None,
        section: Some(section),
        error,
        verifier_log: None,
    });
    st.check(r);
}

/// An error of the object, or of one of its programs (`(symbol, section)`).
fn report_error(
    st: &mut State,
    object: &str,
    program: Option<(&str, &str)>,
    error: &str,
    verifier_log: Option<&str>,
) {
    st.summary.errors += 1;
    let (p, s) = program.unzip();
    let r = st.sink.message(&Message::Error {
        object,
        program: p,
        section: s,
        error,
        verifier_log,
    });
    st.check(r);
}

/// Verifies (`--verify`) or attaches every selected program aya loaded, in section order;
/// returns how many were verified or attached.
#[allow(clippy::too_many_arguments)]
fn attach_programs(
    st: &mut State,
    ctx: &mut Context,
    env: &Env<'_>,
    obj: &Object,
    ebpf: &mut aya::Ebpf,
    loaded: &mut Loaded,
    obj_idx: usize,
    outcome: &mut Outcome,
) -> usize {
    let cli = env.cli;
    let mut ran = 0;
    let mut names: Vec<String> = ebpf.programs().map(|(n, _)| n.to_owned()).collect();
    names.sort_by_key(|n| {
        obj.info
            .programs
            .iter()
            .position(|p| &p.symbol == n)
            .unwrap_or(usize::MAX)
    });
    for pname in names {
        let section_name = obj
            .info
            .program_by_symbol(&pname)
            .map(|p| p.section.clone())
            .unwrap_or_default();
        if !env.selection.wants(&obj.name, &pname, &section_name) {
            continue;
        }
        let mut spec = section::parse(&section_name);
        if let Some((_, target)) = cli.attach.iter().find(|(s, _)| *s == section_name) {
            spec = section::retarget(&spec, target);
        }
        let Some(program) = ebpf.program_mut(&pname) else {
            continue;
        };
        let here = Some((pname.as_str(), section_name.as_str()));
        if cli.verify {
            match programs::load(program, &pname, ctx) {
                Ok(()) => {
                    ran += 1;
                    let r = st.sink.message(&Message::Loaded {
                        object: &obj.name,
                        program: &pname,
                        section: &section_name,
                    });
                    st.check(r);
                }
                Err(e) => {
                    outcome.fatal = true;
                    report_error(st, &obj.name, here, &error_chain(&e), e.verifier_log());
                }
            }
            continue;
        }
        match programs::attach(program, &pname, &spec, ctx) {
            Ok(att) => {
                ran += 1;
                st.summary.attached += 1;
                outcome.printk.extend(printk_user(obj, &pname));
                loaded.probe_events.extend(att.probe_event);
                loaded.xdp_links.extend(att.xdp_link);
                if let Some(fd) = att.socket {
                    // Packets queued before the filter was attached are not counted.
                    sys::drain_socket(fd.as_fd(), &mut st.scratch);
                    st.sockets.push(Socket {
                        object: obj_idx,
                        program: pname.clone(),
                        iface: att.target.clone(),
                        fd,
                        packets: 0,
                    });
                }
                let r = st.sink.message(&Message::Attached {
                    object: &obj.name,
                    program: &pname,
                    section: &section_name,
                    kind: spec.kind(),
                    target: &att.target,
                });
                st.check(r);
            }
            Err(e) => {
                report_error(st, &obj.name, here, &error_chain(&e), e.verifier_log());
                outcome.fatal |= cli.strict;
            }
        }
    }
    ran
}

/// Programs in sections no loader path handles (aya never saw them): one error each, so
/// nothing in the object goes unmentioned.
fn report_unsupported(
    st: &mut State,
    env: &Env<'_>,
    obj: &Object,
    ebpf: &aya::Ebpf,
    left_out: &[GlobalDataProgram],
    outcome: &mut Outcome,
) {
    for (p, spec) in obj.programs() {
        if ebpf.program(&p.symbol).is_some()
            || !env.selection.wants(&obj.name, &p.symbol, &p.section)
        {
            continue;
        }
        outcome.fatal |= env.cli.verify || env.cli.strict;
        let msg = match left_out.iter().find(|g| g.symbol == p.symbol) {
            Some(g) => format!(
                "uses global data ({}), which needs 5.2: not loaded on this kernel (the \
                 object's other programs are)",
                g.what
            ),
            None => format!(
                "unsupported program section kind '{}': not loaded (the loader runs \
                 kprobe, kretprobe, uprobe, uretprobe, tracepoint, raw_tracepoint, xdp, \
                 socketfilter and tc_action programs)",
                spec.kind()
            ),
        };
        report_error(st, &obj.name, Some((&p.symbol, &p.section)), &msg, None);
    }
}

/// The definition and section of map `name`: its legacy `maps` definition, or, for a BTF
/// `.maps` map, what the kernel says it created (BPF_OBJ_GET_INFO_BY_FD, 4.13+). Global
/// data maps (`.rodata`, `.bss`...) give None: they are not read.
fn map_view(obj: &Object, name: &str, map: &aya::maps::Map) -> Option<MapInfo> {
    if let Some(m) = obj.map(name) {
        return Some(m.clone());
    }
    if name.starts_with('.') {
        return None;
    }
    let def = match map_data(map).info() {
        Ok(info) => MapDef {
            map_type: kernel_map_type(map),
            key_size: info.key_size(),
            value_size: info.value_size(),
            max_entries: info.max_entries(),
            flags: info.map_flags(),
        },
        // Below 4.13 the kernel cannot say: the definition, as the loader had it created.
        Err(_) => btf_map_def(obj, name)?,
    };
    Some(MapInfo {
        name: name.to_owned(),
        section: ".maps".to_owned(),
        def,
        def_offset: None,
    })
}

/// The definition BTF map `name` was created from: its `.maps` entry, a perf event array
/// of 4-byte keys and values if it is a ring buffer the loader turned into one.
fn btf_map_def(obj: &Object, name: &str) -> Option<MapDef> {
    let m = obj.btf_maps.iter().find(|m| m.name == name)?;
    let map_type = m.map_type?;
    if obj.fallback_ring_buffers().contains(&name) && !has_ring_buffers() {
        return Some(MapDef {
            map_type: map_type::PERF_EVENT_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: m.max_entries.unwrap_or(0),
            flags: 0,
        });
    }
    Some(MapDef {
        map_type,
        key_size: m.key_size.unwrap_or(0),
        value_size: m.value_size.unwrap_or(0),
        max_entries: m.max_entries.unwrap_or(0),
        flags: m.map_flags.unwrap_or(0),
    })
}

/// `BPF_MAP_TYPE_*` of an aya map, by its kind (the types the loader reads; 0 for others).
fn kernel_map_type(map: &aya::maps::Map) -> u32 {
    use aya::maps::Map;
    match map {
        Map::HashMap(_) => map_type::HASH,
        Map::Array(_) => map_type::ARRAY,
        Map::PerfEventArray(_) => map_type::PERF_EVENT_ARRAY,
        Map::PerCpuHashMap(_) => map_type::PERCPU_HASH,
        Map::PerCpuArray(_) => map_type::PERCPU_ARRAY,
        Map::LruHashMap(_) => map_type::LRU_HASH,
        Map::PerCpuLruHashMap(_) => map_type::LRU_PERCPU_HASH,
        Map::RingBuf(_) => map_type::RINGBUF,
        Map::StackTraceMap(_) => map_type::STACK_TRACE,
        _ => 0,
    }
}

/// Takes the maps out of `ebpf` (so they outlive the programs) and plans what is read
/// from them: perf arrays get a ring per online CPU, ring buffers a reader, hash/array
/// maps get dumped (when a program of the object runs, the map is selected and is no
/// scratch map). Legacy and BTF-defined maps alike.
fn take_maps(
    st: &mut State,
    env: &Env<'_>,
    obj: &Object,
    ebpf: &mut aya::Ebpf,
    obj_idx: usize,
    any_ran: bool,
) {
    let map_names: Vec<String> = ebpf.maps().map(|(n, _)| n.to_owned()).collect();
    let mut views = Vec::new();
    for n in map_names {
        let Some(map) = ebpf.take_map(&n) else {
            continue;
        };
        views.extend(map_view(obj, &n, &map));
        st.maps.push(OwnedMap {
            object: obj_idx,
            name: n,
            map,
        });
    }
    let stack_maps: Vec<(String, usize)> = views
        .iter()
        .filter(|m| m.def.map_type == map_type::STACK_TRACE)
        .map(|m| (m.name.clone(), m.def.value_size as usize))
        .collect();
    for m in &views {
        let override_ty = env
            .event_types
            .iter()
            .find(|(map, _)| map == &m.name)
            .map(|(_, ty)| ty.as_str());
        match m.def.map_type {
            map_type::PERF_EVENT_ARRAY => {
                open_rings(st, env, obj, m, override_ty, obj_idx);
                push_stack_plan(st, env, &stack_maps);
            }
            map_type::RINGBUF => {
                open_ring_buffer(st, obj, m, override_ty, obj_idx);
                push_stack_plan(st, env, &stack_maps);
            }
            t if map_type::dumpable(t) && any_ran && env.selection.wants_map(&obj.name, m) => {
                plan_dump(st, env, obj, m, override_ty, obj_idx)
            }
            // Stack traces: dumped (symbolized) when --maps names them.
            map_type::STACK_TRACE
                if any_ran && !env.cli.maps.is_empty() && env.selection.wants_map(&obj.name, m) =>
            {
                plan_dump(st, env, obj, m, override_ty, obj_idx)
            }
            _ => {}
        }
    }
}

/// A hash/array map dumped at exit (and every `--interval`), its key and value typed.
fn plan_dump(
    st: &mut State,
    env: &Env<'_>,
    obj: &Object,
    m: &MapInfo,
    override_ty: Option<&str>,
    obj_idx: usize,
) {
    let [k, v] = obj.kv_types(&m.name, m.def.key_size, m.def.value_size);
    let v = override_ty
        .and_then(|t| obj.types.named_type(t))
        .map(|t| (t, "--event-type".to_owned()))
        .or(v);
    say_decoding(st, obj, &m.name, k.as_ref(), v.as_ref(), false);
    st.dumps.push((
        obj_idx,
        DumpMap {
            object: obj.name.clone(),
            name: m.name.clone(),
            def: m.def,
            hist: crate::hist::slot_field(
                k.as_ref().map(|(t, _)| t),
                env.cli.hist.iter().any(|h| h == &m.name),
            ),
            key: k.map(|(t, _)| t),
            value: v.map(|(t, _)| t),
        },
    ));
}

/// The `decode` line of map `map`: which types its keys and values (or records) decode as,
/// and where each came from; for a stream without a type, the `--event-type` hint.
fn say_decoding(
    st: &mut State,
    obj: &Object,
    map: &str,
    key: Option<&(Type, String)>,
    value: Option<&(Type, String)>,
    records: bool,
) {
    if key.is_none() && value.is_none() && !records {
        return;
    }
    let label =
        |t: Option<&(Type, String)>| t.map(|(t, from)| (crate::dwarf::label(t), from.clone()));
    let (key, value) = (label(key), label(value));
    let r = st.sink.message(&Message::Decode {
        object: &obj.name,
        map,
        records,
        key: key.as_ref().map(|(l, f)| (l.as_str(), f.as_str())),
        value: value.as_ref().map(|(l, f)| (l.as_str(), f.as_str())),
    });
    st.check(r);
}

/// The stack id fields of the record type just pushed (the last of `st.types`).
fn push_stack_plan(st: &mut State, env: &Env<'_>, stack_maps: &[(String, usize)]) {
    if st.stack_plans.len() >= st.types.len() {
        return; // no record type was pushed for this map
    }
    while st.stack_plans.len() + 1 < st.types.len() {
        st.stack_plans.push(Vec::new());
    }
    let names: Vec<String> = stack_maps.iter().map(|(n, _)| n.clone()).collect();
    let ty = st.types.last().and_then(Option::as_ref);
    let plan = crate::stacks::stack_fields(ty, &names, &env.cli.stack)
        .into_iter()
        .filter_map(|f| {
            let size = stack_maps.iter().find(|(n, _)| *n == f.map)?.1;
            Some((f, size))
        })
        .collect();
    st.stack_plans.push(plan);
}

/// The record type (said in a `decode` line, with its filter plan) and the counters of a
/// perf array or ring buffer: their indexes in `st.types` and `st.counts`.
fn register_stream(
    st: &mut State,
    obj: &Object,
    m: &MapInfo,
    override_ty: Option<&str>,
) -> (usize, usize) {
    let ty = obj.record_type(&m.name, override_ty);
    say_decoding(st, obj, &m.name, None, ty.as_ref(), true);
    let ty_idx = st.types.len();
    let ty = ty.map(|(t, _)| t);
    st.filter_plans.push(FilterPlan::new(ty.as_ref()));
    st.types.push(ty);
    let count_idx = st.counts.len();
    st.counts.push(MapCount {
        object: obj.name.clone(),
        map: m.name.clone(),
        ..Default::default()
    });
    (ty_idx, count_idx)
}

/// A BPF ring buffer map (5.8+): one reader for all CPUs.
fn open_ring_buffer(
    st: &mut State,
    obj: &Object,
    m: &MapInfo,
    override_ty: Option<&str>,
    obj_idx: usize,
) {
    let Some(pos) = st
        .maps
        .iter()
        .position(|o| o.object == obj_idx && o.name == m.name)
    else {
        return;
    };
    let owned = st.maps.remove(pos);
    let ring = aya::maps::RingBuf::try_from(owned.map)
        .map_err(|e| crate::error_chain(&e))
        .and_then(|rb| {
            // SAFETY: the ring buffer owns its map fd for its whole life and always
            // returns that same fd.
            unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(rb, tokio::io::Interest::READABLE)
            }
            .map_err(|e| e.to_string())
        });
    let buf = match ring {
        Ok(b) => b,
        Err(e) => {
            let msg = format!("ring buffer {}: {e}", m.name);
            report_error_at(st, &obj.name, &m.section, &msg);
            return;
        }
    };
    let (ty_idx, count_idx) = register_stream(st, obj, m, override_ty);
    st.ring_buffers.push(RingSource {
        object: obj_idx,
        map: m.name.clone(),
        count: count_idx,
        ty: ty_idx,
        buf,
    });
}

/// One ring per online CPU for perf array `m`, each stored in the array at its CPU.
fn open_rings(
    st: &mut State,
    env: &Env<'_>,
    obj: &Object,
    m: &MapInfo,
    override_ty: Option<&str>,
    obj_idx: usize,
) {
    let Some(fd) = map_fd(&st.maps, obj_idx, &m.name) else {
        return;
    };
    let rings: Vec<_> = env
        .online
        .iter()
        .map(|&cpu| {
            let ring = stream::open_ring(fd, cpu, env.pages, env.watermark);
            (cpu, ring)
        })
        .collect();
    let (ty_idx, count_idx) = register_stream(st, obj, m, override_ty);
    for (cpu, ring) in rings {
        match ring {
            Ok(buf) => st.sources.push(PerfSource {
                object: obj_idx,
                map: m.name.clone(),
                cpu,
                count: count_idx,
                ty: ty_idx,
                lost_seen: 0,
                buf,
            }),
            Err(e) => {
                let msg = format!("perf buffer for map {} on CPU {cpu}: {e}", m.name);
                report_error_at(st, &obj.name, &m.section, &msg);
            }
        }
    }
}
