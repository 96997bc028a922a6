//! The LLVM C API, loaded at run time from the `libLLVM` shared library that ships inside
//! the active rustc toolchain. Reading bitcode with the very LLVM that wrote it rules out the
//! version mismatches that broke redbpf's cargo-bpf.

#![allow(non_snake_case)]

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;

use libloading::Library;

pub type Context = *mut c_void;
pub type Module = *mut c_void;
pub type Value = *mut c_void;
pub type BasicBlock = *mut c_void;
pub type Type = *mut c_void;
pub type Builder = *mut c_void;
pub type MemoryBuffer = *mut c_void;
pub type Target = *mut c_void;
pub type TargetMachine = *mut c_void;
pub type TargetData = *mut c_void;
pub type PassBuilderOptions = *mut c_void;
pub type Attribute = *mut c_void;
pub type LlvmError = *mut c_void;
pub type Bool = c_int;
pub type DiagnosticHandler = unsafe extern "C" fn(*mut c_void, *mut c_void);
/// `LLVMDSError`.
pub const DIAGNOSTIC_ERROR: c_int = 0;

/// `LLVMAttributeFunctionIndex`.
pub const FUNCTION_INDEX: c_uint = !0;
/// `LLVMOpcode` values used here (llvm-c/Core.h).
pub mod opcode {
    pub const UNREACHABLE: i32 = 7;
    pub const FADD: i32 = 9;
    pub const FSUB: i32 = 11;
    pub const FMUL: i32 = 13;
    pub const SDIV: i32 = 15;
    pub const FDIV: i32 = 16;
    pub const SREM: i32 = 18;
    pub const FREM: i32 = 19;
    pub const CALL: i32 = 45;
    pub const FNEG: i32 = 66;
}
/// `LLVMTypeKind` values used here.
pub mod type_kind {
    pub const VOID: i32 = 0;
    pub const INTEGER: i32 = 8;
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot run `rustc --print sysroot`")]
    Rustc(#[source] std::io::Error),
    #[error("`rustc --print sysroot` gave no absolute path ({0:?}); set RUSTC to a rustup toolchain's rustc")]
    Sysroot(String),
    #[error("no libLLVM shared library in {0} (is this a rustup toolchain?)")]
    NotFound(PathBuf),
    #[error("cannot load {path}")]
    Open {
        path: PathBuf,
        source: libloading::Error,
    },
    #[error("{path} does not export {symbol}")]
    Symbol {
        path: PathBuf,
        symbol: &'static str,
        source: libloading::Error,
    },
}

/// `<sysroot>/lib` from `rustc --print sysroot`'s result. Only an absolute path is taken:
/// a failed or empty answer must not turn into a relative `lib/`, where a libLLVM in the
/// current directory would be loaded.
fn sysroot_lib(success: bool, stdout: &[u8]) -> Result<PathBuf, LoadError> {
    let text = String::from_utf8_lossy(stdout).trim().to_owned();
    let sysroot = PathBuf::from(&text);
    if !success || !sysroot.is_absolute() {
        return Err(LoadError::Sysroot(text));
    }
    Ok(sysroot.join("lib"))
}

/// `$(rustc --print sysroot)/lib/libLLVM*.so*` of the rustc cargo will use.
pub fn toolchain_llvm() -> Result<PathBuf, LoadError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(LoadError::Rustc)?;
    let lib = sysroot_lib(out.status.success(), &out.stdout)?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .map_err(|_| LoadError::NotFound(lib.clone()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM") && n.contains(".so"))
        })
        .collect();
    found.sort();
    found.pop().ok_or(LoadError::NotFound(lib))
}

macro_rules! llvm_api {
    ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// Function pointers into libLLVM, valid as long as this value lives.
        pub struct Api {
            $(pub $name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
            _library: Library,
        }

        impl Api {
            pub fn load(path: &Path) -> Result<Api, LoadError> {
                // SAFETY: libLLVM's initialisers have no preconditions; it is the library
                // rustc itself runs on.
                let library = unsafe { Library::new(path) }.map_err(|source| LoadError::Open {
                    path: path.to_owned(),
                    source,
                })?;
                $(
                    // SAFETY: the pointer type matches the C declaration in llvm-c/*.h, and
                    // the library is kept alive in the returned value.
                    let $name = unsafe {
                        *library
                            .get::<unsafe extern "C" fn($($arg),*) $(-> $ret)?>(
                                concat!(stringify!($name), "\0").as_bytes(),
                            )
                            .map_err(|source| LoadError::Symbol {
                                path: path.to_owned(),
                                symbol: stringify!($name),
                                source,
                            })?
                    };
                )*
                Ok(Api { $($name,)* _library: library })
            }
        }
    };
}

llvm_api! {
    LLVMInitializeBPFTargetInfo: fn();
    LLVMInitializeBPFTarget: fn();
    LLVMInitializeBPFTargetMC: fn();
    LLVMInitializeBPFAsmPrinter: fn();
    LLVMParseCommandLineOptions: fn(c_int, *const *const c_char, *const c_char);
    LLVMContextCreate: fn() -> Context;
    LLVMContextDispose: fn(Context);
    LLVMContextSetDiagnosticHandler: fn(Context, Option<DiagnosticHandler>, *mut c_void);
    LLVMGetDiagInfoDescription: fn(*mut c_void) -> *mut c_char;
    LLVMGetDiagInfoSeverity: fn(*mut c_void) -> c_int;
    LLVMCreateMemoryBufferWithMemoryRangeCopy: fn(*const c_char, usize, *const c_char) -> MemoryBuffer;
    LLVMDisposeMemoryBuffer: fn(MemoryBuffer);
    LLVMGetBufferStart: fn(MemoryBuffer) -> *const c_char;
    LLVMGetBufferSize: fn(MemoryBuffer) -> usize;
    LLVMParseBitcodeInContext2: fn(Context, MemoryBuffer, *mut Module) -> Bool;
    LLVMDisposeModule: fn(Module);
    LLVMDisposeMessage: fn(*mut c_char);
    LLVMSetTarget: fn(Module, *const c_char);
    LLVMSetModuleDataLayout: fn(Module, TargetData);
    LLVMCreateTargetDataLayout: fn(TargetMachine) -> TargetData;
    LLVMDisposeTargetData: fn(TargetData);
    LLVMGetTargetFromTriple: fn(*const c_char, *mut Target, *mut *mut c_char) -> Bool;
    LLVMCreateTargetMachine: fn(Target, *const c_char, *const c_char, *const c_char, c_int, c_int, c_int) -> TargetMachine;
    LLVMDisposeTargetMachine: fn(TargetMachine);
    LLVMTargetMachineEmitToMemoryBuffer: fn(TargetMachine, Module, c_int, *mut *mut c_char, *mut MemoryBuffer) -> Bool;
    LLVMCreatePassBuilderOptions: fn() -> PassBuilderOptions;
    LLVMDisposePassBuilderOptions: fn(PassBuilderOptions);
    LLVMRunPasses: fn(Module, *const c_char, TargetMachine, PassBuilderOptions) -> LlvmError;
    LLVMGetErrorMessage: fn(LlvmError) -> *mut c_char;
    LLVMDisposeErrorMessage: fn(*mut c_char);
    LLVMGetFirstFunction: fn(Module) -> Value;
    LLVMGetNextFunction: fn(Value) -> Value;
    LLVMGetFirstGlobal: fn(Module) -> Value;
    LLVMGetNextGlobal: fn(Value) -> Value;
    LLVMGetValueName2: fn(Value, *mut usize) -> *const c_char;
    LLVMGetSection: fn(Value) -> *const c_char;
    LLVMIsDeclaration: fn(Value) -> Bool;
    LLVMGetAlignment: fn(Value) -> c_uint;
    LLVMGetFirstUse: fn(Value) -> *mut c_void;
    LLVMDeleteGlobal: fn(Value);
    LLVMGetIntrinsicID: fn(Value) -> c_uint;
    LLVMGetEnumAttributeKindForName: fn(*const c_char, usize) -> c_uint;
    LLVMCreateEnumAttribute: fn(Context, c_uint, u64) -> Attribute;
    LLVMAddAttributeAtIndex: fn(Value, c_uint, Attribute);
    LLVMRemoveEnumAttributeAtIndex: fn(Value, c_uint, c_uint);
    LLVMRemoveStringAttributeAtIndex: fn(Value, c_uint, *const c_char, c_uint);
    LLVMRemoveCallSiteEnumAttribute: fn(Value, c_uint, c_uint);
    LLVMHasPersonalityFn: fn(Value) -> Bool;
    LLVMSetPersonalityFn: fn(Value, Value);
    LLVMGetFirstBasicBlock: fn(Value) -> BasicBlock;
    LLVMGetNextBasicBlock: fn(BasicBlock) -> BasicBlock;
    LLVMGetBasicBlockTerminator: fn(BasicBlock) -> Value;
    LLVMGetFirstInstruction: fn(BasicBlock) -> Value;
    LLVMGetNextInstruction: fn(Value) -> Value;
    LLVMGetInstructionOpcode: fn(Value) -> c_int;
    LLVMGetNumOperands: fn(Value) -> c_int;
    LLVMGetOperand: fn(Value, c_uint) -> Value;
    LLVMGetCalledValue: fn(Value) -> Value;
    LLVMIsAFunction: fn(Value) -> Value;
    LLVMIsAConstantInt: fn(Value) -> Value;
    LLVMTypeOf: fn(Value) -> Type;
    LLVMGetTypeKind: fn(Type) -> c_int;
    LLVMGetIntTypeWidth: fn(Type) -> c_uint;
    LLVMGlobalGetValueType: fn(Value) -> Type;
    LLVMGetReturnType: fn(Type) -> Type;
    LLVMConstNull: fn(Type) -> Value;
    LLVMGetDebugLocFilename: fn(Value, *mut c_uint) -> *const c_char;
    LLVMGetDebugLocLine: fn(Value) -> c_uint;
    LLVMCreateBuilderInContext: fn(Context) -> Builder;
    LLVMDisposeBuilder: fn(Builder);
    LLVMPositionBuilderBefore: fn(Builder, Value);
    LLVMBuildRet: fn(Builder, Value) -> Value;
    LLVMBuildRetVoid: fn(Builder) -> Value;
    LLVMInstructionEraseFromParent: fn(Value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_absolute_sysroot_is_searched() {
        assert_eq!(
            sysroot_lib(true, b"/root/.rustup/toolchains/stable\n").unwrap(),
            PathBuf::from("/root/.rustup/toolchains/stable/lib")
        );
        for (ok, out) in [(false, &b"/abs"[..]), (true, b""), (true, b"relative/dir")] {
            let e = sysroot_lib(ok, out).unwrap_err();
            assert!(matches!(e, LoadError::Sysroot(_)), "{e}");
        }
    }
}
