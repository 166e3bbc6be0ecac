#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| neuroscreen_fuzz::camera(data));
