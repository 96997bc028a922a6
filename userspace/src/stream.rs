//! The event loop: perf rings drained into messages, map dumps, printk lines, socket
//! counters, until a signal, `--duration` or a closed stdout stops it. Owns everything
//! attached ([`State`]); dropping it detaches.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use aya::maps::{Map, MapData};
use tokio::io::unix::AsyncFd;

use crate::attach::Loaded;
use crate::cli::Cli;
use crate::dwarf::Type;
use crate::elf::map_type;
use crate::filter::{Filter, FilterPlan};
use crate::folded::{Folder, MapPlan, Who};
use crate::kernel;
use crate::maps::{self, DumpMap};
use crate::message::{MapCount, Message, Record as RecordMsg, Summary};
use crate::programs::Context;
use crate::sink::Sink;
use crate::stacks::{self, StackField, Symbols};
use crate::sys::{self, perf::PerfBuffer, perf::Record};

/// One perf ring: one CPU of one perf event array.
pub(crate) struct PerfSource {
    pub(crate) object: usize,
    pub(crate) map: String,
    pub(crate) cpu: u32,
    pub(crate) count: usize,
    pub(crate) ty: usize,
    /// Drops reported through LOST records so far.
    pub(crate) lost_seen: u64,
    pub(crate) buf: AsyncFd<PerfRing>,
}

/// A BPF ring buffer map (one for all CPUs), read through aya's `RingBuf`.
pub(crate) struct RingSource {
    pub(crate) object: usize,
    pub(crate) map: String,
    pub(crate) count: usize,
    pub(crate) ty: usize,
    pub(crate) buf: AsyncFd<aya::maps::RingBuf<MapData>>,
}

/// Records one drain takes from a ring buffer before the other sources get their turn.
const RING_BUFFER_BATCH: usize = 64 * 1024;

/// PerfBuffer behind AsyncFd (which wants AsRawFd).
pub(crate) struct PerfRing(PerfBuffer);

impl AsRawFd for PerfRing {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A socket filter's packet socket.
pub(crate) struct Socket {
    pub(crate) object: usize,
    pub(crate) program: String,
    pub(crate) iface: String,
    pub(crate) fd: OwnedFd,
    pub(crate) packets: u64,
}

pub(crate) fn map_data(map: &Map) -> &MapData {
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
pub(crate) struct OwnedMap {
    pub(crate) object: usize,
    pub(crate) name: String,
    pub(crate) map: Map,
}

pub(crate) fn map_fd<'a>(
    maps: &'a [OwnedMap],
    object: usize,
    name: &str,
) -> Option<BorrowedFd<'a>> {
    maps.iter()
        .find(|m| m.object == object && m.name == name)
        .map(|m| map_data(&m.map).fd().as_fd())
}

/// Ring pages per CPU when `--pages` is not given: 8 MiB over the online CPUs, between 64
/// and 1024 pages each.
pub(crate) fn default_pages(cpus: usize) -> usize {
    const BUDGET: usize = 8 << 20;
    (BUDGET / sys::page_size() / cpus.max(1)).clamp(64, 1024)
}

pub(crate) fn online_count() -> usize {
    kernel::online_cpus().len()
}

pub(crate) fn pow2_pages(pages: usize) -> usize {
    pages.max(1).next_power_of_two()
}

/// Opens the perf ring of `cpu` and stores its fd at index `cpu` of the perf event array.
pub(crate) fn open_ring(
    map: BorrowedFd<'_>,
    cpu: u32,
    pages: usize,
    watermark: u32,
) -> Result<AsyncFd<PerfRing>, String> {
    let buf = PerfBuffer::open(cpu, pages, watermark).map_err(|e| crate::error_chain(&e))?;
    let raw = buf.as_fd().as_raw_fd() as u32;
    // SAFETY: a perf event array's keys and values are 4 bytes: the kernel creates it with
    // no other sizes (the loader completes definitions that leave them out).
    let array = unsafe { sys::MapRef::new(map, 4, 4) };
    sys::map_update(&array, &cpu.to_ne_bytes(), &raw.to_ne_bytes())
        .map_err(|e| crate::error_chain(&e))?;
    // SAFETY: PerfRing owns the perf fd (an OwnedFd inside PerfBuffer) for its whole life
    // and always returns that same fd.
    unsafe { AsyncFd::register_with_interest(PerfRing(buf), tokio::io::Interest::READABLE) }
        .map_err(|e| e.to_string())
}

enum Wake {
    Scrape(tokio::net::TcpStream),
    Stop(&'static str),
    Readable,
    Flush,
    Dump,
    Printk(Option<String>),
}

async fn any_readable(sources: &[PerfSource], rings: &[RingSource]) {
    if sources.is_empty() && rings.is_empty() {
        return std::future::pending().await;
    }
    let perf = sources.iter().map(|s| {
        Box::pin(async move {
            if let Ok(mut guard) = s.buf.readable().await {
                guard.clear_ready();
            }
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>
    });
    let ring = rings.iter().map(|r| {
        Box::pin(async move {
            if let Ok(mut guard) = r.buf.readable().await {
                guard.clear_ready();
            }
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>
    });
    futures::future::select_all(perf.chain(ring)).await;
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
pub(crate) struct State {
    pub(crate) sink: Box<dyn Sink>,
    /// trace_pipe lines that were not printk lines, reported so far.
    pub(crate) unparsed_printk: u32,
    /// The attached programs calling bpf_trace_printk.
    pub(crate) printk_users: Vec<crate::attach::PrintkUser>,
    /// `--no-foreign-printk`
    pub(crate) no_foreign_printk: bool,
    pub(crate) loaded: Vec<Loaded>,
    pub(crate) maps: Vec<OwnedMap>,
    pub(crate) sources: Vec<PerfSource>,
    /// BPF ring buffers.
    pub(crate) ring_buffers: Vec<RingSource>,
    pub(crate) types: Vec<Option<Type>>,
    /// The filter fields of each of `types`.
    pub(crate) filter_plans: Vec<FilterPlan>,
    /// The stack id fields of each of `types`, with their maps' value sizes.
    pub(crate) stack_plans: Vec<Vec<(StackField, usize)>>,
    /// Symbolizer, made at the first stack.
    pub(crate) symbols: Option<Symbols>,
    /// The process of the last record naming each stack id, by `(index in maps, id)`: a
    /// STACK_TRACE map's dump symbolizes user stacks through it.
    pub(crate) stack_pids: StackPids,
    /// `--folded`: the counts, and the fold plan of each of `dumps` (None: dumped as usual)
    pub(crate) folded: Option<Folder>,
    pub(crate) fold_plans: Vec<Option<MapPlan>>,
    /// `--pid`, `--comm`, `--uid`, `--failed`
    pub(crate) filter: Filter,
    pub(crate) counts: Vec<MapCount>,
    pub(crate) dumps: Vec<(usize, DumpMap)>,
    pub(crate) sockets: Vec<Socket>,
    pub(crate) scratch: Vec<u8>,
    /// Possible CPUs; None when unknown (per-CPU maps are then not read).
    pub(crate) ncpus: Option<usize>,
    pub(crate) summary: Summary,
    pub(crate) broken: bool,
}

impl State {
    /// Nothing attached yet; messages go to `sink`.
    pub(crate) fn new(sink: Box<dyn Sink>) -> Self {
        State {
            sink,
            unparsed_printk: 0,
            printk_users: Vec::new(),
            no_foreign_printk: false,
            loaded: Vec::new(),
            maps: Vec::new(),
            sources: Vec::new(),
            ring_buffers: Vec::new(),
            types: Vec::new(),
            filter_plans: Vec::new(),
            stack_plans: Vec::new(),
            symbols: None,
            stack_pids: StackPids::default(),
            folded: None,
            fold_plans: Vec::new(),
            filter: Filter::default(),
            counts: Vec::new(),
            dumps: Vec::new(),
            sockets: Vec::new(),
            scratch: Vec::with_capacity(64 * 1024),
            ncpus: kernel::possible_cpus(),
            summary: Summary::default(),
            broken: false,
        }
    }

    /// Detaches every program first, so nothing is produced after the final drain and
    /// dump (lost + delivered then equals what the programs sent), then drains the rings,
    /// reports the drops not announced yet, dumps the maps, and prints the summary.
    pub(crate) fn teardown(mut self, started: std::time::Instant) {
        for l in &mut self.loaded {
            l.detach();
        }
        crate::setup::remove_own_probe_events();
        self.drain();
        self.drain_ring_buffers();
        self.final_lost();
        if !self.broken {
            self.dump_maps();
        }
        self.summary.duration_ms = started.elapsed().as_millis() as u64;
        self.summary.maps = self.counts.clone();
        if self.broken {
            self.sink.close_out();
        }
        let summary = std::mem::take(&mut self.summary);
        let r = self.sink.message(&Message::Summary(&summary));
        self.check(r);
        self.flush();
    }

    pub(crate) fn check(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            if e.kind() != io::ErrorKind::BrokenPipe {
                crate::say!("loader: writing output: {e}");
            }
            self.broken = true;
        }
    }

    /// Reports drops the kernel counted but had no chance to announce with a LOST record
    /// (called once the programs are detached and the rings drained).
    pub(crate) fn final_lost(&mut self) {
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
                result = self.sink.message(&Message::Lost {
                    object,
                    map: &s.map,
                    cpu: s.cpu,
                    count: extra,
                });
            }
        }
        self.check(result);
    }

    pub(crate) fn drain(&mut self) {
        let State {
            sink,
            loaded,
            maps,
            sources,
            types,
            filter_plans,
            stack_plans,
            symbols,
            stack_pids,
            folded,
            filter,
            counts,
            scratch,
            summary,
            ..
        } = self;
        let filtering = !filter.is_empty();
        let mut result = Ok(());
        for s in sources.iter_mut() {
            let object = loaded.get(s.object).map_or("", |l| l.name.as_str());
            let ty = types.get(s.ty).and_then(Option::as_ref);
            let plan = filter_plans.get(s.ty);
            let stack_plan = stack_plans.get(s.ty).filter(|p| !p.is_empty());
            // Who names the process of folded stacks only.
            let who = match (stack_plan, folded.is_some()) {
                (Some(_), true) => Who::new(ty),
                _ => Who::default(),
            };
            let untyped = ty.is_none_or(|t| t.size() == 0);
            let mut lost = 0u64;
            let mut events = 0u64;
            let mut filtered = 0u64;
            let cpu = s.cpu;
            let map = s.map.as_str();
            let path = RecordPath {
                obj: s.object,
                object,
                map,
                cpu,
                ty,
                plan,
                stack_plan,
                who: &who,
                filtering,
            };
            // No filter and no stack ids (the usual case): each record straight to the sink.
            let plain = !filtering && stack_plan.is_none();
            s.buf.get_mut().0.drain(scratch, |rec| match rec {
                Record::Sample(data) if plain => {
                    if result.is_ok() {
                        result = sink.record(&RecordMsg {
                            object,
                            map,
                            cpu,
                            ty,
                            data,
                            stacks: &[],
                        });
                        // Delivered means written (to the output buffer).
                        events += u64::from(result.is_ok());
                    }
                }
                Record::Sample(data) => {
                    let mut cx = RecordCtx {
                        sink: &mut *sink,
                        maps,
                        filter,
                        folded: &mut *folded,
                        stack_pids: &mut *stack_pids,
                        symbols: &mut *symbols,
                    };
                    path.take(&mut cx, data, &mut events, &mut filtered, &mut result);
                }
                Record::Lost(n) => lost += n,
                Record::Other(_) => {}
            });
            if let Some(c) = counts.get_mut(s.count) {
                c.events += events;
                c.lost += lost;
                if untyped {
                    c.hex += events;
                }
            }
            summary.events += events;
            summary.filtered += filtered;
            summary.lost += lost;
            s.lost_seen += lost;
            if lost > 0 && result.is_ok() {
                result = sink.message(&Message::Lost {
                    object,
                    map,
                    cpu,
                    count: lost,
                });
            }
        }
        self.check(result);
    }

    /// Hands what the ring buffers hold to the sink, like [`State::drain`] for perf rings.
    pub(crate) fn drain_ring_buffers(&mut self) {
        let State {
            sink,
            loaded,
            maps,
            ring_buffers,
            types,
            filter_plans,
            stack_plans,
            symbols,
            stack_pids,
            folded,
            filter,
            counts,
            summary,
            ..
        } = self;
        let filtering = !filter.is_empty();
        let mut result = Ok(());
        for r in ring_buffers.iter_mut() {
            let object = loaded.get(r.object).map_or("", |l| l.name.as_str());
            let ty = types.get(r.ty).and_then(Option::as_ref);
            let plan = filter_plans.get(r.ty);
            let stack_plan = stack_plans.get(r.ty).filter(|p| !p.is_empty());
            // Who names the process of folded stacks only.
            let who = match (stack_plan, folded.is_some()) {
                (Some(_), true) => Who::new(ty),
                _ => Who::default(),
            };
            let (mut events, mut filtered) = (0u64, 0u64);
            let path = RecordPath {
                obj: r.object,
                object,
                map: &r.map,
                cpu: 0,
                ty,
                plan,
                stack_plan,
                who: &who,
                filtering,
            };
            let rb = r.buf.get_mut();
            let plain = !filtering && stack_plan.is_none();
            for _ in 0..RING_BUFFER_BATCH {
                let Some(item) = rb.next() else { break };
                let data: &[u8] = &item;
                if plain {
                    if result.is_ok() {
                        result = sink.record(&RecordMsg {
                            object,
                            map: &r.map,
                            cpu: 0,
                            ty,
                            data,
                            stacks: &[],
                        });
                        events += u64::from(result.is_ok());
                    }
                } else {
                    let mut cx = RecordCtx {
                        sink: &mut *sink,
                        maps,
                        filter,
                        folded: &mut *folded,
                        stack_pids: &mut *stack_pids,
                        symbols: &mut *symbols,
                    };
                    path.take(&mut cx, data, &mut events, &mut filtered, &mut result);
                }
            }
            if let Some(c) = counts.get_mut(r.count) {
                c.events += events;
            }
            summary.events += events;
            summary.filtered += filtered;
        }
        self.check(result);
    }

    /// The Prometheus exposition of the loader's counters and its dumped maps, now.
    pub(crate) fn metrics_text(&mut self, per_cpu: bool, max_series: usize) -> String {
        let counters = crate::metrics::Counters {
            maps: self
                .counts
                .iter()
                .map(|c| (c.object.clone(), c.map.clone(), c.events, c.lost, c.hex))
                .collect(),
            attached: self.summary.attached,
            errors: self.summary.errors,
        };
        let mut dumped: Vec<(String, String, Vec<serde_json::Value>)> = Vec::new();
        for (obj, m) in &self.dumps {
            if m.def.map_type == map_type::STACK_TRACE {
                continue; // addresses, not numbers
            }
            let Some(fd) = map_fd(&self.maps, *obj, &m.name) else {
                continue;
            };
            let mut buf = b"[".to_vec();
            if maps::dump_entries(fd, m, self.ncpus, &mut buf).is_err() {
                continue;
            }
            buf.push(b']');
            let entries = serde_json::from_slice(&buf).unwrap_or_default();
            dumped.push((m.object.clone(), m.name.clone(), entries));
        }
        let series: Vec<crate::metrics::MapSeries<'_>> = dumped
            .iter()
            .map(|(object, map, entries)| crate::metrics::MapSeries {
                object,
                map,
                entries,
            })
            .collect();
        crate::metrics::render(&counters, &series, per_cpu, max_series)
    }

    /// `--folded`: the fold plan of each dumped map (hash maps of stack-id keys and
    /// number values are folded, not dumped), `named` the `--stack` pairs.
    pub(crate) fn plan_folds(&mut self, named: &[(String, String)]) {
        self.folded = Some(Folder::default());
        self.fold_plans = self
            .dumps
            .iter()
            .map(|(obj, m)| {
                let stack_maps: Vec<(String, usize)> = self
                    .maps
                    .iter()
                    .filter(|o| o.object == *obj && matches!(o.map, Map::StackTraceMap(_)))
                    .filter_map(|o| {
                        let info = map_data(&o.map).info().ok()?;
                        Some((o.name.clone(), info.value_size() as usize))
                    })
                    .collect();
                crate::folded::map_plan(
                    &m.def,
                    m.key.as_ref(),
                    m.value.as_ref(),
                    &stack_maps,
                    named,
                )
            })
            .collect();
    }

    /// A STACK_TRACE map's dump: symbolized stacks.
    fn dump_stack_map(&mut self, obj: usize, m: &DumpMap) -> io::Result<()> {
        let Some(fd) = map_fd(&self.maps, obj, &m.name) else {
            return Ok(());
        };
        let symbols = self.symbols.get_or_insert_with(Symbols::default);
        let index = map_index(&self.maps, obj, &m.name);
        let pids = &self.stack_pids;
        let pid_of = |id: u32| index.and_then(|i| pids.0.get(&(i, id)).copied());
        let mut err = None;
        let mut entries = |buf: &mut Vec<u8>| {
            let vs = m.def.value_size as usize;
            if let Err(e) = stacks::dump_stack_map(fd, vs, symbols, &pid_of, buf) {
                err = Some(e);
            }
        };
        let r = self
            .sink
            .map_dump(&m.object, &m.name, "stack_trace", &mut entries);
        if let Some(e) = err {
            crate::say!(
                "loader: dumping {}/{}: {}",
                m.object,
                m.name,
                crate::error_chain(&e)
            );
        }
        r
    }

    /// `--folded`: map `m` (the `i`th of `dumps`) counted into the folded lines, when it
    /// has a fold plan; false when it is dumped as usual.
    fn fold_map(&mut self, i: usize, obj: usize, m: &DumpMap) -> bool {
        let (Some(folder), Some(Some(plan))) = (self.folded.as_mut(), self.fold_plans.get(i))
        else {
            return false;
        };
        let Some(fd) = map_fd(&self.maps, obj, &m.name) else {
            return true;
        };
        let maps = &self.maps;
        let symbols = self.symbols.get_or_insert_with(Symbols::default);
        let mut read = |map: &str, id, size| stacks::read_stack(map_fd(maps, obj, map)?, id, size);
        let r = folder.add_map(
            obj, &m.object, &m.name, fd, &m.def, self.ncpus, plan, &mut read, symbols,
        );
        if let Err(e) = r {
            crate::say!(
                "loader: --folded: reading {}/{}: {}",
                m.object,
                m.name,
                crate::error_chain(&e)
            );
        }
        true
    }

    /// `--folded`: the lines counted since the last print.
    fn print_folded(&mut self) -> io::Result<()> {
        let Some(folder) = self.folded.as_mut() else {
            return Ok(());
        };
        for ((object, map, stack), count) in folder.take() {
            self.sink.message(&Message::Folded {
                object: &object,
                map: &map,
                stack: &stack,
                count,
            })?;
        }
        Ok(())
    }

    pub(crate) fn dump_maps(&mut self) {
        let mut result = Ok(());
        let dumps = std::mem::take(&mut self.dumps);
        for (i, (obj, m)) in dumps.iter().enumerate() {
            if m.def.map_type == map_type::STACK_TRACE {
                let r = self.dump_stack_map(*obj, m);
                if result.is_ok() {
                    result = r;
                }
                continue;
            }
            if self.fold_map(i, *obj, m) {
                continue;
            }
            let Some(fd) = map_fd(&self.maps, *obj, &m.name) else {
                continue;
            };
            let mut err = None;
            let ncpus = self.ncpus;
            let mut captured = Vec::new();
            let mut entries = |buf: &mut Vec<u8>| {
                let start = buf.len();
                if let Err(e) = maps::dump_entries(fd, m, ncpus, buf) {
                    err = Some(e);
                }
                if m.hist.is_some() {
                    captured.extend_from_slice(&buf[start..]);
                }
            };
            let map_type = map_type::name(m.def.map_type);
            let r = self
                .sink
                .map_dump(&m.object, &m.name, map_type, &mut entries);
            if let Some(e) = err {
                crate::say!(
                    "loader: dumping {}/{}: {}",
                    m.object,
                    m.name,
                    crate::error_chain(&e)
                );
            }
            if result.is_ok() {
                result = r;
            }
            if let (Some(slot), true) = (&m.hist, result.is_ok()) {
                let mut json = b"[".to_vec();
                json.extend_from_slice(&captured);
                json.push(b']');
                let list: Vec<serde_json::Value> =
                    serde_json::from_slice(&json).unwrap_or_default();
                for (key, buckets) in crate::hist::histograms(&list, slot) {
                    let r = self.sink.message(&Message::Hist {
                        object: &m.object,
                        map: &m.name,
                        key: key.as_ref(),
                        buckets: &buckets,
                    });
                    if result.is_ok() {
                        result = r;
                    }
                }
            }
        }
        self.dumps = dumps;
        let r = self.print_folded();
        if result.is_ok() {
            result = r;
        }
        for s in &mut self.sockets {
            s.packets += sys::drain_socket(s.fd.as_fd(), &mut self.scratch);
            let object = self.loaded.get(s.object).map_or("", |l| l.name.as_str());
            if result.is_ok() {
                result = self.sink.message(&Message::Packets {
                    object,
                    program: &s.program,
                    iface: &s.iface,
                    count: s.packets,
                });
            }
        }
        self.check(result);
    }

    pub(crate) fn flush(&mut self) {
        let r = self.sink.flush();
        self.check(r);
    }
}

/// The signals that stop the loader.
pub(crate) struct Signals {
    sigint: tokio::signal::unix::Signal,
    sigterm: tokio::signal::unix::Signal,
    sighup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Catches SIGINT, SIGTERM and SIGHUP from now on (one arriving while programs are
    /// being attached stops the loader through the same orderly detach), and the
    /// signals [`sys::stop`] watches.
    pub(crate) fn install(hup_reopens: bool) -> Result<Signals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(sigint), Ok(sigterm), Ok(sighup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return Err("cannot install signal handlers".to_owned());
        };
        sys::stop::watch(hup_reopens)
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
        Ok(Signals {
            sigint,
            sigterm,
            sighup,
        })
    }
}

pub(crate) async fn event_loop(
    cli: &Cli,
    st: &mut State,
    ctx: &mut Context,
    printk: Vec<crate::attach::PrintkUser>,
    signals: &mut Signals,
    metrics: Option<tokio::net::TcpListener>,
) -> bool {
    let Signals {
        sigint,
        sigterm,
        sighup,
    } = signals;
    let mut printk_rx = None;
    let mut printk_ok = true;
    if !printk.is_empty() && !cli.no_printk {
        let reader = ctx
            .tracefs()
            .map_err(|e| crate::error_chain(&e))
            .and_then(|t| start_printk_reader(&t).map_err(|e| trace_pipe_error(&e)));
        match reader {
            Ok(rx) => printk_rx = Some(rx),
            Err(e) => {
                printk_ok = false;
                printk_error(st, &printk, &e);
                if cli.strict {
                    return false;
                }
            }
        }
    }
    st.printk_users = printk;
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
            _ = sighup.recv(), if cli.output.is_none() => Wake::Stop("SIGHUP"),
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => Wake::Stop("duration elapsed"),
            _ = any_readable(&st.sources, &st.ring_buffers) => Wake::Readable,
            conn = async {
                match metrics.as_ref() {
                    Some(l) => l.accept().await,
                    None => std::future::pending().await,
                }
            } => match conn {
                Ok((stream, _)) => Wake::Scrape(stream),
                Err(_) => Wake::Flush,
            },
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
            Wake::Readable => {
                st.drain();
                st.drain_ring_buffers();
            }
            Wake::Flush => {
                if let Some(why) = sys::stop::received() {
                    crate::say!("loader: stopping: {why}");
                    break;
                }
                st.drain();
                st.drain_ring_buffers();
                st.flush();
                ticks += 1;
                if ticks.is_multiple_of(20) && cli.output.is_none() && sys::stdout_closed() {
                    st.broken = true;
                }
            }
            Wake::Dump => st.dump_maps(),
            Wake::Scrape(stream) => serve_scrape(cli, st, stream).await,
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
    printk_ok
}

/// Index of map `name` of object `object` in `maps`.
fn map_index(maps: &[OwnedMap], object: usize, name: &str) -> Option<usize> {
    maps.iter()
        .position(|m| m.object == object && m.name == name)
}

/// Stack ids remembered with their process before the memory starts over.
const MAX_STACK_PIDS: usize = 1 << 16;

/// One stream's facts for the records that are filtered, folded or carry stack ids (the
/// others go straight to the sink): perf rings and ring buffers alike.
struct RecordPath<'a> {
    obj: usize,
    object: &'a str,
    map: &'a str,
    cpu: u32,
    ty: Option<&'a Type>,
    plan: Option<&'a FilterPlan>,
    stack_plan: Option<&'a Vec<(StackField, usize)>>,
    who: &'a Who,
    filtering: bool,
}

/// The parts of [`State`] that path reads and writes.
struct RecordCtx<'a> {
    sink: &'a mut Box<dyn Sink>,
    maps: &'a [OwnedMap],
    filter: &'a Filter,
    folded: &'a mut Option<Folder>,
    stack_pids: &'a mut StackPids,
    symbols: &'a mut Option<Symbols>,
}

impl RecordPath<'_> {
    /// One record: left out by the filter, added to the folded stacks, or sent to the sink
    /// with its stacks resolved; `events` counts what was delivered (written).
    fn take(
        &self,
        cx: &mut RecordCtx<'_>,
        data: &[u8],
        events: &mut u64,
        filtered: &mut u64,
        result: &mut io::Result<()>,
    ) {
        if self.filtering && !self.plan.is_some_and(|p| p.keeps(cx.filter, data)) {
            *filtered += 1;
        } else if let (Some(fields), Some(folder)) = (self.stack_plan, cx.folded.as_mut()) {
            let maps = cx.maps;
            cx.stack_pids
                .remember(maps, self.obj, fields, self.who.pid(data), data);
            let symbols = cx.symbols.get_or_insert_with(Symbols::default);
            let mut read =
                |m: &str, id, size| stacks::read_stack(map_fd(maps, self.obj, m)?, id, size);
            folder.add_record(
                self.obj,
                self.object,
                self.map,
                self.who,
                fields,
                data,
                &mut read,
                symbols,
            );
            *events += 1;
        } else if result.is_ok() {
            let stacks = match self.stack_plan {
                Some(fields) => {
                    let pid = self.plan.and_then(|p| p.pid(data));
                    cx.stack_pids.remember(cx.maps, self.obj, fields, pid, data);
                    let symbols = cx.symbols.get_or_insert_with(Symbols::default);
                    resolve_stacks(cx.maps, self.obj, fields, symbols, pid, data)
                }
                None => Vec::new(),
            };
            *result = cx.sink.record(&RecordMsg {
                object: self.object,
                map: self.map,
                cpu: self.cpu,
                ty: self.ty,
                data,
                stacks: &stacks,
            });
            // Delivered means written (to the output buffer).
            *events += u64::from(result.is_ok());
        }
    }
}

/// The process of the last record (or folded key) naming each stack id, by `(index in
/// the maps, id)`.
#[derive(Default)]
pub(crate) struct StackPids(std::collections::HashMap<(usize, u32), u32>);

impl StackPids {
    /// Remembers `pid` for the stack ids `data` holds in `fields`.
    fn remember(
        &mut self,
        maps: &[OwnedMap],
        object: usize,
        fields: &[(StackField, usize)],
        pid: Option<u32>,
        data: &[u8],
    ) {
        let Some(pid) = pid else { return };
        for (f, _) in fields {
            let (Some(id), Some(i)) = (f.id(data), map_index(maps, object, &f.map)) else {
                continue;
            };
            if self.0.len() >= MAX_STACK_PIDS {
                self.0.clear();
            }
            self.0.insert((i, id), pid);
        }
    }
}

/// The symbolized stacks of a record's stack id fields: `(key, frames)` each.
fn resolve_stacks(
    maps: &[OwnedMap],
    object: usize,
    fields: &[(StackField, usize)],
    symbols: &Symbols,
    pid: Option<u32>,
    data: &[u8],
) -> Vec<(String, Vec<stacks::Frame>)> {
    fields
        .iter()
        .filter_map(|(f, value_size)| {
            let id = f.id(data)?;
            let fd = map_fd(maps, object, &f.map)?;
            let ips = stacks::read_stack(fd, id, *value_size)?;
            Some((f.frames_key(), symbols.frames(pid, &ips)))
        })
        .collect()
}

/// Answers one HTTP request of a Prometheus scraper (1 s to send its request, 1 s to
/// take the answer: a stuck client cannot hold the loop).
async fn serve_scrape(cli: &Cli, st: &mut State, mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(Duration::from_secs(1), async {
        let mut buf = [0u8; 1024];
        while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    });
    if read.await.is_err() {
        return;
    }
    let reply = match crate::metrics::request_path(&head) {
        Some("/metrics") => {
            let body = st.metrics_text(cli.metrics_per_cpu, cli.metrics_max_series);
            crate::metrics::response("200 OK", "text/plain; version=0.0.4; charset=utf-8", &body)
        }
        Some(_) => crate::metrics::response("404 Not Found", "text/plain", "see /metrics\n"),
        None => crate::metrics::response("400 Bad Request", "text/plain", "GET /metrics\n"),
    };
    tokio::time::timeout(Duration::from_secs(1), stream.write_all(&reply))
        .await
        .ok();
}

/// Why trace_pipe cannot be read, in words.
fn trace_pipe_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EBUSY) => format!(
            "trace_pipe: {e}: another reader holds it (only one can), so this loader gets \
             no bpf_trace_printk line; stop the other reader or run with --no-printk"
        ),
        _ => format!("trace_pipe: {e}"),
    }
}

/// The printk output of `users` cannot be read: one error line, counted.
fn printk_error(st: &mut State, users: &[crate::attach::PrintkUser], e: &str) {
    st.summary.errors += 1;
    let (object, program) = users.first().map_or(("", None), |u| {
        (u.object.as_str(), Some(u.program.as_str()))
    });
    let r = st.sink.message(&Message::Error {
        object,
        program: program.filter(|_| users.len() == 1),
        section: None,
        error: &format!("cannot read bpf_trace_printk output: {e}"),
        verifier_log: None,
    });
    st.check(r);
}

fn print_printk(st: &mut State, line: &str) {
    if let Some(p) = kernel::parse_trace_pipe_line(line) {
        if !st.filter.keeps_printk(p.pid, p.comm) {
            st.summary.filtered += 1;
            return;
        }
        let origin = crate::printk::origin(&st.printk_users, |u| &u.formats, p.msg)
            .map(|u| (u.object.as_str(), u.program.as_str()));
        if origin.is_none() && st.no_foreign_printk {
            st.summary.filtered += 1;
            return;
        }
        let r = st.sink.message(&Message::Printk {
            pid: p.pid,
            comm: p.comm,
            cpu: p.cpu,
            msg: p.msg,
            origin,
        });
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
async fn drain_printk(st: &mut State, rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) {
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Some(line)) => print_printk(st, &line),
            Ok(None) | Err(_) => break,
        }
    }
}
