//! Does the filter pay? Every labelled slice of a folder screened twice by
//! the same engine, once as the appliance runs (filter, then the segmenter
//! on what it passes) and once with every slice segmented, so the time
//! saved and the tumour slices lost are measured on the same slices in the
//! same process.

use crate::engine::{Engine, Verdict};
use crate::error::{Error, Result};
use models::SliceImage;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A slice and whether its mask (`<stem>_mask.<ext>` beside it, the LGG
/// naming) shows any tumour.
#[derive(Debug)]
pub struct Labelled {
    pub path: PathBuf,
    /// The folder holding the slice: one patient in the LGG layout.
    pub patient: PathBuf,
    pub image: SliceImage,
    pub tumour: bool,
}

/// The slices under `dir` that have a mask; `skipped` counts those without.
pub fn labelled_slices(dir: &Path) -> Result<(Vec<Labelled>, usize)> {
    let mut out = Vec::new();
    let mut skipped = 0;
    for path in crate::inputs::expand(&[dir.to_path_buf()])? {
        let Some(mask) = crate::inputs::mask_beside(&path) else {
            skipped += 1;
            continue;
        };
        let image = SliceImage::open(&path)
            .map_err(|e| Error::Bench(format!("{}: {e}", path.display())))?;
        let tumour = crate::inputs::read_mask(&mask)
            .map_err(|e| Error::Bench(format!("{}: {e}", mask.display())))?
            .contains(&true);
        out.push(Labelled {
            patient: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            path,
            image,
            tumour,
        });
    }
    if out.is_empty() {
        return Err(Error::Bench(format!(
            "{}: no slice with a `<slice>_mask` file beside it ({skipped} without)",
            dir.display()
        )));
    }
    Ok((out, skipped))
}

/// One way of running the pipeline over the slices.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModeFigures {
    /// Wall time per slice (filter + segmenter where run), mean over slices.
    pub mean_ms: f64,
    /// Slices that reached the segmenter.
    pub segmented: usize,
    /// Tumour slices the appliance called tumour (a mask was drawn).
    pub tumour_found: usize,
    /// Clear slices the appliance called tumour.
    pub false_alarms: usize,
    /// Patients with tumour of whom at least one tumour slice was called
    /// tumour: whether the patient is flagged for a second look.
    #[serde(default)]
    pub patients_found: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FilterOnOff {
    pub folder: String,
    pub slices: usize,
    pub tumour_slices: usize,
    #[serde(default)]
    pub patients: usize,
    #[serde(default)]
    pub patients_with_tumour: usize,
    /// Slices without a mask beside them, left out.
    pub skipped: usize,
    pub filter_on: ModeFigures,
    pub filter_off: ModeFigures,
    /// Tumour slices the filter passed on to the segmenter.
    pub filter_passed_tumour: usize,
}

impl FilterOnOff {
    pub fn clear_slices(&self) -> usize {
        self.slices - self.tumour_slices
    }

    /// Throughput with the filter over throughput without it.
    pub fn speedup(&self) -> f64 {
        self.filter_off.mean_ms / self.filter_on.mean_ms
    }
}

/// Screens each slice with the filter and without it, alternating which
/// goes first so neither always meets warm caches.
pub fn measure(
    engine: &Engine,
    folder: &Path,
    slices: &[Labelled],
    skipped: usize,
) -> Result<FilterOnOff> {
    if !engine.has_filter() {
        return Err(Error::Bench(
            "the model set has no filter: nothing to switch off".into(),
        ));
    }
    let (mut on, mut off) = (Tally::default(), Tally::default());
    let mut filter_passed_tumour = 0;
    // Per patient: found with the filter on, found with it off.
    let mut found: BTreeMap<&Path, (bool, bool)> = BTreeMap::new();
    let mut patients = BTreeSet::new();
    for (i, s) in slices.iter().enumerate() {
        let mut run = |with_filter: bool| -> Result<()> {
            let t = Instant::now();
            let r = if with_filter {
                engine.screen(&s.image)
            } else {
                engine.screen_without_filter(&s.image)
            }
            .map_err(|e| Error::Bench(format!("{}: {e}", s.path.display())))?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let segmented = r.segmentation.is_some();
            if with_filter && segmented && s.tumour {
                filter_passed_tumour += 1;
            }
            let called = r.verdict == Verdict::Tumour;
            if s.tumour {
                let f = found.entry(&s.patient).or_default();
                if with_filter {
                    f.0 |= called;
                } else {
                    f.1 |= called;
                }
            }
            let tally = if with_filter { &mut on } else { &mut off };
            tally.add(ms, segmented, called, s.tumour);
            Ok(())
        };
        patients.insert(&s.patient);
        if i % 2 == 0 {
            run(true)?;
            run(false)?;
        } else {
            run(false)?;
            run(true)?;
        }
    }
    let mut filter_on = on.figures();
    let mut filter_off = off.figures();
    filter_on.patients_found = found.values().filter(|f| f.0).count();
    filter_off.patients_found = found.values().filter(|f| f.1).count();
    Ok(FilterOnOff {
        folder: folder.display().to_string(),
        slices: slices.len(),
        tumour_slices: slices.iter().filter(|s| s.tumour).count(),
        patients: patients.len(),
        patients_with_tumour: found.len(),
        skipped,
        filter_on,
        filter_off,
        filter_passed_tumour,
    })
}

#[derive(Default)]
struct Tally {
    ms: f64,
    n: usize,
    figures: ModeFigures,
}

impl Tally {
    fn add(&mut self, ms: f64, segmented: bool, called_tumour: bool, tumour: bool) {
        self.ms += ms;
        self.n += 1;
        let f = &mut self.figures;
        f.segmented += usize::from(segmented);
        f.tumour_found += usize::from(called_tumour && tumour);
        f.false_alarms += usize::from(called_tumour && !tumour);
    }

    fn figures(mut self) -> ModeFigures {
        self.figures.mean_ms = self.ms / self.n.max(1) as f64;
        self.figures
    }
}

/// The table a person reads.
pub fn print(
    r: &FilterOnOff,
    precision: &str,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let share = |k: usize, n: usize| 100.0 * k as f64 / n.max(1) as f64;
    writeln!(
        out,
        "\nfilter on vs off, tract {precision}: {} slices of {} patients in {} ({} with tumour, {:.1} %), each screened both ways{}",
        r.slices,
        r.patients,
        r.folder,
        r.tumour_slices,
        share(r.tumour_slices, r.slices),
        if r.skipped > 0 {
            format!("; {} without a mask left out", r.skipped)
        } else {
            String::new()
        }
    )?;
    writeln!(
        out,
        "{:<11} {:>9} {:>9} {:>18} {:>22} {:>16} {:>16}",
        "mode",
        "ms/slice",
        "slices/s",
        "segmented",
        "tumour slices found",
        "false alarms",
        "patients found"
    )?;
    for (mode, f) in [("filter off", &r.filter_off), ("filter on", &r.filter_on)] {
        writeln!(
            out,
            "{:<11} {:>9.2} {:>9.1} {:>18} {:>22} {:>16} {:>16}",
            mode,
            f.mean_ms,
            1e3 / f.mean_ms,
            format!("{} ({:.0} %)", f.segmented, share(f.segmented, r.slices)),
            format!(
                "{} / {} ({:.1} %)",
                f.tumour_found,
                r.tumour_slices,
                share(f.tumour_found, r.tumour_slices)
            ),
            format!("{} / {}", f.false_alarms, r.clear_slices()),
            format!("{} / {}", f.patients_found, r.patients_with_tumour),
        )?;
    }
    writeln!(
        out,
        "the filter passed {} of {} tumour slices (sensitivity {:.3}); with it the appliance screens {:.2}x as many slices per second ({})",
        r.filter_passed_tumour,
        r.tumour_slices,
        r.filter_passed_tumour as f64 / r.tumour_slices.max(1) as f64,
        r.speedup(),
        if r.speedup() > 1.0 {
            "the filter saves time"
        } else {
            "the filter costs time"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_pair_by_the_lgg_naming() {
        let d = tempfile::tempdir().unwrap();
        let grey = |v: u8| image::GrayImage::from_pixel(4, 4, image::Luma([v]));
        grey(90).save(d.path().join("p_1.png")).unwrap();
        grey(0).save(d.path().join("p_1_mask.png")).unwrap();
        grey(90).save(d.path().join("p_2.png")).unwrap();
        let mut m = grey(0);
        m.put_pixel(2, 2, image::Luma([255]));
        m.save(d.path().join("p_2_mask.png")).unwrap();
        grey(90).save(d.path().join("p_3.png")).unwrap();
        let (slices, skipped) = labelled_slices(d.path()).unwrap();
        let truth: Vec<bool> = slices.iter().map(|s| s.tumour).collect();
        assert_eq!(truth, [false, true]);
        assert_eq!(skipped, 1);
        let empty = tempfile::tempdir().unwrap();
        let err = labelled_slices(empty.path()).unwrap_err().to_string();
        assert!(err.contains("no slice with a `<slice>_mask`"), "{err}");
    }

    #[test]
    fn tallies_count_what_each_mode_found() {
        let mut t = Tally::default();
        t.add(2.0, true, true, true); // found
        t.add(4.0, true, false, true); // segmented, nothing drawn
        t.add(6.0, false, false, false); // filtered out
        t.add(8.0, true, true, false); // false alarm
        let f = t.figures();
        assert_eq!(
            f,
            ModeFigures {
                mean_ms: 5.0,
                segmented: 3,
                tumour_found: 1,
                false_alarms: 1,
                patients_found: 0
            }
        );
    }
}
