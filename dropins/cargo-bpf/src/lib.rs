//! Drop-in `cargo_bpf_lib` (crates.io cargo-bpf 2.x's library) that links no LLVM.
//!
//! What 2.x build scripts call:
//!
//! - `build(cargo, package, target_dir, probes)` and `build_with_features(...)`: build the
//!   probe crate at `package` into `<target_dir>/bpf/programs/<name>/<name>.elf` (redbpf's
//!   layout), by running the `cargo bpf` tool (`CARGO_BPF_TOOL`, which `cargo bpf build`
//!   sets for the build scripts it runs, else `cargo-bpf` on `PATH`).
//! - `probe_files(package)`: the crate's `src/**/*.rs`, for `cargo:rerun-if-changed`.
//! - `bindgen::get_builder_kernel_headers()`, `bindgen::builder()`: a `bindgen::Builder`
//!   set up for the kernel headers in `KERNEL_SOURCE` / `KERNEL_VERSION`, and
//!   `bindgen::generate_read_accessors` (what redbpf-probes' own build script calls).
//!
//! What it does not do fails with an error that says so: `get_builder_vmlinux`, `load`,
//! `new`, `new_program`.

#![allow(clippy::ptr_arg)] // the signatures are redbpf's

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The error type of the command-line helpers.
#[derive(Debug)]
pub struct CommandError(pub String);

impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> CommandError {
        CommandError(e.to_string())
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const WHO: &str = "cargo-bpf (drop-in library of `cargo bpf build`)";

/// Why a build helper failed.
#[derive(Debug)]
pub enum Error {
    /// No `Cargo.toml` in the package directory.
    MissingManifest(PathBuf),
    /// The `cargo bpf` tool is nowhere to be found.
    NoTool,
    /// `cargo bpf build` ran and failed (its diagnostics went to stderr).
    Compile(String, Option<String>),
    /// A feature list other than `probes`: the tool enables `probes` only.
    Features(Vec<String>),
    /// Something this drop-in does not provide.
    Unsupported(&'static str),
    IOError(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingManifest(p) => write!(f, "{WHO}: no Cargo.toml at {}", p.display()),
            Error::NoTool => write!(
                f,
                "{WHO}: cannot build probes without the `cargo bpf` tool: set CARGO_BPF_TOOL \
                 to its path or put cargo-bpf on PATH (this library links no LLVM)"
            ),
            Error::Compile(what, Some(why)) => write!(f, "{WHO}: {what}: {why}"),
            Error::Compile(what, None) => write!(f, "{WHO}: {what} failed"),
            Error::Features(features) => write!(
                f,
                "{WHO}: only the `probes` feature can be enabled (asked for: {})",
                features.join(", ")
            ),
            Error::Unsupported(what) => write!(f, "{WHO}: {what} is not supported"),
            Error::IOError(e) => write!(f, "{WHO}: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::IOError(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::IOError(e)
    }
}

impl From<Error> for CommandError {
    fn from(e: Error) -> CommandError {
        CommandError(e.to_string())
    }
}

/// The `cargo bpf` tool: `CARGO_BPF_TOOL`, else `cargo-bpf` in a `PATH` directory.
fn tool() -> Option<PathBuf> {
    if let Some(t) = std::env::var_os("CARGO_BPF_TOOL").filter(|t| !t.is_empty()) {
        return Some(PathBuf::from(t));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("cargo-bpf"))
        .find(|p| p.is_file())
}

/// Builds every program of the probe crate at `package` (or those in `probes`) into
/// `<target_dir>/bpf/programs/<name>/<name>.elf`, with the `probes` feature.
pub fn build(
    cargo: &Path,
    package: &Path,
    target_dir: &Path,
    mut probes: Vec<String>,
) -> Result<(), Error> {
    build_with_features(
        cargo,
        package,
        target_dir,
        &mut probes,
        &vec![String::from("probes")],
    )
}

/// [`build`] with a feature list; the tool enables `probes` (when the crate has it), so
/// any other feature is an error.
pub fn build_with_features(
    cargo: &Path,
    package: &Path,
    target_dir: &Path,
    probes: &mut Vec<String>,
    features: &Vec<String>,
) -> Result<(), Error> {
    let manifest = package.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(Error::MissingManifest(manifest));
    }
    if features.iter().any(|f| f != "probes") {
        return Err(Error::Features(features.clone()));
    }
    let tool = tool().ok_or(Error::NoTool)?;
    let mut cmd = Command::new(&tool);
    cmd.args(["bpf", "build", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .args(probes.iter())
        .env("CARGO", cargo)
        // The enclosing build's settings are not the probe crate's.
        .env_remove("CARGO_BPF_AS_LINKER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    let status = cmd.status().map_err(|e| {
        Error::Compile(
            format!("cannot run {}", tool.display()),
            Some(e.to_string()),
        )
    })?;
    if !status.success() {
        return Err(Error::Compile(
            format!("`cargo bpf build` of {}", package.display()),
            Some(status.to_string()),
        ));
    }
    Ok(())
}

/// `cargo bpf build` in the current directory, into `target_dir`.
pub fn cmd_build(programs: Vec<String>, target_dir: PathBuf) -> Result<(), CommandError> {
    let here = std::env::current_dir()?;
    Ok(build(Path::new("cargo"), &here, &target_dir, programs)?)
}

/// The `.rs` files under `<package>/src`, sorted (for `cargo:rerun-if-changed`).
pub fn probe_files(package: &Path) -> Result<Vec<String>, Error> {
    fn walk(dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(&package.join("src"), &mut files)?;
    files.sort();
    Ok(files)
}

/// `cargo bpf load` is not part of this drop-in.
pub fn load(_: &Path, _: &str, _: Option<&str>, _: Option<&Path>) -> Result<(), CommandError> {
    Err(Error::Unsupported("load (use the project's loader)").into())
}

/// `cargo bpf new` is not part of this drop-in.
pub fn new(_: &Path, _: Option<&str>) -> Result<(), CommandError> {
    Err(Error::Unsupported("new").into())
}

/// `cargo bpf add` is not part of this drop-in.
pub fn new_program(_: &str) -> Result<(), CommandError> {
    Err(Error::Unsupported("new_program").into())
}

/// The kernel headers trees: `(source, build)`, from `KERNEL_SOURCE` (a headers tree, or
/// a directory with `source` and `build`) or `KERNEL_VERSION` / the running kernel
/// (`/lib/modules/<version>/{source,build}`).
pub fn kernel_headers() -> Result<(PathBuf, PathBuf), String> {
    const KCONFIG: &str = "include/linux/kconfig.h";
    const VERSION_H: &str = "include/generated/uapi/linux/version.h";
    let split = |dir: &Path| -> Option<(PathBuf, PathBuf)> {
        let (source, build) = (dir.join("source"), dir.join("build"));
        let source = if source.join(KCONFIG).is_file() {
            source
        } else if build.join(KCONFIG).is_file() {
            build.clone()
        } else {
            return None;
        };
        let build = if build.join(VERSION_H).is_file() {
            build
        } else {
            source.clone()
        };
        Some((source, build))
    };
    if let Some(dir) = std::env::var_os("KERNEL_SOURCE").map(PathBuf::from) {
        if let Some(found) = split(&dir) {
            return Ok(found);
        }
        if dir.join(KCONFIG).is_file() {
            return Ok((dir.clone(), dir));
        }
    }
    let release = std::env::var("KERNEL_VERSION").ok().or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|r| r.trim().to_string())
    });
    release
        .and_then(|r| split(&Path::new("/lib/modules").join(r)))
        .ok_or_else(|| {
            format!(
                "{WHO}: kernel headers not found: set KERNEL_SOURCE to a headers tree (or \
                 KERNEL_VERSION to a release in /lib/modules)"
            )
        })
}

/// `-I` flags for the kernel headers (the `generated` directories from the build tree)
/// and the clang flags kernel headers need, in the order redbpf-probes' bindings expect.
pub fn kernel_header_flags() -> Result<Vec<String>, String> {
    let (source, build) = kernel_headers()?;
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86"
    };
    let mut dirs: Vec<String> = vec![
        format!("arch/{arch}/include"),
        format!("arch/{arch}/include/generated"),
        "include".into(),
        "include/generated".into(),
        "arch/include/generated/uapi".into(),
        format!("arch/{arch}/include/uapi"),
    ];
    if arch == "arm64" {
        dirs.push("arch/arm64/include/generated/uapi".into());
    }
    dirs.push("include/uapi".into());
    let mut flags = Vec::new();
    for dir in &dirs {
        if dir.contains("generated") {
            let path = build.join(dir);
            flags.push(format!("-I{}", path.display()));
            if dir.ends_with("generated") {
                if let Some(parent) = path.parent() {
                    flags.push(format!("-I{}", parent.display()));
                }
            }
        } else {
            flags.push(format!("-I{}", source.join(dir).display()));
        }
    }
    flags.extend(
        [
            "-D__BPF_TRACING__",
            "-D__KERNEL__",
            "-Wall",
            "-Werror",
            "-Wunused",
            "-Wno-unknown-warning-option",
            "-Wno-frame-address",
            "-Wno-unused-value",
            "-Wno-pointer-sign",
            "-Wno-compare-distinct-pointer-types",
            "-Wno-unused-parameter",
            "-Wno-missing-field-initializers",
            "-Wno-initializer-overrides",
            "-Wno-unknown-pragmas",
            "-fno-stack-protector",
            "-Wno-unused-label",
            "-Wno-unused-variable",
            "-Wno-unused-function",
            "-Wno-address-of-packed-member",
            "-Wno-gnu-variable-sized-type-not-at-end",
        ]
        .iter()
        .map(|f| f.to_string()),
    );
    if arch == "arm64" {
        flags.extend(["-target".to_string(), "aarch64".to_string()]);
    }
    Ok(flags)
}

#[cfg(feature = "bindings")]
mod accessors;

/// bindgen over kernel headers, as redbpf's `cargo_bpf_lib::bindgen` (feature `bindings`;
/// redbpf-probes' own build script uses it).
#[cfg(feature = "bindings")]
pub mod bindgen {
    pub use super::accessors::generate_read_accessors;
    pub use ::bindgen::Builder;

    /// Kernel typedefs named like Rust's integer types would shadow them.
    #[derive(Debug)]
    struct Renames;

    impl ::bindgen::callbacks::ParseCallbacks for Renames {
        fn item_name(&self, name: &str) -> Option<String> {
            matches!(name, "u8" | "u16" | "u32" | "u64").then(|| format!("_cargo_bpf_{name}"))
        }
    }

    /// A `bindgen::Builder` that can include kernel headers (see
    /// [`kernel_header_flags`](super::kernel_header_flags)), with `core` and `::cty` types.
    pub fn get_builder_kernel_headers() -> Result<Builder, String> {
        Ok(::bindgen::builder()
            .clang_args(super::kernel_header_flags()?)
            .use_core()
            .ctypes_prefix("::cty")
            .opaque_type("xregs_state")
            .parse_callbacks(Box::new(Renames)))
    }

    /// Needs libbpf's BTF dumper, which this drop-in does not carry.
    pub fn get_builder_vmlinux(
        _c_dump_file: impl AsRef<std::path::Path>,
    ) -> Result<Builder, String> {
        Err(format!(
            "{}: get_builder_vmlinux (bindings from kernel BTF, REDBPF_VMLINUX) is not \
             supported; use kernel headers (KERNEL_SOURCE)",
            super::WHO
        ))
    }

    /// [`get_builder_kernel_headers`], panicking when there are no headers.
    pub fn builder() -> Builder {
        get_builder_kernel_headers().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs the `bindgen` command with `builder`'s flags plus `extra_args` (clang flags),
    /// as redbpf's did.
    pub fn generate(builder: &Builder, extra_args: &[&str]) -> Result<String, String> {
        let mut flags = builder.command_line_flags();
        let at = flags.iter().position(|a| a == "--").unwrap_or(flags.len());
        for (i, extra) in extra_args.iter().enumerate() {
            flags.insert(at + i, (*extra).to_string());
        }
        let out = std::process::Command::new("bindgen")
            .args(&flags)
            .output()
            .map_err(|e| {
                format!(
                    "{}: generate() runs the `bindgen` command (bindgen-cli 0.59): {e}; or \
                     call builder.generate() instead",
                    super::WHO
                )
            })?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        String::from_utf8(out.stdout).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_files_lists_sources() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = probe_files(here).unwrap();
        assert!(files.iter().any(|f| f.ends_with("src/lib.rs")), "{files:?}");
    }

    #[test]
    fn errors_say_what_is_missing() {
        let tmp = std::env::temp_dir().join(format!("dropin-{}", std::process::id()));
        let err = build(Path::new("cargo"), &tmp, &tmp, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("no Cargo.toml"), "{err}");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("Cargo.toml"), "").unwrap();
        let err = build_with_features(
            Path::new("cargo"),
            &tmp,
            &tmp,
            &mut Vec::new(),
            &vec!["kernel5_8".into()],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("only the `probes` feature"),
            "{err}"
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
