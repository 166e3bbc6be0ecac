//! A shipped model set scored the way the appliance runs it, per data
//! source: the exported ONNX files in tract (f32 and int8), the filter's
//! threshold and the segmenter's from the manifest, on each source's
//! held-out patients, plus folders of real clear slices.
//!
//! Everything is at the model's resolution: the appliance maps the mask
//! back to the slice's own size before it stores it, which moves a Dice by
//! little but is not what is measured here (`neuroscreen bench --slices`
//! measures the appliance itself).
//!
//! A slice is *flagged* by the appliance when the filter passes it and the
//! segmenter's mask is not empty (the verdict follows the mask); the
//! segmenter alone flags a slice when its mask is not empty.

use super::operating_point::{logit_at, p_tumour};
use super::tract_check::{self, TractPlan};
use crate::data::labels::{tumour_types, type_of};
use crate::data::lgg::{is_slice_file, Problem};
use crate::report::{
    classification_metrics, summarise_segmentation, ClassificationMetrics, SegmentationSummary,
    SliceRecord,
};
use crate::train::dataset::{DataSplit, Prepared};
use crate::{Error, Result};
use models::manifest::{ModelEntry, Precision};
use models::metrics::MaskCounts;
use models::{Manifest, SliceImage};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Slices scored together: one source's held-out patients, a derived form
/// of them (a stacked source's FLAIR channel alone), or a folder of clear
/// slices.
#[derive(Debug, Clone)]
pub struct Cohort {
    pub name: String,
    pub data: Prepared,
    /// Named parts of the cohort scored apart from the same outputs (the
    /// tumour types of a source with a `labels.csv`): slice indices into
    /// `data`.
    pub groups: Vec<(String, Vec<usize>)>,
}

impl Cohort {
    /// The group as a cohort of its own, named `<cohort> <group>`, with
    /// the set's outputs for its slices.
    pub fn group(&self, k: usize, out: &SetOutputs) -> (Cohort, SetOutputs) {
        let (name, idx) = &self.groups[k];
        let cohort = Cohort {
            name: format!("{} {name}", self.name),
            data: self.data.subset(idx),
            groups: Vec::new(),
        };
        (cohort, out.subset(idx))
    }
}

/// The FLAIR channel of the LGG stack (pre-contrast T1, FLAIR, post-contrast T1).
pub const FLAIR_CHANNEL: usize = 1;

/// Per source its test slices; for a source whose slices are stacked
/// contrasts (channels differ), also its FLAIR channel alone as grey slices.
/// A source folder with a `labels.csv` gets its tumour types as groups.
pub fn test_cohorts(split: &DataSplit) -> Result<Vec<Cohort>> {
    cohorts_of(split, &split.test)
}

/// As [`test_cohorts`], from the validation patients: where a setting is
/// chosen without looking at the test patients.
pub fn validation_cohorts(split: &DataSplit) -> Result<Vec<Cohort>> {
    cohorts_of(split, &split.val)
}

/// The run's training patients, cohorts as for the held-out ones: how well
/// the model fits what it learnt from, beside the same figures on patients
/// it never saw (a fit gap or its absence), never a result to report as
/// one. Load the split without cuts (`reslice = 0`) for the slices as
/// acquired.
pub fn training_cohorts(split: &DataSplit) -> Result<Vec<Cohort>> {
    cohorts_of(split, &split.train)
}

fn cohorts_of(split: &DataSplit, part: &Prepared) -> Result<Vec<Cohort>> {
    let mut out = Vec::new();
    for (k, source) in split.sources.iter().enumerate() {
        let data = part.of_source(k as u16);
        if data.is_empty() {
            continue;
        }
        let stacked = (0..data.len()).filter(|&i| !is_grey(data.image(i))).count();
        let grey = (2 * stacked > data.len()).then(|| data.single_channel(FLAIR_CHANNEL));
        let groups = match tumour_types(&source.path)? {
            Some(types) => type_groups(&data, &types, &source.name),
            None => Vec::new(),
        };
        out.push(Cohort {
            name: source.name.clone(),
            data,
            groups,
        });
        if let Some(grey) = grey {
            out.push(Cohort {
                name: format!("{} FLAIR alone", source.name),
                data: grey,
                groups: Vec::new(),
            });
        }
    }
    Ok(out)
}

/// The slices of each tumour type, types in name order; none when the
/// cohort's patients have fewer than two types between them (a lone group
/// would repeat the cohort). Patients without a type are in no group.
fn type_groups(
    data: &Prepared,
    types: &BTreeMap<String, String>,
    source: &str,
) -> Vec<(String, Vec<usize>)> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, patient) in data.patients.iter().enumerate() {
        if let Some(kind) = type_of(types, source, patient) {
            groups.entry(kind).or_default().push(i);
        }
    }
    if groups.len() < 2 {
        return Vec::new();
    }
    groups
        .into_iter()
        .map(|(k, idx)| (k.to_string(), idx))
        .collect()
}

fn is_grey(image: &[f32]) -> bool {
    let n = image.len() / 3;
    image[..n] == image[n..2 * n] && image[..n] == image[2 * n..]
}

/// Every image under `dir` (any depth; `.tif`, `.png`, `.jpg`; files named
/// `*_mask.*` are left out) as a clear slice: label clear, empty mask, the
/// patient being the folder it sits in. Files that do not decode are
/// returned as problems, named.
pub fn clear_cohort(name: &str, dir: &Path, size: u32) -> Result<(Cohort, Vec<Problem>)> {
    if !dir.is_dir() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            reason: "not a directory of clear slices".into(),
        });
    }
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let path = entry.map_err(|e| Error::io(&d, e))?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
            if is_slice_file(name) && !stem.ends_with("_mask") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut data = Prepared {
        size,
        ..Default::default()
    };
    let mut problems = Vec::new();
    let pp = models::Preprocessing::default();
    let plane = (size * size) as usize;
    for path in files {
        let prepared = SliceImage::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                models::preprocess::prepare(&s, &pp, size, size).map_err(|e| e.to_string())
            });
        match prepared {
            Ok(input) => {
                data.images.extend_from_slice(&input.data);
                data.masks.extend(std::iter::repeat_n(0u8, plane));
                let patient = path
                    .parent()
                    .and_then(|p| p.file_name())
                    .and_then(|n| n.to_str())
                    .unwrap_or(name)
                    .to_string();
                data.patients.push(patient);
                data.labels.push(false);
                data.true_area.push(0);
                data.sources.push(0);
            }
            Err(reason) => problems.push(Problem { path, reason }),
        }
    }
    if data.is_empty() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            reason: "no slice there decodes".into(),
        });
    }
    Ok((
        Cohort {
            groups: Vec::new(),
            name: name.to_string(),
            data,
        },
        problems,
    ))
}

/// The manifest's two stages loaded in tract at one precision.
pub struct LoadedSet {
    pub precision: Precision,
    filter: Option<(ModelEntry, TractPlan)>,
    segmenter: (ModelEntry, TractPlan),
    /// Stages that also see the slice mirrored left-right and average the
    /// two answers (test-time flip).
    flip: Flip,
    /// Mask components under this share of the largest are cleared (0: none).
    component_share: f32,
}

/// Which stages average over the slice and its left-right mirror.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flip {
    pub filter: bool,
    pub segmenter: bool,
}

/// Every row of every `size` x `size` plane reversed (left-right mirror).
fn mirror(planes: &[f32], size: usize) -> Vec<f32> {
    let mut out = planes.to_vec();
    for row in out.chunks_exact_mut(size) {
        row.reverse();
    }
    out
}

fn load_stage(dir: &Path, entry: &ModelEntry, precision: Precision) -> Result<TractPlan> {
    let path = entry.file_path(dir, precision).ok_or_else(|| {
        Error::Invalid(format!(
            "model {} has no {precision:?} file in the manifest",
            entry.name
        ))
    })?;
    tract_check::load(&path, &entry.input.shape)
}

impl LoadedSet {
    /// Runs the segmenter at `threshold` (P(tumour) per pixel) instead of
    /// the manifest's.
    pub fn with_segmenter_threshold(mut self, threshold: f32) -> Self {
        self.segmenter.0.threshold = threshold;
        self
    }

    /// Empties masks of fewer than `px` pixels instead of at the
    /// manifest's `min_mask_px`.
    pub fn with_min_mask_px(mut self, px: usize) -> Self {
        self.segmenter.0.min_mask_px = px;
        self
    }

    /// Clears mask components under `share` of the largest one's pixels
    /// (before the minimum mask is counted) instead of the manifest's rule.
    pub fn with_component_share(mut self, share: f32) -> Self {
        self.component_share = share;
        self
    }

    /// Averages the chosen stages' outputs over the slice and its mirror:
    /// the filter's P(tumour), the segmenter's logits pixel by pixel.
    pub fn with_flip(mut self, flip: Flip) -> Self {
        self.flip = flip;
        self
    }

    /// `None` when the segmenter has no file at `precision` (an int8 file
    /// the gate refused); a filter without one runs in f32, as `auto` does.
    pub fn load(dir: &Path, manifest: &Manifest, precision: Precision) -> Result<Option<Self>> {
        let seg = manifest.segmenter();
        if seg.file(precision).is_none() {
            return Ok(None);
        }
        let filter = match manifest.filter() {
            Some(f) => {
                let p = if f.file(precision).is_some() {
                    precision
                } else {
                    Precision::F32
                };
                Some((f.clone(), load_stage(dir, f, p)?))
            }
            None => None,
        };
        if let Some((f, _)) = &filter {
            if f.input.shape != seg.input.shape {
                return Err(Error::Invalid(format!(
                    "filter input {:?} and segmenter input {:?} differ; this evaluation prepares slices once",
                    f.input.shape, seg.input.shape
                )));
            }
        }
        Ok(Some(Self {
            precision,
            segmenter: (seg.clone(), load_stage(dir, seg, precision)?),
            filter,
            flip: Flip::default(),
            component_share: 0.0,
        }))
    }

    pub fn input_size(&self) -> u32 {
        self.segmenter.0.input.width()
    }
}

/// What the set made of each slice.
#[derive(Debug, Clone, Default)]
pub struct SetOutputs {
    /// The filter's P(tumour); `None` without a filter.
    pub p_tumour: Option<Vec<f32>>,
    /// The segmenter's mask on every slice (as if the filter passed all).
    pub masks: Vec<Vec<bool>>,
    /// The filter passes the slice (always true without a filter).
    pub passed: Vec<bool>,
    /// The manifest's filter threshold (P(tumour) at or above passes).
    pub filter_threshold: Option<f32>,
}

impl SetOutputs {
    /// The outputs for slices `idx` only, in that order.
    pub fn subset(&self, idx: &[usize]) -> SetOutputs {
        SetOutputs {
            p_tumour: self
                .p_tumour
                .as_ref()
                .map(|p| idx.iter().map(|&i| p[i]).collect()),
            masks: idx.iter().map(|&i| self.masks[i].clone()).collect(),
            passed: idx.iter().map(|&i| self.passed[i]).collect(),
            filter_threshold: self.filter_threshold,
        }
    }
}

pub fn run_set(set: &LoadedSet, data: &Prepared) -> Result<SetOutputs> {
    let shape = set.segmenter.0.input.shape;
    if data.size != set.input_size() {
        return Err(Error::Invalid(format!(
            "slices prepared at {} px, the set's input is {} px",
            data.size,
            set.input_size()
        )));
    }
    let mut out = SetOutputs::default();
    let mut probs = Vec::with_capacity(data.len());
    let cut = logit_at(set.segmenter.0.threshold);
    let size = data.size as usize;
    for i in 0..data.len() {
        let image = data.image(i);
        let mirrored = (set.flip.filter || set.flip.segmenter).then(|| mirror(image, size));
        if let Some((entry, plan)) = &set.filter {
            let mut p = p_tumour(&tract_check::run(plan, &shape, image)?);
            if let (true, Some(m)) = (set.flip.filter, &mirrored) {
                p = 0.5 * (p + p_tumour(&tract_check::run(plan, &shape, m)?));
            }
            probs.push(p);
            out.passed.push(p >= entry.threshold);
        } else {
            out.passed.push(true);
        }
        let mut logits = tract_check::run(&set.segmenter.1, &shape, image)?;
        if let (true, Some(m)) = (set.flip.segmenter, &mirrored) {
            let back = mirror(&tract_check::run(&set.segmenter.1, &shape, m)?, size);
            for (l, b) in logits.iter_mut().zip(back) {
                *l = 0.5 * (*l + b);
            }
        }
        let mut mask: Vec<bool> = logits.iter().map(|&l| l >= cut).collect();
        models::components::clear_under_share(&mut mask, size, size, set.component_share);
        // As the appliance does: a mask under the manifest's minimum is emptied.
        let drawn = mask.iter().filter(|&&m| m).count();
        if !set.segmenter.0.keeps_mask(drawn) {
            mask.fill(false);
        }
        out.masks.push(mask);
    }
    if let Some((entry, _)) = &set.filter {
        out.p_tumour = Some(probs);
        out.filter_threshold = Some(entry.threshold);
    }
    Ok(out)
}

/// The header of [`slice_rows`]' CSV.
pub const SLICE_CSV_HEADER: &str =
    "cohort,precision,patient,tumour,true_area_px,p_tumour,passed,mask_area_px,truth_px,overlap_px";

/// One CSV row per slice of `cohort`: what the set made of it (model
/// pixels; `p_tumour` empty without a filter), so a user can pick a
/// threshold or a minimum area on the validation patients without rerunning
/// the models. `true_area_px` is at the slice's own size, the rest at
/// the model's: `truth_px` (the true mask) and `overlap_px` (mask and truth
/// both) split a poor Dice into a mask too small (overlap near the mask's
/// area) or spilling over (near the truth's).
pub fn slice_rows(cohort: &Cohort, precision: Precision, out: &SetOutputs) -> String {
    let d = &cohort.data;
    let mut csv = String::new();
    for i in 0..d.len() {
        let p = out
            .p_tumour
            .as_ref()
            .map(|p| format!("{:.6}", p[i]))
            .unwrap_or_default();
        let mut c = MaskCounts::default();
        for (&m, &t) in out.masks[i].iter().zip(d.mask(i)) {
            c.add(m, t != 0);
        }
        csv.push_str(&format!(
            "{},{},{},{},{},{p},{},{},{},{}\n",
            csv_field(&cohort.name),
            precision_name(precision),
            csv_field(&d.patients[i]),
            u8::from(d.labels[i]),
            d.true_area[i],
            u8::from(out.passed[i]),
            c.tp + c.fp,
            c.tp + c.fn_,
            c.tp
        ));
    }
    csv
}

/// `f32` or `int8`, as the tables and the CSV name a precision.
fn precision_name(precision: Precision) -> String {
    format!("{precision:?}").to_lowercase()
}

/// A text field as CSV holds it: quoted, quotes doubled, when it has a
/// comma, a quote or a line break (a `--clear` name or a folder may).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A detector's slice and patient figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub tumour_slices: usize,
    pub tumour_slices_flagged: usize,
    pub clear_slices: usize,
    pub clear_slices_flagged: usize,
    /// Patients with at least one tumour slice, and those of them with at
    /// least one tumour slice flagged.
    pub tumour_patients: usize,
    pub tumour_patients_found: usize,
}

impl Detection {
    pub fn of(data: &Prepared, flagged: &[bool]) -> Self {
        let mut d = Detection::default();
        let mut tumour_patients = BTreeSet::new();
        let mut found = BTreeSet::new();
        for (i, &f) in flagged.iter().enumerate() {
            if data.labels[i] {
                d.tumour_slices += 1;
                d.tumour_slices_flagged += usize::from(f);
                tumour_patients.insert(&data.patients[i]);
                if f {
                    found.insert(&data.patients[i]);
                }
            } else {
                d.clear_slices += 1;
                d.clear_slices_flagged += usize::from(f);
            }
        }
        d.tumour_patients = tumour_patients.len();
        d.tumour_patients_found = found.len();
        d
    }

    pub fn sensitivity(&self) -> Option<f64> {
        (self.tumour_slices > 0)
            .then(|| self.tumour_slices_flagged as f64 / self.tumour_slices as f64)
    }

    pub fn specificity(&self) -> Option<f64> {
        (self.clear_slices > 0)
            .then(|| 1.0 - self.clear_slices_flagged as f64 / self.clear_slices as f64)
    }
}

/// One cohort at one precision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CohortScores {
    pub cohort: String,
    pub precision: String,
    pub slices: usize,
    pub patients: usize,
    /// The segmenter on every slice (no filter): Dice and IoU per slice,
    /// per patient (pixels pooled), by lesion size (source-pixel strata).
    pub segmenter: SegmentationSummary,
    /// The masks the appliance stores: empty where the filter stopped a slice.
    pub appliance_masks: SegmentationSummary,
    /// Filter, then a non-empty mask: what the appliance reports.
    pub appliance: Detection,
    /// The segmenter's mask alone as the detector.
    pub segmenter_alone: Detection,
    /// The filter alone at its threshold; ROC AUC when both classes occur.
    pub filter_alone: Option<Detection>,
    pub filter: Option<ClassificationMetrics>,
    /// The segmenter alone as the detector when a slice needs at least
    /// this many mask pixels (model resolution): (minimum, detection).
    pub segmenter_by_min_area: Vec<(usize, Detection)>,
}

/// Minimum mask areas (model pixels) the segmenter-alone detector is
/// scored at.
pub const MIN_AREAS: [usize; 5] = [1, 4, 16, 32, 64];

pub fn score_cohort(
    cohort: &Cohort,
    precision: Precision,
    out: &SetOutputs,
) -> Result<CohortScores> {
    let data = &cohort.data;
    let records = |gate: bool| -> Vec<SliceRecord> {
        (0..data.len())
            .map(|i| {
                let truth: Vec<bool> = data.mask(i).iter().map(|&m| m != 0).collect();
                let pred = if gate && !out.passed[i] {
                    vec![false; truth.len()]
                } else {
                    out.masks[i].clone()
                };
                SliceRecord {
                    patient: data.patients[i].clone(),
                    counts: MaskCounts::from_masks(&pred, &truth),
                    true_area_px: data.true_area[i],
                }
            })
            .collect()
    };
    let areas: Vec<usize> = out
        .masks
        .iter()
        .map(|m| m.iter().filter(|&&v| v).count())
        .collect();
    let at_least = |min: usize| -> Vec<bool> { areas.iter().map(|&a| a >= min).collect() };
    let mask_nonempty = at_least(1);
    let appliance: Vec<bool> = mask_nonempty
        .iter()
        .zip(&out.passed)
        .map(|(&m, &p)| m && p)
        .collect();
    let both = data.labels.iter().any(|&l| l) && data.labels.iter().any(|&l| !l);
    let filter = match (&out.p_tumour, out.filter_threshold) {
        (Some(p), Some(t)) if both => Some(classification_metrics(p, &data.labels, t)?),
        _ => None,
    };
    let patients: BTreeSet<&String> = data.patients.iter().collect();
    Ok(CohortScores {
        cohort: cohort.name.clone(),
        precision: precision_name(precision),
        slices: data.len(),
        patients: patients.len(),
        segmenter: summarise_segmentation(&records(false)),
        appliance_masks: summarise_segmentation(&records(true)),
        appliance: Detection::of(data, &appliance),
        segmenter_alone: Detection::of(data, &mask_nonempty),
        filter_alone: out
            .p_tumour
            .as_ref()
            .map(|_| Detection::of(data, &out.passed)),
        filter,
        segmenter_by_min_area: MIN_AREAS
            .iter()
            .map(|&min| (min, Detection::of(data, &at_least(min))))
            .collect(),
    })
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

fn fmt_f(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.3}")
    }
}

/// The per-source tables of `scores`, as Markdown.
pub fn render_markdown(scores: &[CohortScores]) -> String {
    let mut md = String::new();
    md.push_str("### Masks (segmenter on every slice; model resolution)\n\n");
    md.push_str("| cohort | precision | slices | patients | Dice per tumour slice | IoU per tumour slice | Dice per patient (pooled, tumour patients) | Dice small / medium / large |\n|---|---|---|---|---|---|---|---|\n");
    for s in scores {
        let strata: Vec<String> = s
            .segmenter
            .by_lesion_size
            .iter()
            .map(|st| format!("{} ({})", fmt_f(st.mean_dice), st.slices))
            .collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.cohort,
            s.precision,
            s.slices,
            s.patients,
            fmt_f(s.segmenter.per_slice.mean_dice_tumour),
            fmt_f(s.segmenter.per_slice.mean_iou_tumour),
            fmt_f(s.segmenter.per_patient.mean_dice_tumour),
            strata.join(" / ")
        ));
    }
    md.push_str("\n### Detection (per slice and per patient)\n\n");
    md.push_str("| cohort | precision | detector | tumour slices flagged | sensitivity | clear slices flagged | specificity | tumour patients found | filter ROC AUC |\n|---|---|---|---|---|---|---|---|---|\n");
    for s in scores {
        let mut rows = vec![("appliance (filter, then mask)", s.appliance)];
        rows.push((
            "segmenter alone (mask of min_mask_px or more)",
            s.segmenter_alone,
        ));
        if let Some(f) = s.filter_alone {
            rows.push(("filter alone", f));
        }
        for (name, d) in rows {
            md.push_str(&format!(
                "| {} | {} | {} | {} / {} | {} | {} / {} | {} | {} / {} | {} |\n",
                s.cohort,
                s.precision,
                name,
                d.tumour_slices_flagged,
                d.tumour_slices,
                fmt_opt(d.sensitivity()),
                d.clear_slices_flagged,
                d.clear_slices,
                fmt_opt(d.specificity()),
                d.tumour_patients_found,
                d.tumour_patients,
                if name.starts_with("filter") {
                    fmt_opt(s.filter.as_ref().and_then(|f| f.roc_auc))
                } else {
                    "".into()
                }
            ));
        }
    }
    md.push_str(
        "\n### The segmenter alone as the detector, by minimum mask area (model pixels)\n\n",
    );
    md.push_str("| cohort | precision |");
    for min in MIN_AREAS {
        md.push_str(&format!(" >= {min} px: sens / spec |"));
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---|".repeat(MIN_AREAS.len()));
    md.push('\n');
    for s in scores {
        md.push_str(&format!("| {} | {} |", s.cohort, s.precision));
        for (_, d) in &s.segmenter_by_min_area {
            md.push_str(&format!(
                " {} / {} |",
                fmt_opt(d.sensitivity()),
                fmt_opt(d.specificity())
            ));
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part() -> Prepared {
        // Four 1x2 slices: patient a tumour + clear, patient b tumour + clear.
        Prepared {
            size: 1,
            images: vec![0.0; 4 * 3],
            masks: vec![1, 0, 1, 0],
            patients: vec!["a".into(), "a".into(), "b".into(), "b".into()],
            labels: vec![true, false, true, false],
            true_area: vec![1, 0, 1, 0],
            sources: vec![0; 4],
        }
    }

    #[test]
    fn mirror_reverses_each_row_of_each_plane() {
        // Two 2x2 planes.
        let planes = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        assert_eq!(mirror(&planes, 2), [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 7.0]);
        assert_eq!(mirror(&mirror(&planes, 2), 2), planes);
    }

    #[test]
    fn detection_counts_slices_and_patients() {
        let d = Detection::of(&part(), &[true, true, false, false]);
        assert_eq!(
            (
                d.tumour_slices,
                d.tumour_slices_flagged,
                d.clear_slices_flagged
            ),
            (2, 1, 1)
        );
        assert_eq!((d.tumour_patients, d.tumour_patients_found), (2, 1));
        assert_eq!(d.sensitivity(), Some(0.5));
        assert_eq!(d.specificity(), Some(0.5));
    }

    #[test]
    fn scores_gate_masks_by_the_filter() {
        let data = part();
        let cohort = Cohort {
            name: "t".into(),
            data,
            groups: vec![("b".into(), vec![2, 3])],
        };
        let out = SetOutputs {
            p_tumour: Some(vec![0.9, 0.2, 0.1, 0.7]),
            // Slice 0 found, slice 1 a false mask, slice 2 missed, slice 3 a false mask.
            masks: vec![vec![true], vec![true], vec![false], vec![true]],
            passed: vec![true, false, false, true],
            filter_threshold: Some(0.7),
        };
        let s = score_cohort(&cohort, Precision::F32, &out).unwrap();
        assert_eq!(s.segmenter_alone.clear_slices_flagged, 2);
        assert_eq!(
            s.appliance.clear_slices_flagged, 1,
            "slice 1 stopped by the filter"
        );
        assert_eq!(s.appliance.tumour_slices_flagged, 1);
        assert_eq!(s.segmenter.per_slice.mean_dice_tumour, 0.5);
        let f = s.filter.clone().unwrap();
        assert_eq!(f.threshold, 0.7);
        // Tumour at 0.9 and 0.1, clear at 0.2 and 0.7: 2 of 4 pairs ordered.
        assert_eq!(f.roc_auc, Some(0.5));
        assert_eq!(s.segmenter_by_min_area[0].1, s.segmenter_alone);
        assert_eq!(s.segmenter_by_min_area[1].1.clear_slices_flagged, 0);
        // A group is scored from the same outputs, its slices only:
        // patient b's tumour slice missed, its clear slice a false mask.
        let (g, g_out) = cohort.group(0, &out);
        assert_eq!(g.name, "t b");
        let gs = score_cohort(&g, Precision::F32, &g_out).unwrap();
        assert_eq!(
            (
                gs.slices,
                gs.patients,
                gs.appliance.tumour_slices_flagged,
                gs.appliance.clear_slices_flagged
            ),
            (2, 1, 0, 1)
        );
        assert_eq!(g_out.p_tumour, Some(vec![0.1, 0.7]));
        let csv = slice_rows(&cohort, Precision::F32, &out);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0], "t,f32,a,1,1,0.900000,1,1,1,1");
        // A false mask: area without overlap.
        assert_eq!(rows[1], "t,f32,a,0,0,0.200000,0,1,0,0");
        assert_eq!(rows[2], "t,f32,b,1,1,0.100000,0,0,1,0");
        assert_eq!(
            rows[0].split(',').count(),
            SLICE_CSV_HEADER.split(',').count()
        );
        assert_eq!(csv_field("a,b \"c\""), "\"a,b \"\"c\"\"\"");
        assert_eq!(csv_field("TCGA_CS_4941"), "TCGA_CS_4941");
        let md = render_markdown(&[s]);
        assert!(md.contains("| t | f32 | appliance (filter, then mask) | 1 / 2 | 0.500 | 1 / 2 | 0.500 | 1 / 2 |"), "{md}");
    }

    #[test]
    fn a_source_with_labels_gets_its_tumour_types_as_groups() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("labels.csv"),
            "slice,patient,tumour_type\nP_1/P_1_1.jpg,1,meningioma\nP_2/P_2_1.jpg,2,glioma\n",
        )
        .unwrap();
        let mut split = DataSplit {
            sources: vec![crate::data::source::DataSource::parse(&format!(
                "fig={}",
                tmp.path().display()
            ))
            .unwrap()],
            ..Default::default()
        };
        split.test = Prepared {
            size: 1,
            images: vec![0.3; 9],
            masks: vec![1, 1, 1],
            // Qualified by the source's name, as a run of several sources
            // names them, or not.
            patients: vec!["fig/P_1".into(), "P_2".into(), "fig/P_3".into()],
            labels: vec![true; 3],
            true_area: vec![1; 3],
            sources: vec![0; 3],
        };
        let c = test_cohorts(&split).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].groups,
            vec![
                ("glioma".to_string(), vec![1]),
                ("meningioma".to_string(), vec![0])
            ],
            "P_3 has no type: in no group"
        );
        // One type among the cohort's patients: no groups.
        split.test = split.test.subset(&[0, 2]);
        assert!(test_cohorts(&split).unwrap()[0].groups.is_empty());
        std::fs::write(tmp.path().join("labels.csv"), "slice,patient\n").unwrap();
        assert!(
            test_cohorts(&split).is_err(),
            "a broken labels.csv is an error"
        );
    }

    #[test]
    fn stacked_sources_get_a_flair_cohort_and_clear_folders_read() {
        let mut split = DataSplit {
            sources: vec![
                crate::data::source::DataSource::parse("lgg=/x").unwrap(),
                crate::data::source::DataSource::parse("fig=/y").unwrap(),
            ],
            ..Default::default()
        };
        split.test = Prepared {
            size: 1,
            images: vec![0.1, 0.5, 0.9, 0.3, 0.3, 0.3],
            masks: vec![1, 0],
            patients: vec!["a".into(), "b".into()],
            labels: vec![true, false],
            true_area: vec![1, 0],
            sources: vec![0, 1],
        };
        let c = test_cohorts(&split).unwrap();
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["lgg", "lgg FLAIR alone", "fig"]);
        assert_eq!(c[1].data.images, vec![0.5; 3]);
        // The validation patients are scored apart from the test ones.
        split.val = split.test.subset(&[1]);
        let v = validation_cohorts(&split).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].name.as_str(), v[0].data.len()), ("fig", 1));
        // And the training patients apart from both.
        split.train = split.test.subset(&[0]);
        let t = training_cohorts(&split).unwrap();
        let names: Vec<&str> = t.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["lgg", "lgg FLAIR alone"]);
        assert_eq!(t[0].data.patients, vec!["a"]);

        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("series");
        std::fs::create_dir_all(&d).unwrap();
        image::GrayImage::from_fn(20, 20, |x, y| image::Luma([(x * y) as u8]))
            .save(d.join("s1.png"))
            .unwrap();
        std::fs::write(d.join("broken.png"), b"not a png").unwrap();
        std::fs::write(d.join("notes.txt"), b"x").unwrap();
        let (cohort, problems) = clear_cohort("other", tmp.path(), 8).unwrap();
        assert_eq!(cohort.data.len(), 1);
        assert_eq!(cohort.data.patients, vec!["series"]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].path.ends_with("broken.png"));
        assert!(clear_cohort("x", &tmp.path().join("none"), 8).is_err());
    }
}
