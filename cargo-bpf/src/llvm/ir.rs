//! Thin iteration helpers over an LLVM module. Everything here works on raw LLVM handles
//! that belong to one live module; callers keep that module alive.

use std::ffi::{c_uint, CStr};

use super::api::{self, Api, BasicBlock, Value};

/// Walks a null-terminated LLVM list: `first`, then `next` until null.
pub fn list<T>(first: *mut T, next: impl Fn(*mut T) -> *mut T) -> impl Iterator<Item = *mut T> {
    std::iter::successors((!first.is_null()).then_some(first), move |&v| {
        let n = next(v);
        (!n.is_null()).then_some(n)
    })
}

pub fn functions(llvm: &Api, module: api::Module) -> Vec<Value> {
    // SAFETY: `module` is live; the list functions only read it.
    list(unsafe { (llvm.LLVMGetFirstFunction)(module) }, |f| unsafe {
        (llvm.LLVMGetNextFunction)(f)
    })
    .collect()
}

pub fn globals(llvm: &Api, module: api::Module) -> Vec<Value> {
    // SAFETY: as in `functions`.
    list(unsafe { (llvm.LLVMGetFirstGlobal)(module) }, |g| unsafe {
        (llvm.LLVMGetNextGlobal)(g)
    })
    .collect()
}

pub fn blocks(llvm: &Api, function: Value) -> Vec<BasicBlock> {
    // SAFETY: `function` is a live function value.
    list(
        unsafe { (llvm.LLVMGetFirstBasicBlock)(function) },
        |b| unsafe { (llvm.LLVMGetNextBasicBlock)(b) },
    )
    .collect()
}

pub fn instructions(llvm: &Api, block: BasicBlock) -> Vec<Value> {
    // SAFETY: `block` is a live basic block.
    list(
        unsafe { (llvm.LLVMGetFirstInstruction)(block) },
        |i| unsafe { (llvm.LLVMGetNextInstruction)(i) },
    )
    .collect()
}

pub fn name(llvm: &Api, value: Value) -> String {
    let mut len = 0usize;
    // SAFETY: LLVM returns a pointer to `len` bytes owned by the value (or null).
    unsafe {
        let ptr = (llvm.LLVMGetValueName2)(value, &mut len);
        if ptr.is_null() {
            return String::new();
        }
        String::from_utf8_lossy(std::slice::from_raw_parts(ptr.cast::<u8>(), len)).into_owned()
    }
}

pub fn section(llvm: &Api, global: Value) -> Option<String> {
    // SAFETY: LLVM returns a NUL-terminated string owned by the global, or null.
    unsafe {
        let ptr = (llvm.LLVMGetSection)(global);
        (!ptr.is_null()).then(|| CStr::from_ptr(ptr).to_string_lossy().into_owned())
    }
}

pub fn is_declaration(llvm: &Api, global: Value) -> bool {
    // SAFETY: `global` is a live global value.
    unsafe { (llvm.LLVMIsDeclaration)(global) != 0 }
}

pub fn opcode(llvm: &Api, inst: Value) -> i32 {
    // SAFETY: `inst` is a live instruction.
    unsafe { (llvm.LLVMGetInstructionOpcode)(inst) }
}

/// Integer bit width of a value's type, if it is an integer.
pub fn int_width(llvm: &Api, value: Value) -> Option<u32> {
    // SAFETY: `value` is live; type queries only read.
    unsafe {
        let ty = (llvm.LLVMTypeOf)(value);
        ((llvm.LLVMGetTypeKind)(ty) == api::type_kind::INTEGER)
            .then(|| (llvm.LLVMGetIntTypeWidth)(ty))
    }
}

pub fn operand(llvm: &Api, inst: Value, index: c_uint) -> Option<Value> {
    // SAFETY: the index is checked against the operand count.
    unsafe {
        (index < (llvm.LLVMGetNumOperands)(inst) as c_uint)
            .then(|| (llvm.LLVMGetOperand)(inst, index))
    }
}

/// `file:line` of an instruction, when it carries a debug location.
pub fn location(llvm: &Api, inst: Value) -> Option<String> {
    let mut len: c_uint = 0;
    // SAFETY: LLVM returns `len` bytes owned by the debug location, or null.
    unsafe {
        let ptr = (llvm.LLVMGetDebugLocFilename)(inst, &mut len);
        if ptr.is_null() || len == 0 {
            return None;
        }
        let file =
            String::from_utf8_lossy(std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize));
        Some(format!("{}:{}", file, (llvm.LLVMGetDebugLocLine)(inst)))
    }
}

/// The directly called function of a call instruction, if any.
pub fn callee(llvm: &Api, call: Value) -> Option<Value> {
    // SAFETY: `call` is a live call instruction.
    unsafe {
        let called = (llvm.LLVMGetCalledValue)(call);
        (!called.is_null() && !(llvm.LLVMIsAFunction)(called).is_null()).then_some(called)
    }
}

pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}
