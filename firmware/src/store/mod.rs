//! The results folder: per input a `<stem>.json` record, and when it was
//! decoded an overlay PNG (and the mask PNG when it was segmented), plus one
//! line in `results.jsonl`, the log a later reader trusts.

mod atomic;
pub mod clock;
mod ledger;
pub mod overlay;
pub mod private;
mod record;
pub mod retention;
pub mod series;
mod stem;
pub mod summary;

pub use ledger::{for_each_record, log_end, read_log, Ledger};
pub use record::{round_ms, DicomRef, Latency, Record, RecordVerdict};
pub use stem::stem_for;

use crate::error::{Error, Result};
use models::SliceImage;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One file written whole or not at all (temp file, fsync, rename, fsync
/// of the folder).
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::io(path, std::io::Error::other("not a file name")))?;
    let mut batch = atomic::Batch::new(dir);
    batch.stage(name, bytes)?;
    batch.commit()
}

/// By default a write past the file-size limit (RLIMIT_FSIZE, `ulimit -f`)
/// kills the process with SIGXFSZ, half way through a result. Ignored, the
/// write fails with EFBIG instead and is handled like a full disk: a clear
/// error naming the file, and the input keeps no result.
pub fn fail_oversized_writes_instead_of_dying() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler
    // and touches no memory; it is async-signal-safe and done once at start.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

pub const RESULTS_LOG: &str = "results.jsonl";

/// Where the store puts the record of `input` (present once it is stored).
pub fn record_path(store_dir: &Path, input: &Path) -> PathBuf {
    store_dir.join(format!("{}.json", stem::stem_for(input)))
}

pub struct ResultsStore {
    dir: PathBuf,
    clock: clock::StoreClock,
}

/// What a decoded slice contributes to its stored files.
pub struct SliceOutputs<'a> {
    pub slice: &'a SliceImage,
    /// The final mask at the slice's size, when the segmenter ran.
    pub mask: Option<&'a [bool]>,
    /// The overlay when the caller already drew it (a Secondary Capture
    /// burns in the same picture): drawn once, not again here.
    pub overlay: Option<&'a image::RgbImage>,
}

/// DICOM result objects for a slice, as bytes: the store names them
/// (`<stem>.seg.dcm`, `<stem>.sc.dcm`), writes them with the rest of the
/// result and puts their paths into the record's `dicom` reference.
#[derive(Default)]
pub struct DicomObjects {
    pub seg: Option<Vec<u8>>,
    pub secondary_capture: Option<Vec<u8>>,
}

impl ResultsStore {
    pub fn open(dir: &Path) -> Result<Self> {
        private::create_dir(dir)?;
        atomic::remove_stale_temporaries(dir);
        let log = dir.join(RESULTS_LOG);
        ledger::end_torn_line(&log)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            clock: clock::StoreClock::resume(&log)?,
        })
    }

    /// Which inputs already have a result.
    pub fn ledger(&self) -> Result<Ledger> {
        Ledger::of_log(&self.log_path())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Seconds the appliance has run with this store: retention's "now".
    pub fn running_s(&self) -> f64 {
        self.clock.running_s()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(RESULTS_LOG)
    }

    /// Writes the input's files, fills their paths into `record`, then
    /// appends its line to the log. The line goes last: a line in the log
    /// means the files it names are complete.
    pub fn store(&self, record: &mut Record, outputs: Option<SliceOutputs<'_>>) -> Result<()> {
        self.store_with(record, outputs, DicomObjects::default())
    }

    /// As [`store`](Self::store), plus the slice's DICOM result objects,
    /// committed in the same batch, before the log line.
    pub fn store_with(
        &self,
        record: &mut Record,
        outputs: Option<SliceOutputs<'_>>,
        dicom: DicomObjects,
    ) -> Result<()> {
        let stem = stem::stem_for(&record.input);
        let mut batch = atomic::Batch::new(&self.dir);
        let objects = [
            (format!("{stem}.seg.dcm"), dicom.seg),
            (format!("{stem}.sc.dcm"), dicom.secondary_capture),
        ];
        let mut written = [None, None];
        for ((name, bytes), path) in objects.iter().zip(written.iter_mut()) {
            if let Some(bytes) = bytes {
                *path = Some(batch.stage(name, bytes)?);
            }
        }
        if let Some(reference) = record.dicom.as_mut() {
            [reference.seg, reference.secondary_capture] = written;
        }
        if let Some(out) = outputs {
            let (w, h) = (out.slice.width, out.slice.height);
            if let Some(mask) = out.mask {
                let name = format!("{stem}_mask.png");
                let png = overlay::mask_png(mask, w, h)
                    .map_err(|source| self.encode_error(&name, source))?;
                record.mask = Some(batch.stage(&name, &png)?);
            }
            let name = format!("{stem}_overlay.png");
            let png = match out.overlay {
                Some(drawn) => overlay::encode_rgb(drawn),
                None => overlay::overlay_png(out.slice, out.mask),
            }
            .map_err(|source| self.encode_error(&name, source))?;
            record.overlay = Some(batch.stage(&name, &png)?);
        }
        record.finished_at = Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
        (record.seq, record.running_s) = {
            let (seq, running) = self.clock.stamp();
            (Some(seq), Some(running))
        };
        let name = format!("{stem}.json");
        record.record = Some(self.dir.join(&name));
        batch.stage(&name, serde_json::to_string_pretty(record)?.as_bytes())?;
        batch.commit()?;
        atomic::append_line(&self.log_path(), &serde_json::to_string(record)?)
    }

    fn encode_error(&self, name: &str, source: image::ImageError) -> Error {
        Error::Encode {
            path: self.dir.join(name),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(input: &str) -> Record {
        Record::new(input.into(), "f32".into(), Default::default())
    }

    #[test]
    fn an_error_input_gets_a_record_and_a_line_but_no_pictures() {
        let d = tempfile::tempdir().unwrap();
        let store = ResultsStore::open(&d.path().join("out")).unwrap();
        let mut r = record("/in/broken.png");
        r.error = Some("/in/broken.png: cannot decode image".into());
        store.store(&mut r, None).unwrap();
        let files: Vec<String> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let line = std::fs::read_to_string(store.log_path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["verdict"], "error");
        assert!(v["mask"].is_null() && v["bbox"].is_null());
        assert!(v["error"].as_str().unwrap().contains("broken.png"));
        let on_disk: Record =
            serde_json::from_slice(&std::fs::read(r.record.unwrap()).unwrap()).unwrap();
        assert_eq!(on_disk.error, r.error);
    }

    #[test]
    fn a_segmented_slice_gets_mask_overlay_and_record() {
        let d = tempfile::tempdir().unwrap();
        let store = ResultsStore::open(d.path()).unwrap();
        let slice = SliceImage::new(4, 2, 1, 8, (0..8).map(|v| v as f32).collect());
        let mask = [false, true, true, false, false, false, false, false];
        let mut r = record("/in/a.png");
        r.verdict = RecordVerdict::Tumour;
        store
            .store(
                &mut r,
                Some(SliceOutputs {
                    slice: &slice,
                    mask: Some(&mask),
                    overlay: None,
                }),
            )
            .unwrap();
        let m = image::open(r.mask.as_ref().unwrap()).unwrap().to_luma8();
        assert_eq!(m.into_raw(), [0, 255, 255, 0, 0, 0, 0, 0]);
        let o = image::open(r.overlay.as_ref().unwrap()).unwrap().to_rgb8();
        assert_eq!(o.dimensions(), (4, 2));
        let log = std::fs::read_to_string(store.log_path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
        assert_eq!(v["mask"].as_str().map(PathBuf::from), r.mask);
    }
}
