//! Keeping the results folder within bounds on a box that runs for months:
//! per-slice files (record, mask, overlay) of old results are removed. The
//! `results.jsonl` log is kept whole, so nothing is ever screened twice and
//! the history of verdicts stays; its picture paths may then point to
//! removed files.

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
    pub files: usize,
}

/// Removes what `policy` no longer keeps, oldest first by the record's
/// modification time.
pub fn apply(dir: &Path, policy: &Retention, now: SystemTime) -> Result<Pruned> {
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
        // Pictures before the record: an interrupted prune leaves a record
        // without pictures, never pictures nobody can trace.
        for picture in [
            format!("{stem}_mask.png"),
            format!("{stem}_overlay.png"),
            format!("screen_{stem}.png"),
        ] {
            match std::fs::remove_file(dir.join(&picture)) {
                Ok(()) => pruned.files += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(dir.join(&picture), e)),
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
        let pruned = apply(d.path(), &policy, SystemTime::now()).unwrap();
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
        apply(d.path(), &policy, SystemTime::now()).unwrap();
        assert_eq!(
            names(d.path()),
            ["b.json", "b_overlay.png", "c.json", "c_overlay.png"]
        );
    }

    #[test]
    fn the_default_keeps_everything() {
        let d = tempfile::tempdir().unwrap();
        result(d.path(), "a", 4000);
        let pruned = apply(d.path(), &Retention::default(), SystemTime::now()).unwrap();
        assert_eq!(pruned, Pruned::default());
        assert_eq!(names(d.path()).len(), 2);
    }
}
