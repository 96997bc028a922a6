//! Debug-info type reader: `Object::parse` (its `types`), then the queries run.rs makes
//! (`perf_record_type`, `map_kv_types`, `named_type`, `variable_type`) for every map of
//! the object and every name-like string in it, and each type found decoded from bytes.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use loader::decode;
use loader::dwarf::Type;
use loader::object::Object;
use loader::maps;

/// Decodes `ty` from a fixed byte pattern (short, exact and long records).
fn exercise(ty: &Type) {
    let pattern: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let size = (ty.size() as usize).min(pattern.len() - 16);
    for len in [0, size / 2, size, size + 16] {
        let mut out = Vec::new();
        decode::record(&mut out, Some(ty), &pattern[..len]);
        common::assert_json(&out);
        out.clear();
        maps::write_typed(&mut out, Some(ty), &pattern[..len]);
        common::assert_json(&out);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = Object::parse("fuzz", data.to_vec()) else {
        return;
    };
    let table = &obj.types;
    let mut names = common::names(data, 64);
    names.extend(obj.info.maps.iter().map(|m| m.name.clone()));
    for name in &names {
        let (k, v) = table.map_kv_types(name);
        let found = [
            table.named_type(name),
            table.variable_type(name),
            table.perf_record_type(name),
            k,
            v,
        ];
        for ty in found.iter().flatten() {
            exercise(ty);
        }
    }
});
