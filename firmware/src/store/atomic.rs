//! Files that appear whole or not at all, even across a power cut: the
//! appliance is switched off at the wall.

use super::private;
use crate::error::{Error, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Files written as temporaries beside their targets and fsynced, then
/// renamed into place together and made durable with one fsync of the
/// folder: a slice's mask, overlay and record cost one folder sync, not three.
pub struct Batch {
    dir: PathBuf,
    staged: Vec<(PathBuf, PathBuf)>,
}

impl Batch {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            staged: Vec::new(),
        }
    }

    /// Writes `bytes` to a temporary for `name` in the batch's folder.
    pub fn stage(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        self.stage_with(name, |w| w.write_all(bytes))
    }

    /// Like [`Batch::stage`], for content written piece by piece (a session
    /// summary of a long run is never held whole in memory).
    pub fn stage_with(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<PathBuf> {
        let target = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = private::file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))
            .and_then(|f| {
                private::restrict(&f, &tmp)?;
                let mut buffered = std::io::BufWriter::new(f);
                write(&mut buffered)
                    .and_then(|()| buffered.into_inner().map_err(|e| e.into_error()))
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io(&tmp, e))
            });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.staged.push((tmp, target.clone()));
        Ok(target)
    }

    pub fn commit(mut self) -> Result<()> {
        for (tmp, target) in std::mem::take(&mut self.staged) {
            fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
        }
        sync_dir(&self.dir)
    }
}

impl Drop for Batch {
    /// A batch abandoned half way leaves no temporaries behind.
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = fs::remove_file(tmp);
        }
    }
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Appends one line with a single `write` call (O_APPEND makes that one
/// write land whole at the end, even with another writer) and fsyncs it.
/// A write the disk could only take part of (full, or over a file-size
/// limit) is cut back off, so the next line does not start glued to a
/// fragment and get lost with it.
pub fn append_line(path: &Path, line: &str) -> Result<()> {
    let existed = path.exists();
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let mut file = private::file_options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    if !existed {
        private::restrict(&file, path)?;
    }
    let before = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let written = file.write(buf.as_bytes()).map_err(|e| Error::io(path, e))?;
    if written != buf.len() {
        let _ = file.set_len(before).and_then(|()| file.sync_all());
        return Err(Error::ShortWrite {
            path: path.to_path_buf(),
            written,
            len: buf.len(),
        });
    }
    file.sync_all().map_err(|e| Error::io(path, e))?;
    if !existed {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            sync_dir(dir)?;
        }
    }
    Ok(())
}

/// Temporaries of batches cut short by a crash or a kill (a clean failure
/// removes its own): ours are `.<name>.<pid>.tmp`, and one whose process is
/// gone is removed. Best effort; a leftover is harmless, only untidy.
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.starts_with('.'))
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        // Another live process (a `scan` beside the service) may be
        // writing into the same folder; our own pid at start is a reused one.
        let alive = pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists();
        if !alive && entry.path().is_file() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn staged_files_appear_only_on_commit() {
        let d = tempfile::tempdir().unwrap();
        let mut b = Batch::new(d.path());
        b.stage("a.json", b"{}").unwrap();
        b.stage("b.png", b"png").unwrap();
        assert!(names(d.path()).iter().all(|n| n.ends_with(".tmp")));
        b.commit().unwrap();
        assert_eq!(names(d.path()), ["a.json", "b.png"]);
        assert_eq!(fs::read(d.path().join("b.png")).unwrap(), b"png");
    }

    #[test]
    fn abandoned_batch_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut b = Batch::new(d.path());
            b.stage("a.json", b"{}").unwrap();
        }
        assert!(names(d.path()).is_empty());
    }

    #[test]
    fn replacing_a_file_keeps_the_old_one_until_commit() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("r.json"), b"old").unwrap();
        let mut b = Batch::new(d.path());
        b.stage("r.json", b"new").unwrap();
        assert_eq!(fs::read(d.path().join("r.json")).unwrap(), b"old");
        b.commit().unwrap();
        assert_eq!(fs::read(d.path().join("r.json")).unwrap(), b"new");
    }

    #[test]
    fn temporaries_of_dead_processes_are_removed_others_kept() {
        let d = tempfile::tempdir().unwrap();
        // pid_max on Linux is at most 2^22: this one cannot be running.
        let dead = ".a.json.4294967.tmp";
        let live = format!(".a.json.{}.tmp", std::process::id());
        let parent = format!(".b.json.{}.tmp", std::os::unix::process::parent_id());
        for n in [dead, &live, &parent, "c.json", ".hidden"] {
            fs::write(d.path().join(n), b"x").unwrap();
        }
        remove_stale_temporaries(d.path());
        assert_eq!(names(d.path()), [parent.as_str(), ".hidden", "c.json"]);
    }

    #[test]
    fn lines_accumulate_across_opens() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("results.jsonl");
        append_line(&p, "{\"n\":1}").unwrap();
        append_line(&p, "{\"n\":2}").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\"n\":1}\n{\"n\":2}\n");
    }
}
