//! Perf ring records: `sys::perf::parse_record` on arbitrary bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::sys::perf::{self, Record};

fuzz_target!(|data: &[u8]| {
    match perf::parse_record(data) {
        Some(Record::Sample(s)) => {
            // The sample is a slice of the record, after the 12-byte header.
            assert!(s.len() + 12 <= data.len());
            let base = data.as_ptr() as usize;
            let at = s.as_ptr() as usize;
            assert!(s.is_empty() || (at >= base + 12 && at + s.len() <= base + data.len()));
        }
        Some(Record::Lost(_)) => assert!(data.len() >= 24),
        Some(Record::Other(t)) => assert!(t != perf::RECORD_SAMPLE && t != perf::RECORD_LOST),
        None => {}
    }
});
