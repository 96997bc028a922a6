//! `uprobe/SYMBOL` (+ `--uprobe-target`), `uprobe//path/bin:SYMBOL`, and the `uretprobe`
//! forms. Kernel >= 4.3 (aya uses the uprobe PMU from 4.17, tracefs `uprobe_events` before).

use std::num::NonZeroU32;

use aya::programs::uprobe::UProbeScope;
use aya::programs::UProbe;

use super::{load_error, AttachError, Attached, Context};

/// What is wrong with uprobe target `target` for `symbol`, if it is a path (a bare library
/// name such as `libc` is left to aya, which looks it up in ld.so.cache): missing, not a
/// regular file, not ELF, or without the symbol in its symbol tables.
pub fn check_target(target: &str, symbol: &str) -> Result<(), String> {
    use object::{Object, ObjectSymbol};
    if !target.contains('/') {
        return Ok(());
    }
    let path = std::path::Path::new(target);
    let meta = std::fs::metadata(path).map_err(|e| format!("{target}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "{target} is not a regular file (a binary or library)"
        ));
    }
    let data = std::fs::read(path).map_err(|e| format!("{target}: {e}"))?;
    let file = object::File::parse(&*data).map_err(|_| format!("{target} is not an ELF binary"))?;
    let has = |name: &str| name == symbol || name.split('@').next() == Some(symbol);
    let found = file
        .symbols()
        .chain(file.dynamic_symbols())
        .any(|s| s.name().is_ok_and(has));
    if !found {
        return Err(format!(
            "{target} has no symbol {symbol} (stripped? `nm -D {target}` lists its dynamic symbols; `--attach SECTION={target}:SYMBOL` names another)"
        ));
    }
    Ok(())
}

/// Loads and attaches a uprobe/uretprobe.
pub fn attach(
    p: &mut UProbe,
    target: Option<&str>,
    symbol: &str,
    ctx: &mut Context,
) -> Result<Attached, AttachError> {
    p.load().map_err(load_error)?;
    let target = target
        .map(str::to_owned)
        .or_else(|| ctx.uprobe_target.clone())
        .ok_or(AttachError::NeedUprobeTarget)?;
    let scope = match ctx.uprobe_pid.and_then(NonZeroU32::new) {
        Some(pid) => UProbeScope::OneProcess(pid),
        None => UProbeScope::AllProcesses,
    };
    check_target(&target, symbol).map_err(AttachError::UprobeTarget)?;
    let what = format!("{target}:{symbol}");
    p.attach(symbol, &target, scope)
        .map_err(|e| AttachError::attach(&what, e))?;
    Ok(Attached::to(what))
}

#[cfg(test)]
mod tests {
    use super::check_target;

    #[test]
    fn each_wrong_target_says_what_is_wrong() {
        let e = check_target("/nonexistent/bin", "f").unwrap_err();
        assert!(e.contains("No such file"), "{e}");
        let e = check_target("/usr", "f").unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let e = check_target("/etc/hostname", "f").unwrap_err();
        assert!(e.contains("not an ELF binary"), "{e}");
        let me = std::env::current_exe().unwrap();
        let me = me.to_str().unwrap();
        let e = check_target(me, "no_such_symbol_here").unwrap_err();
        assert!(e.contains("has no symbol no_such_symbol_here"), "{e}");
        check_target(me, "main").unwrap();
        // libc's dynamic symbols (versioned names) are found too.
        check_target("/lib/x86_64-linux-gnu/libc.so.6", "malloc").unwrap();
        // Library names are aya's to resolve.
        check_target("libc", "anything").unwrap();
    }
}
