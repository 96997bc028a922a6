//! The static checker: `check::analyze` on arbitrary bytes (and its BTF `.maps` reader and
//! instruction decoder directly), results rendered as JSON lines that must parse.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use loader::check::report::{Format, Printer, Summary};
use loader::check::{self, btf, insn, Version};

fuzz_target!(|data: &[u8]| {
    match check::analyze(data) {
        Ok(programs) => {
            for format in [Format::Json, Format::Human] {
                let mut printer = Printer::new(Vec::new(), format, Version::new(4, 14));
                for a in &programs {
                    a.min_kernel();
                    printer.program("fuzz.elf", a).ok();
                }
                printer.summary(&Summary::default()).ok();
                let out = printer.into_inner();
                if format == Format::Json {
                    common::assert_json_lines(&out);
                }
            }
        }
        Err(e) => {
            let mut printer = Printer::new(Vec::new(), Format::Json, Version::new(4, 14));
            printer.error("fuzz.elf", &e.to_string()).ok();
            common::assert_json_lines(&printer.into_inner());
        }
    }
    btf::maps(data).ok();
    let insns = insn::decode(data);
    for &i in &insns {
        insn::call(i);
        insn::extension(i);
    }
    insn::back_edges(&insns);
});
