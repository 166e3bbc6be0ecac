//! `neuroscreen demo` on the shipped models and samples: the README's main
//! command.

use neuroscreen_e2e::{neuroscreen, repo};
use std::process::Command;

#[test]
fn demo_scans_the_samples_draws_screens_and_meets_the_shipped_expectation() {
    let repo = repo();
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(neuroscreen())
        .current_dir(&repo)
        .args(["demo", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let log = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 8);
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_ne!(v["verdict"], "error", "{line}");
    }
    let screens: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("screen_"))
        .collect();
    assert_eq!(screens.len(), 8);
    for s in screens {
        let img = image::open(s.path()).unwrap();
        assert_eq!((img.width(), img.height()), (480, 320));
    }
    // The shipped set learnt from real scans (LGG, Figshare); the samples
    // are phantoms (synthetic lesions painted on template brains), which it
    // never saw. It outlines both FLAIR phantoms (Dice 0.82 and 0.63) and
    // keeps both clear samples clear; the set before it also flagged the T2
    // phantom, but with a mask beside the painted lesion (Dice 0), so a
    // right verdict is counted only when a tumour sample's mask overlaps its
    // truth: 4 of 8 for both sets (docs/EVALUATION.md). What is asserted is
    // what a set must not lose: no clear sample flagged and no fewer
    // samples right by that count.
    let right = stdout
        .lines()
        .filter(|l| l.starts_with("sample_"))
        .filter(|row| {
            let f: Vec<&str> = row.split_whitespace().collect();
            match (f[1], f[2]) {
                ("clear", "clear") => true,
                ("tumour", "tumour") => f[5].parse::<f64>().is_ok_and(|d| d > 0.0),
                _ => false,
            }
        })
        .count();
    assert!(right >= 4, "{right} of 8 right\n{stdout}");
    for sample in ["sample_07_clear_stacked.png", "sample_08_clear_t1.png"] {
        let row = stdout.lines().find(|l| l.starts_with(sample)).unwrap();
        assert!(row.contains(" clear   clear "), "{row}");
    }
}
