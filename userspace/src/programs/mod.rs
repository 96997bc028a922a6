//! Loading and attaching one program by its section, one file per program kind.
//! Each kind's minimum kernel is stated in its module docs.

pub mod kprobe;
pub mod raw_tracepoint;
pub mod socket_filter;
pub mod tc;
pub mod tracepoint;
pub mod uprobe;
pub mod xdp;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use aya::programs::{Program, ProgramError};

use crate::kernel::{self, KernelError, KernelSymbols};
use crate::legacy::KprobeMode;
use crate::section::AttachSpec;
use crate::sys::probe_event::{ProbeEvent, ProbeEventError};
use crate::sys::SyscallError;

/// Why a program could not be loaded or attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The verifier rejected the program; the log is in the value.
    #[error("the verifier rejected the program ({io_error})")]
    Verifier {
        /// errno of BPF_PROG_LOAD
        io_error: std::io::Error,
        /// full verifier log
        verifier_log: String,
    },
    /// The kernel refused the program without a word from the verifier: not a verdict on
    /// the code but on the request.
    #[error("the kernel refused the program ({io_error}) and wrote no verifier log: {}", refusal_hint(.io_error))]
    RefusedNoLog {
        /// errno of BPF_PROG_LOAD
        io_error: std::io::Error,
    },
    /// The kernel refused for lack of privileges.
    #[error("permission denied ({0}): run as root, or with CAP_BPF and CAP_PERFMON (CAP_NET_ADMIN for XDP)")]
    Permission(String),
    /// Loading failed for another reason.
    #[error("loading failed")]
    Load(#[source] ProgramError),
    /// Attaching failed.
    #[error("attaching to {target} failed")]
    Attach {
        /// what we tried to attach to
        target: String,
        /// aya's error
        source: ProgramError,
    },
    /// A kernel facility or symbol is missing.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// A raw syscall failed.
    #[error(transparent)]
    Sys(#[from] SyscallError),
    /// Creating a `kprobe_events` entry failed (legacy mode).
    #[error("kprobe_events")]
    ProbeEvent(#[from] ProbeEventError),
    /// XDP, socket filters and TC programs need `--iface`.
    #[error("this section attaches to a network interface: pass --iface")]
    NeedIface,
    /// `--iface` names no interface.
    #[error("no network interface named {0} (`ip link` lists them)")]
    NoSuchIface(String),
    /// The uprobe's binary is not there, not a file, not ELF, or lacks the symbol.
    #[error("uprobe target {0}")]
    UprobeTarget(String),
    /// A uprobe section without a binary needs `--uprobe-target`.
    #[error("the section names no binary: pass --uprobe-target /path/to/bin")]
    NeedUprobeTarget,
    /// aya classified the program differently from its section.
    #[error("aya loaded this program as another type than its section says")]
    WrongType,
    /// No attach support for this section kind.
    #[error("unsupported program section kind '{0}'")]
    Unsupported(String),
    /// The loader's own relocation (XDP below 4.17) failed.
    #[error(transparent)]
    Relocate(#[from] crate::relocate::RelocateError),
}

impl AttachError {
    /// The verifier log, if this is a rejection.
    pub fn verifier_log(&self) -> Option<&str> {
        match self {
            AttachError::Verifier { verifier_log, .. } => Some(verifier_log),
            _ => None,
        }
    }

    pub(crate) fn attach(target: impl Into<String>, source: ProgramError) -> Self {
        let target = target.into();
        if is_eperm(&source) {
            let cause = crate::error_chain(&source);
            return AttachError::Permission(format!("attaching to {target}: {cause}"));
        }
        AttachError::Attach { target, source }
    }
}

fn is_eperm(e: &ProgramError) -> bool {
    matches!(crate::errno_of(e), Some(libc::EPERM) | Some(libc::EACCES))
}

/// What an empty-log refusal means, by errno (seen on real 4.14, 4.15 and 4.19 kernels).
fn refusal_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::E2BIG) => {
            "the request carries a bpf_attr field this kernel does not know (such as \
             expected_attach_type before 4.17)"
        }
        Some(libc::EINVAL) => {
            "a program type this kernel does not have (tracepoint programs came in 4.7, raw \
             tracepoints in 4.17), a kprobe whose kern_version is not the kernel's \
             LINUX_VERSION_CODE (checked before 5.0; the object's `version` section), or a \
             bpf_attr field the kernel does not know (before 4.17)"
        }
        _ => "the request itself was refused, not the program's code",
    }
}

/// Maps aya load errors to ours (verifier log kept in the value).
pub(crate) fn load_error(e: ProgramError) -> AttachError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            if matches!(
                io_error.raw_os_error(),
                Some(libc::EPERM) | Some(libc::EACCES)
            ) && verifier_log.to_string().trim().is_empty()
            {
                AttachError::Permission(format!("BPF_PROG_LOAD: {io_error}"))
            } else if verifier_log.to_string().trim().is_empty() {
                AttachError::RefusedNoLog { io_error }
            } else {
                AttachError::Verifier {
                    io_error,
                    verifier_log: verifier_log.to_string(),
                }
            }
        }
        other if is_eperm(&other) => AttachError::Permission(crate::error_chain(&other)),
        other => AttachError::Load(other),
    }
}

/// Settings and lazily-read kernel facts shared by all attachments.
#[derive(Default)]
pub struct Context {
    /// `--iface`
    pub iface: Option<String>,
    /// `--uprobe-target`
    pub uprobe_target: Option<String>,
    /// `--uprobe-pid`
    pub uprobe_pid: Option<u32>,
    /// How kprobes are created (legacy mode: `kprobe_events`).
    pub kprobes: KprobeMode,
    /// kprobe_events entries created so far (their names must be unique).
    pub probe_events: usize,
    tracefs: Option<PathBuf>,
    kallsyms: Option<KernelSymbols>,
    kallsyms_reader: Option<std::thread::JoinHandle<KernelSymbols>>,
    /// Load XDP programs without aya (kernels < 4.17, or `--legacy`): see [`xdp`].
    pub own_xdp_load: bool,
    /// The object being attached, for the loader's own loads.
    pub raw_object: Option<RawObject>,
}

/// The aya-ready bytes of the object being attached and the fds of the maps aya created
/// for it (by aya's map name).
pub struct RawObject {
    pub bytes: Vec<u8>,
    pub map_fds: Vec<(String, std::os::fd::RawFd)>,
}

impl Context {
    /// `--iface`, checked to exist: `(name, index)`. One wording for every program kind.
    pub fn iface(&self) -> Result<(String, u32), AttachError> {
        let iface = self.iface.clone().ok_or(AttachError::NeedIface)?;
        match crate::sys::if_index(&iface) {
            Ok(index) => Ok((iface, index)),
            Err(_) => Err(AttachError::NoSuchIface(iface)),
        }
    }

    /// Settings from the command line.
    pub fn new(
        iface: Option<String>,
        uprobe_target: Option<String>,
        uprobe_pid: Option<u32>,
    ) -> Self {
        Context {
            iface,
            uprobe_target,
            uprobe_pid,
            ..Default::default()
        }
    }

    /// tracefs, mounted if needed.
    pub fn tracefs(&mut self) -> Result<PathBuf, KernelError> {
        if let Some(t) = &self.tracefs {
            return Ok(t.clone());
        }
        let t = kernel::tracefs()?;
        self.tracefs = Some(t.clone());
        Ok(t)
    }

    /// Starts reading /proc/kallsyms on another thread (the kernel takes ~0.1 s to list
    /// it), so it is ready when the first kprobe needs it.
    pub fn prefetch_kallsyms(&mut self) {
        if self.kallsyms.is_none() && self.kallsyms_reader.is_none() {
            self.kallsyms_reader = std::thread::Builder::new()
                .name("kallsyms".into())
                .spawn(KernelSymbols::read)
                .ok();
        }
    }

    /// /proc/kallsyms, read once.
    pub fn kallsyms(&mut self) -> &KernelSymbols {
        if self.kallsyms.is_none() {
            let syms = self
                .kallsyms_reader
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_else(KernelSymbols::read);
            self.kallsyms = Some(syms);
        }
        self.kallsyms.get_or_insert_with(KernelSymbols::default)
    }
}

/// A successful attachment.
pub struct Attached {
    /// What it is attached to (`syscalls:sys_enter_execve`, `eth0`, `/bin/bash:readline`).
    pub target: String,
    /// For socket filters: the packet socket the filter runs on (kept open while running).
    pub socket: Option<OwnedFd>,
    /// For kprobes in legacy mode: the `kprobe_events` entry (dropping it detaches).
    pub probe_event: Option<ProbeEvent>,
    /// For XDP below 4.17: the loader's own attachment (dropping it detaches).
    pub xdp_link: Option<xdp::XdpLink>,
}

impl Attached {
    pub(crate) fn to(target: impl Into<String>) -> Self {
        Attached {
            target: target.into(),
            socket: None,
            probe_event: None,
            xdp_link: None,
        }
    }
}

/// Loads `program` and attaches it as `spec` says. The link lives as long as the program.
/// Loads a program without attaching it: the verifier's verdict, for `--verify`.
pub fn load(program: &mut Program, name: &str, ctx: &Context) -> Result<(), AttachError> {
    match program {
        Program::Xdp(_) if ctx.own_xdp_load => return xdp::load_own(name, ctx).map(drop),
        Program::KProbe(p) => p.load(),
        Program::UProbe(p) => p.load(),
        Program::TracePoint(p) => p.load(),
        Program::RawTracePoint(p) => p.load(),
        Program::Xdp(p) => p.load(),
        Program::SocketFilter(p) => p.load(),
        Program::SkSkb(p) => p.load(),
        Program::SchedClassifier(p) => p.load(),
        _ => return Err(AttachError::WrongType),
    }
    .map_err(load_error)
}

pub fn attach(
    program: &mut Program,
    name: &str,
    spec: &AttachSpec,
    ctx: &mut Context,
) -> Result<Attached, AttachError> {
    match (spec, program) {
        (AttachSpec::KProbe { symbol, .. }, Program::KProbe(p)) => kprobe::attach(p, symbol, ctx),
        (AttachSpec::TracePoint { category, name }, Program::TracePoint(p)) => {
            tracepoint::attach(p, category.as_deref(), name, ctx)
        }
        (AttachSpec::RawTracePoint { name }, Program::RawTracePoint(p)) => {
            raw_tracepoint::attach(p, name)
        }
        (AttachSpec::UProbe { target, symbol, .. }, Program::UProbe(p)) => {
            uprobe::attach(p, target.as_deref(), symbol, ctx)
        }
        (AttachSpec::Xdp, Program::Xdp(p)) => xdp::attach(p, name, ctx),
        (AttachSpec::SocketFilter, Program::SocketFilter(p)) => socket_filter::attach(p, ctx),
        (AttachSpec::TcAction, Program::SchedClassifier(p)) => tc::attach(p, ctx),
        (AttachSpec::Unsupported { kind }, _) => Err(AttachError::Unsupported(kind.clone())),
        _ => Err(AttachError::WrongType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_log_refusals_say_what_they_mean() {
        let e = |errno| {
            AttachError::RefusedNoLog {
                io_error: std::io::Error::from_raw_os_error(errno),
            }
            .to_string()
        };
        // A kern_version mismatch (4.19.222 given 4.19.222 instead of 4.19.255) is EINVAL.
        assert!(
            e(libc::EINVAL).contains("kern_version"),
            "{}",
            e(libc::EINVAL)
        );
        assert!(e(libc::EINVAL).contains("no verifier log"));
        // expected_attach_type on 4.14 is E2BIG.
        assert!(
            e(libc::E2BIG).contains("expected_attach_type"),
            "{}",
            e(libc::E2BIG)
        );
        assert!(!e(libc::EACCES).contains("verifier rejected"));
    }
}
