//! A short soak through the real service (`neuroscreen soak`, the same
//! command docs/RELIABILITY.md's 10,000-slice figures come from): no file
//! descriptor growth, bounded memory growth, every slice screened.

use neuroscreen_e2e::{neuroscreen, repo};
use serde_json::Value;
use std::process::Command;

#[test]
fn three_hundred_slices_through_the_inbox_leak_no_fds_and_little_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("soak.json");
    let out = Command::new(neuroscreen())
        .args(["soak", "--slices", "300", "--window", "100", "--dir"])
        .arg(tmp.path().join("box"))
        .arg("--models")
        .arg(repo().join("models"))
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["slices"], 300);
    assert_eq!(r["errors"], 0);
    assert_eq!(r["service_exit_code"], 0);
    let windows = r["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    let field = |w: &Value, k: &str| w[k].as_u64().unwrap();
    let first = &windows[0];
    for w in windows {
        // A file being written at the moment of sampling may be open.
        assert!(
            field(w, "fds") <= field(first, "fds") + 2,
            "fds grew: {windows:#?}"
        );
    }
    // Results and the ledger grow a little per slice; a leak of a slice's
    // buffers (about 1 MB each) would show as hundreds of MB here.
    let grown = field(&windows[2], "rss_kib") as i64 - field(first, "rss_kib") as i64;
    assert!(grown < 32 * 1024, "RSS grew {grown} KiB over 200 slices");
}
