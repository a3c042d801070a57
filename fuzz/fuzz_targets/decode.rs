//! Untrusted bytes into face-core's decoder: any outcome but a panic, an
//! abort or unbounded memory is fine. The limits are the server's defaults,
//! so a header claiming 30000×30000 must be refused before allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = face_core::DecodeLimits::default();
    let _ = face_core::decode(data, &limits);
    let _ = face_core::decode_scaled(data, &limits, 1024);
});
