//! How sure a per-source figure is, and whether one model set really beats
//! another on the same slices: a patient-level bootstrap over the
//! `slices.csv` that `eval-set` writes.
//!
//! A validation split of 8 LGG and 17 Figshare patients moves a Dice by a
//! few hundredths when one patient more or less goes well, so two candidates
//! 0.01-0.02 apart cannot be told apart by their means alone. Resampling
//! whole patients (never slices: a patient's slices rise and fall together)
//! gives each figure a 95 % interval, and resampling the same patients for
//! both sets gives the paired difference's interval: when it spans 0 the
//! data does not say which set is better.
//!
//! Every figure is computed from the CSV's counts with the same rules as
//! `eval-set`'s tables ([`models::metrics`]): the means here equal the ones
//! there.

use crate::{Error, Result};
use models::metrics::MaskCounts;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One row of `eval-set`'s `slices.csv`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SliceRow {
    pub cohort: String,
    pub precision: String,
    pub patient: String,
    /// The slice's label (its true mask at the slice's own size is not empty).
    #[serde(deserialize_with = "zero_or_one")]
    pub tumour: bool,
    pub true_area_px: u64,
    pub p_tumour: Option<f32>,
    /// The filter passed it (always, without a filter).
    #[serde(deserialize_with = "zero_or_one")]
    pub passed: bool,
    /// Pixels of the stored mask, after the set's minimum (model resolution).
    pub mask_area_px: u64,
    pub truth_px: u64,
    pub overlap_px: u64,
}

fn zero_or_one<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    match u8::deserialize(d)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(serde::de::Error::custom(format!(
            "expected 0 or 1, found {other}"
        ))),
    }
}

impl SliceRow {
    /// The slice's mask against its truth, as pixel counts.
    pub(crate) fn counts(&self) -> MaskCounts {
        MaskCounts {
            tp: self.overlap_px,
            fp: self.mask_area_px - self.overlap_px,
            fn_: self.truth_px - self.overlap_px,
            tn: 0,
        }
    }

    /// Flagged by the appliance: the filter passed it and a mask stands.
    pub(crate) fn flagged(&self) -> bool {
        self.passed && self.mask_area_px > 0
    }
}

/// Reads a `slices.csv`; a row that does not parse or contradicts itself
/// (an overlap larger than the mask or the truth) is an error naming the
/// file and the line.
pub fn read_slices_csv(path: &Path) -> Result<Vec<SliceRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_slices_csv(&text).map_err(|reason| Error::Data {
        path: path.to_path_buf(),
        reason,
    })
}

fn parse_slices_csv(text: &str) -> std::result::Result<Vec<SliceRow>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, row) in reader.deserialize::<SliceRow>().enumerate() {
        // Line 1 is the header.
        let line = i + 2;
        let row = row.map_err(|e| format!("line {line}: {e}"))?;
        if row.overlap_px > row.mask_area_px || row.overlap_px > row.truth_px {
            return Err(format!(
                "line {line}: overlap_px {} is larger than mask_area_px {} or truth_px {}",
                row.overlap_px, row.mask_area_px, row.truth_px
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err("no slice rows (is this an eval-set slices.csv?)".into());
    }
    Ok(rows)
}

/// The figures compared, each a mean over the cohort as `eval-set` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Mean Dice over slices whose true mask (model resolution) is not empty.
    DicePerTumourSlice,
    /// Dice of each patient's pooled pixels, mean over patients with tumour.
    DicePerPatient,
    /// Share of tumour slices the appliance flags (filter, then mask).
    ApplianceSensitivity,
    /// Share of clear slices the appliance flags.
    ClearFlagged,
}

impl Figure {
    pub const ALL: [Figure; 4] = [
        Figure::DicePerTumourSlice,
        Figure::DicePerPatient,
        Figure::ApplianceSensitivity,
        Figure::ClearFlagged,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Figure::DicePerTumourSlice => "Dice per tumour slice",
            Figure::DicePerPatient => "Dice per patient (pooled)",
            Figure::ApplianceSensitivity => "appliance sensitivity",
            Figure::ClearFlagged => "clear slices flagged (share)",
        }
    }
}

/// What one patient adds to each figure; a bootstrap sample is a sum of
/// these, a patient drawn twice counted twice.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct PatientSums {
    dice_sum: f64,
    dice_slices: usize,
    /// The patient's pooled Dice, when its pooled truth is not empty.
    pooled_dice: Option<f64>,
    tumour: usize,
    tumour_flagged: usize,
    clear: usize,
    clear_flagged: usize,
}

impl PatientSums {
    fn of(rows: &[&SliceRow]) -> Self {
        let mut pooled = MaskCounts::default();
        let mut s = PatientSums::default();
        for r in rows {
            let counts = r.counts();
            pooled.merge(&counts);
            // eval-set's rule (`SliceSummary`): a tumour slice for Dice is
            // one whose true mask at the model's size is not empty.
            if !counts.truth_empty() {
                s.dice_sum += counts.dice();
                s.dice_slices += 1;
            }
            if r.tumour {
                s.tumour += 1;
                s.tumour_flagged += usize::from(r.flagged());
            } else {
                s.clear += 1;
                s.clear_flagged += usize::from(r.flagged());
            }
        }
        s.pooled_dice = (!pooled.truth_empty()).then(|| pooled.dice());
        s
    }
}

/// The figures of a multiset of patients (`draw[k]` times patient `k`);
/// `None` where the figure has nothing to average (no tumour slice, ...).
fn figures(patients: &[PatientSums], draw: &[u32]) -> [Option<f64>; 4] {
    let (mut dice, mut dice_n, mut pooled, mut pooled_n) = (0.0, 0usize, 0.0, 0usize);
    let (mut tumour, mut tumour_flagged, mut clear, mut clear_flagged) = (0, 0, 0, 0);
    for (p, &n) in patients.iter().zip(draw) {
        let n = n as usize;
        dice += p.dice_sum * n as f64;
        dice_n += p.dice_slices * n;
        if let Some(d) = p.pooled_dice {
            pooled += d * n as f64;
            pooled_n += n;
        }
        tumour += p.tumour * n;
        tumour_flagged += p.tumour_flagged * n;
        clear += p.clear * n;
        clear_flagged += p.clear_flagged * n;
    }
    let share = |a: f64, n: usize| (n > 0).then(|| a / n as f64);
    [
        share(dice, dice_n),
        share(pooled, pooled_n),
        share(tumour_flagged as f64, tumour),
        share(clear_flagged as f64, clear),
    ]
}

/// One cohort at one precision: its patients in a fixed order.
struct CohortRows<'a> {
    patients: Vec<(&'a str, Vec<&'a SliceRow>)>,
}

fn by_cohort(rows: &[SliceRow]) -> BTreeMap<(String, String), CohortRows<'_>> {
    let mut out: BTreeMap<(String, String), BTreeMap<&str, Vec<&SliceRow>>> = BTreeMap::new();
    for r in rows {
        out.entry((r.cohort.clone(), r.precision.clone()))
            .or_default()
            .entry(&r.patient)
            .or_default()
            .push(r);
    }
    out.into_iter()
        .map(|(k, patients)| {
            (
                k,
                CohortRows {
                    patients: patients.into_iter().collect(),
                },
            )
        })
        .collect()
}

/// Settings of the bootstrap.
#[derive(Debug, Clone, Copy)]
pub struct Bootstrap {
    pub resamples: usize,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: 2000,
            seed: 0,
        }
    }
}

/// A figure's value on the whole cohort and its 95 % percentile interval
/// over the resamples (`None` with fewer than two patients: nothing to
/// resample).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub interval: Option<(f64, f64)>,
}

/// One line of a comparison: the figure on each set and, with two sets, the
/// paired difference (second minus first).
#[derive(Debug, Clone, PartialEq)]
pub struct CompareLine {
    pub cohort: String,
    pub precision: String,
    pub patients: usize,
    pub figure: Figure,
    pub sets: Vec<Estimate>,
    pub difference: Option<Estimate>,
}

/// What [`compare`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub lines: Vec<CompareLine>,
    /// `cohort (precision)` scored in one of two files only: left out.
    pub unpaired: Vec<String>,
}

/// Each cohort's figures on one set (`sets.len() == 1`) or two sets of the
/// same slices with the paired difference. A cohort (at a precision) that
/// both sets score must hold the same patients and slices in the same order
/// in both (the same `eval-set` run over another model set): anything else
/// is refused, since a paired difference over different slices means
/// nothing. A cohort only one set scores is left out and named.
pub fn compare(sets: &[&[SliceRow]], boot: Bootstrap) -> Result<Comparison> {
    if sets.is_empty() || sets.len() > 2 {
        return Err(Error::Invalid(format!(
            "compare takes one or two slices.csv, not {}",
            sets.len()
        )));
    }
    let mut grouped: Vec<_> = sets.iter().map(|s| by_cohort(s)).collect();
    let mut unpaired = Vec::new();
    if let [a, b] = grouped.as_mut_slice() {
        let one_only: Vec<_> = a
            .keys()
            .filter(|k| !b.contains_key(*k))
            .chain(b.keys().filter(|k| !a.contains_key(*k)))
            .cloned()
            .collect();
        for key in one_only {
            a.remove(&key);
            b.remove(&key);
            unpaired.push(format!("{} ({})", key.0, key.1));
        }
        check_same_slices(a, b)?;
    }
    let mut lines = Vec::new();
    for (key, first) in &grouped[0] {
        let per_set: Vec<Vec<PatientSums>> = grouped
            .iter()
            .map(|g| {
                g[key]
                    .patients
                    .iter()
                    .map(|(_, r)| PatientSums::of(r))
                    .collect()
            })
            .collect();
        let n = first.patients.len();
        let all = vec![1u32; n];
        let whole: Vec<[Option<f64>; 4]> = per_set.iter().map(|p| figures(p, &all)).collect();
        // The same draws for every set: the difference is paired.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(boot.seed);
        let mut samples: Vec<Vec<[Option<f64>; 4]>> = vec![Vec::new(); per_set.len()];
        if n >= 2 {
            let mut draw = vec![0u32; n];
            for _ in 0..boot.resamples {
                draw.iter_mut().for_each(|d| *d = 0);
                for _ in 0..n {
                    draw[rng.random_range(0..n)] += 1;
                }
                for (s, p) in samples.iter_mut().zip(&per_set) {
                    s.push(figures(p, &draw));
                }
            }
        }
        for (f, figure) in Figure::ALL.into_iter().enumerate() {
            if whole.iter().any(|w| w[f].is_none()) {
                continue;
            }
            let estimate = |value: f64, draws: Vec<f64>| Estimate {
                value,
                interval: (n >= 2).then(|| percentile_interval(draws)).flatten(),
            };
            let sets_est: Vec<Estimate> = whole
                .iter()
                .zip(&samples)
                .map(|(w, s)| estimate(w[f].unwrap(), s.iter().filter_map(|x| x[f]).collect()))
                .collect();
            let difference = (whole.len() == 2).then(|| {
                let d: Vec<f64> = samples[0]
                    .iter()
                    .zip(&samples[1])
                    .filter_map(|(a, b)| Some(b[f]? - a[f]?))
                    .collect();
                estimate(whole[1][f].unwrap() - whole[0][f].unwrap(), d)
            });
            lines.push(CompareLine {
                cohort: key.0.clone(),
                precision: key.1.clone(),
                patients: n,
                figure,
                sets: sets_est,
                difference,
            });
        }
    }
    Ok(Comparison { lines, unpaired })
}

/// A patient's id without the `<source>/` that a run of several sources
/// puts before it: a one-source run and a two-source run of the same split
/// name one patient `P` and `fig/P`. Within a cohort (one source) every name
/// has the same prefix or none, so the order of the names is the ids'.
fn bare(patient: &str) -> &str {
    patient.rsplit_once('/').map_or(patient, |(_, id)| id)
}

fn check_same_slices(
    a: &BTreeMap<(String, String), CohortRows<'_>>,
    b: &BTreeMap<(String, String), CohortRows<'_>>,
) -> Result<()> {
    for (key, ca) in a {
        let cb = &b[key];
        let same = ca.patients.len() == cb.patients.len()
            && ca
                .patients
                .iter()
                .zip(&cb.patients)
                .all(|((pa, ra), (pb, rb))| {
                    bare(pa) == bare(pb)
                        && ra.len() == rb.len()
                        && ra.iter().zip(rb).all(|(x, y)| {
                            (x.tumour, x.true_area_px, x.truth_px)
                                == (y.tumour, y.true_area_px, y.truth_px)
                        })
                });
        if !same {
            return Err(Error::Invalid(format!(
                "cohort {} ({}): the two files do not hold the same patients and slices (were they made from the same run and split, with --validation in both or neither?)",
                key.0, key.1
            )));
        }
    }
    Ok(())
}

/// The 2.5th and 97.5th percentiles (nearest rank).
fn percentile_interval(mut draws: Vec<f64>) -> Option<(f64, f64)> {
    if draws.is_empty() {
        return None;
    }
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * draws.len() as f64).ceil() as usize).clamp(1, draws.len()) - 1];
    Some((at(0.025), at(0.975)))
}

/// The lines as a Markdown table, one row per cohort, precision and figure.
pub fn render_markdown(lines: &[CompareLine], names: &[String]) -> String {
    let mut md = String::from("| cohort | precision | patients | figure |");
    for name in names {
        md.push_str(&format!(" {name} (95 % interval) |"));
    }
    let two = names.len() == 2;
    if two {
        md.push_str(" second - first (95 % interval) | differs? |");
    }
    md.push('\n');
    md.push_str(&"|---".repeat(4 + names.len() + if two { 2 } else { 0 }));
    md.push_str("|\n");
    for l in lines {
        md.push_str(&format!(
            "| {} | {} | {} | {} |",
            l.cohort,
            l.precision,
            l.patients,
            l.figure.label()
        ));
        for e in &l.sets {
            md.push_str(&format!(" {} |", show(e, false)));
        }
        if let Some(d) = &l.difference {
            let verdict = match d.interval {
                None => "one patient: no interval",
                Some((lo, _)) if lo > 0.0 => "yes: second higher",
                Some((_, hi)) if hi < 0.0 => "yes: second lower",
                Some(_) => "no: interval spans 0",
            };
            md.push_str(&format!(" {} | {verdict} |", show(d, true)));
        }
        md.push('\n');
    }
    md
}

fn show(e: &Estimate, signed: bool) -> String {
    let v = |x: f64| {
        if signed {
            format!("{x:+.3}")
        } else {
            format!("{x:.3}")
        }
    };
    match e.interval {
        Some((lo, hi)) => format!("{} ({} to {})", v(e.value), v(lo), v(hi)),
        None => v(e.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::per_source::SLICE_CSV_HEADER;

    /// A row of cohort `c`: patient, label, filter passed, mask, truth, overlap.
    fn row(
        c: &str,
        p: &str,
        tumour: u8,
        passed: u8,
        mask: u64,
        truth: u64,
        overlap: u64,
    ) -> String {
        format!("{c},f32,{p},{tumour},{truth},0.5,{passed},{mask},{truth},{overlap}")
    }

    fn parse(rows: &[String]) -> Vec<SliceRow> {
        parse_slices_csv(&format!("{SLICE_CSV_HEADER}\n{}\n", rows.join("\n"))).unwrap()
    }

    fn line<'a>(lines: &'a [CompareLine], cohort: &str, f: Figure) -> &'a CompareLine {
        lines
            .iter()
            .find(|l| l.cohort == cohort && l.figure == f)
            .unwrap()
    }

    #[test]
    fn the_figures_follow_eval_sets_rules() {
        let rows = parse(&[
            row("lgg", "A", 1, 1, 10, 10, 10), // Dice 1, flagged
            row("lgg", "A", 1, 1, 0, 10, 0),   // Dice 0, missed
            row("lgg", "B", 1, 0, 10, 20, 10), // Dice 2*10/30, filter stopped it
            row("lgg", "B", 0, 1, 5, 0, 0),    // a clear slice flagged
            row("lgg", "B", 0, 0, 0, 0, 0),    // clear, not a tumour slice for Dice
        ]);
        let lines = compare(&[&rows], Bootstrap::default()).unwrap().lines;
        let v = |f| line(&lines, "lgg", f).sets[0].value;
        assert!((v(Figure::DicePerTumourSlice) - (1.0 + 0.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // Pooled: A 2*10/(20+0+10), B 2*10/(20+5+10).
        assert!((v(Figure::DicePerPatient) - (20.0 / 30.0 + 20.0 / 35.0) / 2.0).abs() < 1e-12);
        assert_eq!(v(Figure::ApplianceSensitivity), 1.0 / 3.0);
        assert_eq!(v(Figure::ClearFlagged), 0.5);
        let (lo, hi) = line(&lines, "lgg", Figure::DicePerTumourSlice).sets[0]
            .interval
            .unwrap();
        assert!(lo <= hi && lo >= 0.0 && hi <= 1.0);
    }

    fn patients(n: usize, overlap: impl Fn(usize) -> u64) -> Vec<SliceRow> {
        parse(
            &(0..n)
                .map(|k| row("fig", &format!("P{k}"), 1, 1, 100, 100, overlap(k)))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn the_same_set_twice_differs_by_nothing() {
        let a = patients(12, |k| 50 + 3 * k as u64);
        let lines = compare(&[&a, &a], Bootstrap::default()).unwrap().lines;
        let d = line(&lines, "fig", Figure::DicePerTumourSlice)
            .difference
            .unwrap();
        assert_eq!(d.value, 0.0);
        assert_eq!(d.interval, Some((0.0, 0.0)));
        assert!(render_markdown(&lines, &["a".into(), "b".into()]).contains("no: interval spans 0"));
    }

    #[test]
    fn a_set_better_on_every_patient_is_told_apart_and_a_mixed_one_is_not() {
        let a = patients(12, |k| 40 + 4 * k as u64);
        let better = patients(12, |k| 45 + 4 * k as u64);
        let lines = compare(&[&a, &better], Bootstrap::default()).unwrap().lines;
        let d = line(&lines, "fig", Figure::DicePerTumourSlice)
            .difference
            .unwrap();
        assert!((d.value - 0.05).abs() < 1e-9, "{d:?}");
        assert!(d.interval.unwrap().0 > 0.0, "{d:?}");
        assert!(render_markdown(&lines, &["a".into(), "b".into()]).contains("yes: second higher"));

        // Better on half the patients by as much as it is worse on the rest.
        let mixed = patients(12, |k| {
            if k % 2 == 0 {
                50 + 4 * k as u64
            } else {
                30 + 4 * k as u64
            }
        });
        let lines = compare(&[&a, &mixed], Bootstrap::default()).unwrap().lines;
        let (lo, hi) = line(&lines, "fig", Figure::DicePerTumourSlice)
            .difference
            .unwrap()
            .interval
            .unwrap();
        assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
    }

    #[test]
    fn one_patient_has_no_interval_and_the_seed_fixes_the_draws() {
        let one = parse(&[
            row("itk_t1", "itk_t1", 0, 1, 9, 0, 0),
            row("itk_t1", "itk_t1", 0, 0, 0, 0, 0),
        ]);
        let lines = compare(&[&one], Bootstrap::default()).unwrap().lines;
        let clear = line(&lines, "itk_t1", Figure::ClearFlagged);
        assert_eq!(
            clear.sets[0],
            Estimate {
                value: 0.5,
                interval: None
            }
        );
        // Nothing to average: no Dice or sensitivity lines for a clear folder.
        assert_eq!(lines.len(), 1);

        let a = patients(9, |k| 10 * k as u64);
        let boot = Bootstrap {
            resamples: 300,
            seed: 7,
        };
        assert_eq!(compare(&[&a], boot).unwrap(), compare(&[&a], boot).unwrap());
    }

    #[test]
    fn a_run_of_one_source_pairs_with_a_run_of_several() {
        let a = patients(4, |k| 40 + 5 * k as u64);
        let mut b = a.clone();
        for r in &mut b {
            r.patient = format!("fig/{}", r.patient);
        }
        let lines = compare(&[&a, &b], Bootstrap::default()).unwrap().lines;
        let l = line(&lines, "fig", Figure::DicePerTumourSlice);
        assert_eq!(l.difference.as_ref().unwrap().value, 0.0);
        // A different id behind the same prefix is still refused.
        b[0].patient = "fig/other".into();
        assert!(compare(&[&a, &b], Bootstrap::default()).is_err());
    }

    #[test]
    fn different_slices_are_refused_and_bad_rows_named() {
        let a = patients(3, |_| 50);
        let mut b = a.clone();
        b[1].patient = "Q".into();
        let err = compare(&[&a, &b], Bootstrap::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cohort fig (f32)"), "{err}");
        // A cohort in one file only is left out and named, the rest paired.
        let mut more = a.clone();
        more.extend(parse(&[row("other", "X", 0, 1, 3, 0, 0)]));
        let c = compare(&[&more, &a], Bootstrap::default()).unwrap();
        assert_eq!(c.unpaired, vec!["other (f32)".to_string()]);
        assert!(c.lines.iter().all(|l| l.cohort == "fig") && !c.lines.is_empty());

        let bad = format!(
            "{SLICE_CSV_HEADER}\n{}\n{}\n",
            row("c", "P", 1, 1, 5, 5, 5),
            row("c", "P", 1, 1, 5, 5, 6)
        );
        assert!(parse_slices_csv(&bad).unwrap_err().starts_with("line 3:"));
        let bad = format!("{SLICE_CSV_HEADER}\n{}\n", row("c", "P", 2, 1, 5, 5, 5));
        let err = parse_slices_csv(&bad).unwrap_err();
        assert!(
            err.starts_with("line 2:") && err.contains("0 or 1"),
            "{err}"
        );
        assert!(parse_slices_csv(SLICE_CSV_HEADER).is_err());
    }

    #[test]
    fn a_quoted_cohort_name_reads_back() {
        let rows = parse(&[row("\"lgg, FLAIR \"\"alone\"\"\"", "P", 1, 1, 4, 4, 4)]);
        assert_eq!(rows[0].cohort, "lgg, FLAIR \"alone\"");
        assert_eq!(rows[0].p_tumour, Some(0.5));
        let no_filter = format!("{SLICE_CSV_HEADER}\nc,int8,P,1,4,,1,4,4,4\n");
        assert_eq!(parse_slices_csv(&no_filter).unwrap()[0].p_tumour, None);
    }
}
