//! Drop-in replacement for crates.io `redbpf-macros` 2.3.
//!
//! Same public API (`program!`, `#[map]`, `#[kprobe]`, `#[kretprobe]`, `#[uprobe]`,
//! `#[uretprobe]`, `#[xdp]`, `#[socket_filter]`, ...), plus `#[tracepoint]` as on redbpf's
//! master branch. The generated ELF layout is exactly redbpf's, so objects stay loadable by
//! any redbpf-era loader:
//!
//! - programs live in `<kind>/<name>` sections, entry symbol `outer_<fn>`;
//! - each map is alone in `maps/<ident>` as a 20-byte `bpf_map_def`;
//! - typed maps get a zero-filled `MAP_BTF_<ident>` holder in `maps.ext`;
//! - `license` and `version` sections.
//!
//! What differs from 2.3: `program!` emits a panic handler that compiles on current rustc,
//! and every entry wrapper returns an integer (a `()` entry fails the verifier).

use proc_macro::TokenStream;

mod map;
mod printk;
mod probe;
mod program;

/// `program!(VERSION, "LICENSE")`: the `version` and `license` sections plus the panic
/// handler. `0xFFFFFFFE` as version means "whatever kernel runs it".
#[proc_macro]
pub fn program(input: TokenStream) -> TokenStream {
    program::expand(input.into())
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// Implements `NetworkBufferArray` for `[u8; 1..=512]` (used inside redbpf-probes).
#[doc(hidden)]
#[proc_macro]
pub fn impl_network_buffer_array(_: TokenStream) -> TokenStream {
    let impls = (1..=512usize).map(|n| quote::quote!(impl NetworkBufferArray for [u8; #n] {}));
    quote::quote!(#(#impls)*).into()
}

/// `#[map]` puts the static in section `maps/<ident>`; `#[map(link_section = "S")]` in `S`.
#[proc_macro_attribute]
pub fn map(attrs: TokenStream, item: TokenStream) -> TokenStream {
    map::expand(attrs.into(), item.into())
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

macro_rules! probe_attribute {
    ($(#[$doc:meta])* $name:ident => $kind:expr) => {
        $(#[$doc])*
        #[proc_macro_attribute]
        pub fn $name(attrs: TokenStream, item: TokenStream) -> TokenStream {
            probe::expand($kind, attrs.into(), item.into())
                .unwrap_or_else(|e| e.to_compile_error())
                .into()
        }
    };
}

probe_attribute!(
    /// `#[kprobe]` / `#[kprobe("SYMBOL")]` on `fn f(regs: Registers)`: section `kprobe/<SYMBOL or fn>`.
    kprobe => probe::Kind::KProbe
);
probe_attribute!(
    /// `#[kretprobe]` on `fn f(regs: Registers)`, or `fn f(regs: Registers, parms: [u64; 5])`
    /// to receive the entry arguments (an entry kprobe and a `PARMS_<fn>` map are generated).
    kretprobe => probe::Kind::KRetProbe
);
probe_attribute!(
    /// `#[uprobe]` / `#[uprobe("SYMBOL")]` on `fn f(regs: Registers)`: section `uprobe/<name>`.
    uprobe => probe::Kind::UProbe
);
probe_attribute!(
    /// `#[uretprobe]`, same forms as `#[kretprobe]`.
    uretprobe => probe::Kind::URetProbe
);
probe_attribute!(
    /// `#[tracepoint("category:event")]` on `fn f(args: *const c_void)`:
    /// section `tracepoint/category:event`.
    tracepoint => probe::Kind::TracePoint
);
probe_attribute!(
    /// `#[xdp]` on `fn f(ctx: XdpContext) -> XdpResult`: section `xdp/<name>`.
    xdp => probe::Kind::Xdp
);
probe_attribute!(
    /// `#[socket_filter]` on `fn f(skb: SkBuff) -> SkBuffResult`: section `socketfilter/<name>`.
    socket_filter => probe::Kind::SocketFilter
);
probe_attribute!(
    /// `#[stream_parser]` on `fn f(skb: SkBuff) -> StreamParserResult`.
    stream_parser => probe::Kind::StreamParser
);
probe_attribute!(
    /// `#[stream_verdict]` on `fn f(skb: SkBuff) -> SkAction`.
    stream_verdict => probe::Kind::StreamVerdict
);
probe_attribute!(
    /// `#[tc_action]` on `fn f(skb: SkBuff) -> TcActionResult`.
    tc_action => probe::Kind::TcAction
);
probe_attribute!(
    /// `#[task_iter]` on `fn f(ctx: TaskIterContext) -> BPFIterAction`.
    task_iter => probe::Kind::TaskIter
);

/// `printk!("format %d", value)`: `bpf_trace_printk` with up to three arguments
/// (`%d %u %x %zd %zu %zx %ld %lu %lx %lld %llu %llx %p %s %%`, at most one `%s`).
/// Returns `Result<i32, ()>` as on redbpf master.
#[proc_macro]
pub fn printk(input: TokenStream) -> TokenStream {
    printk::expand(input.into())
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}
