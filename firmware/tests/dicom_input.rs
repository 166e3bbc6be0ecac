//! DICOM MR files from pydicom's test set (PyPI `pydicom`, in the test
//! venv): every transfer syntax we claim decodes to the same pixels pydicom
//! gives (modality LUT applied), the spacing comes through to mm², and the
//! files we cannot read get an error naming them.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3")
}

fn pydicom_files() -> PathBuf {
    let out = Command::new(python())
        .args([
            "-c",
            "import pydicom.data, os; print(os.path.join(os.path.dirname(pydicom.data.__file__), 'test_files'))",
        ])
        .output()
        .expect("the repository venv (scripts/setup.sh) has pydicom");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// pydicom's reading of a file: [min, max, mean] after the modality LUT,
/// and the pixel spacing.
fn reference(file: &Path) -> Value {
    let script = format!(
        "import json, pydicom\nfrom pydicom.pixels import apply_modality_lut\n\
         d = pydicom.dcmread({:?})\na = apply_modality_lut(d.pixel_array, d).astype('float64')\n\
         print(json.dumps([a.min(), a.max(), a.mean(), [float(v) for v in d.PixelSpacing], d.Rows, d.Columns]))",
        file.to_str().unwrap()
    );
    let out = Command::new(python())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn inspect(files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_neuroscreen"))
        .args(["inspect", "--json"])
        .args(files)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A folder `in/` to fill and the test models (no filter, so every slice
/// gets a mask), in a fresh temporary folder.
struct ScanBox {
    tmp: tempfile::TempDir,
    models: PathBuf,
    inbox: PathBuf,
}

impl ScanBox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        write_model_set(
            &models,
            &ModelSet {
                filter: false,
                ..ModelSet::default()
            },
        );
        let inbox = tmp.path().join("in");
        std::fs::create_dir_all(&inbox).unwrap();
        Self { tmp, models, inbox }
    }

    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    /// `neuroscreen scan in/`: its output, and each line of the results log.
    fn scan(&self) -> (std::process::Output, Vec<Value>) {
        let out = Command::new(env!("CARGO_BIN_EXE_neuroscreen"))
            .arg("scan")
            .arg(&self.inbox)
            .arg("--out")
            .arg(self.out())
            .arg("--models")
            .arg(&self.models)
            .output()
            .unwrap();
        let lines = std::fs::read_to_string(self.out().join("results.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out, lines)
    }
}

fn line_for<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["input"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no line for {name}: {lines:?}"))
}

#[test]
fn every_supported_syntax_gives_pydicoms_pixels_and_spacing() {
    let dir = pydicom_files();
    let want = reference(&dir.join("MR_small.dcm"));
    let syntaxes = [
        "MR_small.dcm",              // explicit VR little endian
        "MR_small_implicit.dcm",     // implicit VR little endian
        "MR_small_bigendian.dcm",    // explicit VR big endian
        "MR_small_expb.dcm",         // explicit big endian, another encoder
        "MR_small_RLE.dcm",          // RLE lossless
        "MR_small_jp2klossless.dcm", // JPEG 2000 lossless (openjp2)
    ];
    let files: Vec<PathBuf> = syntaxes.iter().map(|f| dir.join(f)).collect();
    for (name, got) in syntaxes.iter().zip(inspect(&files)) {
        assert_eq!(got["ok"], true, "{name}: {got}");
        assert_eq!(got["width"], want[5], "{name}");
        assert_eq!(got["height"], want[4], "{name}");
        assert_eq!(got["min"].as_f64(), want[0].as_f64(), "{name}");
        assert_eq!(got["max"].as_f64(), want[1].as_f64(), "{name}");
        let mean = got["mean"].as_f64().unwrap();
        assert!(
            (mean - want[2].as_f64().unwrap()).abs() < 1e-6,
            "{name}: {mean}"
        );
        assert_eq!(got["pixel_spacing_mm"], want[3], "{name}");
    }
    // A file named by number alone, as scanners export them.
    let bare = dir.join("dicomdirtests/98892003/MR1/15820");
    let want = reference(&bare);
    let got = &inspect(std::slice::from_ref(&bare))[0];
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["min"].as_f64(), want[0].as_f64());
    assert_eq!(got["pixel_spacing_mm"], want[3]);
}

#[test]
fn unreadable_dicom_is_an_error_naming_the_file_and_the_scan_goes_on() {
    let dir = pydicom_files();
    let b = ScanBox::new();
    let inbox = &b.inbox;
    for f in [
        "MR_small.dcm",
        "MR_truncated.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ] {
        std::fs::copy(dir.join(f), inbox.join(f)).unwrap();
    }
    // Extensionless DICOM is found in a folder; other extensionless files are not slices.
    std::fs::copy(
        dir.join("dicomdirtests/98892003/MR1/15820"),
        inbox.join("15820"),
    )
    .unwrap();
    std::fs::write(inbox.join("README"), b"not a slice").unwrap();
    let (out, lines) = b.scan();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by = |name: &str| line_for(&lines, name).clone();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for bad in ["MR_truncated.dcm", "MR_small_jpeg_ls_lossless.dcm"] {
        let l = by(bad);
        assert_eq!(l["verdict"], "error");
        let e = l["error"].as_str().unwrap();
        assert!(e.contains(bad) && e.contains("DICOM"), "{e}");
    }
    for good in ["MR_small.dcm", "15820"] {
        let l = by(good);
        assert_ne!(l["verdict"], "error", "{l}");
        // The spacing is the file's own; the area follows from it.
        let [r, c] = [0, 1].map(|i| l["pixel_spacing_mm"][i].as_f64().unwrap());
        let px = l["area_px"].as_f64().unwrap();
        let mm2 = l["area_mm2"].as_f64().unwrap();
        assert!((mm2 - px * r * c).abs() < 1e-3, "{l}");
    }
}

/// The length check that runs before dicom-rs must never refuse a file
/// dicom-rs reads: every file of pydicom's test set (odd encodings,
/// sequences, private tags, encapsulated pixel data, big endian) that
/// dicom-rs parses passes it, except deflated ones, which are refused on
/// purpose and by name (their inflated size is unknown until inflated).
#[test]
fn the_length_check_passes_every_file_dicom_rs_reads() {
    let mut read = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(pydicom_files())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries.into_iter().filter(|p| p.is_file()) {
        let bytes = std::fs::read(&path).unwrap();
        let preamble = if bytes.get(128..132) == Some(b"DICM") {
            128
        } else {
            0
        };
        let body = &bytes[preamble..];
        let parses = std::panic::catch_unwind(|| {
            dicom_object::OpenFileOptions::new()
                .from_reader(body)
                .is_ok()
        })
        .unwrap_or(false);
        if !parses {
            continue;
        }
        read += 1;
        if let Err(e) = firmware::dicom::lengths::check_file(body, preamble) {
            if e.to_string()
                .contains("deflated data sets (1.2.840.10008.1.2.1.99)")
            {
                continue;
            }
            panic!(
                "{}: dicom-rs reads it, the length check says: {e}",
                path.display()
            );
        }
    }
    assert!(read >= 40, "only {read} of pydicom's files parsed");
}

/// A diffusion EPI mosaic (pydicom's MR_small with the header of
/// heudiconv's real Siemens b=1500 file) is screened like any slice, and
/// its result, line, session CSV and page say it lies outside the models'
/// training; the plain MR file beside it says nothing of the kind.
#[test]
fn a_diffusion_mosaic_is_screened_with_a_caution_and_a_plain_slice_without() {
    let dir = pydicom_files();
    let b = ScanBox::new();
    let inbox = &b.inbox;
    std::fs::copy(dir.join("MR_small.dcm"), inbox.join("plain.dcm")).unwrap();
    let script = format!(
        "import pydicom\n\
         d = pydicom.dcmread({:?})\n\
         d.ImageType = ['ORIGINAL', 'PRIMARY', 'DIFFUSION', 'NONE', 'ND', 'MOSAIC']\n\
         d.ScanningSequence = 'EP'\n\
         d.SequenceName = 'ep_b1500#2'\n\
         d.SeriesInstanceUID = d.SeriesInstanceUID + '.9'\n\
         d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID + '.9'\n\
         block = d.private_block(0x0019, 'SIEMENS MR HEADER', create=True)\n\
         block.add_new(0x0C, 'IS', '1500')\n\
         d.save_as({:?})",
        dir.join("MR_small.dcm").display().to_string(),
        inbox.join("dwi.dcm").display().to_string()
    );
    let made = Command::new(python())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (out, lines) = b.scan();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    let by = |name: &str| line_for(&lines, name);
    let want = "outside the models' training: diffusion-weighted EPI (b=1500); \
                a mosaic of slices in one image";
    let dwi = by("dwi.dcm");
    assert_eq!(dwi["caution"], want, "{dwi}");
    assert_ne!(dwi["verdict"], "error", "{dwi}");
    let plain = by("plain.dcm");
    assert_eq!(plain["caution"], Value::Null, "{plain}");
    // Same pixels, same verdict: the caution qualifies it, never changes it.
    assert_eq!(dwi["verdict"], plain["verdict"]);
    assert_eq!(dwi["area_px"], plain["area_px"]);
    // On the terminal the caution is the line under the slice's own.
    let result_lines: Vec<&str> = stdout.lines().collect();
    let at = result_lines
        .iter()
        .position(|l| l.ends_with("dwi.dcm"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        result_lines[at + 1].trim(),
        format!("caution: {want}"),
        "{stdout}"
    );
    // The slice's line and its series' row (the two files are two
    // series) say it; nothing else does.
    assert_eq!(stdout.matches("caution:").count(), 2, "{stdout}");
    let series = per_series_rows(&stdout);
    assert_eq!(series.len(), 3, "{stdout}");
    // Both are SeriesNumber 1 without a description; dwi.dcm comes first.
    assert!(series[0].trim_start().starts_with("series 1 "), "{stdout}");
    assert_eq!(series[1].trim(), format!("caution: {want}"), "{stdout}");
    assert!(series[2].trim_start().starts_with("series 1 "), "{stdout}");
    let sessions = b.out().join("sessions");
    let csv = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "csv"))
        .unwrap();
    let csv = std::fs::read_to_string(csv).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",caution"), "{csv}");
    assert!(csv.contains(want), "{csv}");
    // `inspect` says it before anything is screened, for the shipped
    // models' 128 px input by default: there the 64x64 slices are also
    // coarse (the test models above take 64 px, where they are not).
    let seen = inspect(&[inbox.join("dwi.dcm"), inbox.join("plain.dcm")]);
    let coarse = "coarse: 64x64 px, under the models' 128x128 px input";
    assert_eq!(seen[0]["caution"], format!("{want}; {coarse}"), "{seen:?}");
    assert_eq!(
        seen[1]["caution"],
        format!("outside the models' training: {coarse}"),
        "{seen:?}"
    );
}
