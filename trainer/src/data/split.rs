//! Patient-level split: no patient's slices on both sides, seeded, and
//! stratified so each part gets patients across the range of tumour burden.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    /// Share of patients held out for testing (seed paper: 20 %).
    pub test: f64,
    /// Share of patients for validation / early stopping, taken from the
    /// seed's 80 % training part.
    pub val: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        Self {
            test: 0.2,
            val: 0.1,
        }
    }
}

/// What the split needs to know about a patient.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientSummary {
    pub patient: String,
    pub slices: usize,
    pub tumour_slices: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<String>,
    pub val: Vec<String>,
    pub test: Vec<String>,
}

/// Stratification: patients without tumour form one stratum; those with
/// tumour are ordered by tumour-slice fraction (shuffled first, so ties break
/// by seed). Walking each stratum in order, each patient goes to the part
/// furthest below its target share, which spreads every burden level over
/// all parts in the requested proportions.
pub fn split_patients(patients: &[PatientSummary], fractions: SplitFractions, seed: u64) -> Split {
    assert!(
        fractions.test >= 0.0 && fractions.val >= 0.0 && fractions.test + fractions.val < 1.0,
        "split fractions must leave a training part"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sorted: Vec<&PatientSummary> = patients.iter().collect();
    sorted.sort_by(|a, b| a.patient.cmp(&b.patient));
    sorted.dedup_by(|a, b| a.patient == b.patient);
    sorted.shuffle(&mut rng);
    let (mut clear, mut tumour): (Vec<_>, Vec<_>) =
        sorted.into_iter().partition(|p| p.tumour_slices == 0);
    let burden = |p: &PatientSummary| p.tumour_slices as f64 / p.slices.max(1) as f64;
    tumour.sort_by(|a, b| burden(a).total_cmp(&burden(b)));
    clear.sort_by_key(|p| p.slices);

    let shares = [
        1.0 - fractions.test - fractions.val,
        fractions.val,
        fractions.test,
    ];
    let mut split = Split::default();
    let mut counts = [0usize; 3];
    for stratum in [tumour, clear] {
        let mut local = [0usize; 3];
        for (i, p) in stratum.into_iter().enumerate() {
            let seen = (i + 1) as f64;
            // The part with the largest deficit against its share; ties go
            // to the part with the larger share overall.
            let part = (0..3)
                .max_by(|&a, &b| {
                    let da = shares[a] * seen - local[a] as f64;
                    let db = shares[b] * seen - local[b] as f64;
                    da.total_cmp(&db).then(shares[a].total_cmp(&shares[b]))
                })
                .unwrap();
            if shares[part] <= 0.0 {
                continue;
            }
            local[part] += 1;
            counts[part] += 1;
            let name = p.patient.clone();
            match part {
                0 => split.train.push(name),
                1 => split.val.push(name),
                _ => split.test.push(name),
            }
        }
    }
    split.train.sort();
    split.val.sort();
    split.test.sort();
    split
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn cohort(n: usize) -> Vec<PatientSummary> {
        (0..n)
            .map(|i| PatientSummary {
                patient: format!("P{i:03}"),
                slices: 20 + i % 17,
                tumour_slices: if i % 10 == 0 { 0 } else { (i * 7) % 19 + 1 },
            })
            .collect()
    }

    #[test]
    fn no_patient_on_two_sides_and_all_placed() {
        let patients = cohort(110);
        let s = split_patients(&patients, SplitFractions::default(), 7);
        let train: HashSet<_> = s.train.iter().collect();
        let val: HashSet<_> = s.val.iter().collect();
        let test: HashSet<_> = s.test.iter().collect();
        assert!(train.is_disjoint(&val) && train.is_disjoint(&test) && val.is_disjoint(&test));
        assert_eq!(train.len() + val.len() + test.len(), 110);
        assert_eq!(test.len(), 22);
        assert_eq!(val.len(), 11);
    }

    #[test]
    fn seeded_and_stratified() {
        let patients = cohort(110);
        let a = split_patients(&patients, SplitFractions::default(), 1);
        assert_eq!(a, split_patients(&patients, SplitFractions::default(), 1));
        assert_ne!(a, split_patients(&patients, SplitFractions::default(), 2));
        // Tumour-free patients (11 of 110) are spread, not lumped.
        let clear: HashSet<String> = patients
            .iter()
            .filter(|p| p.tumour_slices == 0)
            .map(|p| p.patient.clone())
            .collect();
        let in_test = a.test.iter().filter(|p| clear.contains(*p)).count();
        assert!(
            (1..=4).contains(&in_test),
            "{in_test} clear patients in test"
        );
        // Mean tumour burden of test within 0.1 of train's.
        let burden = |names: &[String]| {
            let v: Vec<f64> = patients
                .iter()
                .filter(|p| names.contains(&p.patient))
                .map(|p| p.tumour_slices as f64 / p.slices as f64)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!((burden(&a.test) - burden(&a.train)).abs() < 0.1);
    }

    #[test]
    fn duplicate_summaries_do_not_duplicate_patients() {
        let mut patients = cohort(10);
        patients.push(patients[3].clone());
        let s = split_patients(&patients, SplitFractions::default(), 3);
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), 10);
    }
}
