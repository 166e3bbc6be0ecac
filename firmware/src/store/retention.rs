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
use std::time::{Duration, SystemTime};

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

/// The one field of a record retention needs.
#[derive(Deserialize)]
struct RecordInput {
    input: PathBuf,
}

/// The record's input when it lies in one of `own_inputs`, the folders the
/// appliance writes its own inputs into. An unreadable record keeps its
/// input: removing a file nobody can trace is worse than keeping one.
fn own_input(record: &Path, own_inputs: &[PathBuf]) -> Option<PathBuf> {
    if own_inputs.is_empty() {
        return None;
    }
    let text = std::fs::read(record).ok()?;
    let input = serde_json::from_slice::<RecordInput>(&text).ok()?.input;
    own_inputs
        .iter()
        .any(|d| input.parent() == Some(d.as_path()))
        .then_some(input)
}

/// Removes what `policy` no longer keeps, oldest first by the record's
/// modification time, and with it each input that lies in `own_inputs`.
pub fn apply(
    dir: &Path,
    policy: &Retention,
    own_inputs: &[PathBuf],
    now: SystemTime,
) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    if policy.keeps_everything() {
        return Ok(pruned);
    }
    let mut anchors: Vec<(SystemTime, PathBuf)> = Vec::new();
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
        anchors.push((modified, path));
    }
    anchors.sort_by_key(|a| std::cmp::Reverse(a.0));
    let max_age = Duration::from_secs(u64::from(policy.max_age_days) * 86_400);
    for (i, (modified, record)) in anchors.iter().enumerate() {
        let too_many = policy.max_results > 0 && i >= policy.max_results;
        let too_old =
            policy.max_age_days > 0 && now.duration_since(*modified).unwrap_or_default() > max_age;
        if !(too_many || too_old) {
            continue;
        }
        let stem = record.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        // Pictures and the own input before the record: an interrupted
        // prune leaves a record without files, never files nobody can trace.
        let pictures = [
            format!("{stem}_mask.png"),
            format!("{stem}_overlay.png"),
            format!("screen_{stem}.png"),
        ]
        .map(|p| dir.join(p));
        for file in pictures.into_iter().chain(own_input(record, own_inputs)) {
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

    fn result(dir: &Path, stem: &str, age_days: u64) {
        for name in [format!("{stem}.json"), format!("{stem}_overlay.png")] {
            fs::write(dir.join(&name), b"x").unwrap();
            let t = SystemTime::now() - Duration::from_secs(age_days * 86_400);
            File::options()
                .write(true)
                .open(dir.join(&name))
                .unwrap()
                .set_times(FileTimes::new().set_modified(t))
                .unwrap();
        }
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
        result(d.path(), "old", 40);
        result(d.path(), "new", 1);
        let policy = Retention {
            max_age_days: 30,
            max_results: 0,
        };
        let pruned = apply(d.path(), &policy, &[], SystemTime::now()).unwrap();
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
        for (stem, age) in [("a", 3), ("b", 1), ("c", 2)] {
            result(d.path(), stem, age);
        }
        let policy = Retention {
            max_age_days: 0,
            max_results: 2,
        };
        apply(d.path(), &policy, &[], SystemTime::now()).unwrap();
        assert_eq!(
            names(d.path()),
            ["b.json", "b_overlay.png", "c.json", "c_overlay.png"]
        );
    }

    #[test]
    fn the_default_keeps_everything() {
        let d = tempfile::tempdir().unwrap();
        result(d.path(), "a", 4000);
        let pruned = apply(d.path(), &Retention::default(), &[], SystemTime::now()).unwrap();
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
        for (stem, input, age) in [
            ("frame", &frame, 3),
            ("dropped", &dropped, 2),
            ("newer", &newer, 1),
        ] {
            fs::write(input, b"png").unwrap();
            result(&store, stem, age);
            let json = serde_json::json!({ "input": input, "verdict": "clear" });
            let record = store.join(format!("{stem}.json"));
            fs::write(&record, json.to_string()).unwrap();
            let t = SystemTime::now() - Duration::from_secs(age * 86_400);
            File::options()
                .write(true)
                .open(&record)
                .unwrap()
                .set_times(FileTimes::new().set_modified(t))
                .unwrap();
        }
        let policy = Retention {
            max_age_days: 0,
            max_results: 1,
        };
        let pruned = apply(
            &store,
            &policy,
            std::slice::from_ref(&camera),
            SystemTime::now(),
        )
        .unwrap();
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
