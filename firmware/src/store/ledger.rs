//! What the results log says is already done, so a restarted appliance
//! screens each inbox file exactly once.

use super::record::Record;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// 128 bits of a SHA-256: a key per entry that costs 16 bytes whatever the
/// path's length (collisions need about 2^64 entries).
type Key = [u8; 16];

/// The inputs that have a line in `results.jsonl`, keyed by path and content
/// hash: a file rewritten with new bytes under the same name is a new slice.
///
/// It holds a fixed-size key per result, not the paths: a service that runs
/// for months screens hundreds of thousands of slices, and this is the one
/// thing it must remember about each (about 40 bytes a result, where the
/// paths and hashes themselves took ten times that).
#[derive(Debug, Default)]
pub struct Ledger {
    done: HashSet<Key>,
    paths: HashSet<Key>,
}

fn key(parts: &[&[u8]]) -> Key {
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

impl Ledger {
    pub fn contains(&self, input: &Path, sha256: &str) -> bool {
        self.done
            .contains(&key(&[path_bytes(input), sha256.as_bytes()]))
    }

    pub fn insert(&mut self, record: &Record) {
        if let Some(sha) = &record.input_sha256 {
            let path = path_bytes(&record.input);
            self.done.insert(key(&[path, sha.as_bytes()]));
            self.paths.insert(key(&[path]));
        }
    }

    /// Whether some content under this path has a result (for a path that
    /// can no longer be read, so its content is unknown).
    pub fn has_path(&self, input: &Path) -> bool {
        self.paths.contains(&key(&[path_bytes(input)]))
    }

    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The ledger of a results log, read one line at a time (a log of a
    /// year of results is never held whole).
    pub fn of_log(path: &Path) -> Result<Ledger> {
        let mut ledger = Ledger::default();
        for_each_record(path, 0, |r| ledger.insert(&r))?;
        Ok(ledger)
    }
}

/// Every record in the log.
pub fn read_log(path: &Path) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    for_each_record(path, 0, |r| records.push(r))?;
    Ok(records)
}

/// Calls `each` for every record from byte `from` of the log on, one line
/// in memory at a time. A line that does not parse (the tail of a write
/// cut by a power failure) is skipped with a warning, never fatal: the
/// records before and after it are still good. A missing log has no records.
pub fn for_each_record(path: &Path, from: u64, mut each: impl FnMut(Record)) -> Result<()> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    file.seek(SeekFrom::Start(from))
        .map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(path, e))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(r) => each(r),
            Err(e) => tracing::warn!(
                log = %path.display(),
                line = number,
                from_byte = from,
                "skipping an unreadable results line: {e}"
            ),
        }
    }
}

/// The log's length now: where the lines appended from now on begin.
pub fn log_end(path: &Path) -> Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
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
    use std::path::PathBuf;

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

    #[test]
    fn records_are_read_from_an_offset_on() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("results.jsonl");
        let line = |i: &str, s: &str| serde_json::to_string(&record(i, s)).unwrap();
        super::super::atomic::append_line(&log, &line("/in/a.png", "aa")).unwrap();
        let start = log_end(&log).unwrap();
        super::super::atomic::append_line(&log, &line("/in/b.png", "bb")).unwrap();
        let mut inputs = Vec::new();
        for_each_record(&log, start, |r| inputs.push(r.input)).unwrap();
        assert_eq!(inputs, [PathBuf::from("/in/b.png")]);
        assert_eq!(log_end(&d.path().join("none.jsonl")).unwrap(), 0);
        for_each_record(&d.path().join("none.jsonl"), 0, |_| panic!("no records")).unwrap();
    }

    #[test]
    fn keys_do_not_run_path_and_hash_together() {
        let ledger = ledger_of(&[record("/in/ab", "c")]);
        assert!(ledger.contains(Path::new("/in/ab"), "c"));
        assert!(!ledger.contains(Path::new("/in/a"), "bc"));
        let from_log = {
            let d = tempfile::tempdir().unwrap();
            let log = d.path().join("results.jsonl");
            let line = serde_json::to_string(&record("/in/ab", "c")).unwrap();
            super::super::atomic::append_line(&log, &line).unwrap();
            Ledger::of_log(&log).unwrap()
        };
        assert!(from_log.contains(Path::new("/in/ab"), "c"));
        assert!(from_log.has_path(Path::new("/in/ab")));
        assert_eq!(from_log.len(), 1);
    }
}
