//! The handful of sample slices shipped under `models/samples/` for the demo,
//! the boot self-test and end-to-end tests: tumour and clear slices, large
//! and tiny lesions, the stacked LGG form and single grey contrasts, 8- and
//! 16-bit, 256 and 512 pixels.

use super::anatomy::Volume;
use super::render::{CohortSettings, Contrast, Form, FormChoice, PatientPlan};
use super::render_output;
use crate::{Error, Result};
use image::imageops::{self, FilterType};
use image::DynamicImage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One shipped sample and what is true about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleInfo {
    pub file: String,
    /// The true mask (0/255 PNG, same size), absent for clear slices.
    pub mask: Option<String>,
    /// `tumour` or `clear`.
    pub truth: String,
    pub lesion_px: usize,
    pub form: String,
    pub bit_depth: u8,
    pub source: String,
}

/// What each sample should be: (wanted truth, lesion size bounds, form, 16-bit 512 px).
const WANTED: [(&str, usize, usize, Form, bool); 8] = [
    ("tumour", 400, usize::MAX, Form::Stacked, false),
    ("tumour", 100, 400, Form::Stacked, false),
    ("tumour", 1, 40, Form::Stacked, false),
    (
        "tumour",
        150,
        usize::MAX,
        Form::Single(Contrast::Flair),
        false,
    ),
    ("tumour", 1, 60, Form::Single(Contrast::T2), false),
    (
        "tumour",
        200,
        usize::MAX,
        Form::Single(Contrast::Flair),
        true,
    ),
    ("clear", 0, 0, Form::Stacked, false),
    ("clear", 0, 0, Form::Single(Contrast::T1), false),
];

/// Searches phantom patients from `seed` for slices matching each wanted
/// kind and writes them with `samples.json` into `out`.
pub fn write_samples(volumes: &[Volume], seed: u64, out: &Path) -> Result<Vec<SampleInfo>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut infos = Vec::new();
    for (k, (truth, lo, hi, form, big16)) in WANTED.iter().enumerate() {
        let settings = CohortSettings {
            forms: match form {
                Form::Stacked => FormChoice::Stacked,
                Form::Single(c) => FormChoice::Single(*c),
            },
            ..CohortSettings::default()
        };
        let found = (0..500).find_map(|p| {
            let plan = PatientPlan::draw(volumes, &settings, seed + k as u64, p);
            let volume = &volumes[plan.volume];
            // Middle of the stack first: sample slices should show anatomy.
            let n = plan.base.len();
            let order = (0..n).map(|i| (n / 2 + i) % n);
            order.into_iter().find_map(|j| {
                let s = render_output(&plan, volume, j);
                ((*lo..=*hi).contains(&s.tumour_pixels)).then(|| (plan.id.clone(), j, s))
            })
        });
        let Some((patient, j, s)) = found else {
            return Err(Error::Invalid(format!(
                "no phantom slice found for sample {k} ({truth}, {lo}..{hi} px)"
            )));
        };
        let stem = format!("sample_{:02}_{}_{}", k + 1, truth, form.label());
        let (image, mask, bit_depth) = if *big16 {
            let grey = s.image.to_luma16();
            let big = imageops::resize(&grey, 512, 512, FilterType::Triangle);
            let mask = imageops::resize(&s.mask, 512, 512, FilterType::Nearest);
            (DynamicImage::ImageLuma16(big), mask, 16)
        } else {
            (s.image, s.mask, 8)
        };
        let lesion_px = mask.pixels().filter(|p| p[0] != 0).count();
        let file = format!("{stem}.png");
        save(&image, &out.join(&file))?;
        let mask_file = (lesion_px > 0).then(|| format!("{stem}_mask.png"));
        if let Some(m) = &mask_file {
            save(&DynamicImage::ImageLuma8(mask), &out.join(m))?;
        }
        infos.push(SampleInfo {
            file,
            mask: mask_file,
            truth: truth.to_string(),
            lesion_px,
            form: form.label(),
            bit_depth,
            source: format!("phantom seed {} {patient} slice {}", seed + k as u64, j + 1),
        });
    }
    let json = serde_json::to_string_pretty(&infos).expect("serialisable");
    let path = out.join("samples.json");
    std::fs::write(&path, json + "\n").map_err(|e| Error::io(&path, e))?;
    Ok(infos)
}

fn save(img: &DynamicImage, path: &Path) -> Result<()> {
    img.save(path).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        reason: format!("cannot write: {e}"),
    })
}

/// Reads `samples.json` from a samples folder.
pub fn read_samples(dir: &Path) -> Result<Vec<SampleInfo>> {
    let path = dir.join("samples.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Data {
        path,
        reason: e.to_string(),
    })
}
