//! The board build and what it writes, for the tests that run it under
//! qemu here (tests/board_emulation.rs through this crate,
//! firmware/tests/hil.rs by path).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Debian's aarch64 libraries, for `qemu-aarch64 -L`.
pub const SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// The aarch64 `neuroscreen` of the same profile as `host` (scripts/test.sh
/// cross-builds it), if it was built.
pub fn aarch64_beside(host: &Path) -> Option<PathBuf> {
    let profile = host.parent()?.file_name()?.to_owned();
    let bin = host
        .parent()?
        .parent()?
        .join("aarch64-unknown-linux-gnu")
        .join(profile)
        .join("neuroscreen");
    bin.exists().then_some(bin)
}

/// The records of `<out>/results.jsonl`, by input file name.
pub fn results_by_name(out: &Path) -> BTreeMap<String, Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let name = Path::new(v["input"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, v)
        })
        .collect()
}
