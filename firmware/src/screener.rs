//! The screener: one input through the engine into the results store
//! (`scan`, `demo`, `run` and `hil serve` all go through it), and the batch
//! of a scan. A bad input becomes an `error` record and the batch goes on.

use crate::engine::{precision, Engine, Screening};
use crate::error::{Error, Result};
use crate::input_file::InputLimits;
use crate::screen::Picture;
use crate::store::series::SeriesRow;
use crate::store::{
    round_ms, summary, DicomObjects, DicomRef, Latency, Record, RecordVerdict, ResultsStore,
    SliceOutputs,
};
use crate::watchdog::Watchdog;
use models::SliceImage;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub inputs: usize,
    pub tumour: usize,
    pub clear: usize,
    pub errors: usize,
    /// Means over the inputs that ran the stage; `None` when none did.
    pub mean_filter_ms: Option<f64>,
    pub mean_segment_ms: Option<f64>,
    pub mean_total_ms: Option<f64>,
}

/// The engine and the store together: one input in, one stored record out.
pub struct Screener<'a> {
    pub engine: Arc<Engine>,
    pub store: &'a ResultsStore,
    by_model: BTreeMap<String, String>,
    /// Spacing for slices that do not state their own.
    default_spacing: Option<[f64; 2]>,
    secondary_capture: bool,
    limits: InputLimits,
    /// The picture of each result, in the order screened, when a caller
    /// draws them itself ([`with_pictures`](Screener::with_pictures)).
    pictures: Option<Mutex<Vec<Option<Picture>>>>,
}

/// An input's bytes as read, with their sha256 when the read worked.
pub struct Input {
    pub path: PathBuf,
    pub bytes: Result<Vec<u8>>,
    pub sha256: Option<String>,
    pub started: Instant,
}

impl Input {
    /// Reads `path` within `limits` (a special file or an oversized one is
    /// an error here, never a blocked or unbounded read).
    pub fn read(path: &Path, limits: &InputLimits) -> Self {
        let started = Instant::now();
        let bytes = crate::input_file::read(path, limits);
        let sha256 = bytes.as_ref().ok().map(|b| hex::encode(Sha256::digest(b)));
        Self {
            path: path.to_path_buf(),
            bytes,
            sha256,
            started,
        }
    }

    /// The file was not there (moved away after it was listed).
    pub fn was_gone(&self) -> bool {
        matches!(&self.bytes, Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl<'a> Screener<'a> {
    pub fn new(engine: Arc<Engine>, store: &'a ResultsStore) -> Self {
        let by_model = engine
            .precisions()
            .into_iter()
            .map(|(m, p)| (m, precision::name(p).to_string()))
            .collect();
        Self {
            engine,
            store,
            by_model,
            default_spacing: None,
            secondary_capture: false,
            limits: InputLimits::default(),
            pictures: None,
        }
    }

    /// Keep each result's slice and mask in memory for [`run`]'s caller
    /// (the demo draws its screens from them); off for the service, whose
    /// results would pile up.
    pub fn with_pictures(mut self) -> Self {
        self.pictures = Some(Mutex::new(Vec::new()));
        self
    }

    fn keep(&self, picture: Option<Picture>) {
        if let Some(kept) = &self.pictures {
            kept.lock().unwrap_or_else(|e| e.into_inner()).push(picture);
        }
    }

    fn take_pictures(&self) -> Vec<Option<Picture>> {
        self.pictures.as_ref().map_or_else(Vec::new, |kept| {
            std::mem::take(&mut *kept.lock().unwrap_or_else(|e| e.into_inner()))
        })
    }

    /// Pixel spacing in mm ([rows, columns]) for slices that carry none.
    pub fn with_spacing(mut self, spacing: Option<[f64; 2]>) -> Self {
        self.default_spacing = spacing;
        self
    }

    /// Also write each DICOM input's overlay as a Secondary Capture.
    pub fn with_secondary_capture(mut self, on: bool) -> Self {
        self.secondary_capture = on;
        self
    }

    /// The size limits [`read`](Self::read) applies and the time limit per
    /// stage (decoding, screening) past which a slice is abandoned.
    pub fn with_limits(mut self, limits: InputLimits) -> Self {
        self.limits = limits;
        self
    }

    /// `path`'s bytes within this screener's size limits.
    pub fn read(&self, path: &Path) -> Input {
        Input::read(path, &self.limits)
    }

    /// Decodes, screens and stores `input`: one record, or one per frame of
    /// a multi-frame DICOM file. A bad input (or frame) becomes an `error`
    /// record; only a failure of the results folder itself is an `Err`.
    pub fn screen(&self, input: Input) -> Result<Vec<Record>> {
        self.screen_except(input, &|_| false)
    }

    /// As [`screen`](Self::screen), leaving out the frames `done` says
    /// already have a result (a restarted service resuming a multi-frame
    /// file part way).
    pub fn screen_except(&self, input: Input, done: &dyn Fn(&Path) -> bool) -> Result<Vec<Record>> {
        let Input {
            path,
            bytes,
            sha256,
            started,
        } = input;
        let bytes = match refuse_mask(&path).and(bytes) {
            Ok(b) => b,
            Err(e) => return Ok(vec![self.screen_one(path, sha256, started, Err(e))?]),
        };
        if !crate::dicom::is_dicom(&bytes) {
            let origin = path.clone();
            let decoded = self
                .watchdog()
                .run(&path, "decoding", move || {
                    Ok(SliceImage::decode(&bytes, &origin)?)
                })
                .map(Decoded::Image);
            return Ok(vec![self.screen_one(path, sha256, started, decoded)?]);
        }
        let origin = path.clone();
        let opened = self.watchdog().run(&path, "decoding", move || {
            crate::dicom::open(&bytes, &origin).map(Arc::new)
        });
        let file = match opened {
            Ok(f) => f,
            Err(e) => return Ok(vec![self.screen_one(path, sha256, started, Err(e))?]),
        };
        let identity = file.identity();
        // Once per file: every frame shares the header.
        let header = crate::dicom::acquisition::Acquisition::read(&file.object).outside_training();
        let frames = file.frame_count();
        let mut records = Vec::with_capacity(frames as usize);
        for number in 1..=frames {
            let input = if frames == 1 {
                path.clone()
            } else {
                crate::dicom::frame_input(&path, number)
            };
            if done(&input) {
                continue;
            }
            let started = if number == 1 { started } else { Instant::now() };
            let of = Arc::clone(&file);
            let decoded = self
                .watchdog()
                .run(&input, "decoding", move || of.frame(number))
                .map(|frame| Decoded::Dicom {
                    file: &file,
                    identity: &identity,
                    header: &header,
                    frame,
                });
            records.push(self.screen_one(input, sha256.clone(), started, decoded)?);
        }
        Ok(records)
    }

    fn screen_one(
        &self,
        input: PathBuf,
        sha256: Option<String>,
        started: Instant,
        decoded: Result<Decoded<'_>>,
    ) -> Result<Record> {
        let mut record = Record::new(
            input.clone(),
            self.engine.precision_label().into(),
            self.by_model.clone(),
        );
        record.input_sha256 = sha256;
        let outcome = decoded.and_then(|d| self.screen_decoded(&input, d));
        record.latency_ms.total = round_ms(started.elapsed().as_secs_f64() * 1e3);
        match outcome {
            Ok((decoded, screening)) => {
                let slice = decoded.slice();
                fill(&mut record, slice, &screening);
                record.pixel_spacing_mm = slice.pixel_spacing_mm.or(self.default_spacing);
                record.area_mm2 = match (record.area_px, record.pixel_spacing_mm) {
                    (Some(px), Some([dy, dx])) => Some((px as f64 * dy * dx * 1e3).round() / 1e3),
                    _ => None,
                };
                let mask = screening.segmentation.as_ref().map(|s| s.mask.as_slice());
                // Drawn once here, windowed with the percentiles the models'
                // normalisation measured: a Secondary Capture burns in the
                // picture the store encodes.
                let overlay =
                    crate::store::overlay::render_with(slice, mask, screening.window.as_ref());
                record.caution = crate::caution::of_slice(
                    decoded.header_reasons(),
                    slice,
                    self.engine.input_size(),
                );
                let objects = match &decoded {
                    Decoded::Image(_) => DicomObjects::default(),
                    Decoded::Dicom {
                        file,
                        identity,
                        frame,
                        ..
                    } => self.dicom_outputs(
                        &mut record,
                        file,
                        identity,
                        frame,
                        mask,
                        Some(&overlay).filter(|_| self.secondary_capture && mask.is_some()),
                    ),
                };
                let outputs = SliceOutputs {
                    slice,
                    mask,
                    overlay: Some(&overlay),
                };
                self.store.store_with(&mut record, Some(outputs), objects)?;
                if self.pictures.is_some() {
                    self.keep(Some(Picture::of_slice(
                        slice,
                        mask,
                        screening.window.as_ref(),
                    )));
                }
            }
            Err(e) => {
                let message = naming_the_file(&input, &e);
                tracing::warn!(input = %input.display(), "{message}");
                record.error = Some(message);
                self.store.store(&mut record, None)?;
                self.keep(None);
            }
        }
        Ok(record)
    }

    /// The time limit per stage, from the limits.
    fn watchdog(&self) -> Watchdog {
        Watchdog::new(self.limits.stage_timeout())
    }

    /// The models on a decoded slice, within the stage limit. The slice
    /// travels to the stage's thread and back (no copy).
    fn screen_decoded<'f>(
        &self,
        input: &Path,
        decoded: Decoded<'f>,
    ) -> Result<(Decoded<'f>, Screening)> {
        match decoded {
            Decoded::Image(slice) => {
                let (slice, screening) = self.screen_slice(input, slice)?;
                Ok((Decoded::Image(slice), screening))
            }
            Decoded::Dicom {
                file,
                identity,
                header,
                mut frame,
            } => {
                let (slice, screening) = self.screen_slice(input, frame.slice)?;
                frame.slice = slice;
                let decoded = Decoded::Dicom {
                    file,
                    identity,
                    header,
                    frame,
                };
                Ok((decoded, screening))
            }
        }
    }

    fn screen_slice(&self, input: &Path, slice: SliceImage) -> Result<(SliceImage, Screening)> {
        let engine = Arc::clone(&self.engine);
        self.watchdog().run(input, "screening", move || {
            let screening = engine.screen(&slice)?;
            Ok((slice, screening))
        })
    }

    /// The DICOM identity for the record and, when a mask was drawn, the
    /// SEG (and the Secondary Capture of `overlay` if asked) for the store
    /// to name and write. A result object that cannot be built is said in
    /// the record and the log; the screening result stands.
    fn dicom_outputs(
        &self,
        record: &mut Record,
        file: &crate::dicom::DicomFile,
        identity: &crate::dicom::Identity,
        frame: &crate::dicom::Frame,
        mask: Option<&[bool]>,
        overlay: Option<&image::RgbImage>,
    ) -> DicomObjects {
        let multi_frame = file.frame_count() > 1;
        let mut reference = DicomRef {
            study_instance_uid: identity.study_instance_uid.clone(),
            series_instance_uid: identity.series_instance_uid.clone(),
            sop_instance_uid: identity.sop_instance_uid.clone(),
            frame: multi_frame.then_some(frame.number),
            series_description: identity.series_description.clone(),
            series_number: identity.series_number,
            ..DicomRef::default()
        };
        let mut objects = DicomObjects::default();
        if let Some(mask) = mask {
            let mut problems = Vec::new();
            let source = crate::dicom::seg::Source {
                dataset: &file.object,
                identity,
                frame,
                multi_frame,
                origin: &file.origin,
            };
            match crate::dicom::seg::segmentation(&source, mask) {
                Ok(bytes) => objects.seg = Some(bytes),
                Err(e) => problems.push(format!("no SEG: {e}")),
            }
            if let Some(overlay) = overlay {
                match crate::dicom::capture::secondary_capture(
                    &file.object,
                    identity,
                    frame.number,
                    multi_frame,
                    overlay,
                    &file.origin,
                ) {
                    Ok(bytes) => objects.secondary_capture = Some(bytes),
                    Err(e) => problems.push(format!("no Secondary Capture: {e}")),
                }
            }
            if !problems.is_empty() {
                let said = problems.join("; ");
                tracing::warn!(input = %record.input.display(), "{said}");
                reference.output_error = Some(said);
            }
        }
        record.dicom = Some(reference);
        objects
    }
}

/// A decoded slice, and for DICOM the file it came from.
enum Decoded<'f> {
    Image(SliceImage),
    Dicom {
        file: &'f crate::dicom::DicomFile,
        identity: &'f crate::dicom::Identity,
        /// What the file's header says is unlike the training slices.
        header: &'f [String],
        frame: crate::dicom::Frame,
    },
}

impl Decoded<'_> {
    fn slice(&self) -> &SliceImage {
        match self {
            Decoded::Image(s) => s,
            Decoded::Dicom { frame, .. } => &frame.slice,
        }
    }

    fn header_reasons(&self) -> &[String] {
        match self {
            Decoded::Image(_) => &[],
            Decoded::Dicom { header, .. } => header,
        }
    }
}

/// What a batch stored: its tally and every record, in order.
pub struct Batch {
    pub summary: Summary,
    pub records: Vec<Record>,
    /// Beside each record, its slice and mask as screened: only from a
    /// screener made [`with_pictures`](Screener::with_pictures), else empty.
    pub pictures: Vec<Option<Picture>>,
}

/// Screens and stores each file, writing one line per file, a summary
/// table to `out`, and the session summary (CSV, HTML) into the store; the
/// records come back so a caller (the demo) need not read them again.
pub fn run(screener: &Screener<'_>, files: &[PathBuf], out: &mut impl Write) -> Result<Batch> {
    let (engine, store) = (&screener.engine, screener.store);
    let session_started = SystemTime::now();
    let mut tally = Tally::default();
    let mut records = Vec::with_capacity(files.len());
    for path in files {
        for record in screener.screen(screener.read(path))? {
            tally.add(&record);
            writeln!(out, "{}", line(&record)).map_err(Error::Report)?;
            records.push(record);
        }
    }
    let summary = tally.summary();
    tracing::info!(
        filter_runs = engine.filter_runs(),
        segmenter_runs = engine.segmenter_runs(),
        "scan finished"
    );
    let session = summary::write_session(store.dir(), session_started, &records[..])?;
    write_summary(&summary, &session.series, store, out).map_err(Error::Report)?;
    writeln!(
        out,
        "session summary: {} and {}",
        session.html.display(),
        session.csv.display()
    )
    .map_err(Error::Report)?;
    Ok(Batch {
        summary,
        records,
        pictures: screener.take_pictures(),
    })
}

/// Counts and mean latencies over stored records.
#[derive(Default, Clone)]
pub struct Tally {
    summary: Summary,
    means: [Mean; 3],
}

impl Tally {
    pub fn add(&mut self, record: &Record) {
        self.summary.inputs += 1;
        match record.verdict {
            RecordVerdict::Tumour => self.summary.tumour += 1,
            RecordVerdict::Clear => self.summary.clear += 1,
            RecordVerdict::Error => self.summary.errors += 1,
        }
        if record.verdict != RecordVerdict::Error {
            self.means[0].add(record.latency_ms.filter);
            self.means[1].add(record.latency_ms.segment);
            self.means[2].add(Some(record.latency_ms.total));
        }
    }

    pub fn summary(&self) -> Summary {
        let mut s = self.summary.clone();
        [s.mean_filter_ms, s.mean_segment_ms, s.mean_total_ms] = self.means.map(|m| m.get());
        s
    }
}

/// A mask reaches the screener only when its slice is missing (folders
/// leave out masks that have one) or when named on its own.
fn refuse_mask(path: &Path) -> Result<()> {
    if !crate::inputs::is_mask(path) {
        return Ok(());
    }
    Err(models::Error::Unsupported {
        path: path.to_path_buf(),
        reason:
            "a tumour mask (`*_mask`), not a slice: masks are not screened (is its slice missing?)"
                .into(),
    }
    .into())
}

/// Reads and decodes one slice file of any supported kind.
pub fn open_slice(path: &Path) -> Result<SliceImage> {
    let bytes = crate::input_file::read(path, &InputLimits::default())?;
    decode(&bytes, path)
}

/// The slice (a DICOM file's first frame) and the caution a result of it
/// would carry for a model taking `input` (width, height): the DICOM
/// header's reasons and the slice's size ([`crate::caution`]).
pub fn open_slice_with_caution(
    path: &Path,
    input: (u32, u32),
) -> Result<(SliceImage, Option<String>)> {
    let bytes = crate::input_file::read(path, &InputLimits::default())?;
    let (slice, header) = if crate::dicom::is_dicom(&bytes) {
        let file = crate::dicom::open(&bytes, path)?;
        let header = crate::dicom::acquisition::Acquisition::read(&file.object).outside_training();
        (file.frame(1)?.slice, header)
    } else {
        (SliceImage::decode(&bytes, path)?, Vec::new())
    };
    let caution = crate::caution::of_slice(&header, &slice, input);
    Ok((slice, caution))
}

/// PNG, TIFF, JPEG through the shared decoder; DICOM by its magic.
pub fn decode(bytes: &[u8], path: &Path) -> Result<SliceImage> {
    if crate::dicom::is_dicom(bytes) {
        crate::dicom::decode(bytes, path)
    } else {
        Ok(SliceImage::decode(bytes, path)?)
    }
}

fn fill(record: &mut Record, slice: &SliceImage, s: &Screening) {
    record.verdict = s.verdict.into();
    record.width = Some(slice.width);
    record.height = Some(slice.height);
    record.tumour_probability = Some(s.tumour_probability);
    record.area_px = Some(s.segmentation.as_ref().map_or(0, |g| g.summary.area_px));
    if let Some(g) = &s.segmentation {
        record.bbox = g.summary.bbox;
        record.confidence = g.summary.confidence;
    }
    record.latency_ms.filter = s.latency.filter_ms.map(round_ms);
    record.latency_ms.segment = s.latency.segment_ms.map(round_ms);
}

/// Decoding errors already start with the path; model errors do not.
fn naming_the_file(path: &Path, e: &Error) -> String {
    let message = e.to_string();
    let shown = path.display().to_string();
    if message.contains(&shown) {
        message
    } else {
        format!("{shown}: {message}")
    }
}

pub fn line(r: &Record) -> String {
    let Latency { total, .. } = r.latency_ms;
    match r.verdict {
        RecordVerdict::Error => format!("error   {}", r.error.as_deref().unwrap_or("")),
        verdict => {
            let found = match (r.area_px, r.bbox) {
                (Some(a), Some([x, y, w, h])) if a > 0 => match r.area_mm2 {
                    Some(mm2) => format!("{a} px ({mm2:.1} mm²) at [{x},{y} {w}x{h}]"),
                    None => format!("{a} px at [{x},{y} {w}x{h}]"),
                },
                _ => "-".into(),
            };
            let line = format!(
                "{:<7} {:<26} {found:<28} {total:>8.1} ms  {}",
                if verdict == RecordVerdict::Tumour {
                    "tumour"
                } else {
                    "clear"
                },
                r.verdict_basis(),
                r.input.display()
            );
            // Under the line it qualifies, so the line keeps its columns.
            match &r.caution {
                Some(c) => format!("{line}\n        caution: {c}"),
                None => line,
            }
        }
    }
}

pub fn write_summary(
    s: &Summary,
    series: &[SeriesRow],
    store: &ResultsStore,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    writeln!(out)?;
    writeln!(
        out,
        "inputs  tumour  clear  errors  mean ms: filter  segment  total"
    )?;
    writeln!(
        out,
        "{:>6}  {:>6}  {:>5}  {:>6}  {:>14}  {:>7}  {:>5}",
        s.inputs,
        s.tumour,
        s.clear,
        s.errors,
        ms(s.mean_filter_ms),
        ms(s.mean_segment_ms),
        ms(s.mean_total_ms)
    )?;
    if !series.is_empty() {
        writeln!(
            out,
            "\nper series (slices read tumour, by place in the series as screened):"
        )?;
        let width = series
            .iter()
            .map(|r| r.label.chars().count())
            .max()
            .unwrap_or(0)
            .min(48);
        for r in series {
            let label = keep_the_end(&r.label, width);
            let mut row = format!("  {label:<width$}  {}", r.flagged_text());
            if let Some(l) = &r.largest {
                row += &format!("; largest {} ({})", l.area, l.slice);
            }
            if r.errors > 0 {
                row += &format!("; {} not screened", r.errors);
            }
            writeln!(out, "{row}")?;
            if let Some(c) = &r.caution {
                writeln!(out, "  {:width$}  caution: {c}", "")?;
            }
        }
    }
    writeln!(out, "results: {}", store.log_path().display())
}

/// `text` cut to `max` characters from the front ("..end"): of a long
/// folder or series name the end tells one from the next.
fn keep_the_end(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let tail: String = text.chars().skip(n + 2 - max.max(2)).collect();
    format!("..{tail}")
}

#[derive(Default, Clone, Copy)]
struct Mean {
    sum: f64,
    n: usize,
}

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.sum += v;
            self.n += 1;
        }
    }

    fn get(self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}
