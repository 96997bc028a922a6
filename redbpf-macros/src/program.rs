//! `program!(VERSION, "LICENSE")`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, LitStr, Token};

pub(crate) struct ProgramArgs {
    pub version: Expr,
    pub license: LitStr,
}

impl Parse for ProgramArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let version = input.parse()?;
        input.parse::<Token![,]>()?;
        let license = input.parse()?;
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        Ok(ProgramArgs { version, license })
    }
}

/// NUL-terminated bytes of a string literal, as an array type and an array expression.
pub(crate) fn c_string(lit: &LitStr) -> (TokenStream, TokenStream) {
    let mut bytes = lit.value().into_bytes();
    bytes.push(0);
    let len = bytes.len();
    (quote!([u8; #len]), quote!([#(#bytes),*]))
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").and_then(|dir| {
        std::fs::read_to_string(std::path::Path::new(&dir).join("Cargo.toml")).ok()
    });
    expand_with(input, manifest.as_deref())
}

/// The name under which the crate being compiled depends on redbpf-macros, read from its
/// manifest: `redbpf_macros`, or the key of a renamed dependency (`m = { package =
/// "redbpf-macros" }`). None without a (non-optional) `[dependencies]` entry: then
/// `::redbpf_macros` does not resolve in the crate and must not be named.
pub(crate) fn macros_extern_name(manifest: &str) -> Option<String> {
    const PACKAGE: &str = "redbpf-macros";
    let is_deps = |table: &str| table == "dependencies" || table.ends_with(".dependencies");
    let unquote = |s: &str| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
    let package_of = |line: &str| {
        let at = line.find("package")?;
        let rest = line[at + "package".len()..]
            .trim_start()
            .strip_prefix('=')?;
        let value = rest.trim_start().strip_prefix('"')?;
        Some(value[..value.find('"')?].to_string())
    };
    let is_optional = |line: &str| line.replace(' ', "").contains("optional=true");
    // `[dependencies.KEY]` tables: (KEY, package seen, optional seen).
    let mut table: Option<(String, Option<String>, bool)> = None;
    let mut in_deps = false;
    let mut found = None;
    let finish = |table: &mut Option<(String, Option<String>, bool)>,
                  found: &mut Option<String>| {
        if let Some((key, package, optional)) = table.take() {
            if !optional && package.as_deref().unwrap_or(&key) == PACKAGE {
                *found = Some(key);
            }
        }
    };
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(header) = line.strip_prefix('[') {
            finish(&mut table, &mut found);
            let header = header.trim_start_matches('[').trim_end_matches(']').trim();
            in_deps = is_deps(header);
            if let Some((parent, key)) = header.rsplit_once('.') {
                if is_deps(parent.trim()) {
                    table = Some((unquote(key), None, false));
                }
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = unquote(key);
        if let Some((_, package, optional)) = table.as_mut() {
            if key == "package" {
                *package = package_of(line);
            } else if key == "optional" {
                *optional = value.trim() == "true";
            }
        } else if in_deps {
            let key = key.split('.').next().unwrap_or_default().trim().to_string();
            if package_of(value).as_deref().unwrap_or(&key) == PACKAGE && !is_optional(value) {
                found = Some(key);
            }
        }
    }
    finish(&mut table, &mut found);
    found.map(|name| name.replace('-', "_"))
}

pub(crate) fn expand_with(input: TokenStream, manifest: Option<&str>) -> syn::Result<TokenStream> {
    let ProgramArgs { version, license } = syn::parse2(input)?;
    let (license_ty, license_bytes) = c_string(&license);
    // Every macro of this crate, by glob at the probe's root: the kprobe and uprobe
    // preludes of redbpf-probes 2.3 re-export some of them only, and their kernel
    // bindings bring a `struct tracepoint`, so `#[tracepoint]` was "not found" under
    // `use redbpf_probes::kprobe::prelude::*`. A glob yields to every explicit import.
    let macros = manifest.and_then(macros_extern_name).map(|name| {
        let name = syn::Ident::new(&name, proc_macro2::Span::call_site());
        quote! {
            #[allow(unused_imports)]
            use ::#name::*;
        }
    });
    Ok(quote! {
        #macros

        #[unsafe(no_mangle)]
        #[unsafe(link_section = "license")]
        pub static _license: #license_ty = #license_bytes;

        #[unsafe(no_mangle)]
        #[unsafe(link_section = "version")]
        pub static _version: u32 = #version;

        // A BPF program can neither unwind nor abort. Every path that reaches this handler
        // is unreachable code to LLVM; `cargo bpf build` turns what is left of it into
        // `return 0` from the program.
        #[panic_handler]
        fn __redbpf_panic(_info: &::core::panic::PanicInfo) -> ! {
            // SAFETY: the build tool rewrites unreachable paths into a program exit.
            unsafe { ::core::hint::unreachable_unchecked() }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_license_version_and_panic_handler() {
        let out = expand_with(quote!(0xFFFFFFFE, "GPL"), None)
            .unwrap()
            .to_string();
        assert!(out.contains("link_section = \"license\""), "{out}");
        assert!(
            out.contains("pub static _license : [u8 ; 4usize] = [71u8 , 80u8 , 76u8 , 0u8]"),
            "{out}"
        );
        assert!(
            out.contains("pub static _version : u32 = 0xFFFFFFFE"),
            "{out}"
        );
        assert!(out.contains("# [panic_handler]"), "{out}");
        assert!(
            !out.contains("extern \"C\""),
            "a C-ABI panic handler no longer compiles: {out}"
        );
    }

    #[test]
    fn accepts_trailing_comma_and_rejects_missing_license() {
        assert!(expand(quote!(1, "Dual MIT/GPL",)).is_ok());
        let err = expand(quote!(1)).unwrap_err().to_string();
        assert!(err.contains("expected `,`"), "{err}");
    }

    #[test]
    fn finds_the_macros_dependency_under_its_name() {
        let name = |m: &str| macros_extern_name(m);
        let tutorial = "[package]\nname = \"probes\"\n\n[dependencies]\ncty = \"0.2\"\n\
                        redbpf-macros = \"2.3.0\"\nredbpf-probes = \"2.3.0\"\n";
        assert_eq!(name(tutorial).as_deref(), Some("redbpf_macros"));
        let table = "[dependencies.redbpf-macros]\nversion = \"2.3\"\n[features]\nprobes = []\n";
        assert_eq!(name(table).as_deref(), Some("redbpf_macros"));
        let renamed = "[dependencies]\nm = { package = \"redbpf-macros\", version = \"2.3\" }\n";
        assert_eq!(name(renamed).as_deref(), Some("m"));
        let renamed_table =
            "[dependencies.my-macros]\npackage = \"redbpf-macros\"\nversion = \"2\"\n";
        assert_eq!(name(renamed_table).as_deref(), Some("my_macros"));
        let target = "[target.'cfg(unix)'.dependencies]\nredbpf-macros = { git = \"x\" }\n";
        assert_eq!(name(target).as_deref(), Some("redbpf_macros"));
        // Not a direct dependency, optional, or only a dev/build-dependency: never named.
        for manifest in [
            "[dependencies]\nredbpf-probes = \"2.3\"\n",
            "[dependencies]\nredbpf-macros = { version = \"2.3\", optional = true }\n",
            "[dependencies.redbpf-macros]\nversion = \"2.3\"\noptional = true\n",
            "[dev-dependencies]\nredbpf-macros = \"2.3\"\n",
            "[build-dependencies]\nredbpf-macros = \"2.3\"\n",
            "[dependencies]\n# redbpf-macros = \"2.3\"\n",
        ] {
            assert_eq!(name(manifest), None, "{manifest}");
        }
    }

    #[test]
    fn imports_every_macro_when_the_crate_depends_on_them() {
        let manifest = "[dependencies]\nredbpf-macros = \"2.3\"\n";
        let out = expand_with(quote!(0xFFFFFFFE, "GPL"), Some(manifest))
            .unwrap()
            .to_string();
        assert!(out.contains("use :: redbpf_macros :: * ;"), "{out}");
        let out = expand_with(quote!(0xFFFFFFFE, "GPL"), Some("[dependencies]\n"))
            .unwrap()
            .to_string();
        assert!(!out.contains("use"), "{out}");
    }
}
