//! Program attributes: each wraps the user's function in an `outer_<fn>` entry point that
//! takes the raw context, returns an integer and lives in section `<kind>/<name>`.

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, LitStr, Signature, Visibility};

/// A program function. Its body is kept as tokens, not parsed: syn 1 (what the probe
/// crates' lock files pin) does not know every statement form current Rust has
/// (`let ... else`, ...), and the body is only copied into the wrapper anyway.
pub(crate) struct ItemFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    pub(crate) sig: Signature,
    body: Group,
}

impl Parse for ItemFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body: Group = input.parse()?;
        if body.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(body.span(), "expected a function body"));
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the function"));
        }
        Ok(ItemFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

impl ToTokens for ItemFn {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        for attr in &self.attrs {
            attr.to_tokens(tokens);
        }
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.body.to_tokens(tokens);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    KProbe,
    KRetProbe,
    UProbe,
    URetProbe,
    TracePoint,
    Xdp,
    SocketFilter,
    StreamParser,
    StreamVerdict,
    TcAction,
    TaskIter,
}

impl Kind {
    /// Section prefix, exactly redbpf's.
    pub(crate) fn section_prefix(self) -> &'static str {
        match self {
            Kind::KProbe => "kprobe",
            Kind::KRetProbe => "kretprobe",
            Kind::UProbe => "uprobe",
            Kind::URetProbe => "uretprobe",
            Kind::TracePoint => "tracepoint",
            Kind::Xdp => "xdp",
            Kind::SocketFilter => "socketfilter",
            Kind::StreamParser => "streamparser",
            Kind::StreamVerdict => "streamverdict",
            Kind::TcAction => "tc_action",
            Kind::TaskIter => "task_iter",
        }
    }

    fn entry_of_pair(self) -> Option<Kind> {
        match self {
            Kind::KRetProbe => Some(Kind::KProbe),
            Kind::URetProbe => Some(Kind::UProbe),
            _ => None,
        }
    }
}

/// The optional `("name")` argument; the function's name when absent.
fn probe_name(attrs: TokenStream, item: &ItemFn) -> syn::Result<String> {
    if attrs.is_empty() {
        return Ok(item.sig.ident.to_string());
    }
    let name: LitStr = syn::parse2(attrs)?;
    if name.value().is_empty() {
        return Err(syn::Error::new_spanned(
            name,
            "the probe name must not be empty",
        ));
    }
    Ok(name.value())
}

/// Body of `outer_<fn>`: converts the raw `ctx` for the user's `f` and maps its result
/// to the integer the kernel expects.
fn entry_body(kind: Kind, f: &Ident) -> (TokenStream, TokenStream) {
    let rp = quote!(::redbpf_probes);
    match kind {
        Kind::KProbe | Kind::KRetProbe | Kind::UProbe | Kind::URetProbe => (
            quote!(ctx: *mut ::core::ffi::c_void),
            quote! {
                let regs = #rp::registers::Registers::from(ctx);
                let _ = unsafe { #f(regs) };
                0
            },
        ),
        Kind::TracePoint => (
            quote!(ctx: *mut ::core::ffi::c_void),
            quote! {
                let _ = unsafe { #f(ctx as _) };
                0
            },
        ),
        Kind::Xdp => (
            quote!(ctx: *mut #rp::bindings::xdp_md),
            quote! {
                let ctx = #rp::xdp::XdpContext { ctx };
                (match unsafe { #f(ctx) } {
                    Ok(action) => action,
                    Err(_) => #rp::xdp::XdpAction::Pass,
                }) as i32
            },
        ),
        Kind::SocketFilter => (
            quote!(skb: *const #rp::bindings::__sk_buff),
            quote! {
                let skb = #rp::socket_filter::SkBuff { skb };
                match unsafe { #f(skb) } {
                    Ok(#rp::socket_filter::SkBuffAction::SendToUserspace) => -1,
                    _ => 0,
                }
            },
        ),
        Kind::StreamParser => (
            quote!(skb: *const #rp::bindings::__sk_buff),
            quote! {
                let skb = #rp::socket::SkBuff { skb };
                match unsafe { #f(skb) } {
                    Ok(#rp::sockmap::StreamParserAction::MessageLength(len)) if len > 0 => len as i32,
                    Ok(#rp::sockmap::StreamParserAction::MoreDataWanted) => 0,
                    // -ESTRPIPE hands the skb to the socket's receive queue.
                    Ok(#rp::sockmap::StreamParserAction::SendToUserspace) => -86,
                    _ => -1,
                }
            },
        ),
        Kind::StreamVerdict => (
            quote!(skb: *const #rp::bindings::__sk_buff),
            quote! {
                let skb = #rp::socket::SkBuff { skb };
                (match unsafe { #f(skb) } {
                    #rp::socket::SkAction::Pass => #rp::bindings::sk_action_SK_PASS,
                    #rp::socket::SkAction::Drop => #rp::bindings::sk_action_SK_DROP,
                }) as i32
            },
        ),
        Kind::TcAction => (
            quote!(skb: *const #rp::bindings::__sk_buff),
            quote! {
                let skb = #rp::socket::SkBuff { skb };
                match unsafe { #f(skb) } {
                    Ok(action) => action as i32,
                    Err(_) => -1,
                }
            },
        ),
        Kind::TaskIter => (
            quote!(ctx: *mut #rp::bindings::bpf_iter__task),
            quote! {
                let ctx = #rp::bpf_iter::context::TaskIterContext { ctx };
                match unsafe { #f(ctx) } {
                    #rp::bpf_iter::BPFIterAction::Ok => 0,
                    #rp::bpf_iter::BPFIterAction::Retry => 1,
                }
            },
        ),
    }
}

/// `outer_<fn>` in section `<kind>/<name>`, with the user's function nested inside it.
fn entry_point(kind: Kind, name: &str, item: &ItemFn) -> TokenStream {
    let f = &item.sig.ident;
    let outer = format_ident!("outer_{}", f);
    let section = format!("{}/{}", kind.section_prefix(), name);
    let (arg, body) = entry_body(kind, f);
    quote! {
        #[unsafe(no_mangle)]
        #[unsafe(link_section = #section)]
        #[allow(unused_unsafe, clippy::unused_unit)]
        fn #outer(#arg) -> i32 {
            #item
            #body
        }
    }
}

/// `#[kretprobe] fn f(regs: Registers, parms: [u64; 5])`: an entry probe saves the five
/// arguments per thread in `PARMS_<f>`, the return probe takes them out and calls `f`.
fn parms_pair(kind: Kind, entry_kind: Kind, name: &str, item: &ItemFn) -> syn::Result<TokenStream> {
    let rp = quote!(::redbpf_probes);
    let f = &item.sig.ident;
    let map = format_ident!("PARMS_{}", f);
    let enter: ItemFn = syn::parse_quote! {
        fn #f(regs: #rp::registers::Registers) {
            let pid_tgid = #rp::helpers::bpf_get_current_pid_tgid();
            let parms = [regs.parm1(), regs.parm2(), regs.parm3(), regs.parm4(), regs.parm5()];
            // SAFETY: BPF maps are shared with the kernel, which serialises updates.
            unsafe { #map.set(&pid_tgid, &parms) };
        }
    };
    let exit: ItemFn = syn::parse_quote! {
        fn #f(regs: #rp::registers::Registers) {
            #item
            let pid_tgid = #rp::helpers::bpf_get_current_pid_tgid();
            // SAFETY: see the entry probe.
            let parms = match unsafe { #map.get(&pid_tgid) } {
                Some(parms) => *parms,
                None => return,
            };
            // SAFETY: see the entry probe.
            unsafe { #map.delete(&pid_tgid) };
            let _ = unsafe { #f(regs, parms) };
        }
    };
    let mut enter = enter;
    enter.sig.ident = format_ident!("enter_{}", f);
    let mut exit = exit;
    exit.sig.ident = format_ident!("exit_{}", f);
    let map_item = crate::map::expand(
        TokenStream::new(),
        quote! {
            static mut #map: #rp::maps::HashMap<u64, [u64; 5]> =
                #rp::maps::HashMap::with_max_entries(10240);
        },
    )?;
    let enter = entry_point(entry_kind, name, &enter);
    let exit = entry_point(kind, name, &exit);
    Ok(quote!(#map_item #enter #exit))
}

pub(crate) fn expand(
    kind: Kind,
    attrs: TokenStream,
    item: TokenStream,
) -> syn::Result<TokenStream> {
    let item: ItemFn = syn::parse2(item)?;
    let name = probe_name(attrs, &item)?;
    if let Some(entry_kind) = kind.entry_of_pair() {
        if item.sig.inputs.len() == 2 {
            return parms_pair(kind, entry_kind, &name, &item);
        }
    }
    if item.sig.inputs.len() != 1 {
        return Err(syn::Error::new(
            Span::call_site(),
            format!(
                "#[{}] functions take exactly one argument",
                kind.section_prefix()
            ),
        ));
    }
    Ok(entry_point(kind, &name, &item))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(kind: Kind, attrs: TokenStream, item: TokenStream) -> String {
        expand(kind, attrs, item).unwrap().to_string()
    }

    #[test]
    fn kprobe_section_defaults_to_fn_name() {
        let out = expand_str(
            Kind::KProbe,
            quote!(),
            quote!(
                fn vfs_read(regs: Registers) {}
            ),
        );
        assert!(out.contains("link_section = \"kprobe/vfs_read\""), "{out}");
        assert!(
            out.contains("fn outer_vfs_read (ctx : * mut :: core :: ffi :: c_void) -> i32"),
            "{out}"
        );
    }

    #[test]
    fn explicit_names_for_every_kind() {
        for (kind, section) in [
            (Kind::KRetProbe, "kretprobe/sym"),
            (Kind::UProbe, "uprobe/sym"),
            (Kind::URetProbe, "uretprobe/sym"),
            (Kind::Xdp, "xdp/sym"),
            (Kind::SocketFilter, "socketfilter/sym"),
            (Kind::StreamParser, "streamparser/sym"),
            (Kind::StreamVerdict, "streamverdict/sym"),
            (Kind::TcAction, "tc_action/sym"),
            (Kind::TaskIter, "task_iter/sym"),
        ] {
            let out = expand_str(
                kind,
                quote!("sym"),
                quote!(
                    fn f(x: X) -> R {
                        todo!()
                    }
                ),
            );
            assert!(
                out.contains(&format!("link_section = \"{section}\"")),
                "{kind:?}: {out}"
            );
            assert!(out.contains("fn outer_f"), "{kind:?}: {out}");
        }
    }

    #[test]
    fn tracepoint_keeps_category_colon_event() {
        let out = expand_str(
            Kind::TracePoint,
            quote!("syscalls:sys_enter_execve"),
            quote!(
                fn on_exec(args: *const c_void) {}
            ),
        );
        assert!(
            out.contains("link_section = \"tracepoint/syscalls:sys_enter_execve\""),
            "{out}"
        );
        assert!(out.contains("on_exec (ctx as _)"), "{out}");
    }

    #[test]
    fn kretprobe_with_parms_generates_entry_exit_and_map() {
        let out = expand_str(
            Kind::KRetProbe,
            quote!("tcp_v4_connect"),
            quote!(
                fn connect(regs: Registers, parms: [u64; 5]) {}
            ),
        );
        assert!(
            out.contains("link_section = \"maps/PARMS_connect\""),
            "{out}"
        );
        assert!(
            out.contains("link_section = \"kprobe/tcp_v4_connect\""),
            "{out}"
        );
        assert!(
            out.contains("link_section = \"kretprobe/tcp_v4_connect\""),
            "{out}"
        );
        assert!(out.contains("fn outer_enter_connect"), "{out}");
        assert!(out.contains("fn outer_exit_connect"), "{out}");
    }

    #[test]
    fn bodies_are_copied_unparsed() {
        // `let ... else` is beyond syn 1's grammar; the body must still come through.
        let out = expand_str(
            Kind::KProbe,
            quote!(),
            quote!(
                #[inline(always)]
                pub unsafe fn f(regs: Registers) {
                    let Some(x) = g() else { return };
                }
            ),
        );
        assert!(
            out.contains("let Some (x) = g () else { return } ;"),
            "{out}"
        );
        assert!(out.contains("# [inline (always)] pub unsafe fn f"), "{out}");
    }

    #[test]
    fn wrong_arguments_are_errors() {
        assert!(expand(
            Kind::KProbe,
            quote!(42),
            quote!(
                fn f(r: Registers) {}
            )
        )
        .is_err());
        assert!(expand(
            Kind::KProbe,
            quote!(""),
            quote!(
                fn f(r: Registers) {}
            )
        )
        .is_err());
        assert!(expand(
            Kind::Xdp,
            quote!(),
            quote!(
                fn f() {}
            )
        )
        .is_err());
        assert!(expand(
            Kind::KProbe,
            quote!(),
            quote!(
                struct S;
            )
        )
        .is_err());
    }
}
