//! `make bench`'s symbolization figures (bench/symbolize.sh runs it as root): the cost of
//! one stack through the loader's symbolizer (`loader::stacks::Symbols`), cold (a new
//! symbolizer: /proc/kallsyms or the process's mappings and ELF files read first) and
//! cached (the same symbolizer, other stacks). Stacks are 16 frames: kernel ones of random
//! text symbols from /proc/kallsyms, user ones inside functions of this binary and libc.
//! Prints one line per kind and, with BENCH_RESULTS=FILE, appends JSON lines to FILE.
//! Figures only; nothing here is asserted.

use std::io::Write;
use std::time::Instant;

use loader::stacks::Symbols;

const DEPTH: usize = 16;
const COLD_RUNS: usize = 5;
const CACHED_STACKS: usize = 500;

/// A small xorshift: the same stacks on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn kernel_text_addrs() -> Vec<u64> {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let addr = u64::from_str_radix(it.next()?, 16).ok()?;
            let kind = it.next()?;
            (matches!(kind, "t" | "T") && addr != 0 && it.nth(1).is_none()).then_some(addr)
        })
        .collect()
}

#[inline(never)]
fn user_a(x: u64) -> u64 {
    x.wrapping_mul(3)
}

#[inline(never)]
fn user_b(x: u64) -> u64 {
    x.rotate_left(5)
}

fn user_addrs() -> Vec<u64> {
    vec![
        user_a as *const () as usize as u64,
        user_b as *const () as usize as u64,
        main as *const () as usize as u64,
        kernel_text_addrs as *const () as usize as u64,
        libc::getpid as *const () as usize as u64,
        libc::malloc as *const () as usize as u64,
        libc::read as *const () as usize as u64,
        libc::write as *const () as usize as u64,
    ]
}

fn stacks(pool: &[u64], n: usize, rng: &mut Rng) -> Vec<Vec<u64>> {
    (0..n)
        .map(|_| {
            (0..DEPTH)
                .map(|_| pool[(rng.next() % pool.len() as u64) as usize] + 1 + rng.next() % 8)
                .collect()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `(cold µs, cached µs per stack, symbols found of the cached stacks' frames)`.
fn measure(pid: Option<u32>, pool: &[u64]) -> (f64, f64, f64) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cold: Vec<f64> = stacks(pool, COLD_RUNS, &mut rng)
        .iter()
        .map(|s| {
            let t = Instant::now();
            let frames = Symbols::default().frames(pid, s);
            std::hint::black_box(frames);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let symbols = Symbols::default();
    symbols.frames(pid, &stacks(pool, 1, &mut rng)[0]);
    let many = stacks(pool, CACHED_STACKS, &mut rng);
    let t = Instant::now();
    let mut named = 0usize;
    for s in &many {
        named += symbols
            .frames(pid, s)
            .iter()
            .filter(|f| f.sym.is_some())
            .count();
    }
    let cached = t.elapsed().as_secs_f64() * 1e6 / many.len() as f64;
    (
        median(cold),
        cached,
        named as f64 / (many.len() * DEPTH) as f64,
    )
}

fn main() {
    std::hint::black_box(user_a(1) + user_b(2));
    let kernel = kernel_text_addrs();
    let mut rows = Vec::new();
    if kernel.is_empty() {
        eprintln!(
            "symbolize: no kernel text symbols in /proc/kallsyms (not root?): kernel row skipped"
        );
    } else {
        rows.push(("kernel", measure(None, &kernel)));
    }
    rows.push(("user", measure(Some(std::process::id()), &user_addrs())));
    let mut results = std::env::var_os("BENCH_RESULTS").and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    for (kind, (cold, cached, named)) in rows {
        println!(
            "symbolize {kind:<6} {DEPTH}-frame stack: cold {cold:.0} µs (median of {COLD_RUNS} new symbolizers), cached {cached:.1} µs/stack ({:.1} µs/frame, over {CACHED_STACKS} stacks), {:.0}% of frames named",
            cached / DEPTH as f64,
            named * 100.0
        );
        if let Some(f) = results.as_mut() {
            writeln!(
                f,
                "{{\"kind\":\"symbolize\",\"stack\":\"{kind}\",\"depth\":{DEPTH},\"cold_us\":{cold:.1},\"cached_us_per_stack\":{cached:.2},\"named\":{named:.3}}}"
            )
            .ok();
        }
    }
}
