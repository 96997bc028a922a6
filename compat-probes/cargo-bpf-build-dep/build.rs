// Uses the 2.x library the way build scripts did: probe_files for rerun-if-changed, and
// the bindgen builder over the kernel headers for a type of the probe's own.
use cargo_bpf_lib as cargo_bpf;
use std::env;
use std::path::{Path, PathBuf};

fn main() {
    let here = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let sources = cargo_bpf::probe_files(&here).expect("couldn't list probe files");
    for file in &sources {
        println!("cargo:rerun-if-changed={}", file);
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    if env::var("CARGO_FEATURE_PROBES").is_err() {
        std::fs::write(out.join("eth.rs"), "").unwrap();
        return;
    }
    let bindings = cargo_bpf::bindgen::get_builder_kernel_headers()
        .expect("kernel headers")
        .header_contents("eth.h", "#include <uapi/linux/if_ether.h>")
        .allowlist_type("ethhdr")
        .generate()
        .expect("bindgen over if_ether.h");
    bindings.write_to_file(Path::new(&out).join("eth.rs")).unwrap();
    std::fs::write(
        out.join("sources.rs"),
        format!("pub const SOURCES: u64 = {};\n", sources.len()),
    )
    .unwrap();
}
