//! Phantom generator: synthetic lesions on real brain anatomy, written in the
//! LGG layout so the LGG reader loads them like the real set.
//!
//! Deterministic by seed: the same seed and settings give byte-identical
//! files. Each `_mask.tif` is exactly the lesion the generator painted.

pub mod anatomy;
pub mod lesion;
pub mod montage;
pub mod render;
pub mod samples;

use crate::{Error, Result};
use anatomy::{Volume, SIZE};
use image::{GrayImage, RgbImage};
use render::{to_u8, CohortSettings, Contrast, Form, PatientPlan};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use render::FormChoice;

/// A fixed acquisition date for the folder names: the layout wants one, and
/// a real-looking date could be mistaken for a real study.
pub const FOLDER_DATE: &str = "20000101";

/// One patient of a written cohort.
#[derive(Debug, Clone, Serialize)]
pub struct PatientRecord {
    pub patient: String,
    pub folder: String,
    pub volume: String,
    pub form: String,
    pub slices: usize,
    pub tumour_slices: usize,
    pub lesion_radius_px: f32,
    pub ring_enhancement: bool,
    pub max_lesion_area_px: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CohortSummary {
    pub root: PathBuf,
    pub seed: u64,
    pub patients: Vec<PatientRecord>,
}

impl CohortSummary {
    pub fn slices(&self) -> usize {
        self.patients.iter().map(|p| p.slices).sum()
    }
    pub fn tumour_slices(&self) -> usize {
        self.patients.iter().map(|p| p.tumour_slices).sum()
    }
}

/// The rendered pixels of one slice in its output form, plus its mask.
pub struct SliceOutput {
    pub image: image::DynamicImage,
    pub mask: GrayImage,
    pub tumour_pixels: usize,
}

/// Renders patient slice `j` in the plan's form, quantised to 8 bits.
pub fn render_output(plan: &PatientPlan, volume: &Volume, j: usize) -> SliceOutput {
    let r = plan.render(volume, j, true);
    let px = |c: Contrast, i: usize| to_u8(r.plane(c)[i]);
    let image = match plan.form {
        Form::Stacked => {
            image::DynamicImage::ImageRgb8(RgbImage::from_fn(SIZE as u32, SIZE as u32, |x, y| {
                let i = y as usize * SIZE + x as usize;
                image::Rgb([
                    px(Contrast::T1, i),
                    px(Contrast::Flair, i),
                    px(Contrast::T1c, i),
                ])
            }))
        }
        Form::Single(c) => {
            image::DynamicImage::ImageLuma8(GrayImage::from_fn(SIZE as u32, SIZE as u32, |x, y| {
                image::Luma([px(c, y as usize * SIZE + x as usize)])
            }))
        }
    };
    let mask = GrayImage::from_fn(SIZE as u32, SIZE as u32, |x, y| {
        image::Luma([if r.mask[y as usize * SIZE + x as usize] {
            255
        } else {
            0
        }])
    });
    SliceOutput {
        image,
        tumour_pixels: r.mask.iter().filter(|&&m| m).count(),
        mask,
    }
}

/// Writes `patients` phantom patients under `out/kaggle_3m/`, plus
/// `out/kaggle_3m/phantoms.csv` describing each. `progress(done, total)` is
/// called after each patient.
pub fn generate_cohort(
    out: &Path,
    patients: usize,
    seed: u64,
    settings: &CohortSettings,
    mut progress: impl FnMut(usize, usize),
) -> Result<CohortSummary> {
    let volumes = anatomy::embedded_volumes()?;
    let root = out.join("kaggle_3m");
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let mut records = Vec::with_capacity(patients);
    for p in 0..patients {
        let plan = PatientPlan::draw(&volumes, settings, seed, p);
        let volume = &volumes[plan.volume];
        let folder = format!("{}_{FOLDER_DATE}", plan.id);
        let dir = root.join(&folder);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut tumour_slices = 0;
        let mut max_area = 0;
        for j in 0..plan.base.len() {
            let s = render_output(&plan, volume, j);
            if s.tumour_pixels > 0 {
                tumour_slices += 1;
            }
            max_area = max_area.max(s.tumour_pixels);
            let image_path = dir.join(format!("{folder}_{}.tif", j + 1));
            let mask_path = dir.join(format!("{folder}_{}_mask.tif", j + 1));
            save(&s.image, &image_path)?;
            save(&image::DynamicImage::ImageLuma8(s.mask), &mask_path)?;
        }
        records.push(PatientRecord {
            patient: plan.id.clone(),
            folder,
            volume: volume.name.clone(),
            form: plan.form.label(),
            slices: plan.base.len(),
            tumour_slices,
            lesion_radius_px: plan.lesion.as_ref().map_or(0.0, |l| l.radius),
            ring_enhancement: plan.lesion.as_ref().is_some_and(|l| l.ring.is_some()),
            max_lesion_area_px: max_area,
        });
        progress(p + 1, patients);
    }
    let csv_path = root.join("phantoms.csv");
    let mut csv = String::from(
        "patient,folder,volume,form,slices,tumour_slices,lesion_radius_px,ring_enhancement,max_lesion_area_px\n",
    );
    for r in &records {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{:.2},{},{}\n",
            r.patient,
            r.folder,
            r.volume,
            r.form,
            r.slices,
            r.tumour_slices,
            r.lesion_radius_px,
            r.ring_enhancement,
            r.max_lesion_area_px
        ));
    }
    let mut f = std::fs::File::create(&csv_path).map_err(|e| Error::io(&csv_path, e))?;
    f.write_all(csv.as_bytes())
        .map_err(|e| Error::io(&csv_path, e))?;
    Ok(CohortSummary {
        root,
        seed,
        patients: records,
    })
}

fn save(img: &image::DynamicImage, path: &Path) -> Result<()> {
    img.save(path).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        reason: format!("cannot write: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::lgg::LggIndex;

    #[test]
    fn mask_is_exactly_the_painted_lesion() {
        let volumes = anatomy::embedded_volumes().unwrap();
        let settings = CohortSettings::default();
        let mut checked = 0;
        for p in 0..6 {
            let plan = PatientPlan::draw(&volumes, &settings, 99, p);
            let volume = &volumes[plan.volume];
            for j in 0..plan.base.len() {
                let with = plan.render(volume, j, true);
                let without = plan.render(volume, j, false);
                for i in 0..SIZE * SIZE {
                    let differs =
                        (0..4).any(|c| (with.planes[c][i] - without.planes[c][i]).abs() > 1e-4);
                    if with.mask[i] {
                        assert!(
                            differs,
                            "patient {p} slice {j} pixel {i}: mask but no lesion"
                        );
                        checked += 1;
                    } else if with.halo[i] == 0.0 {
                        assert!(
                            !differs,
                            "patient {p} slice {j} pixel {i}: lesion outside mask and halo"
                        );
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} lesion pixels checked");
    }

    #[test]
    fn deterministic_per_seed_and_readable_by_the_lgg_reader() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        let settings = CohortSettings {
            forms: FormChoice::Mixed,
            ..CohortSettings::default()
        };
        let sa = generate_cohort(a.path(), 3, 42, &settings, |_, _| {}).unwrap();
        generate_cohort(b.path(), 3, 42, &settings, |_, _| {}).unwrap();
        generate_cohort(c.path(), 3, 43, &settings, |_, _| {}).unwrap();
        let files = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
            let mut index = LggIndex::scan(root).unwrap();
            assert!(index.problems.is_empty(), "{:?}", index.problems);
            let mut v: Vec<_> = index
                .slices
                .iter()
                .flat_map(|s| [s.image.clone(), s.mask.clone()])
                .map(|p| {
                    (
                        p.strip_prefix(root).unwrap().to_path_buf(),
                        std::fs::read(&p).unwrap(),
                    )
                })
                .collect();
            v.sort();
            let samples = index.load_all(|_, _| {});
            assert_eq!(samples.len() * 2, v.len());
            v
        };
        let fa = files(a.path());
        assert_eq!(fa, files(b.path()), "same seed, same bytes");
        assert_ne!(fa, files(c.path()), "another seed, other phantoms");
        assert_eq!(fa.len(), sa.slices() * 2);
        assert!(
            std::fs::read_to_string(sa.root.join("phantoms.csv"))
                .unwrap()
                .lines()
                .count()
                == 4
        );
    }

    #[test]
    fn cohort_has_about_the_requested_tumour_share_and_small_lesions() {
        let volumes = anatomy::embedded_volumes().unwrap();
        let settings = CohortSettings::default();
        let (mut slices, mut tumour, mut small) = (0, 0, 0);
        for p in 0..40 {
            let plan = PatientPlan::draw(&volumes, &settings, 5, p);
            let volume = &volumes[plan.volume];
            slices += plan.base.len();
            for j in 0..plan.base.len() {
                let r = plan.render(volume, j, true);
                let area = r.mask.iter().filter(|&&m| m).count();
                if area > 0 {
                    tumour += 1;
                    if area < 30 {
                        small += 1;
                    }
                }
            }
        }
        let share = tumour as f64 / slices as f64;
        assert!((0.22..0.45).contains(&share), "tumour share {share}");
        assert!(small >= 5, "only {small} slices with lesions under 30 px");
    }
}
