//! The engine on tiny models whose answers are known by construction.

use super::test_models::*;
use super::*;
use models::MaskCounts;

fn engine(dir: &Path, set: &ModelSet, config: EngineConfig) -> Engine {
    let manifest = write_model_set(dir, set);
    Engine::load(&manifest, config).unwrap()
}

fn single_threaded() -> EngineConfig {
    EngineConfig {
        threads: 1,
        ..EngineConfig::default()
    }
}

fn slice(img: image::GrayImage) -> SliceImage {
    SliceImage::from_dynamic(img.into(), Path::new("test.png")).unwrap()
}

#[test]
fn bright_blob_is_flagged_and_masked_at_the_input_size() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), &ModelSet::default(), single_threaded());
    let s = slice(blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC]));
    let r = e.screen(&s).unwrap();
    assert_eq!(r.verdict, Verdict::Tumour);
    assert!(r.tumour_probability > 0.9, "{}", r.tumour_probability);
    let seg = r.segmentation.expect("flagged slices are segmented");
    assert_eq!(seg.mask.len(), (BLOB_W * BLOB_H) as usize);
    let truth = blob_truth(BLOB_W, BLOB_H, &[BLOB_DISC]);
    let dice = MaskCounts::from_masks(&seg.mask, &truth).dice();
    assert!(dice > 0.9, "dice {dice}");
    let [x, y, w, h] = seg.summary.bbox.unwrap();
    assert!((34..=36).contains(&x) && (17..=19).contains(&y), "{x},{y}");
    assert!((39..=42).contains(&w) && (39..=42).contains(&h), "{w}x{h}");
    assert!(seg.summary.confidence.unwrap() > 0.8);
    assert!(r.latency.filter_ms.is_some() && r.latency.segment_ms.is_some());
    assert_eq!((e.filter_runs(), e.segmenter_runs()), (1, 1));
}

#[test]
fn the_segmenter_reusing_the_filters_input_draws_the_same_mask() {
    // Filter and segmenter share the input contract here, so `screen`
    // hands the filter's prepared tensor on; without the filter the
    // segmenter prepares its own.
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), &ModelSet::default(), single_threaded());
    let s = slice(blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC]));
    let reused = e.screen(&s).unwrap().segmentation.unwrap();
    let own = e.screen_without_filter(&s).unwrap().segmentation.unwrap();
    assert_eq!(reused.mask, own.mask);
    assert_eq!(reused.summary.area_px, own.summary.area_px);
    assert!(reused.summary.area_px > 0);
}

#[test]
fn dark_slice_is_cleared_by_the_filter_without_segmenting() {
    let dir = tempfile::tempdir().unwrap();
    // This segmenter marks every pixel, so any run on the slice would show.
    let set = ModelSet {
        segmenter_bias: 5.0,
        ..ModelSet::default()
    };
    let e = engine(dir.path(), &set, single_threaded());
    let r = e.screen(&slice(dark_slice(BLOB_W, BLOB_H))).unwrap();
    assert_eq!(r.verdict, Verdict::Clear);
    assert!(r.tumour_probability < 0.1, "{}", r.tumour_probability);
    assert!(r.segmentation.is_none());
    assert!(r.latency.segment_ms.is_none());
    assert_eq!((e.filter_runs(), e.segmenter_runs()), (1, 0));
    // The same segmenter does mark everything when it runs.
    let b = e
        .screen(&slice(blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC])))
        .unwrap();
    assert_eq!(b.segmentation.unwrap().summary.area_px, 8000);
}

#[test]
fn without_a_filter_every_slice_is_segmented() {
    let dir = tempfile::tempdir().unwrap();
    let set = ModelSet {
        filter: false,
        ..ModelSet::default()
    };
    let e = engine(dir.path(), &set, single_threaded());
    let dark = e.screen(&slice(dark_slice(BLOB_W, BLOB_H))).unwrap();
    assert_eq!(dark.verdict, Verdict::Clear);
    assert_eq!(dark.segmentation.as_ref().unwrap().summary.area_px, 0);
    assert!(dark.tumour_probability < 0.5);
    let blob = e
        .screen(&slice(blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC])))
        .unwrap();
    assert_eq!(blob.verdict, Verdict::Tumour);
    // The max pixel probability: sigmoid(10 * 230/255 - 5).
    let expected = postprocess::sigmoid(SEG_GAIN * BLOB as f32 / 255.0 + SEG_BIAS);
    assert!(
        (blob.tumour_probability - expected).abs() < 0.01,
        "{}",
        blob.tumour_probability
    );
    assert!(blob.latency.filter_ms.is_none());
    assert_eq!(e.segmenter_runs(), 2);
}

#[test]
fn flagged_slice_with_an_empty_mask_is_clear() {
    let dir = tempfile::tempdir().unwrap();
    // A segmenter that never crosses 0.5.
    let set = ModelSet {
        segmenter_bias: -50.0,
        ..ModelSet::default()
    };
    let e = engine(dir.path(), &set, single_threaded());
    let r = e
        .screen(&slice(blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC])))
        .unwrap();
    assert!(r.tumour_probability >= 0.5);
    assert_eq!(r.verdict, Verdict::Clear);
    assert_eq!(r.segmentation.unwrap().summary.bbox, None);
}

#[test]
fn component_removal_drops_a_small_blob_and_keeps_the_large_one() {
    let small: Disc = (12.0, 12.0, 2.5);
    let discs = [BLOB_DISC, small];
    let img = blob_slice(BLOB_W, BLOB_H, &discs);
    let small_truth = blob_truth(BLOB_W, BLOB_H, &[small]);
    let large_truth = blob_truth(BLOB_W, BLOB_H, &[BLOB_DISC]);
    let run = |min_component_px| {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig {
            min_component_px,
            ..single_threaded()
        };
        let e = engine(dir.path(), &ModelSet::default(), config);
        e.screen(&slice(img.clone())).unwrap().segmentation.unwrap()
    };
    let count =
        |mask: &[bool], truth: &[bool]| mask.iter().zip(truth).filter(|(m, t)| **m && **t).count();
    let kept = run(0);
    assert!(
        count(&kept.mask, &small_truth) > 5,
        "the small blob is segmented at all"
    );
    let cleaned = run(60);
    assert_eq!(count(&cleaned.mask, &small_truth), 0);
    assert_eq!(
        count(&cleaned.mask, &large_truth),
        count(&kept.mask, &large_truth)
    );
    assert!(cleaned.summary.area_px < kept.summary.area_px);
}

#[test]
fn a_mask_under_the_manifests_minimum_is_emptied_and_the_slice_called_clear() {
    // The 2.5 px disc alone covers about 20 pixels of the slice and fewer of
    // the 64 px model input; the 20 px disc some hundreds of either.
    let speck: Disc = (12.0, 12.0, 2.5);
    let run = |min_mask_px, discs: &[Disc]| {
        let dir = tempfile::tempdir().unwrap();
        let set = ModelSet {
            filter: false,
            min_mask_px,
            ..ModelSet::default()
        };
        let e = engine(dir.path(), &set, single_threaded());
        e.screen(&slice(blob_slice(BLOB_W, BLOB_H, discs))).unwrap()
    };
    let kept = run(0, &[speck]);
    assert_eq!(kept.verdict, Verdict::Tumour);
    assert!(kept.segmentation.unwrap().summary.area_px > 0);
    let dropped = run(40, &[speck]);
    assert_eq!(dropped.verdict, Verdict::Clear);
    let seg = dropped.segmentation.expect("the segmenter ran");
    assert!(
        !seg.mask.iter().any(|&m| m),
        "the stored mask agrees with the verdict"
    );
    assert_eq!(seg.summary.area_px, 0);
    // The minimum is a slice's whole mask, not each component: with the large
    // disc beside it the speck stays.
    let both = run(40, &[BLOB_DISC, speck]);
    assert_eq!(both.verdict, Verdict::Tumour);
    let speck_truth = blob_truth(BLOB_W, BLOB_H, &[speck]);
    let mask = both.segmentation.unwrap().mask;
    assert!(mask.iter().zip(&speck_truth).any(|(m, t)| *m && *t));
}

#[test]
fn int8_files_load_and_agree_with_f32() {
    let dir = tempfile::tempdir().unwrap();
    let set = ModelSet {
        int8_files: true,
        ..ModelSet::default()
    };
    let manifest = write_model_set(dir.path(), &set);
    let s = slice(blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC]));
    let mut masks = Vec::new();
    for choice in [PrecisionChoice::F32, PrecisionChoice::Int8] {
        let e = Engine::load(
            &manifest,
            EngineConfig {
                precision: choice,
                ..single_threaded()
            },
        )
        .unwrap();
        let expected = if choice == PrecisionChoice::F32 {
            "f32"
        } else {
            "int8"
        };
        assert_eq!(e.precision_label(), expected);
        let r = e.screen(&s).unwrap();
        assert_eq!(r.verdict, Verdict::Tumour, "{choice:?}");
        masks.push(r.segmentation.unwrap().mask);
    }
    let dice = MaskCounts::from_masks(&masks[0], &masks[1]).dice();
    assert!(dice > 0.97, "int8 vs f32 dice {dice}");
}

#[test]
fn tampered_model_is_refused_naming_the_file_and_both_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_model_set(dir.path(), &ModelSet::default());
    let path = dir.path().join("seg_f32.onnx");
    let before = models::integrity::sha256_file(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let after = models::integrity::sha256_file(&path).unwrap();
    let msg = Engine::load(&manifest, single_threaded())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("seg_f32.onnx"), "{msg}");
    assert!(msg.contains(&before) && msg.contains(&after), "{msg}");
}

#[test]
fn manifest_naming_a_missing_input_is_refused_with_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_model_set(dir.path(), &ModelSet::default());
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"name\": \"image\"", "\"name\": \"pixels\""),
    )
    .unwrap();
    let msg = Engine::load(&manifest, single_threaded())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("'pixels'") && msg.contains("image"), "{msg}");
}

/// A model as small as the shipped filter stays on one thread; one of the
/// segmenter's size, or one whose manifest does not say, is split.
#[test]
fn only_models_large_enough_are_split_over_threads() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), &ModelSet::default(), single_threaded());
    let mut entry = e.segmenter.entry.clone();
    entry.metrics.remove("gmac_per_slice");
    assert!(splits_well(&entry));
    entry.metrics.insert("gmac_per_slice".into(), 0.044);
    assert!(!splits_well(&entry));
    entry.metrics.insert("gmac_per_slice".into(), 0.236);
    assert!(splits_well(&entry));
}

#[test]
fn multithreaded_matmul_gives_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = slice(blob_slice(BLOB_W, BLOB_H, &[BLOB_DISC]));
    let one = engine(dir.path(), &ModelSet::default(), single_threaded())
        .screen(&s)
        .unwrap();
    let config = EngineConfig {
        threads: 2,
        ..EngineConfig::default()
    };
    let two = engine(dir.path(), &ModelSet::default(), config)
        .screen(&s)
        .unwrap();
    assert_eq!(one.tumour_probability, two.tumour_probability);
    assert_eq!(
        one.segmentation.unwrap().mask,
        two.segmentation.unwrap().mask
    );
}

#[test]
fn tract_is_kept_off_its_amx_int8_kernel_once_a_model_loads() {
    let dir = tempfile::tempdir().unwrap();
    let _ = engine(dir.path(), &ModelSet::default(), single_threaded());
    // A user's own TRACT_CPU_ISA wins; without one, the feature set tract
    // fixed at its first probe (on a CPU with AMX or without) has no AMX
    // int8, so its crashing kernel can never be chosen.
    if std::env::var_os("TRACT_CPU_ISA").is_none() {
        let isa = tract_linalg::isa::native();
        assert!(!isa.has(tract_linalg::isa::Isa::X86_64AmxInt8), "{isa:?}");
    }
}
