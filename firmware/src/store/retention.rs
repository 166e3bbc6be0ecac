//! Keeping the results folder within bounds on a box that runs for months:
//! per-slice files (record, mask, overlay) of old results are removed. The
//! `results.jsonl` log is kept whole, so nothing is ever screened twice and
//! the history of verdicts stays; its picture paths may then point to
//! removed files. Inputs the appliance wrote itself (camera frames, objects
//! its DICOM receiver accepted) go with their result's files: nothing else
//! would ever remove them. What a scanner or a user put in the inbox stays.

use super::atomic::sync_dir;
use super::RESULTS_LOG;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Per-slice files older than this are removed; 0 keeps them forever.
    pub max_age_days: u32,
    /// Only the newest this many results keep their files; 0 keeps all.
    pub max_results: usize,
}

impl Retention {
    pub fn keeps_everything(&self) -> bool {
        self.max_age_days == 0 && self.max_results == 0
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct Pruned {
    pub results: usize,
    /// Result files and own inputs removed.
    pub files: usize,
}

/// The fields of a record retention needs.
#[derive(Deserialize, Default)]
struct RecordMeta {
    #[serde(default)]
    input: Option<PathBuf>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    running_s: Option<f64>,
}

/// A stored result's record file and what orders and ages it.
struct Anchor {
    record: PathBuf,
    meta: RecordMeta,
    /// Orders only records written before `seq` existed, among themselves.
    modified: SystemTime,
}

/// The record's input when it lies in one of `own_inputs`, the folders the
/// appliance writes its own inputs into. An unreadable record keeps its
/// input: removing a file nobody can trace is worse than keeping one.
fn own_input(meta: &RecordMeta, own_inputs: &[PathBuf]) -> Option<PathBuf> {
    let input = meta.input.as_ref()?;
    own_inputs
        .iter()
        .any(|d| input.parent() == Some(d.as_path()))
        .then(|| input.clone())
}

/// Removes what `policy` no longer keeps, and with each result its input
/// when that lies in `own_inputs`. Results are ordered by their place in
/// the log (`seq`) and aged by the store's running time (`store::clock`):
/// `now_running_s` is [`ResultsStore::running_s`](super::ResultsStore::running_s).
/// The wall clock is not consulted, so its jumps cannot remove a result.
/// A record from before `seq` existed counts as older than every later one
/// and as stored at running time zero.
pub fn apply(
    dir: &Path,
    policy: &Retention,
    own_inputs: &[PathBuf],
    now_running_s: f64,
) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    if policy.keeps_everything() {
        return Ok(pruned);
    }
    let mut anchors: Vec<Anchor> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == RESULTS_LOG || !name.ends_with(".json") {
            continue;
        }
        let modified = path
            .metadata()
            .and_then(|m| m.modified())
            .map_err(|e| Error::io(&path, e))?;
        let meta = std::fs::read(&path)
            .ok()
            .and_then(|text| serde_json::from_slice::<RecordMeta>(&text).ok())
            .unwrap_or_default();
        anchors.push(Anchor {
            record: path,
            meta,
            modified,
        });
    }
    anchors.sort_by_key(|a| std::cmp::Reverse((a.meta.seq.unwrap_or(0), a.modified)));
    let max_age_s = f64::from(policy.max_age_days) * 86_400.0;
    for (i, anchor) in anchors.iter().enumerate() {
        let too_many = policy.max_results > 0 && i >= policy.max_results;
        let age_s = now_running_s - anchor.meta.running_s.unwrap_or(0.0);
        let too_old = policy.max_age_days > 0 && age_s > max_age_s;
        if !(too_many || too_old) {
            continue;
        }
        let record = &anchor.record;
        let stem = record.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        // Pictures and the own input before the record: an interrupted
        // prune leaves a record without files, never files nobody can trace.
        let pictures = [
            format!("{stem}_mask.png"),
            format!("{stem}_overlay.png"),
            format!("screen_{stem}.png"),
        ]
        .map(|p| dir.join(p));
        for file in pictures
            .into_iter()
            .chain(own_input(&anchor.meta, own_inputs))
        {
            match std::fs::remove_file(&file) {
                Ok(()) => pruned.files += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&file, e)),
            }
        }
        std::fs::remove_file(record).map_err(|e| Error::io(record, e))?;
        pruned.files += 1;
        pruned.results += 1;
    }
    if pruned.results > 0 {
        sync_dir(dir)?;
        tracing::info!(
            results = pruned.results,
            files = pruned.files,
            "retention removed old result files"
        );
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File, FileTimes};
    use std::time::Duration;

    const DAY: f64 = 86_400.0;
    /// The store's running time "now" in these tests: 100 days.
    const NOW: f64 = 100.0 * DAY;

    /// A stored result: its record (with `input`, `seq` and the running
    /// time it was stored at, `age_days` before NOW) and an overlay; both
    /// files' modification times set to `wall`, the wall clock of the
    /// moment, which retention must not heed.
    fn result_at(dir: &Path, stem: &str, input: &Path, seq: u64, age_days: f64, wall: SystemTime) {
        let record = serde_json::json!({
            "input": input,
            "verdict": "clear",
            "seq": seq,
            "running_s": NOW - age_days * DAY,
        });
        fs::write(dir.join(format!("{stem}.json")), record.to_string()).unwrap();
        fs::write(dir.join(format!("{stem}_overlay.png")), b"x").unwrap();
        for name in [format!("{stem}.json"), format!("{stem}_overlay.png")] {
            File::options()
                .write(true)
                .open(dir.join(&name))
                .unwrap()
                .set_times(FileTimes::new().set_modified(wall))
                .unwrap();
        }
    }

    fn result(dir: &Path, stem: &str, seq: u64, age_days: f64) {
        let wall = SystemTime::now() - Duration::from_secs_f64(age_days * DAY);
        result_at(dir, stem, &dir.join("in.png"), seq, age_days, wall);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn old_results_lose_their_files_and_the_log_stays() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(RESULTS_LOG), b"{}\n").unwrap();
        result(d.path(), "old", 1, 40.0);
        result(d.path(), "new", 2, 1.0);
        let policy = Retention {
            max_age_days: 30,
            max_results: 0,
        };
        let pruned = apply(d.path(), &policy, &[], NOW).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                results: 1,
                files: 2
            }
        );
        assert_eq!(
            names(d.path()),
            ["new.json", "new_overlay.png", RESULTS_LOG]
        );
    }

    #[test]
    fn only_the_newest_results_are_kept_by_count() {
        let d = tempfile::tempdir().unwrap();
        for (stem, seq, age) in [("a", 1, 3.0), ("b", 3, 1.0), ("c", 2, 2.0)] {
            result(d.path(), stem, seq, age);
        }
        let policy = Retention {
            max_age_days: 0,
            max_results: 2,
        };
        apply(d.path(), &policy, &[], NOW).unwrap();
        assert_eq!(
            names(d.path()),
            ["b.json", "b_overlay.png", "c.json", "c_overlay.png"]
        );
    }

    /// The clock of a box without a battery: results stored while it read
    /// 1970, then ten years ahead, then right. Neither the jump forward nor
    /// the one back removes a result that is young in running time, and
    /// the count keeps the newest by their place in the log.
    #[test]
    fn wall_clock_jumps_neither_remove_nor_reorder_results() {
        let d = tempfile::tempdir().unwrap();
        let in_1970 = SystemTime::UNIX_EPOCH + Duration::from_secs(12);
        let ahead = SystemTime::now() + Duration::from_secs(10 * 365 * 86_400);
        let input = d.path().join("in.png");
        result_at(d.path(), "booted_in_1970", &input, 1, 2.0, in_1970);
        result_at(d.path(), "ten_years_ahead", &input, 2, 1.0, ahead);
        result_at(d.path(), "clock_right", &input, 3, 0.5, SystemTime::now());
        let by_age = Retention {
            max_age_days: 30,
            max_results: 0,
        };
        assert_eq!(
            apply(d.path(), &by_age, &[], NOW).unwrap(),
            Pruned::default()
        );
        assert_eq!(names(d.path()).len(), 6);
        // By count, the newest two by `seq`: the 1970 one goes although the
        // 10-years-ahead one looks older to a calendar.
        let by_count = Retention {
            max_age_days: 0,
            max_results: 2,
        };
        apply(d.path(), &by_count, &[], NOW).unwrap();
        assert_eq!(
            names(d.path()),
            [
                "clock_right.json",
                "clock_right_overlay.png",
                "ten_years_ahead.json",
                "ten_years_ahead_overlay.png"
            ]
        );
        // Ages still count once running time passes: 31 days on, both go.
        let later = NOW + 31.0 * DAY;
        assert_eq!(apply(d.path(), &by_age, &[], later).unwrap().results, 2);
    }

    #[test]
    fn records_from_before_seq_come_first_by_modification_time() {
        let d = tempfile::tempdir().unwrap();
        result(d.path(), "new", 1, 1.0);
        for (stem, days) in [("legacy_a", 3), ("legacy_b", 2)] {
            let json = serde_json::json!({ "input": "x.png", "verdict": "clear" });
            let record = d.path().join(format!("{stem}.json"));
            fs::write(&record, json.to_string()).unwrap();
            let t = SystemTime::now() - Duration::from_secs(days * 86_400);
            File::options()
                .write(true)
                .open(&record)
                .unwrap()
                .set_times(FileTimes::new().set_modified(t))
                .unwrap();
        }
        let policy = Retention {
            max_age_days: 0,
            max_results: 2,
        };
        apply(d.path(), &policy, &[], NOW).unwrap();
        assert_eq!(
            names(d.path()),
            ["legacy_b.json", "new.json", "new_overlay.png"]
        );
    }

    #[test]
    fn the_default_keeps_everything() {
        let d = tempfile::tempdir().unwrap();
        result(d.path(), "a", 1, 4000.0);
        let pruned = apply(d.path(), &Retention::default(), &[], NOW).unwrap();
        assert_eq!(pruned, Pruned::default());
        assert_eq!(names(d.path()).len(), 2);
    }

    #[test]
    fn inputs_the_appliance_wrote_go_with_their_results_and_others_stay() {
        let d = tempfile::tempdir().unwrap();
        let (store, camera, inbox) = (
            d.path().join("results"),
            d.path().join("inbox/camera"),
            d.path().join("inbox"),
        );
        fs::create_dir_all(&store).unwrap();
        fs::create_dir_all(&camera).unwrap();
        let frame = camera.join("cam-1-000001.png");
        let dropped = inbox.join("scanner.png");
        let newer = camera.join("cam-2-000002.png");
        for (stem, input, seq, age) in [
            ("frame", &frame, 1, 3.0),
            ("dropped", &dropped, 2, 2.0),
            ("newer", &newer, 3, 1.0),
        ] {
            fs::write(input, b"png").unwrap();
            result_at(&store, stem, input, seq, age, SystemTime::now());
        }
        let policy = Retention {
            max_age_days: 0,
            max_results: 1,
        };
        let pruned = apply(&store, &policy, std::slice::from_ref(&camera), NOW).unwrap();
        // Two results with two files each, and the one camera frame.
        assert_eq!(
            pruned,
            Pruned {
                results: 2,
                files: 5
            }
        );
        assert!(!frame.exists(), "the appliance's own frame goes");
        assert!(dropped.exists(), "a scanner's file stays");
        assert!(newer.exists(), "a kept result keeps its frame");
        assert_eq!(names(&store), ["newer.json", "newer_overlay.png"]);
    }
}
