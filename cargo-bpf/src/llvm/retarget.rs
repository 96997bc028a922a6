//! The retargeting pipeline:
//!
//! 1. parse the LTO bitcode (x86_64) with the toolchain's own LLVM;
//! 2. strip what only makes sense on the host (target-cpu/features, probe-stack, uwtable,
//!    personality) and force every function to inline, dropping `noinline` on functions AND
//!    call sites (rustc marks panic calls `noinline` at the call site);
//! 3. retarget the module to `bpfel`, run `default<O3>`;
//! 4. turn what is left of `unreachable` (panic paths) into `return 0`: LLVM >= 21 would
//!    lower it to a call of the kfunc `__bpf_trap`, which legacy loaders cannot resolve;
//! 5. refuse, with the function and source line, what a legacy kernel cannot run:
//!    signed division (BPF cpu v4, kernel 6.6), 128-bit arithmetic, floating point,
//!    calls left un-inlined, calls to functions that do not exist in BPF;
//! 6. emit the object with its debug info (DWARF and .BTF) kept.

use std::ffi::{c_char, c_void, CStr, CString};
use std::fmt;

use super::api::{self, opcode, Api};
use super::ir;

#[derive(Debug, Clone)]
pub struct Options {
    /// BPF cpu: `v1` (every kernel), `v2` (4.14+), `v3` (5.1+).
    pub cpu: String,
}

impl Default for Options {
    fn default() -> Self {
        Options { cpu: "v1".into() }
    }
}

#[derive(Debug)]
pub struct Output {
    pub object: Vec<u8>,
    /// Things that load only on newer kernels (global data, ...): reported, not refused.
    pub warnings: Vec<String>,
}

/// One thing in the program that a (legacy) kernel cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub function: String,
    pub location: Option<String>,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: in `{}`: {}", self.function, self.what),
            None => write!(f, "in `{}`: {}", self.function, self.what),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("LLVM cannot read the bitcode (was it written by another rustc?)")]
    Parse,
    #[error("LLVM has no BPF target: {0}")]
    Target(String),
    #[error("LLVM optimisation failed: {0}")]
    Passes(String),
    #[error("BPF code generation failed:\n  {}", .0.join("\n  "))]
    Codegen(Vec<String>),
    #[error("the program uses what BPF kernels cannot run:\n  {}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Refused(Vec<Problem>),
}

/// Owns the LLVM context/module/target machine of one compilation and frees them on drop.
struct Session<'a> {
    llvm: &'a Api,
    context: api::Context,
    module: api::Module,
    machine: api::TargetMachine,
    /// Boxed so its address stays put while LLVM holds it; freed after the context.
    diagnostics: Box<DiagnosticSink>,
}

struct DiagnosticSink {
    llvm: *const Api,
    errors: Vec<String>,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // SAFETY: each handle was created by this session and is freed once, module before
        // its context.
        unsafe {
            if !self.machine.is_null() {
                (self.llvm.LLVMDisposeTargetMachine)(self.machine);
            }
            if !self.module.is_null() {
                (self.llvm.LLVMDisposeModule)(self.module);
            }
            (self.llvm.LLVMContextDispose)(self.context);
        }
    }
}

/// Collects error diagnostics instead of letting LLVM's default handler exit the process.
unsafe extern "C" fn on_diagnostic(info: *mut c_void, sink: *mut c_void) {
    // SAFETY: `sink` is the session's boxed DiagnosticSink, registered for the context's
    // lifetime; the description is a heap string we own and must free.
    unsafe {
        let sink = &mut *sink.cast::<DiagnosticSink>();
        let llvm = &*sink.llvm;
        if (llvm.LLVMGetDiagInfoSeverity)(info) == api::DIAGNOSTIC_ERROR {
            let text = (llvm.LLVMGetDiagInfoDescription)(info);
            sink.errors
                .push(CStr::from_ptr(text).to_string_lossy().into_owned());
            (llvm.LLVMDisposeMessage)(text);
        }
    }
}

fn take_message(llvm: &Api, msg: *mut c_char) -> String {
    if msg.is_null() {
        return String::new();
    }
    // SAFETY: LLVM handed us ownership of a NUL-terminated message.
    unsafe {
        let s = CStr::from_ptr(msg).to_string_lossy().into_owned();
        (llvm.LLVMDisposeMessage)(msg);
        s
    }
}

fn initialise(llvm: &Api) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain initialisers; the option strings outlive the call.
        unsafe {
            (llvm.LLVMInitializeBPFTargetInfo)();
            (llvm.LLVMInitializeBPFTarget)();
            (llvm.LLVMInitializeBPFTargetMC)();
            (llvm.LLVMInitializeBPFAsmPrinter)();
            // Keep `unreachable` an `exit`-free hole we rewrite ourselves (no __bpf_trap).
            let args = [
                c"cargo-bpf".as_ptr(),
                c"-bpf-disable-trap-unreachable".as_ptr(),
            ];
            (llvm.LLVMParseCommandLineOptions)(args.len() as i32, args.as_ptr(), std::ptr::null());
        }
    });
}

pub fn compile(llvm: &Api, bitcode: &[u8], options: &Options) -> Result<Output, CompileError> {
    initialise(llvm);
    // SAFETY: a fresh context, owned by the session below.
    let context = unsafe { (llvm.LLVMContextCreate)() };
    let mut session = Session {
        llvm,
        context,
        module: std::ptr::null_mut(),
        machine: std::ptr::null_mut(),
        diagnostics: Box::new(DiagnosticSink {
            llvm,
            errors: Vec::new(),
        }),
    };
    let sink: *mut DiagnosticSink = &mut *session.diagnostics;
    // SAFETY: the sink is boxed inside the session and outlives its context.
    unsafe { (llvm.LLVMContextSetDiagnosticHandler)(context, Some(on_diagnostic), sink.cast()) };
    run(&mut session, bitcode, options)
}

fn run(s: &mut Session<'_>, bitcode: &[u8], options: &Options) -> Result<Output, CompileError> {
    let llvm = s.llvm;
    // SAFETY: the buffer copies `bitcode`; parsing does not take ownership of it, so it is
    // freed right after.
    unsafe {
        let buffer = (llvm.LLVMCreateMemoryBufferWithMemoryRangeCopy)(
            bitcode.as_ptr().cast(),
            bitcode.len(),
            c"probe.bc".as_ptr(),
        );
        let failed = (llvm.LLVMParseBitcodeInContext2)(s.context, buffer, &mut s.module);
        (llvm.LLVMDisposeMemoryBuffer)(buffer);
        if failed != 0 || s.module.is_null() {
            s.module = std::ptr::null_mut();
            return Err(CompileError::Parse);
        }
    }
    s.machine = target_machine(llvm, &options.cpu)?;
    let mut warnings = Vec::new();
    prepare_functions(llvm, s.context, s.module);
    drop_alignment_markers(llvm, s.module, &mut warnings);
    // SAFETY: module and machine are live; the data layout is copied into the module.
    unsafe {
        (llvm.LLVMSetTarget)(s.module, c"bpfel".as_ptr());
        let layout = (llvm.LLVMCreateTargetDataLayout)(s.machine);
        (llvm.LLVMSetModuleDataLayout)(s.module, layout);
        (llvm.LLVMDisposeTargetData)(layout);
    }
    // SAFETY: as above; the returned error is consumed.
    unsafe {
        let pbo = (llvm.LLVMCreatePassBuilderOptions)();
        let err = (llvm.LLVMRunPasses)(
            s.module,
            c"always-inline,default<O3>".as_ptr(),
            s.machine,
            pbo,
        );
        (llvm.LLVMDisposePassBuilderOptions)(pbo);
        if !err.is_null() {
            let msg = (llvm.LLVMGetErrorMessage)(err);
            let text = CStr::from_ptr(msg).to_string_lossy().into_owned();
            (llvm.LLVMDisposeErrorMessage)(msg);
            return Err(CompileError::Passes(text));
        }
    }
    unreachable_to_return(llvm, s.context, s.module);
    let problems = legacy_problems(llvm, s.module);
    if !problems.is_empty() {
        return Err(CompileError::Refused(problems));
    }
    warnings.extend(global_data(llvm, s.module));
    let object = emit(s)?;
    Ok(Output { object, warnings })
}

fn target_machine(llvm: &Api, cpu: &str) -> Result<api::TargetMachine, CompileError> {
    let cpu = CString::new(cpu).map_err(|_| CompileError::Target("bad cpu name".into()))?;
    let mut target = std::ptr::null_mut();
    let mut err = std::ptr::null_mut();
    // SAFETY: out-pointers are valid; strings are NUL-terminated.
    unsafe {
        if (llvm.LLVMGetTargetFromTriple)(c"bpfel".as_ptr(), &mut target, &mut err) != 0 {
            return Err(CompileError::Target(take_message(llvm, err)));
        }
        // opt level 3 (aggressive), default reloc model and code model
        let tm = (llvm.LLVMCreateTargetMachine)(
            target,
            c"bpfel".as_ptr(),
            cpu.as_ptr(),
            c"".as_ptr(),
            3,
            0,
            0,
        );
        if tm.is_null() {
            return Err(CompileError::Target(format!("no BPF cpu {cpu:?}")));
        }
        Ok(tm)
    }
}

fn enum_attribute(llvm: &Api, name: &str) -> u32 {
    // SAFETY: LLVM reads `name.len()` bytes.
    unsafe { (llvm.LLVMGetEnumAttributeKindForName)(name.as_ptr().cast(), name.len()) }
}

/// Host attributes out, inlining forced in, personalities dropped.
fn prepare_functions(llvm: &Api, context: api::Context, module: api::Module) {
    let noinline = enum_attribute(llvm, "noinline");
    let uwtable = enum_attribute(llvm, "uwtable");
    let nonlazybind = enum_attribute(llvm, "nonlazybind");
    // SAFETY: context is live.
    let always =
        unsafe { (llvm.LLVMCreateEnumAttribute)(context, enum_attribute(llvm, "alwaysinline"), 0) };
    for f in ir::functions(llvm, module) {
        if ir::name(llvm, f).starts_with("llvm.") {
            continue;
        }
        // SAFETY: `f` is a live function of the module; attribute edits are local to it.
        unsafe {
            for key in [
                "target-cpu",
                "target-features",
                "tune-cpu",
                "probe-stack",
                "frame-pointer",
            ] {
                (llvm.LLVMRemoveStringAttributeAtIndex)(
                    f,
                    api::FUNCTION_INDEX,
                    key.as_ptr().cast(),
                    key.len() as u32,
                );
            }
            (llvm.LLVMRemoveEnumAttributeAtIndex)(f, api::FUNCTION_INDEX, uwtable);
            (llvm.LLVMRemoveEnumAttributeAtIndex)(f, api::FUNCTION_INDEX, nonlazybind);
        }
        if ir::is_declaration(llvm, f) {
            continue;
        }
        // SAFETY: as above.
        unsafe {
            if (llvm.LLVMHasPersonalityFn)(f) != 0 {
                (llvm.LLVMSetPersonalityFn)(f, std::ptr::null_mut());
            }
            (llvm.LLVMRemoveEnumAttributeAtIndex)(f, api::FUNCTION_INDEX, noinline);
            (llvm.LLVMAddAttributeAtIndex)(f, api::FUNCTION_INDEX, always);
        }
        for block in ir::blocks(llvm, f) {
            for inst in ir::instructions(llvm, block) {
                if ir::opcode(llvm, inst) == opcode::CALL {
                    // SAFETY: `inst` is a live call instruction.
                    unsafe {
                        (llvm.LLVMRemoveCallSiteEnumAttribute)(inst, api::FUNCTION_INDEX, noinline)
                    };
                }
            }
        }
    }
}

/// `#[map]` emits `MAP_VALUE_ALIGN_<map>` only so the build can see the value alignment.
/// Above 8 bytes the kernel does not guarantee it; the marker itself must not reach the
/// object (it would be global data).
fn drop_alignment_markers(llvm: &Api, module: api::Module, warnings: &mut Vec<String>) {
    for g in ir::globals(llvm, module) {
        let name = ir::name(llvm, g);
        let Some(map) = name.strip_prefix("MAP_VALUE_ALIGN_") else {
            continue;
        };
        // SAFETY: `g` is a live global; it is deleted only when nothing uses it.
        unsafe {
            let align = (llvm.LLVMGetAlignment)(g);
            if align > 8 {
                warnings.push(format!(
                    "map {map}: value alignment is {align} bytes; the kernel only guarantees 8, \
                     so references from get()/get_mut() may be misaligned"
                ));
            }
            if (llvm.LLVMGetFirstUse)(g).is_null() {
                (llvm.LLVMDeleteGlobal)(g);
            }
        }
    }
}

fn unreachable_to_return(llvm: &Api, context: api::Context, module: api::Module) {
    // SAFETY: context is live; the builder is disposed below.
    let builder = unsafe { (llvm.LLVMCreateBuilderInContext)(context) };
    for f in ir::functions(llvm, module) {
        if ir::is_declaration(llvm, f) {
            continue;
        }
        // SAFETY: `f` is a live function.
        let ret_ty = unsafe { (llvm.LLVMGetReturnType)((llvm.LLVMGlobalGetValueType)(f)) };
        for block in ir::blocks(llvm, f) {
            // SAFETY: the terminator is replaced by a `ret` of the function's return type.
            unsafe {
                let term = (llvm.LLVMGetBasicBlockTerminator)(block);
                if term.is_null() || ir::opcode(llvm, term) != opcode::UNREACHABLE {
                    continue;
                }
                (llvm.LLVMPositionBuilderBefore)(builder, term);
                if (llvm.LLVMGetTypeKind)(ret_ty) == api::type_kind::VOID {
                    (llvm.LLVMBuildRetVoid)(builder);
                } else {
                    (llvm.LLVMBuildRet)(builder, (llvm.LLVMConstNull)(ret_ty));
                }
                (llvm.LLVMInstructionEraseFromParent)(term);
            }
        }
    }
    // SAFETY: created above.
    unsafe { (llvm.LLVMDisposeBuilder)(builder) };
}

/// libcalls LLVM emits for 128-bit arithmetic.
fn is_int128_libcall(name: &str) -> bool {
    matches!(
        name,
        "__multi3"
            | "__divti3"
            | "__udivti3"
            | "__modti3"
            | "__umodti3"
            | "__muloti4"
            | "__udivmodti4"
            | "__ashlti3"
            | "__ashrti3"
            | "__lshrti3"
    )
}

fn legacy_problems(llvm: &Api, module: api::Module) -> Vec<Problem> {
    let mut problems = Vec::new();
    for f in ir::functions(llvm, module) {
        if ir::is_declaration(llvm, f) {
            continue;
        }
        let function = ir::demangle(&ir::name(llvm, f));
        let in_program = ir::section(llvm, f).is_some_and(|s| !s.is_empty() && s != ".text");
        for block in ir::blocks(llvm, f) {
            for inst in ir::instructions(llvm, block) {
                let what = problem(llvm, inst, in_program);
                if let Some(what) = what {
                    let p = Problem {
                        function: function.clone(),
                        location: ir::location(llvm, inst),
                        what,
                    };
                    if !problems.contains(&p) {
                        problems.push(p);
                    }
                }
            }
        }
    }
    problems
}

fn problem(llvm: &Api, inst: api::Value, in_program: bool) -> Option<String> {
    let wide = || ir::int_width(llvm, inst).is_some_and(|w| w > 64);
    match ir::opcode(llvm, inst) {
        opcode::SDIV | opcode::SREM if wide() => Some("128-bit division is not supported in BPF".into()),
        opcode::SDIV | opcode::SREM => Some(
            "signed division/remainder needs BPF cpu v4 (kernel >= 6.6); divide unsigned values or \
             shift instead"
                .into(),
        ),
        12 | 14 | 17 if wide() => Some("128-bit arithmetic is not supported in BPF (u128/i128)".into()),
        opcode::FADD | opcode::FSUB | opcode::FMUL | opcode::FDIV | opcode::FREM | opcode::FNEG => {
            Some("floating point is not supported in BPF".into())
        }
        opcode::CALL => {
            let callee = ir::callee(llvm, inst)?;
            let name = ir::name(llvm, callee);
            // SAFETY: `callee` is a live function.
            let intrinsic = unsafe { (llvm.LLVMGetIntrinsicID)(callee) } != 0;
            if intrinsic {
                let sized = ["llvm.memcpy", "llvm.memmove", "llvm.memset"];
                let constant_len = ir::operand(llvm, inst, 2)
                    // SAFETY: operand is a live value.
                    .is_some_and(|len| unsafe { !(llvm.LLVMIsAConstantInt)(len).is_null() });
                return (sized.iter().any(|p| name.starts_with(p)) && !constant_len).then(|| {
                    format!("`{}` with a length known only at run time cannot be expanded in BPF", &name[5..11])
                });
            }
            if is_int128_libcall(&name) {
                return Some(format!("128-bit arithmetic is not supported in BPF (needs `{name}`)"));
            }
            if ir::is_declaration(llvm, callee) {
                return Some(format!("call to `{}`, which does not exist in a BPF program", ir::demangle(&name)));
            }
            let _ = in_program;
            Some(format!(
                "call to `{}` was not inlined (BPF-to-BPF calls need kernel >= 4.16)",
                ir::demangle(&name)
            ))
        }
        _ => None,
    }
}

/// Globals that will become .data/.rodata/.bss maps (kernels >= 5.2 only).
fn global_data(llvm: &Api, module: api::Module) -> Vec<String> {
    ir::globals(llvm, module)
        .into_iter()
        .filter(|&g| !ir::is_declaration(llvm, g))
        .filter_map(|g| {
            let name = ir::name(llvm, g);
            let section = ir::section(llvm, g).unwrap_or_default();
            let known = section.starts_with("maps") || section == "license" || section == "version";
            (!known && !name.starts_with("llvm.")).then(|| {
                let what =
                    if name.starts_with("alloc_") || name.starts_with(".L") || name.is_empty() {
                        "constant data (e.g. a value like `&1` passed by reference)".to_string()
                    } else {
                        format!("global `{}`", ir::demangle(&name))
                    };
                format!(
                    "{what} becomes a .rodata/.data/.bss map: kernels before 5.2 cannot load it"
                )
            })
        })
        .collect()
}

fn emit(s: &mut Session<'_>) -> Result<Vec<u8>, CompileError> {
    let llvm = s.llvm;
    let mut err = std::ptr::null_mut();
    let mut buffer = std::ptr::null_mut();
    // SAFETY: machine and module are live; the buffer is copied out then freed.
    unsafe {
        let failed = (llvm.LLVMTargetMachineEmitToMemoryBuffer)(
            s.machine,
            s.module,
            1,
            &mut err,
            &mut buffer,
        );
        let mut messages = std::mem::take(&mut s.diagnostics.errors);
        if failed != 0 || buffer.is_null() || !messages.is_empty() {
            let msg = take_message(llvm, err);
            if !msg.is_empty() {
                messages.push(msg);
            }
            if !buffer.is_null() {
                (llvm.LLVMDisposeMemoryBuffer)(buffer);
            }
            return Err(CompileError::Codegen(messages));
        }
        let start = (llvm.LLVMGetBufferStart)(buffer).cast::<u8>();
        let bytes = std::slice::from_raw_parts(start, (llvm.LLVMGetBufferSize)(buffer)).to_vec();
        (llvm.LLVMDisposeMemoryBuffer)(buffer);
        Ok(bytes)
    }
}
