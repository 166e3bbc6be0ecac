//! The store's own clock, for a box that may have no real-time clock.
//!
//! A Raspberry Pi offline boots with the time it last saved (or 1970) and
//! jumps when someone sets it. So results are ordered by `seq`, their place
//! in the log, and aged by `running_s`, the seconds the appliance had been
//! running with this store when each was stored: the monotonic clock while
//! a process runs, carried on from the newest result at the next start.
//! Neither ever goes back or jumps with the wall clock. The price: time
//! the box is switched off does not count towards `max_age_days`, so on a
//! box that is off at night results are kept longer than the calendar says
//! (never shorter). `finished_at` keeps the wall time for people to read.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Far more than a few result lines (about 1 kB each).
const TAIL_BYTES: u64 = 64 * 1024;

/// The two fields of a result line the clock carries on from.
#[derive(Deserialize)]
struct Stamp {
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    running_s: Option<f64>,
}

#[derive(Debug)]
pub struct StoreClock {
    /// `running_s` of the newest result when the store was opened.
    base_s: f64,
    opened: Instant,
    last_seq: Mutex<u64>,
}

impl StoreClock {
    /// Carries on from the log's newest results (a log written before
    /// this clock existed starts at zero). Only the log's tail is read:
    /// `seq` and `running_s` grow line by line, so the newest lines hold
    /// the largest, and opening a store (every `scan`) must not cost a
    /// pass over months of results.
    pub fn resume(log: &Path) -> Result<Self> {
        let mut file = match std::fs::File::open(log) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::starting_at(0, 0.0))
            }
            Err(e) => return Err(Error::io(log, e)),
        };
        let len = file.metadata().map_err(|e| Error::io(log, e))?.len();
        let from = len.saturating_sub(TAIL_BYTES);
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(from))
            .and_then(|_| file.read_to_end(&mut tail))
            .map_err(|e| Error::io(log, e))?;
        let mut lines = tail.split(|&b| b == b'\n');
        if from > 0 {
            // The first line of the tail is cut.
            lines.next();
        }
        let (mut seq, mut running) = (0u64, 0f64);
        // A torn or foreign line is skipped; the ledger warns of it.
        for stamp in lines.filter_map(|l| serde_json::from_slice::<Stamp>(l).ok()) {
            seq = seq.max(stamp.seq.unwrap_or(0));
            running = running.max(stamp.running_s.unwrap_or(0.0));
        }
        Ok(Self::starting_at(seq, running))
    }

    pub fn starting_at(last_seq: u64, running_s: f64) -> Self {
        Self {
            base_s: running_s,
            opened: Instant::now(),
            last_seq: Mutex::new(last_seq),
        }
    }

    /// Seconds of running time now.
    pub fn running_s(&self) -> f64 {
        self.base_s + self.opened.elapsed().as_secs_f64()
    }

    /// The next result's place in the log and its running time.
    pub fn stamp(&self) -> (u64, f64) {
        let mut seq = self.last_seq.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        (*seq, (self.running_s() * 1e3).round() / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::atomic::append_line;
    use crate::store::Record;

    fn line(seq: Option<u64>, running_s: Option<f64>, finished_at: &str) -> String {
        let mut r = Record::new("a.png".into(), "f32".into(), Default::default());
        r.seq = seq;
        r.running_s = running_s;
        r.finished_at = Some(finished_at.into());
        serde_json::to_string(&r).unwrap()
    }

    #[test]
    fn it_carries_on_from_the_newest_result_whatever_the_wall_clock_said() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("results.jsonl");
        // Stored under three wall clocks: right, 1970, and ten years ahead.
        append_line(&log, &line(Some(1), Some(10.0), "2026-12-06T07:00:00Z")).unwrap();
        append_line(&log, &line(Some(2), Some(20.0), "1970-01-01T00:00:12Z")).unwrap();
        append_line(&log, &line(Some(3), Some(30.0), "2036-12-06T07:00:00Z")).unwrap();
        let clock = StoreClock::resume(&log).unwrap();
        let (seq, running) = clock.stamp();
        assert_eq!(seq, 4);
        assert!((30.0..31.0).contains(&running), "{running}");
        let (seq, later) = clock.stamp();
        assert_eq!(seq, 5);
        assert!(later >= running);
    }

    #[test]
    fn a_long_log_resumes_from_its_newest_lines() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("results.jsonl");
        for i in 1..=300u64 {
            append_line(&log, &line(Some(i), Some(i as f64), "2026-12-06T07:00:00Z")).unwrap();
        }
        assert!(std::fs::metadata(&log).unwrap().len() > TAIL_BYTES);
        let clock = StoreClock::resume(&log).unwrap();
        let (seq, running) = clock.stamp();
        assert_eq!(seq, 301);
        assert!((300.0..301.0).contains(&running), "{running}");
    }

    #[test]
    fn a_log_from_before_the_clock_starts_it_at_zero() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("results.jsonl");
        append_line(&log, &line(None, None, "2026-12-06T07:00:00Z")).unwrap();
        let clock = StoreClock::resume(&log).unwrap();
        assert_eq!(clock.stamp().0, 1);
        assert!(clock.running_s() < 1.0);
    }
}
