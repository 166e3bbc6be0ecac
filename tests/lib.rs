//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

/// The `neuroscreen` binary of this build. `cargo test --workspace` builds
/// it (firmware's own tests need it); it sits beside the test executables'
/// `deps/` folder.
pub fn neuroscreen() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile folder");
    let bin = dir.join(format!("neuroscreen{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace`, which builds it",
        bin.display()
    );
    bin
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
