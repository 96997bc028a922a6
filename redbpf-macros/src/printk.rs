//! `printk!("fmt %d %s", a, s)`: `bpf_trace_printk` with up to three arguments, at most one
//! of them a string (`%s`, anything that is `AsRef<CStr>`). Its value is redbpf master's
//! `Result<i32, ()>` (bytes written, or `Err(())`), so `printk!(...).expect(...)` compiles;
//! crates.io's 2.3 had no `printk!`, and a bare `printk!(...);` statement still builds.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, LitStr, Token};

#[derive(Debug, PartialEq, Eq)]
enum Arg {
    /// A number of the given Rust type, passed as u64.
    Number(&'static str),
    Str,
}

fn placeholders(fmt: &str) -> Result<Vec<Arg>, String> {
    let mut out = Vec::new();
    let mut bytes = fmt.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            continue;
        }
        let mut spec = String::new();
        let arg = loop {
            let Some(c) = bytes.next() else {
                return Err(format!(
                    "unfinished placeholder `%{spec}` at the end of the format"
                ));
            };
            spec.push(c as char);
            match spec.as_str() {
                "%" => break None,
                "d" => break Some(Arg::Number("i32")),
                "u" | "x" => break Some(Arg::Number("u32")),
                "zd" => break Some(Arg::Number("isize")),
                "zu" | "zx" => break Some(Arg::Number("usize")),
                "ld" => break Some(Arg::Number("i64")),
                "lu" | "lx" => break Some(Arg::Number("u64")),
                "lld" => break Some(Arg::Number("i64")),
                "llu" | "llx" => break Some(Arg::Number("u64")),
                "p" => break Some(Arg::Number("usize")),
                "s" => break Some(Arg::Str),
                "z" | "l" | "ll" => continue,
                _ => return Err(format!("unsupported placeholder `%{spec}`")),
            }
        };
        out.extend(arg);
    }
    if out.len() > 3 {
        return Err("bpf_trace_printk takes at most 3 arguments".into());
    }
    if out.iter().filter(|a| **a == Arg::Str).count() > 1 {
        return Err("bpf_trace_printk takes at most one %s".into());
    }
    Ok(out)
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let args = Punctuated::<Expr, Token![,]>::parse_terminated.parse2(input)?;
    let mut args = args.into_iter();
    let Some(fmt_expr) = args.next() else {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "printk! needs a format string",
        ));
    };
    let fmt: LitStr = syn::parse2(quote!(#fmt_expr))?;
    let kinds = placeholders(&fmt.value()).map_err(|e| syn::Error::new_spanned(&fmt, e))?;
    let values: Vec<Expr> = args.collect();
    if values.len() != kinds.len() {
        return Err(syn::Error::new_spanned(
            &fmt,
            format!(
                "{} placeholders but {} arguments",
                kinds.len(),
                values.len()
            ),
        ));
    }
    let mut passed: Vec<TokenStream> = kinds
        .iter()
        .zip(&values)
        .map(|(kind, value)| match kind {
            Arg::Number(ty) => {
                let ty: syn::Type = syn::parse_str(ty).expect("fixed type names parse");
                quote!((#value) as #ty as u64)
            }
            Arg::Str => {
                quote!(::core::convert::AsRef::<::core::ffi::CStr>::as_ref(#value).as_ptr() as u64)
            }
        })
        .collect();
    passed.resize_with(3, || quote!(0u64));
    // Kernels before 4.20 print bpf_trace_printk messages into trace_pipe as they are, so a
    // message without a newline runs into the next one (seen on 4.4, 4.14 and 4.15: no
    // line ever ended); newer ones end every message themselves and show the extra one as
    // a blank line, which the loader skips.
    let fmt = if fmt.value().ends_with('\n') {
        fmt
    } else {
        LitStr::new(&format!("{}\n", fmt.value()), fmt.span())
    };
    let (fmt_ty, fmt_bytes) = crate::program::c_string(&fmt);
    Ok(quote! {{
        // The format lives on the stack: no .rodata, so legacy kernels load it.
        let fmt: #fmt_ty = #fmt_bytes;
        // SAFETY: helper 6 is bpf_trace_printk(fmt, fmt_size, arg1, arg2, arg3) on every kernel.
        let printk: unsafe extern "C" fn(*const u8, u32, u64, u64, u64) -> i64 =
            unsafe { ::core::mem::transmute(6usize) };
        // SAFETY: `fmt` is NUL-terminated and outlives the call.
        let written = unsafe { printk(fmt.as_ptr(), fmt.len() as u32, #(#passed),*) };
        // redbpf master's signature: the bytes written, or Err(()) when the kernel refused.
        if written >= 0 {
            ::core::result::Result::<i32, ()>::Ok(written as i32)
        } else {
            ::core::result::Result::<i32, ()>::Err(())
        }
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_placeholders() {
        assert_eq!(
            placeholders("a %d %llu %s 100%%").unwrap(),
            vec![Arg::Number("i32"), Arg::Number("u64"), Arg::Str]
        );
        assert!(placeholders("%d %d %d %d").is_err());
        assert!(placeholders("%s %s").is_err());
        assert!(placeholders("%q").is_err());
        assert!(placeholders("50%").is_err());
    }

    #[test]
    fn messages_end_with_a_newline() {
        let out = expand(quote!("Hello World")).unwrap().to_string();
        // "Hello World\n\0": 13 bytes.
        assert!(out.contains("13usize") || out.contains("; 13]"), "{out}");
        let out = expand(quote!("done\n")).unwrap().to_string();
        assert!(out.contains("; 6]") || out.contains("6usize"), "{out}");
    }

    #[test]
    fn value_is_masters_result() {
        let out = expand(quote!("x")).unwrap().to_string();
        assert!(
            out.contains("Result :: < i32 , () > :: Ok (written as i32)"),
            "{out}"
        );
        assert!(out.contains("Result :: < i32 , () > :: Err (())"), "{out}");
    }

    #[test]
    fn argument_count_must_match() {
        assert!(expand(quote!("pid %d", pid)).is_ok());
        assert!(expand(quote!("pid %d")).is_err());
        assert!(expand(quote!("Hello World"))
            .unwrap()
            .to_string()
            .contains("0u64 , 0u64 , 0u64"));
    }
}
