//! `aya-reader OBJECT CATEGORY:NAME [--pages N] [--attach-only]`
//!
//! The comparison point for the loader in `bench/throughput.sh`: load a redbpf object with
//! aya 0.14, attach its tracepoint program, and read the `EVENTS` perf map the way aya's
//! documentation shows it (one buffer per online CPU, `PerfEventArray::open`, which asks
//! the kernel for a wakeup on EVERY event), one tokio task per CPU. Each 48-byte `Call`
//! record (bench/probe) is written to stdout as one small JSON line.
//!
//! `--attach-only` attaches the program and opens no buffer at all: the producer's
//! ceiling with tracing on.
//!
//! On SIGINT/SIGTERM it detaches, drains, and prints on stderr:
//! `aya-reader: delivered=N lost=N offered=N` (offered: the probe's per-CPU `CALLS` sum).

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aya::maps::perf::{PerfEvent, PerfEventArray, PerfEventArrayBuffer};
use aya::maps::{MapData, PerCpuArray};
use aya::programs::TracePoint;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{signal, SignalKind};

struct Args {
    object: String,
    tracepoint: String,
    pages: usize,
    attach_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut pos = Vec::new();
    let mut pages = 64;
    let mut attach_only = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--pages" => {
                let v = it.next().ok_or("--pages needs a value")?;
                pages = v.parse().map_err(|_| format!("bad --pages {v}"))?;
            }
            "--attach-only" => attach_only = true,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => pos.push(a),
        }
    }
    let [object, tracepoint]: [String; 2] = pos
        .try_into()
        .map_err(|_| "usage: aya-reader OBJECT CATEGORY:NAME [--pages N] [--attach-only]")?;
    Ok(Args {
        object,
        tracepoint,
        pages,
        attach_only,
    })
}

/// aya 0.14 refuses redbpf's `maps.ext` section (BTF map descriptions), and the object's
/// BTF then names a section it cannot find. The probe uses legacy `maps/` definitions only,
/// so hide all three: the first byte of each name in the section-name string table
/// becomes `_`; nothing else in the file changes.
fn hide_btf(elf: &mut [u8]) {
    let u16_at = |b: &[u8], o: usize| {
        b.get(o..o + 2)
            .map(|x| u16::from_le_bytes([x[0], x[1]]) as usize)
    };
    let u64_at = |b: &[u8], o: usize| {
        b.get(o..o + 8)
            .and_then(|x| x.try_into().ok())
            .map(|x| u64::from_le_bytes(x) as usize)
    };
    let (Some(shoff), Some(shentsize), Some(shnum), Some(shstrndx)) = (
        u64_at(elf, 0x28),
        u16_at(elf, 0x3a),
        u16_at(elf, 0x3c),
        u16_at(elf, 0x3e),
    ) else {
        return;
    };
    let Some(strtab) = u64_at(elf, shoff + shstrndx * shentsize + 0x18) else {
        return;
    };
    for i in 0..shnum {
        let hdr = shoff + i * shentsize;
        let Some(name) = elf.get(hdr..hdr + 4) else {
            return;
        };
        let at = strtab + u32::from_le_bytes([name[0], name[1], name[2], name[3]]) as usize;
        let hide = [&b"maps.ext\0"[..], b".BTF\0", b".BTF.ext\0"]
            .iter()
            .any(|n| elf.get(at..at + n.len()) == Some(n));
        if hide {
            elf[at] = b'_';
        }
    }
}

/// A ring behind `AsyncFd`.
struct Ring(PerfEventArrayBuffer<MapData>);

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    lost: AtomicU64,
}

/// Writes one record as a JSON line (`{"cpu":..,"ts":..,"seq":..,"pid":..,"comm":".."}`).
fn write_call(out: &mut Vec<u8>, cpu: u32, rec: &[u8]) {
    let u64_at = |o: usize| {
        rec.get(o..o + 8)
            .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
    };
    let u32_at = |o: usize| {
        rec.get(o..o + 4)
            .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap_or([0; 4])))
    };
    let comm = rec.get(32..48).unwrap_or(&[]);
    let comm = &comm[..comm.iter().position(|&c| c == 0).unwrap_or(comm.len())];
    // Writing into a Vec cannot fail.
    writeln!(
        out,
        "{{\"cpu\":{cpu},\"ts\":{},\"seq\":{},\"pid\":{},\"comm\":\"{}\"}}",
        u64_at(0),
        u64_at(8),
        u32_at(16),
        String::from_utf8_lossy(comm).escape_default()
    )
    .ok();
}

fn drain(ring: &mut PerfEventArrayBuffer<MapData>, cpu: u32, out: &mut Vec<u8>, counts: &Counts) {
    let mut rec = Vec::new();
    ring.for_each(|ev| match ev {
        PerfEvent::Sample { head, tail } => {
            counts.delivered.fetch_add(1, Ordering::Relaxed);
            let bytes = if tail.is_empty() {
                head
            } else {
                rec.clear();
                rec.extend_from_slice(head);
                rec.extend_from_slice(tail);
                &rec
            };
            write_call(out, cpu, bytes);
        }
        PerfEvent::Lost { count } => {
            counts.lost.fetch_add(count, Ordering::Relaxed);
        }
    });
    if out.len() >= 64 * 1024 {
        flush(out);
    }
}

fn flush(out: &mut Vec<u8>) {
    if let Err(e) = std::io::stdout().write_all(out) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("aya-reader: writing output: {e}");
        }
    }
    out.clear();
}

async fn read_cpu(ring: Arc<tokio::sync::Mutex<AsyncFd<Ring>>>, cpu: u32, counts: Arc<Counts>) {
    let mut out = Vec::with_capacity(128 * 1024);
    loop {
        let mut fd = ring.lock().await;
        let Ok(mut guard) = fd.readable_mut().await else {
            break;
        };
        drain(&mut guard.get_inner_mut().0, cpu, &mut out, &counts);
        guard.clear_ready();
        drop(guard);
        drop(fd);
        if !out.is_empty() {
            flush(&mut out);
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut bytes = std::fs::read(&args.object).map_err(|e| format!("{}: {e}", args.object))?;
    hide_btf(&mut bytes);
    let mut ebpf = aya::Ebpf::load(&bytes).map_err(|e| format!("loading {}: {e}", args.object))?;
    let (category, name) = args
        .tracepoint
        .split_once(':')
        .ok_or("the tracepoint is CATEGORY:NAME")?;
    let mut attached = 0;
    for (pname, prog) in ebpf.programs_mut() {
        let Ok(tp) = <&mut TracePoint>::try_from(prog) else {
            continue;
        };
        tp.load().map_err(|e| format!("{pname}: {e}"))?;
        tp.attach(category, name)
            .map_err(|e| format!("{pname}: attach {category}:{name}: {e}"))?;
        attached += 1;
    }
    if attached == 0 {
        return Err("no tracepoint program in the object".into());
    }
    let calls: PerCpuArray<MapData, u64> = ebpf
        .take_map("CALLS")
        .ok_or("no CALLS map")?
        .try_into()
        .map_err(|e| format!("CALLS: {e}"))?;
    let counts = Arc::new(Counts::default());
    let mut rings = Vec::new();
    if !args.attach_only {
        let mut events: PerfEventArray<MapData> = ebpf
            .take_map("EVENTS")
            .ok_or("no EVENTS map")?
            .try_into()
            .map_err(|e| format!("EVENTS: {e}"))?;
        let cpus = aya::util::online_cpus().map_err(|(f, e)| format!("{f}: {e}"))?;
        for cpu in cpus {
            let buf = events
                .open(cpu, Some(args.pages))
                .map_err(|e| format!("perf buffer on CPU {cpu}: {e}"))?;
            // SAFETY: `Ring` owns the perf fd for its whole life and always returns it.
            let fd = unsafe { AsyncFd::register(Ring(buf)) }.map_err(|e| e.to_string())?;
            let ring = Arc::new(tokio::sync::Mutex::new(fd));
            let task = tokio::spawn(read_cpu(Arc::clone(&ring), cpu, Arc::clone(&counts)));
            rings.push((cpu, ring, task));
        }
    }
    eprintln!("aya-reader: attached");
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    // Detach (dropping the programs), then take what is still queued.
    drop(ebpf);
    let mut out = Vec::new();
    for (cpu, ring, task) in rings {
        task.abort();
        let mut fd = ring.lock().await;
        drain(&mut fd.get_mut().0, cpu, &mut out, &counts);
    }
    flush(&mut out);
    let offered: u64 = calls
        .get(&0, 0)
        .map_err(|e| format!("reading CALLS: {e}"))?
        .iter()
        .sum();
    eprintln!(
        "aya-reader: delivered={} lost={} offered={offered}",
        counts.delivered.load(Ordering::Relaxed),
        counts.lost.load(Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("aya-reader: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aya-reader: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aya-reader: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
