//! What the results log says is already done, so a restarted appliance
//! screens each inbox file exactly once.

use super::record::Record;
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The inputs that have a line in `results.jsonl`, keyed by path and content
/// hash: a file rewritten with new bytes under the same name is a new slice.
#[derive(Debug, Default)]
pub struct Ledger {
    done: HashSet<(PathBuf, String)>,
    paths: HashSet<PathBuf>,
}

impl Ledger {
    pub fn contains(&self, input: &Path, sha256: &str) -> bool {
        self.done
            .contains(&(input.to_path_buf(), sha256.to_string()))
    }

    pub fn insert(&mut self, record: &Record) {
        if let Some(sha) = &record.input_sha256 {
            self.done.insert((record.input.clone(), sha.clone()));
            self.paths.insert(record.input.clone());
        }
    }

    /// Whether some content under this path has a result (for a path that
    /// can no longer be read, so its content is unknown).
    pub fn has_path(&self, input: &Path) -> bool {
        self.paths.contains(input)
    }

    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }
}

/// Every record in the log. A line that does not parse (the tail of a write
/// cut by a power failure) is skipped with a warning, never fatal: the
/// records before and after it are still good.
pub fn read_log(path: &Path) -> Result<Vec<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => records.push(r),
            Err(e) => tracing::warn!(
                log = %path.display(),
                line = i + 1,
                "skipping an unreadable results line: {e}"
            ),
        }
    }
    Ok(records)
}

pub fn ledger_of(records: &[Record]) -> Ledger {
    let mut ledger = Ledger::default();
    for r in records {
        ledger.insert(r);
    }
    ledger
}

/// A log whose last write was cut short ends without a newline; the next
/// line appended would be glued to the fragment and lost with it. Ending the
/// fragment first keeps every later line readable.
pub fn end_torn_line(path: &Path) -> Result<bool> {
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(path, e)),
    };
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .map_err(|e| Error::io(path, e))?;
    if last[0] == b'\n' {
        return Ok(false);
    }
    file.write_all(b"\n")
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::io(path, e))?;
    tracing::warn!(log = %path.display(), "the last results line was cut short (power loss?); ended it");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(input: &str, sha: &str) -> Record {
        let mut r = Record::new(input.into(), "f32".into(), Default::default());
        r.input_sha256 = Some(sha.into());
        r
    }

    #[test]
    fn a_torn_tail_is_ended_and_skipped_and_later_lines_survive() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("results.jsonl");
        let good = serde_json::to_string(&record("/in/a.png", "aa")).unwrap();
        std::fs::write(&log, format!("{good}\n{{\"input\":\"/in/b.p")).unwrap();
        assert!(end_torn_line(&log).unwrap());
        assert!(
            !end_torn_line(&log).unwrap(),
            "a second call changes nothing"
        );
        let later = serde_json::to_string(&record("/in/c.png", "cc")).unwrap();
        super::super::atomic::append_line(&log, &later).unwrap();
        let records = read_log(&log).unwrap();
        let inputs: Vec<_> = records.iter().map(|r| r.input.clone()).collect();
        assert_eq!(
            inputs,
            [PathBuf::from("/in/a.png"), PathBuf::from("/in/c.png")]
        );
    }

    #[test]
    fn the_ledger_knows_path_and_content() {
        let ledger = ledger_of(&[record("/in/a.png", "aa")]);
        assert!(ledger.contains(Path::new("/in/a.png"), "aa"));
        assert!(
            !ledger.contains(Path::new("/in/a.png"), "bb"),
            "new bytes, new slice"
        );
        assert!(!ledger.contains(Path::new("/in/b.png"), "aa"));
        assert!(ledger.has_path(Path::new("/in/a.png")));
        assert!(!ledger.has_path(Path::new("/in/b.png")));
    }

    #[test]
    fn a_missing_log_is_an_empty_history() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_log(&d.path().join("results.jsonl"))
            .unwrap()
            .is_empty());
        assert!(!end_torn_line(&d.path().join("results.jsonl")).unwrap());
    }
}
