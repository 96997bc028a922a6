//! `#[map]` and `#[map(link_section = "...")]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{GenericArgument, ItemStatic, Meta, PathArguments, Token, Type};

/// Key and value types of a typed map, for its `maps.ext` BTF holder.
#[derive(Debug)]
pub(crate) struct MapTypes {
    pub key: TokenStream,
    pub value: TokenStream,
    /// `TcHashMap` uses iproute2's `____btf_map_<name>` naming and `key`/`value` fields.
    pub tc: bool,
}

/// Reads the map kind from the static's type (`HashMap<K, V>`, `Array<V>`, ...).
/// Kinds without key/value generics (`PerfMap`, `StackTrace`, `ProgramArray`, ...) and kinds
/// this crate does not know get no BTF holder: their section is all a loader needs.
pub(crate) fn map_types(ty: &Type) -> Option<MapTypes> {
    let Type::Path(path) = ty else { return None };
    let segment = path.path.segments.last()?;
    let PathArguments::AngleBracketed(generics) = &segment.arguments else {
        return None;
    };
    let types: Vec<&Type> = generics
        .args
        .iter()
        .filter_map(|arg| match arg {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    let kind = segment.ident.to_string();
    match (kind.as_str(), types.as_slice()) {
        ("Array" | "PerCpuArray", [value]) => Some(MapTypes {
            key: quote!(u32),
            value: quote!(#value),
            tc: false,
        }),
        (
            "HashMap" | "PerCpuHashMap" | "LruHashMap" | "LruPerCpuHashMap" | "TcHashMap",
            [key, value],
        ) => Some(MapTypes {
            key: quote!(#key),
            value: quote!(#value),
            tc: kind == "TcHashMap",
        }),
        _ => None,
    }
}

fn link_section(attrs: TokenStream) -> syn::Result<Option<String>> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attrs)?;
    let mut section = None;
    for meta in metas {
        let Meta::NameValue(nv) = &meta else {
            return Err(syn::Error::new_spanned(
                meta,
                "expected #[map(link_section = \"...\")]",
            ));
        };
        if !nv.path.is_ident("link_section") {
            return Err(syn::Error::new_spanned(
                &nv.path,
                "the only #[map] argument is `link_section`",
            ));
        }
        let syn::Lit::Str(s) = &nv.lit else {
            return Err(syn::Error::new_spanned(
                &nv.lit,
                "link_section must be a string literal",
            ));
        };
        if section.replace(s.value()).is_some() {
            return Err(syn::Error::new_spanned(
                nv,
                "link_section is given more than once",
            ));
        }
    }
    Ok(section)
}

pub(crate) fn expand(attrs: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let section = link_section(attrs)?;
    let map: ItemStatic = syn::parse2(item.clone())?;
    let ident = &map.ident;
    let section = section.unwrap_or_else(|| format!("maps/{ident}"));
    let mut out = quote! {
        #[unsafe(no_mangle)]
        #[unsafe(link_section = #section)]
        #item
    };
    if let Some(MapTypes { key, value, tc }) = map_types(&map.ty) {
        let module = format_ident!("__redbpf_map_btf_{}", ident);
        let holder = format_ident!("MAP_BTF_{}", ident);
        let align = format_ident!("MAP_VALUE_ALIGN_{}", ident);
        let (holder_ty, key_field, value_field) = if tc {
            (
                format_ident!("____btf_map_{}", ident),
                format_ident!("key"),
                format_ident!("value"),
            )
        } else {
            (
                format_ident!("MapBtf"),
                format_ident!("key_type"),
                format_ident!("value_type"),
            )
        };
        out.extend(quote! {
            #[doc(hidden)]
            #[allow(non_snake_case, non_camel_case_types, non_upper_case_globals)]
            mod #module {
                #[allow(unused_imports)]
                use super::*;

                // Read (and removed) by `cargo bpf build` to check the value alignment.
                #[unsafe(no_mangle)]
                static #align: ::core::mem::MaybeUninit<#value> = ::core::mem::MaybeUninit::uninit();

                #[repr(C)]
                pub struct #holder_ty {
                    #key_field: #key,
                    #value_field: #value,
                }
                // SAFETY: never read or written: a zero-filled holder of key/value types.
                unsafe impl Sync for #holder_ty {}

                #[unsafe(no_mangle)]
                #[unsafe(link_section = "maps.ext")]
                static #holder: #holder_ty =
                    // SAFETY: only its type matters; zero bytes are never used as a value.
                    unsafe { ::core::mem::MaybeUninit::zeroed().assume_init() };
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(src: &str) -> Type {
        syn::parse_str(src).unwrap()
    }

    #[test]
    fn key_and_value_types_per_kind() {
        let t = map_types(&ty("HashMap<u64, Event>")).unwrap();
        assert_eq!(
            (t.key.to_string(), t.value.to_string(), t.tc),
            ("u64".into(), "Event".into(), false)
        );
        let t = map_types(&ty("redbpf_probes::maps::Array<u64>")).unwrap();
        assert_eq!(
            (t.key.to_string(), t.value.to_string()),
            ("u32".into(), "u64".into())
        );
        assert!(map_types(&ty("TcHashMap<u32, u8>")).unwrap().tc);
        assert!(map_types(&ty("PerfMap<Event>")).is_none());
        assert!(map_types(&ty("StackTrace")).is_none());
    }

    #[test]
    fn default_and_explicit_sections() {
        let item = quote!(
            static mut COUNTS: Array<u64> = Array::with_max_entries(1);
        );
        let out = expand(TokenStream::new(), item.clone())
            .unwrap()
            .to_string();
        assert!(out.contains("link_section = \"maps/COUNTS\""), "{out}");
        assert!(out.contains("link_section = \"maps.ext\""), "{out}");
        assert!(out.contains("static MAP_BTF_COUNTS"), "{out}");
        let out = expand(quote!(link_section = "maps/other"), item)
            .unwrap()
            .to_string();
        assert!(out.contains("link_section = \"maps/other\""), "{out}");
    }

    #[test]
    fn perf_map_has_no_btf_holder() {
        let item = quote!(
            static mut EVENTS: PerfMap<Event> = PerfMap::with_max_entries(1024);
        );
        let out = expand(TokenStream::new(), item).unwrap().to_string();
        assert!(!out.contains("maps.ext"), "{out}");
    }

    #[test]
    fn bad_arguments_are_errors() {
        let item = quote!(
            static mut M: PerfMap<u8> = PerfMap::with_max_entries(1);
        );
        assert!(expand(quote!("maps/x"), item.clone()).is_err());
        assert!(expand(quote!(section = "x"), item.clone()).is_err());
        assert!(expand(quote!(link_section = "a", link_section = "b"), item).is_err());
    }
}
