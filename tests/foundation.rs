//! Foundation end to end: phantoms written by the trainer, read back by the
//! LGG reader, split by patient, mapped to model inputs through the shared
//! preprocessing, and scored with the shared metrics.

use models::metrics::MaskCounts;
use models::{preprocess, Preprocessing, ResizePolicy};
use std::collections::HashSet;
use trainer::data::lgg::LggIndex;
use trainer::data::phantom::{generate_cohort, render::CohortSettings, FormChoice};
use trainer::data::split::{split_patients, PatientSummary, SplitFractions};

#[test]
fn phantoms_to_split_to_model_input_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let settings = CohortSettings {
        forms: FormChoice::Mixed,
        ..CohortSettings::default()
    };
    let cohort = generate_cohort(dir.path(), 10, 17, &settings, |_, _| {}).unwrap();

    let mut index = LggIndex::scan(dir.path()).unwrap();
    assert!(index.problems.is_empty(), "{:?}", index.problems);
    let samples = index.load_all(|_, _| {});
    assert_eq!(samples.len(), cohort.slices());
    let tumour = samples.iter().filter(|s| s.tumour_pixels() > 0).count();
    assert_eq!(
        tumour,
        cohort.tumour_slices(),
        "reader sees the generator's masks"
    );
    let grey = samples.iter().filter(|s| s.image.channels == 1).count();
    assert!(
        grey > 0 && grey < samples.len(),
        "mixed cohort has both forms"
    );

    let summaries: Vec<PatientSummary> = index
        .patients()
        .into_iter()
        .map(|p| {
            let mine: Vec<_> = samples.iter().filter(|s| s.record.patient == p).collect();
            PatientSummary {
                patient: p,
                slices: mine.len(),
                tumour_slices: mine.iter().filter(|s| s.tumour_pixels() > 0).count(),
            }
        })
        .collect();
    let split = split_patients(&summaries, SplitFractions::default(), 1);
    let sides = [&split.train, &split.val, &split.test];
    let total: usize = sides.iter().map(|s| s.len()).sum();
    assert_eq!(total, 10);
    let train: HashSet<_> = split.train.iter().collect();
    assert!(split.test.iter().all(|p| !train.contains(p)));

    // Every tumour mask survives the trip to a 192-px letterboxed model input
    // and back to the slice's own size.
    let pp = Preprocessing {
        resize: ResizePolicy::Letterbox,
        ..Preprocessing::default()
    };
    let mut pooled = MaskCounts::default();
    for s in samples.iter().filter(|s| s.tumour_pixels() > 50) {
        let input = preprocess::prepare(&s.image, &pp, 192, 192).unwrap();
        assert_eq!(input.data.len(), 3 * 192 * 192);
        let mask_f: Vec<f32> = s.mask.iter().map(|&m| m as f32).collect();
        let back = input.geometry.to_source(&input.geometry.to_input(&mask_f));
        let pred: Vec<bool> = back.iter().map(|&v| v >= 0.5).collect();
        let truth: Vec<bool> = s.mask.iter().map(|&m| m != 0).collect();
        pooled.merge(&MaskCounts::from_masks(&pred, &truth));
    }
    assert!(pooled.tp > 0);
    assert!(pooled.dice() > 0.9, "round-trip dice {}", pooled.dice());
}
