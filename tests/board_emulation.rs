//! The board's build: `neuroscreen` cross-built for aarch64 and run under
//! qemu-user as a Raspberry Pi 4 (Cortex-A72) and a Pi 5 (Cortex-A76) over
//! the shipped samples, checked against this machine's run of the same
//! model files. Emulated timings mean nothing and are not looked at.
//!
//! `scripts/test.sh` cross-builds the binary first and sets
//! `NEUROSCREEN_REQUIRE_AARCH64=1`, so there a missing binary fails the test;
//! a plain `cargo test` without the cross toolchain skips it, saying so.

use neuroscreen_e2e::board_support::{aarch64_beside, results_by_name as results, SYSROOT};
use neuroscreen_e2e::{neuroscreen, repo};
use serde_json::Value;
use std::process::Command;

/// What the board run may differ by from this machine's: the same model
/// file on other kernels (ARM NEON vs x86 AVX, a different summation
/// order) flips at most a few edge pixels.
const MAX_PROBABILITY_DIFF: f64 = 0.01;
const MAX_MASK_PIXELS_DIFFERENT: f64 = 0.005;

fn mask(v: &Value) -> Option<Vec<u8>> {
    v["mask"]
        .as_str()
        .map(|p| image::open(p).unwrap().to_luma8().into_raw())
}

#[test]
fn the_board_build_under_emulation_matches_this_machine() {
    let Some(board_bin) = aarch64_beside(&neuroscreen()) else {
        assert!(
            std::env::var_os("NEUROSCREEN_REQUIRE_AARCH64").is_none(),
            "the aarch64 neuroscreen was not built (scripts/test.sh builds it)"
        );
        eprintln!("skipped: no aarch64 build (run scripts/test.sh, which cross-builds it)");
        return;
    };
    let models = repo().join("models");
    let samples = models.join("samples");
    let tmp = tempfile::tempdir().unwrap();

    // The Pi 4 as installed (`auto`, which takes f32 on every CPU), the
    // Pi 5 on the quantised files, so both paths run on ARM kernels.
    for (cpu, choice, precision) in [
        ("cortex-a72", "auto", "f32"),
        ("cortex-a76", "int8", "int8"),
    ] {
        let host_out = tmp.path().join(format!("x86_64-{precision}"));
        let host = Command::new(neuroscreen())
            .arg("scan")
            .arg(&samples)
            .arg("--out")
            .arg(&host_out)
            .arg("--models")
            .arg(&models)
            .args(["--precision", precision])
            .output()
            .unwrap();
        assert!(
            host.status.success(),
            "{}",
            String::from_utf8_lossy(&host.stderr)
        );
        let reference = results(&host_out);
        assert!(reference.len() >= 8, "{reference:?}");

        let out = tmp.path().join(cpu);
        let run = Command::new("qemu-aarch64")
            .args(["-cpu", cpu, "-L", SYSROOT])
            .arg(&board_bin)
            .arg("scan")
            .arg(&samples)
            .arg("--out")
            .arg(&out)
            .arg("--models")
            .arg(&models)
            .args(["--precision", choice])
            .output()
            .expect("qemu-aarch64 (Debian qemu-user; scripts/setup.sh installs it)");
        assert!(
            run.status.success(),
            "{cpu}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let board = results(&out);
        assert_eq!(
            board.keys().collect::<Vec<_>>(),
            reference.keys().collect::<Vec<_>>(),
            "{cpu}"
        );
        for (name, want) in &reference {
            let got = &board[name];
            assert_eq!(
                got["precision"], precision,
                "{cpu} {name}: --precision {choice}"
            );
            assert_eq!(got["verdict"], want["verdict"], "{cpu} {name}");
            let dp = (got["tumour_probability"].as_f64().unwrap()
                - want["tumour_probability"].as_f64().unwrap())
            .abs();
            assert!(
                dp <= MAX_PROBABILITY_DIFF,
                "{cpu} {name}: p differs by {dp}"
            );
            match (mask(got), mask(want)) {
                (Some(a), Some(b)) => {
                    assert_eq!(a.len(), b.len());
                    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
                    let share = differ as f64 / a.len() as f64;
                    assert!(
                        share <= MAX_MASK_PIXELS_DIFFERENT,
                        "{cpu} {name}: {differ} mask pixels differ ({share:.4})"
                    );
                }
                (None, None) => {}
                (a, b) => panic!(
                    "{cpu} {name}: mask on one side only ({} vs {})",
                    a.is_some(),
                    b.is_some()
                ),
            }
        }
    }
}
