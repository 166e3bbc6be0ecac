//! Reader for the Kaggle LGG segmentation layout (Buda et al.):
//!
//! ```text
//! kaggle_3m/TCGA_CS_4941_19960909/TCGA_CS_4941_19960909_1.tif
//! kaggle_3m/TCGA_CS_4941_19960909/TCGA_CS_4941_19960909_1_mask.tif
//! kaggle_3m/data.csv            (optional; per-patient genomics, not used)
//! ```
//!
//! Images and masks may be `.tif`, `.png` or `.jpg` (the Kaggle download is
//! TIFF; copies re-encoded as JPEG images with PNG masks read the same), and
//! an image's mask may use another format than the image. The Figshare set
//! converted to this layout (`FIGSHARE_<pid>/FIGSHARE_<pid>_<n>.jpg`) reads
//! the same way.
//!
//! The phantom generator writes the same layout, so one reader serves both.
//! Nothing is dropped silently: every file that cannot be used becomes a
//! [`Problem`] naming it and saying why.

use crate::{Error, Result};
use models::SliceImage;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One image/mask pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceRecord {
    /// Patient id: the folder name without its trailing `_YYYYMMDD`.
    pub patient: String,
    /// Slice number from the file name (1-based in LGG).
    pub index: u32,
    pub image: PathBuf,
    pub mask: PathBuf,
}

/// A file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// A loaded pair: the slice as decoded and its mask as 0/1 bytes.
#[derive(Debug, Clone)]
pub struct Sample {
    pub record: SliceRecord,
    pub image: SliceImage,
    pub mask: Vec<u8>,
}

impl Sample {
    pub fn tumour_pixels(&self) -> usize {
        self.mask.iter().filter(|&&m| m != 0).count()
    }
}

#[derive(Debug, Default)]
pub struct LggIndex {
    /// Pairs sorted by patient, then slice number.
    pub slices: Vec<SliceRecord>,
    pub problems: Vec<Problem>,
}

impl LggIndex {
    /// Finds every patient folder under `root` (at any depth) and pairs its
    /// images with masks by name. Only names are checked here; use
    /// [`LggIndex::load_all`] to decode and check contents.
    pub fn scan(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::Data {
                path: root.to_path_buf(),
                reason: "not a directory (expected the LGG layout: <root>/<PATIENT_DATE>/<PATIENT_DATE>_<n>.tif)".into(),
            });
        }
        let mut index = LggIndex::default();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| Error::io(&dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            let mut images: BTreeMap<u32, PathBuf> = BTreeMap::new();
            let mut masks: BTreeMap<u32, PathBuf> = BTreeMap::new();
            let prefix = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            for path in entries {
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    index.problems.push(Problem {
                        path,
                        reason: "file name is not valid UTF-8".into(),
                    });
                    continue;
                };
                if !is_slice_file(name) {
                    continue; // data.csv, README, labels: not slices
                }
                match parse_slice_name(name, &prefix) {
                    Some((n, is_mask)) => {
                        let map = if is_mask { &mut masks } else { &mut images };
                        if let Some(first) = map.get(&n) {
                            index.problems.push(Problem {
                                path: path.clone(),
                                reason: format!(
                                    "a second {} for slice {n} beside {}; skipped",
                                    if is_mask { "mask" } else { "image" },
                                    first.display()
                                ),
                            });
                        } else {
                            map.insert(n, path);
                        }
                    }
                    None => index.problems.push(Problem {
                        path,
                        reason: format!(
                            "name does not follow {prefix}_<n>.<ext> / {prefix}_<n>_mask.<ext>"
                        ),
                    }),
                }
            }
            let patient = patient_id(&prefix);
            for (n, image) in &images {
                match masks.remove(n) {
                    Some(mask) => index.slices.push(SliceRecord {
                        patient: patient.clone(),
                        index: *n,
                        image: image.clone(),
                        mask,
                    }),
                    None => index.problems.push(Problem {
                        path: image.clone(),
                        reason: "no matching _mask.tif/.png/.jpg; slice skipped".into(),
                    }),
                }
            }
            for mask in masks.into_values() {
                index.problems.push(Problem {
                    path: mask,
                    reason: "mask without an image; skipped".into(),
                });
            }
        }
        index
            .slices
            .sort_by(|a, b| (&a.patient, a.index).cmp(&(&b.patient, b.index)));
        index.problems.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(index)
    }

    pub fn patients(&self) -> Vec<String> {
        let mut p: Vec<String> = self.slices.iter().map(|s| s.patient.clone()).collect();
        p.dedup();
        p
    }

    /// Decodes every pair; pairs that fail (unreadable, size mismatch) move to
    /// `problems` and the rest are returned in order.
    pub fn load_all(&mut self, mut progress: impl FnMut(usize, usize)) -> Vec<Sample> {
        let total = self.slices.len();
        let mut samples = Vec::with_capacity(total);
        let mut kept = Vec::with_capacity(total);
        for (i, record) in std::mem::take(&mut self.slices).into_iter().enumerate() {
            match load_pair(&record) {
                Ok(sample) => {
                    samples.push(sample);
                    kept.push(record);
                }
                Err(problem) => self.problems.push(problem),
            }
            progress(i + 1, total);
        }
        self.slices = kept;
        samples
    }
}

/// Decodes one pair, checking that image and mask agree in size.
pub fn load_pair(record: &SliceRecord) -> std::result::Result<Sample, Problem> {
    let image = SliceImage::open(&record.image).map_err(|e| Problem {
        path: record.image.clone(),
        reason: strip_path(e.to_string(), &record.image),
    })?;
    let mask_img = SliceImage::open(&record.mask).map_err(|e| Problem {
        path: record.mask.clone(),
        reason: strip_path(e.to_string(), &record.mask),
    })?;
    if (mask_img.width, mask_img.height) != (image.width, image.height) {
        return Err(Problem {
            path: record.mask.clone(),
            reason: format!(
                "mask is {}x{} but its image is {}x{}",
                mask_img.width, mask_img.height, image.width, image.height
            ),
        });
    }
    // A mask pixel is tumour when it is above half scale (LGG masks are 0/255).
    let half = mask_img.full_scale() / 2.0;
    let mask = mask_img
        .plane(0)
        .iter()
        .map(|&v| u8::from(v > half))
        .collect();
    Ok(Sample {
        record: record.clone(),
        image,
        mask,
    })
}

fn strip_path(msg: String, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    msg.strip_prefix(&prefix).map(str::to_string).unwrap_or(msg)
}

/// `TCGA_CS_4941_19960909` -> `TCGA_CS_4941`; names without a date stay.
pub fn patient_id(folder: &str) -> String {
    match folder.rsplit_once('_') {
        Some((head, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => {
            head.to_string()
        }
        _ => folder.to_string(),
    }
}

/// The extensions a slice or mask may have (case-insensitive).
pub const SLICE_EXTENSIONS: [&str; 5] = ["tif", "tiff", "png", "jpg", "jpeg"];

/// Whether a file name ends in one of [`SLICE_EXTENSIONS`].
pub fn is_slice_file(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| SLICE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

/// `<prefix>_<n>.tif` -> (n, false); `<prefix>_<n>_mask.tif` -> (n, true).
fn parse_slice_name(name: &str, prefix: &str) -> Option<(u32, bool)> {
    let stem = name.rsplit_once('.')?.0;
    let rest = stem.strip_prefix(prefix)?.strip_prefix('_')?;
    let (num, is_mask) = match rest.strip_suffix("_mask") {
        Some(n) => (n, true),
        None => (rest, false),
    };
    Some((num.parse().ok()?, is_mask))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, RgbImage};

    fn write_pair(dir: &Path, folder: &str, n: u32, size: u32, lesion: bool) {
        let d = dir.join(folder);
        std::fs::create_dir_all(&d).unwrap();
        RgbImage::from_fn(size, size, |x, y| image::Rgb([x as u8, y as u8, 7]))
            .save(d.join(format!("{folder}_{n}.tif")))
            .unwrap();
        GrayImage::from_fn(size, size, |x, y| {
            image::Luma([if lesion && x < 3 && y < 2 { 255 } else { 0 }])
        })
        .save(d.join(format!("{folder}_{n}_mask.tif")))
        .unwrap();
    }

    #[test]
    fn names_and_patient_ids() {
        assert_eq!(parse_slice_name("P_1_12.tif", "P_1"), Some((12, false)));
        assert_eq!(parse_slice_name("P_1_12_mask.tif", "P_1"), Some((12, true)));
        assert_eq!(parse_slice_name("Q_12.tif", "P_1"), None);
        assert_eq!(parse_slice_name("P_1_x.tif", "P_1"), None);
        assert_eq!(patient_id("TCGA_CS_4941_19960909"), "TCGA_CS_4941");
        assert_eq!(patient_id("scan_7"), "scan_7");
    }

    #[test]
    fn reads_layout_and_reports_every_bad_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("kaggle_3m");
        write_pair(&root, "TCGA_AA_0001_20000101", 1, 8, false);
        write_pair(&root, "TCGA_AA_0001_20000101", 2, 8, true);
        write_pair(&root, "TCGA_BB_0002_20000102", 1, 8, true);
        std::fs::write(root.join("data.csv"), "Patient,x\n").unwrap();
        let a = root.join("TCGA_AA_0001_20000101");
        let b = root.join("TCGA_BB_0002_20000102");
        // unpaired image, orphan mask, truncated image, size mismatch, stray name
        RgbImage::new(8, 8)
            .save(a.join("TCGA_AA_0001_20000101_3.tif"))
            .unwrap();
        GrayImage::new(8, 8)
            .save(a.join("TCGA_AA_0001_20000101_9_mask.tif"))
            .unwrap();
        write_pair(&root, "TCGA_BB_0002_20000102", 2, 8, false);
        let t = b.join("TCGA_BB_0002_20000102_2.tif");
        let bytes = std::fs::read(&t).unwrap();
        std::fs::write(&t, &bytes[..bytes.len() / 3]).unwrap();
        write_pair(&root, "TCGA_BB_0002_20000102", 3, 8, false);
        GrayImage::new(4, 4)
            .save(b.join("TCGA_BB_0002_20000102_3_mask.tif"))
            .unwrap();
        std::fs::write(b.join("notes.tif"), b"x").unwrap();

        let mut index = LggIndex::scan(tmp.path()).unwrap();
        assert_eq!(index.patients(), vec!["TCGA_AA_0001", "TCGA_BB_0002"]);
        assert_eq!(index.slices.len(), 5);
        assert_eq!(index.problems.len(), 3, "{:?}", index.problems);
        let samples = index.load_all(|_, _| {});
        assert_eq!(samples.len(), 3);
        let problems: Vec<String> = index.problems.iter().map(|p| p.to_string()).collect();
        let has =
            |file: &str, why: &str| problems.iter().any(|p| p.contains(file) && p.contains(why));
        assert!(has("_3.tif", "no matching _mask.tif"), "{problems:?}");
        assert!(has("_3.tif", ".png/.jpg"), "{problems:?}");
        assert!(has("_9_mask.tif", "mask without an image"), "{problems:?}");
        assert!(has("notes.tif", "name does not follow"), "{problems:?}");
        assert!(
            has("TCGA_BB_0002_20000102_2.tif", "failed to fill whole buffer"),
            "{problems:?}"
        );
        assert!(
            has("TCGA_BB_0002_20000102_3_mask.tif", "mask is 4x4"),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 5);

        let tumour: Vec<usize> = samples.iter().map(Sample::tumour_pixels).collect();
        assert_eq!(tumour, vec![0, 6, 6]);
        assert_eq!(samples[0].image.channels, 3);
    }

    #[test]
    fn jpeg_images_with_png_masks_and_duplicates() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("FIGSHARE_100360");
        std::fs::create_dir_all(&d).unwrap();
        let grey = image::GrayImage::from_fn(16, 16, |x, _| image::Luma([x as u8 * 10]));
        grey.save(d.join("FIGSHARE_100360_1.jpg")).unwrap();
        let mask = GrayImage::from_fn(16, 16, |x, y| {
            image::Luma([if x < 4 && y < 4 { 255 } else { 0 }])
        });
        mask.save(d.join("FIGSHARE_100360_1_mask.png")).unwrap();
        grey.save(d.join("FIGSHARE_100360_2.JPG")).unwrap();
        mask.save(d.join("FIGSHARE_100360_2_mask.png")).unwrap();
        // the same slice twice: the first by name is kept, the other named
        grey.save(d.join("FIGSHARE_100360_2.png")).unwrap();
        std::fs::write(d.join("labels.csv"), "x").unwrap();
        let mut index = LggIndex::scan(tmp.path()).unwrap();
        assert_eq!(index.patients(), vec!["FIGSHARE_100360"]);
        assert_eq!(index.slices.len(), 2);
        assert_eq!(index.problems.len(), 1, "{:?}", index.problems);
        assert!(index.problems[0]
            .reason
            .contains("a second image for slice 2"));
        let samples = index.load_all(|_, _| {});
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].image.channels, 1);
        assert_eq!(samples[0].tumour_pixels(), 16);
    }

    #[test]
    fn missing_root_is_a_clear_error() {
        let err = LggIndex::scan(Path::new("/no/such/kaggle_3m")).unwrap_err();
        assert!(err.to_string().contains("/no/such/kaggle_3m"));
    }
}
