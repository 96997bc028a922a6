//! Embeds every `<dir>/<name>/<name>.elf` from `$LOADER_BUILTIN_PROBES` (default:
//! `<workspace>/target/bpf/programs`, where `cargo bpf build` writes) into the binary.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-env-changed=LOADER_BUILTIN_PROBES");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = env::var_os("LOADER_BUILTIN_PROBES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            manifest
                .join("..")
                .join("target")
                .join("bpf")
                .join("programs")
        });
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut found = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let elf = e.path().join(format!("{name}.elf"));
            if elf.is_file() {
                println!("cargo:rerun-if-changed={}", elf.display());
                found.push((name, elf));
            }
        }
    }
    found.sort();
    if found.is_empty() {
        println!(
            "cargo:warning=no built-in probes found in {} (run `cargo bpf build`); `loader` without OBJECT arguments will refuse to run",
            dir.display()
        );
    }
    let mut code = String::from("/// Probes embedded at build time: (name, ELF bytes).\npub static BUILTIN: &[(&str, &[u8])] = &[\n");
    for (name, path) in &found {
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_default()).join("builtin.rs");
    if let Err(e) = fs::write(&out, code) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
    }
}
