//! Wiring: load objects, attach programs, open perf buffers, run the event loop, clean up.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use aya::maps::{Map, MapData};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::Cli;
use crate::dwarf::{Type, TypeTable};
use crate::elf::{self, map_type};
use crate::kernel;
use crate::legacy::{self, KprobeMode, Mode};
use crate::maps::{self, DumpMap};
use crate::output::KernelLine;
use crate::output::{MapCount, Printer, Summary};
use crate::programs::{self, Context};
use crate::section;
use crate::sys::probe_event::{self, ProbeEvent};
use crate::sys::run_lock::{self, RunLock};
use crate::sys::{self, perf::PerfBuffer, perf::Record};

/// Errors loading a whole object.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the file.
    #[error("cannot read {0}: {1}")]
    Read(String, io::Error),
    /// The ELF is malformed.
    #[error(transparent)]
    Elf(#[from] elf::ElfError),
    /// aya rejected the object (maps creation etc.): its message with every cause.
    #[error("{0}{1}")]
    Aya(String, String),
    /// aya panicked on the input.
    #[error("the object could not be parsed (aya panicked on it)")]
    Panic,
    /// BTF-defined maps in legacy mode.
    #[error("its maps are BTF-defined (section .maps), which needs kernel BTF (4.18+); legacy mode loads no BTF: use legacy `maps` sections (or, on a kernel with BTF that legacy mode was only forced on, drop --legacy)")]
    BtfMapsInLegacy,
}

struct Loaded {
    name: String,
    /// Legacy-mode kprobes (kprobe_events entries); dropped before the programs.
    probe_events: Vec<ProbeEvent>,
    /// XDP programs the loader attached itself (below 4.17); dropped before the programs.
    xdp_links: Vec<programs::xdp::XdpLink>,
    /// Programs (and their links); dropping it detaches them.
    ebpf: Option<aya::Ebpf>,
}

struct PerfSource {
    object: usize,
    map: String,
    cpu: u32,
    count: usize,
    ty: usize,
    /// Drops reported through LOST records so far.
    lost_seen: u64,
    buf: AsyncFd<PerfRing>,
}

/// PerfBuffer behind AsyncFd (which wants AsRawFd).
struct PerfRing(PerfBuffer);

impl AsRawFd for PerfRing {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

struct Socket {
    object: usize,
    program: String,
    iface: String,
    fd: OwnedFd,
    packets: u64,
}

fn map_data(map: &Map) -> &MapData {
    match map {
        Map::Array(m)
        | Map::ArrayOfMaps(m)
        | Map::BloomFilter(m)
        | Map::CgroupArray(m)
        | Map::CgroupStorage(m)
        | Map::CgrpStorage(m)
        | Map::CpuMap(m)
        | Map::DevMap(m)
        | Map::DevMapHash(m)
        | Map::HashMap(m)
        | Map::HashOfMaps(m)
        | Map::InodeStorage(m)
        | Map::LpmTrie(m)
        | Map::LruHashMap(m)
        | Map::PerCpuArray(m)
        | Map::PerCpuCgroupStorage(m)
        | Map::PerCpuHashMap(m)
        | Map::PerCpuLruHashMap(m)
        | Map::PerfEventArray(m)
        | Map::ProgramArray(m)
        | Map::Queue(m)
        | Map::ReusePortSockArray(m)
        | Map::RingBuf(m)
        | Map::SockHash(m)
        | Map::SockMap(m)
        | Map::SkStorage(m)
        | Map::Stack(m)
        | Map::StackTraceMap(m)
        | Map::Unsupported(m)
        | Map::XskMap(m) => m,
    }
}

/// A map taken out of its `aya::Ebpf`, so it outlives the programs: at exit the programs
/// are detached first, then the rings drained and the maps dumped, so counts are exact.
struct OwnedMap {
    object: usize,
    name: String,
    map: Map,
}

fn map_fd<'a>(maps: &'a [OwnedMap], object: usize, name: &str) -> Option<BorrowedFd<'a>> {
    maps.iter()
        .find(|m| m.object == object && m.name == name)
        .map(|m| map_data(&m.map).fd().as_fd())
}

fn object_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Parses, rewrites and loads one object into the kernel (maps created, programs not yet).
/// A `version` section saying "any kernel" (0xFFFFFFFE) gets `kern_version`, the running
/// kernel's LINUX_VERSION_CODE, which kprobe programs must carry before 5.0.
/// `aya_loader` is shared by all objects: creating one parses the kernel's BTF (5 MB of
/// /sys/kernel/btf/vmlinux, ~50 ms), which would otherwise be paid per object.
/// A program left out of its object because it uses global data the kernel lacks.
struct GlobalDataProgram {
    symbol: String,
    section: String,
    /// `.rodata`, `FOO in .data`...
    what: String,
}

/// The programs of `bytes` that use `.rodata`/`.data`/`.bss` (per `loader check`'s rule).
fn global_data_programs(bytes: &[u8]) -> Vec<GlobalDataProgram> {
    let Ok(analyses) = crate::check::analyze(bytes) else {
        return Vec::new();
    };
    analyses
        .into_iter()
        .filter_map(|a| {
            let what: Vec<String> = a
                .requirements
                .iter()
                .filter(|r| r.kind == crate::check::Kind::GlobalData)
                .map(|r| r.what.clone())
                .collect();
            (!what.is_empty()).then(|| GlobalDataProgram {
                symbol: a.program,
                section: a.section,
                what: what.join(", "),
            })
        })
        .collect()
}

/// Why a map could not be created, when its type is newer than the running kernel
/// (percpu_array on 4.4: EINVAL and nothing else).
fn map_type_hint(e: &aya::EbpfError, info: &elf::ObjectInfo) -> Option<String> {
    let aya::EbpfError::MapError(aya::maps::MapError::CreateError { name, .. }) = e else {
        return None;
    };
    let (major, minor, _) = kernel::running_version()?;
    map_type_hint_on(name, info, (major, minor))
}

/// [`map_type_hint`] for map `name` of `info` on kernel `(major, minor)`.
fn map_type_hint_on(name: &str, info: &elf::ObjectInfo, kernel: (u32, u32)) -> Option<String> {
    let def = &info.maps.iter().find(|m| m.name == name)?.def;
    let (type_name, since) = crate::check::types::map_type(def.map_type)?;
    let (major, minor) = kernel;
    (crate::check::Version::new(major, minor) < since)
        .then(|| format!(" ({type_name} maps need Linux {since}; this kernel is {major}.{minor})"))
}

/// One object loaded by aya: the model, aya's handle, the aya-ready bytes, and the
/// programs left out for global data.
type LoadedObject = (elf::ObjectInfo, aya::Ebpf, Vec<u8>, Vec<GlobalDataProgram>);

fn load_object(
    aya_loader: &mut aya::EbpfLoader<'_>,
    bytes: &[u8],
    mode: &Mode,
    kern_version: u32,
    no_global_data: bool,
) -> Result<LoadedObject, LoadError> {
    let info = elf::parse(bytes)?;
    if info.has_btf_maps && !mode.btf {
        return Err(LoadError::BtfMapsInLegacy);
    }
    let left_out = if no_global_data {
        global_data_programs(bytes)
    } else {
        Vec::new()
    };
    let as_data: Vec<String> = left_out.iter().map(|p| p.section.clone()).collect();
    let mut patched = elf::rewrite_for_aya_without(bytes, info.has_btf_maps, &as_data)?;
    // goebpf-style perf arrays with no sizes: what every other loader fills in.
    elf::complete_perf_arrays(&info, kernel::possible_cpus(), &mut patched);
    if let (Some(0xFFFF_FFFE), Some(off)) = (info.version, info.version_offset) {
        if let Some(dst) = off.checked_add(4).and_then(|end| patched.get_mut(off..end)) {
            dst.copy_from_slice(&kern_version.to_le_bytes());
        }
    }
    let loaded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| aya_loader.load(&patched)))
            .map_err(|_| LoadError::Panic)?;
    let ebpf = loaded.map_err(|e| {
        let s = error_chain(&e);
        let hint = if s.contains("Operation not permitted") || s.contains("EPERM") {
            " (not root? loading needs CAP_BPF, or CAP_SYS_ADMIN on kernels < 5.8)".to_owned()
        } else {
            map_type_hint(&e, &info).unwrap_or_default()
        };
        LoadError::Aya(s, hint)
    })?;
    Ok((info, ebpf, patched, left_out))
}

/// `error: cause: cause`, skipping causes the message already contains, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_str = c.to_string();
        if !s.contains(&c_str) {
            s.push_str(": ");
            s.push_str(&c_str);
        }
        cause = c.source();
    }
    s.replace('\n', " ")
}

/// Ring pages per CPU when `--pages` is not given: 8 MiB over the online CPUs, between 64
/// and 1024 pages each.
fn default_pages(cpus: usize) -> usize {
    const BUDGET: usize = 8 << 20;
    (BUDGET / sys::page_size() / cpus.max(1)).clamp(64, 1024)
}

fn online_count() -> usize {
    kernel::online_cpus().len()
}

fn pow2_pages(pages: usize) -> usize {
    pages.max(1).next_power_of_two()
}

/// Opens the perf ring of `cpu` and stores its fd at index `cpu` of the perf event array.
fn open_ring(
    map: BorrowedFd<'_>,
    cpu: u32,
    pages: usize,
    watermark: u32,
) -> Result<AsyncFd<PerfRing>, String> {
    let buf = PerfBuffer::open(cpu, pages, watermark).map_err(|e| e.to_string())?;
    let raw = buf.as_fd().as_raw_fd() as u32;
    sys::map_update(map, &cpu.to_ne_bytes(), &raw.to_ne_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: PerfRing owns the perf fd (an OwnedFd inside PerfBuffer) for its whole life
    // and always returns that same fd.
    unsafe { AsyncFd::register_with_interest(PerfRing(buf), tokio::io::Interest::READABLE) }
        .map_err(|e| e.to_string())
}

enum Wake {
    Stop(&'static str),
    Readable,
    Flush,
    Dump,
    Printk(Option<String>),
}

async fn any_readable(sources: &[PerfSource]) {
    if sources.is_empty() {
        return std::future::pending().await;
    }
    let futs = sources.iter().map(|s| Box::pin(s.buf.readable()));
    let (res, _, _) = futures::future::select_all(futs).await;
    if let Ok(mut guard) = res {
        guard.clear_ready();
    }
}

fn start_printk_reader(tracefs: &Path) -> io::Result<tokio::sync::mpsc::UnboundedReceiver<String>> {
    use std::io::BufRead;
    let file = std::fs::File::open(tracefs.join("trace_pipe"))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("trace_pipe".into())
        .spawn(move || {
            let reader = io::BufReader::new(file);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// Everything the event loop owns.
struct State<W: Write> {
    printer: Printer<W>,
    /// trace_pipe lines that were not printk lines, reported so far.
    unparsed_printk: u32,
    loaded: Vec<Loaded>,
    maps: Vec<OwnedMap>,
    sources: Vec<PerfSource>,
    types: Vec<Option<Type>>,
    counts: Vec<MapCount>,
    dumps: Vec<(usize, DumpMap)>,
    sockets: Vec<Socket>,
    scratch: Vec<u8>,
    /// Possible CPUs; None when unknown (per-CPU maps are then not read).
    ncpus: Option<usize>,
    summary: Summary,
    broken: bool,
}

impl<W: Write> State<W> {
    fn check(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            if e.kind() != io::ErrorKind::BrokenPipe {
                crate::say!("loader: writing output: {e}");
            }
            self.broken = true;
        }
    }

    /// Reports drops the kernel counted but had no chance to announce with a LOST record
    /// (called once the programs are detached and the rings drained).
    fn final_lost(&mut self) {
        let mut result = Ok(());
        for s in &mut self.sources {
            let Some(total) = s.buf.get_ref().0.lost_total() else {
                continue;
            };
            let extra = total.saturating_sub(s.lost_seen);
            if extra == 0 {
                continue;
            }
            s.lost_seen += extra;
            if let Some(c) = self.counts.get_mut(s.count) {
                c.lost += extra;
            }
            self.summary.lost += extra;
            let object = self.loaded.get(s.object).map_or("", |l| l.name.as_str());
            if result.is_ok() {
                result = self.printer.lost(object, &s.map, s.cpu, extra);
            }
        }
        self.check(result);
    }

    fn drain(&mut self) {
        let State {
            printer,
            loaded,
            sources,
            types,
            counts,
            scratch,
            summary,
            ..
        } = self;
        let mut result = Ok(());
        for s in sources.iter_mut() {
            let object = loaded.get(s.object).map_or("", |l| l.name.as_str());
            let ty = types.get(s.ty).and_then(Option::as_ref);
            let mut lost = 0u64;
            let mut events = 0u64;
            let cpu = s.cpu;
            let map = s.map.as_str();
            s.buf.get_mut().0.drain(scratch, |rec| match rec {
                Record::Sample(data) => {
                    events += 1;
                    if result.is_ok() {
                        result = printer.event(object, map, cpu, ty, data);
                    }
                }
                Record::Lost(n) => lost += n,
                Record::Other(_) => {}
            });
            if let Some(c) = counts.get_mut(s.count) {
                c.events += events;
                c.lost += lost;
            }
            summary.events += events;
            summary.lost += lost;
            s.lost_seen += lost;
            if lost > 0 && result.is_ok() {
                result = printer.lost(object, map, cpu, lost);
            }
        }
        self.check(result);
    }

    fn dump_maps(&mut self) {
        let mut result = Ok(());
        for (obj, m) in &self.dumps {
            let Some(fd) = map_fd(&self.maps, *obj, &m.name) else {
                continue;
            };
            let mut err = None;
            let r =
                self.printer
                    .map_dump(&m.object, &m.name, map_type::name(m.def.map_type), |buf| {
                        if let Err(e) = maps::dump_entries(fd, m, self.ncpus, buf) {
                            err = Some(e);
                        }
                    });
            if let Some(e) = err {
                crate::say!("loader: dumping {}/{}: {e}", m.object, m.name);
            }
            if result.is_ok() {
                result = r;
            }
        }
        for s in &mut self.sockets {
            s.packets += sys::drain_socket(s.fd.as_fd(), &mut self.scratch);
            let object = self.loaded.get(s.object).map_or("", |l| l.name.as_str());
            if result.is_ok() {
                result = self
                    .printer
                    .packets(object, &s.program, &s.iface, s.packets);
            }
        }
        self.check(result);
    }

    fn flush(&mut self) {
        let r = self.printer.flush();
        self.check(r);
    }
}

/// Runs the loader; returns the process exit code.
pub async fn run(cli: Cli, builtin: &[(&str, &[u8])]) -> u8 {
    let started = Instant::now();
    let stdout = io::stdout();
    let mut st = State {
        unparsed_printk: 0,
        printer: Printer::new(stdout.lock(), cli.json),
        loaded: Vec::new(),
        maps: Vec::new(),
        sources: Vec::new(),
        types: Vec::new(),
        counts: Vec::new(),
        dumps: Vec::new(),
        sockets: Vec::new(),
        scratch: Vec::with_capacity(64 * 1024),
        ncpus: kernel::possible_cpus(),
        summary: Summary::default(),
        broken: false,
    };
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

    // Signals are caught from here on: one arriving while programs are being attached stops
    // the loader through the same orderly detach (kprobe_events entries removed).
    let (Ok(sigint), Ok(sigterm), Ok(sighup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        crate::say!("loader: cannot install signal handlers");
        return 1;
    };
    let mut signals = Signals {
        sigint,
        sigterm,
        sighup,
    };
    if let Err(e) = sys::stop::watch() {
        crate::say!("loader: cannot install signal handlers: {e}");
        return 1;
    }
    // `_run_lock` is held until the end, after every kprobe event is removed.
    let (mode, kern_version, _run_lock) = kernel_setup(&cli, &mut st);

    // Sources: files, or the built-in probes.
    let mut inputs: Vec<(String, Result<Vec<u8>, LoadError>)> = Vec::new();
    if cli.objects.is_empty() {
        if builtin.is_empty() {
            crate::say!(
                "loader: no OBJECT given and no probes were built into this binary (build them with `cargo bpf build`, then rebuild the loader)"
            );
            return 2;
        }
        for (name, bytes) in builtin {
            inputs.push(((*name).to_owned(), Ok(bytes.to_vec())));
        }
    } else {
        for path in &cli.objects {
            let r = std::fs::read(path).map_err(|e| LoadError::Read(path.display().to_string(), e));
            inputs.push((object_name(path), r));
        }
    }

    let mut ctx = Context::new(
        cli.iface.clone(),
        cli.uprobe_target.as_ref().map(|p| p.display().to_string()),
        cli.uprobe_pid,
    );
    ctx.kprobes = mode.kprobes;
    // aya's XDP load sets expected_attach_type (4.17): below, the loader loads XDP itself.
    let below =
        |v: (u32, u32)| cli.legacy || kernel::running_version().is_some_and(|r| (r.0, r.1) < v);
    ctx.own_xdp_load = below((4, 17));
    // Global data (.rodata/.data/.bss maps) came in 5.2: programs using it are left out.
    let no_global_data = below((5, 2));
    // Only kprobes resolve symbols; listing /proc/kallsyms costs ~0.1 s of a core.
    let has_kprobes = |b: &[u8]| {
        elf::parse(b).is_ok_and(|info| {
            info.programs.iter().any(|p| {
                matches!(
                    section::parse(&p.section),
                    section::AttachSpec::KProbe { .. }
                )
            })
        })
    };
    if inputs
        .iter()
        .any(|(_, b)| b.as_deref().is_ok_and(has_kprobes))
    {
        ctx.prefetch_kallsyms();
    }
    let mut aya_loader = aya::EbpfLoader::new();
    aya_loader.allow_unsupported_maps();
    let pages = pow2_pages(cli.pages.unwrap_or_else(|| default_pages(online_count())));
    let watermark = cli
        .wakeup_bytes
        .unwrap_or_else(|| (pages * sys::page_size() / 4) as u32);
    let online = kernel::online_cpus();
    let mut wants_printk = false;
    let mut fatal = false;

    for (name, bytes) in inputs {
        let loaded = bytes.and_then(|b| {
            let (info, ebpf, patched, left_out) =
                load_object(&mut aya_loader, &b, &mode, kern_version, no_global_data)?;
            let table = TypeTable::from_object(&b).unwrap_or_else(|e| {
                crate::say!("loader: {name}: no usable debug info ({e}); records print as hex");
                TypeTable::default()
            });
            Ok((info, ebpf, table, patched, left_out))
        });
        let (info, mut ebpf, table, patched, left_out) = match loaded {
            Ok(v) => v,
            Err(e) => {
                st.summary.errors += 1;
                let r = st.printer.error(&name, None, None, &e.to_string(), None);
                st.check(r);
                fatal = true;
                continue;
            }
        };
        let obj_idx = st.loaded.len();
        let mut probe_events = Vec::new();
        let mut xdp_links = Vec::new();
        wants_printk |= info.uses_printk;
        ctx.raw_object = ctx.own_xdp_load.then(|| programs::RawObject {
            bytes: patched,
            map_fds: ebpf
                .maps()
                .map(|(n, m)| (n.to_owned(), map_data(m).fd().as_fd().as_raw_fd()))
                .collect(),
        });

        // Programs.
        let mut names: Vec<String> = ebpf.programs().map(|(n, _)| n.to_owned()).collect();
        names.sort_by_key(|n| {
            info.programs
                .iter()
                .position(|p| &p.symbol == n)
                .unwrap_or(usize::MAX)
        });
        for pname in names {
            let section_name = info
                .program_by_symbol(&pname)
                .map(|p| p.section.clone())
                .unwrap_or_default();
            if !cli.wants(&pname, &section_name) {
                continue;
            }
            let spec = section::parse(&section_name);
            let Some(program) = ebpf.program_mut(&pname) else {
                continue;
            };
            if cli.verify {
                let r = match programs::load(program, &pname, &ctx) {
                    Ok(()) => st.printer.loaded(&name, &pname, &section_name),
                    Err(e) => {
                        st.summary.errors += 1;
                        fatal = true;
                        st.printer.error(
                            &name,
                            Some(&pname),
                            Some(&section_name),
                            &e.to_string(),
                            e.verifier_log(),
                        )
                    }
                };
                st.check(r);
                continue;
            }
            match programs::attach(program, &pname, &spec, &mut ctx) {
                Ok(att) => {
                    st.summary.attached += 1;
                    probe_events.extend(att.probe_event);
                    xdp_links.extend(att.xdp_link);
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
                    let r =
                        st.printer
                            .attached(&name, &pname, &section_name, spec.kind(), &att.target);
                    st.check(r);
                }
                Err(e) => {
                    st.summary.errors += 1;
                    let r = st.printer.error(
                        &name,
                        Some(&pname),
                        Some(&section_name),
                        &e.to_string(),
                        e.verifier_log(),
                    );
                    st.check(r);
                    if cli.strict {
                        fatal = true;
                    }
                }
            }
        }

        // Programs in sections no loader path handles (aya never saw them): one error each,
        // so nothing in the object goes unmentioned.
        for p in &info.programs {
            if ebpf.program(&p.symbol).is_some() || !cli.wants(&p.symbol, &p.section) {
                continue;
            }
            st.summary.errors += 1;
            if cli.verify || cli.strict {
                fatal = true;
            }
            let kind = section::parse(&p.section).kind().to_owned();
            let msg = match left_out.iter().find(|g| g.symbol == p.symbol) {
                Some(g) => format!(
                    "uses global data ({}), which needs 5.2: not loaded on this kernel (the \
                     object's other programs are)",
                    g.what
                ),
                None => format!(
                    "unsupported program section kind '{kind}': not loaded (the loader runs \
                     kprobe, kretprobe, uprobe, uretprobe, tracepoint, raw_tracepoint, xdp, \
                     socketfilter and tc_action programs)"
                ),
            };
            let r = st
                .printer
                .error(&name, Some(&p.symbol), Some(&p.section), &msg, None);
            st.check(r);
        }

        // Maps: perf arrays get per-CPU rings, hash/array maps get dumped.
        let map_names: Vec<String> = ebpf.maps().map(|(n, _)| n.to_owned()).collect();
        for n in map_names {
            if let Some(map) = ebpf.take_map(&n) {
                st.maps.push(OwnedMap {
                    object: obj_idx,
                    name: n,
                    map,
                });
            }
        }
        for m in &info.maps {
            let override_ty =
                event_types
                    .iter()
                    .find(|(map, _)| map == &m.name)
                    .and_then(|(_, ty)| {
                        let t = table.named_type(ty);
                        if t.is_none() {
                            crate::say!(
                            "loader: {name}: --event-type {}={ty}: no such type in the debug info",
                            m.name
                        );
                        }
                        t
                    });
            if m.def.map_type == map_type::PERF_EVENT_ARRAY {
                let ty = override_ty.or_else(|| table.perf_record_type(&m.name));
                let Some(fd) = map_fd(&st.maps, obj_idx, &m.name) else {
                    continue;
                };
                let rings: Vec<_> = online
                    .iter()
                    .map(|&cpu| (cpu, open_ring(fd, cpu, pages, watermark)))
                    .collect();
                let ty_idx = st.types.len();
                st.types.push(ty);
                let count_idx = st.counts.len();
                st.counts.push(MapCount {
                    object: name.clone(),
                    map: m.name.clone(),
                    ..Default::default()
                });
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
                            st.summary.errors += 1;
                            let r = st.printer.error(
                                &name,
                                None,
                                Some(&m.section),
                                &format!("perf buffer for map {} on CPU {cpu}: {e}", m.name),
                                None,
                            );
                            st.check(r);
                        }
                    }
                }
            } else if map_type::dumpable(m.def.map_type) {
                let (k, v) = table.map_kv_types(&m.name);
                st.dumps.push((
                    obj_idx,
                    DumpMap {
                        object: name.clone(),
                        name: m.name.clone(),
                        def: m.def,
                        key: k,
                        value: override_ty.or(v),
                    },
                ));
            }
        }
        ctx.raw_object = None;
        st.loaded.push(Loaded {
            name,
            probe_events,
            xdp_links,
            ebpf: Some(ebpf),
        });
    }
    st.flush();
    if cli.verify {
        // Everything loaded was only verified; dropping the objects unloads it.
        crate::say!(
            "loader: verify: {} program(s) rejected or unloadable",
            st.summary.errors
        );
        return u8::from(fatal || st.summary.errors > 0);
    }

    let mut code = 0u8;
    if fatal && (cli.strict || st.summary.attached == 0) {
        code = 1;
    } else if st.summary.attached == 0 {
        crate::say!("loader: no program attached; nothing to do");
        code = 1;
    } else {
        event_loop(&cli, &mut st, &mut ctx, wants_printk, &mut signals).await;
    }
    // Detach every program first, so nothing is produced after the final drain and dump:
    // lost + delivered then equals what the programs sent.
    for l in &mut st.loaded {
        l.probe_events.clear();
        l.xdp_links.clear();
        l.ebpf = None;
    }
    remove_own_probe_events();
    st.drain();
    st.final_lost();
    if !st.broken {
        st.dump_maps();
    }
    st.summary.duration_ms = started.elapsed().as_millis() as u64;
    st.summary.maps = st.counts.clone();
    let to_stdout = !st.broken;
    let r = st.printer.summary(&st.summary, to_stdout);
    st.check(r);
    st.flush();
    drop(st);
    code
}

/// Reads the kernel's version and features, decides the legacy paths, raises
/// RLIMIT_MEMLOCK where maps are charged to it, removes kprobe events that killed loaders
/// left behind, takes this loader's run lock when it will create kprobe events itself, and
/// reports all of it in one `kernel` line.
fn kernel_setup<W: Write>(cli: &Cli, st: &mut State<W>) -> (Mode, u32, Option<RunLock>) {
    let version = kernel::running_version();
    let facts = legacy::Facts {
        version,
        kprobe_pmu: kernel::has_kprobe_pmu(),
    };
    let mode = legacy::decide(facts, cli.legacy);
    let memlock = if mode.raise_memlock {
        match sys::raise_memlock() {
            Ok(sys::Memlock::Unlimited) => "raised".to_owned(),
            Ok(sys::Memlock::HardLimit(bytes)) => {
                crate::say!(
                    "loader: warning: RLIMIT_MEMLOCK raised only to its hard limit, {bytes} bytes (no CAP_SYS_RESOURCE); large maps may fail on this kernel"
                );
                format!("raised to hard limit {bytes}")
            }
            Err(e) => {
                crate::say!("loader: warning: {e}; map creation may fail on this kernel");
                e.to_string()
            }
        }
    } else {
        "unchanged".to_owned()
    };
    let locks = Path::new(run_lock::DIR);
    let run_lock = match mode.kprobes {
        KprobeMode::Events => match run_lock::claim(locks) {
            Ok(l) => Some(l),
            Err(e) => {
                crate::say!(
                    "loader: warning: cannot take the run lock in {}: {e} (other loaders keep this one's kprobe events while its pid runs)",
                    locks.display()
                );
                None
            }
        },
        KprobeMode::Pmu => None,
    };
    let mut leftovers = 0;
    if let Ok(tracefs) = kernel::tracefs() {
        for ev in probe_event::remove_leftovers(&tracefs, locks) {
            crate::say!(
                "loader: removed kprobe event {} left by process {} (that loader is gone)",
                ev.id,
                ev.pid
            );
            leftovers += 1;
        }
    }
    // After the events: a free lock file is what tells a reused pid's events are stale.
    run_lock::remove_stale(locks);
    let v = version.unwrap_or((0, 0, 0));
    // The vDSO's note is the kernel's own LINUX_VERSION_CODE; the stable series' rule
    // applied to the version strings is the fallback where there is no vDSO.
    let code = kernel::running_version_code().unwrap_or_else(|| kernel::version_code(v));
    let release = kernel::release();
    let line = KernelLine {
        release: &release,
        version: &format!("{}.{}.{}", v.0, v.1, v.2),
        version_code: code,
        legacy: mode.legacy,
        kprobes: &mode.kprobes.to_string(),
        btf: mode.btf,
        memlock: &memlock,
        leftovers,
        reason: &mode.reason,
    };
    let r = st.printer.kernel(&line);
    st.check(r);
    (mode, code, run_lock)
}

/// Deletes what is left of this process's kprobe/uprobe events once every program is
/// detached: aya's tracefs uprobes (< 4.17) are not always removed by aya itself.
fn remove_own_probe_events() {
    // Only where tracefs is mounted already: nothing can have been created otherwise.
    let Some(tracefs) = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("events").is_dir())
    else {
        return;
    };
    for ev in probe_event::remove_leftovers(tracefs, Path::new(run_lock::DIR)) {
        crate::say!("loader: removed probe event {} at exit", ev.id);
    }
}

/// The signals that stop the loader.
struct Signals {
    sigint: tokio::signal::unix::Signal,
    sigterm: tokio::signal::unix::Signal,
    sighup: tokio::signal::unix::Signal,
}

async fn event_loop<W: Write>(
    cli: &Cli,
    st: &mut State<W>,
    ctx: &mut Context,
    printk: bool,
    signals: &mut Signals,
) {
    let Signals {
        sigint,
        sigterm,
        sighup,
    } = signals;
    let mut printk_rx = None;
    if printk && !cli.no_printk {
        match ctx.tracefs() {
            Ok(t) => match start_printk_reader(&t) {
                Ok(rx) => printk_rx = Some(rx),
                Err(e) => crate::say!("loader: cannot read trace_pipe: {e}"),
            },
            Err(e) => crate::say!("loader: cannot read printk output: {e}"),
        }
    }
    let mut flush = tokio::time::interval(Duration::from_millis(cli.flush_ms.max(1)));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let dump_every = cli
        .interval
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64);
    let mut dump = tokio::time::interval(dump_every.unwrap_or(Duration::from_secs(3600)));
    dump.tick().await; // the first tick is immediate
    let deadline = cli
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut ticks = 0u64;
    loop {
        let wake = tokio::select! {
            _ = sigint.recv() => Wake::Stop("SIGINT"),
            _ = sigterm.recv() => Wake::Stop("SIGTERM"),
            _ = sighup.recv() => Wake::Stop("SIGHUP"),
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => Wake::Stop("duration elapsed"),
            _ = any_readable(&st.sources) => Wake::Readable,
            _ = flush.tick() => Wake::Flush,
            _ = dump.tick(), if dump_every.is_some() => Wake::Dump,
            line = async {
                match printk_rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Wake::Printk(line),
        };
        match wake {
            Wake::Stop(why) => {
                crate::say!("loader: stopping: {why}");
                break;
            }
            Wake::Readable => st.drain(),
            Wake::Flush => {
                if let Some(why) = sys::stop::received() {
                    crate::say!("loader: stopping: {why}");
                    break;
                }
                st.drain();
                st.flush();
                ticks += 1;
                if ticks.is_multiple_of(20) && sys::stdout_closed() {
                    st.broken = true;
                }
            }
            Wake::Dump => st.dump_maps(),
            Wake::Printk(None) => printk_rx = None,
            Wake::Printk(Some(line)) => print_printk(st, &line),
        }
        if st.broken {
            crate::say!("loader: stopping: stdout closed");
            break;
        }
    }
    if let Some(rx) = printk_rx.as_mut() {
        if !st.broken {
            drain_printk(st, rx).await;
        }
    }
}

fn print_printk<W: Write>(st: &mut State<W>, line: &str) {
    if let Some(p) = kernel::parse_trace_pipe_line(line) {
        let r = st.printer.printk(p.pid, p.comm, p.cpu, p.msg);
        st.check(r);
    } else if !line.trim().is_empty() && st.unparsed_printk < 3 {
        // Another tracer's line, or a kernel format not known yet: say so, a few times.
        st.unparsed_printk += 1;
        crate::say!("loader: trace_pipe: not a bpf_trace_printk line: {line}");
    }
}

/// At stop, the printk lines the kernel wrote before it are still on their way from
/// trace_pipe (a workload ended by Ctrl-C right after its last exec lost them all on a
/// 4.4 guest): read until the reader has been quiet for 100 ms, 1 s at most.
async fn drain_printk<W: Write>(
    st: &mut State<W>,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Some(line)) => print_printk(st, &line),
            Ok(None) | Err(_) => break,
        }
    }
}

#[cfg(test)]
mod map_hint_tests {
    use super::*;

    #[test]
    fn a_map_type_newer_than_the_kernel_is_named() {
        // The built-in execsnoop's per-CPU scratch buffer, as refused by Ubuntu's 4.4.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/bpf/programs/execsnoop/execsnoop.elf"
        );
        let Ok(bytes) = std::fs::read(path) else {
            panic!("{path} missing: run `make probes`");
        };
        let info = elf::parse(&bytes).unwrap();
        let hint = map_type_hint_on("BUF", &info, (4, 4)).unwrap();
        assert!(hint.contains("percpu_array maps need Linux 4.6"), "{hint}");
        assert!(hint.contains("this kernel is 4.4"), "{hint}");
        assert_eq!(map_type_hint_on("BUF", &info, (4, 15)), None);
        assert_eq!(map_type_hint_on("NOPE", &info, (4, 4)), None);
    }
}
