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
    let ProgramArgs { version, license } = syn::parse2(input)?;
    let (license_ty, license_bytes) = c_string(&license);
    Ok(quote! {
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
        let out = expand(quote!(0xFFFFFFFE, "GPL")).unwrap().to_string();
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
}
