//! ELF object model and the aya rewrite: `Object::parse`, `Object::aya_bytes` and the
//! section-name parser on every program section found; the vDSO note and netlink ack
//! parsers on the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::elf::{self, map_type};
use loader::object::{AyaPlan, Object};
use loader::section;

fuzz_target!(|data: &[u8]| {
    // The vDSO's Linux note (the running kernel's LINUX_VERSION_CODE) and netlink acks:
    // byte parsers of kernel output too.
    loader::kernel::parse_vdso_version_code(data);
    loader::sys::netlink::parse_ack(data, 1);
    let Ok(obj) = Object::parse("fuzz", data.to_vec()) else {
        return;
    };
    let info = &obj.info;
    for p in &info.programs {
        section::parse(&p.section).kind();
        elf::aya_knows_section(&p.section);
        assert!(info.program_by_symbol(&p.symbol).is_some());
    }
    for m in &info.maps {
        map_type::name(m.def.map_type);
        map_type::dumpable(m.def.map_type);
        map_type::per_cpu(m.def.map_type);
    }
    // Perf arrays completed in place: never out of bounds, never a size change.
    let mut copy = data.to_vec();
    elf::complete_perf_arrays(info, Some(4), &mut copy);
    assert_eq!(copy.len(), data.len());
    if let Some(off) = info.version_offset {
        // The running kernel's version code is written there.
        assert!(off.checked_add(4).is_some_and(|end| end <= data.len()));
    }
    let every_program: Vec<String> = info.programs.iter().map(|p| p.section.clone()).collect();
    // Before 5.0 (no BTF with programs: BTF maps become legacy ones) and after.
    for (as_data, func_info) in [(Vec::new(), true), (every_program, false)] {
        let plan = AyaPlan {
            as_data,
            ncpus: Some(4),
            kern_version: 0x040f12,
            func_info,
            ..AyaPlan::default()
        };
        if let Ok(out) = obj.aya_bytes(&plan) {
            // Patches happen in place, except renames, which append a grown copy of the
            // section name table (at most 7 bytes of padding plus the old table and the new
            // names, 11 bytes per renamed 64-byte section header): never shorter, never
            // three times longer.
            assert!(out.len() >= data.len());
            assert!(out.len() <= 3 * data.len() + 16);
            Object::parse("out", out).ok();
        }
    }
    obj.global_data_programs();
});
