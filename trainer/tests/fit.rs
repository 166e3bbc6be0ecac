//! Training on CPU, end to end on phantoms: overfitting, checkpoints, early
//! stopping, resume, reproducibility.

use tch::{Device, Kind, Tensor};
use trainer::data::phantom::{generate_cohort, render::CohortSettings};
use trainer::data::split::SplitFractions;
use trainer::losses::SegLoss;
use trainer::nets::Architecture;
use trainer::train::checkpoint::{load_weights, save_weights, RunState};
use trainer::train::config::{DeviceChoice, Schedule};
use trainer::train::dataset::{load_split, DataSplit, Prepared};
use trainer::train::fit::build;
use trainer::train::{fit, FitConfig};

fn phantom_split(dir: &std::path::Path, size: u32) -> DataSplit {
    generate_cohort(dir, 4, 21, &CohortSettings::default(), |_, _| {}).unwrap();
    let split = SplitFractions {
        test: 0.25,
        val: 0.25,
    };
    load_split(dir, size, split, 1, None, |_, _| {}).unwrap()
}

/// The `k` slices of a part with the largest lesions.
fn largest(p: &Prepared, k: usize) -> Prepared {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by_key(|&i| std::cmp::Reverse(p.mask(i).iter().filter(|&&m| m != 0).count()));
    p.subset(&idx[..k])
}

fn small_cfg(out: &std::path::Path, size: u32) -> FitConfig {
    FitConfig {
        out: out.to_path_buf(),
        model: Architecture::ResUnet {
            widths: vec![8, 16, 32],
        },
        loss: SegLoss::Dice,
        epochs: 3,
        batch: 4,
        input_size: size,
        lr: 1e-2,
        schedule: Schedule::Constant,
        patience: 1000,
        augment: None,
        tumour_slices_only: false,
        workers: 2,
        device: DeviceChoice::Cpu,
        ..FitConfig::default()
    }
}

#[test]
fn narrow_resunet_overfits_a_few_phantom_slices() {
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().unwrap();
    let data = phantom_split(dir.path(), 64);
    let few = largest(&data.train, 4);
    assert!(
        few.masks.iter().filter(|&&m| m != 0).count() > 4 * 30,
        "lesions visible at 64 px"
    );
    let overfit = DataSplit {
        train: few.clone(),
        val: few,
        ..Default::default()
    };
    let cfg = FitConfig {
        epochs: 150,
        ..small_cfg(&dir.path().join("run"), 64)
    };
    let outcome = fit(&cfg, &overfit, false, false).unwrap();
    let best = outcome
        .history
        .iter()
        .filter_map(|r| r.val_dice)
        .fold(0.0, f64::max);
    assert!(
        best > 0.9,
        "best Dice {best}; history tail {:?}",
        &outcome.history[outcome.history.len() - 3..]
    );
    // The training batches are the same four slices: their Dice, logged
    // per epoch beside the loss, climbs as the validation Dice does.
    let best_train = outcome
        .history
        .iter()
        .filter_map(|r| r.train_dice)
        .fold(0.0, f64::max);
    assert!(best_train > 0.8, "best training Dice {best_train}");
    assert!(outcome.history.iter().all(|r| r.train_accuracy.is_none()));
    let lines = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), outcome.epochs_run as usize);
    assert!(lines.contains("\"train_dice\":"), "{lines}");
}

#[test]
fn select_val_dice_keeps_the_epoch_of_the_best_validation_dice() {
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().unwrap();
    let data = phantom_split(dir.path(), 64);
    let few = largest(&data.train, 4);
    let split = DataSplit {
        train: few.clone(),
        val: few,
        ..Default::default()
    };
    let cfg = FitConfig {
        epochs: 8,
        select: trainer::train::config::Select::ValDice,
        ..small_cfg(&dir.path().join("run"), 64)
    };
    let outcome = fit(&cfg, &split, false, false).unwrap();
    let dice: Vec<f64> = outcome
        .history
        .iter()
        .map(|r| r.val_dice.unwrap())
        .collect();
    let best = dice.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(outcome.best_score, -dice[outcome.best_epoch as usize - 1]);
    assert!(
        best - dice[outcome.best_epoch as usize - 1] <= 1e-4,
        "best epoch {} of {dice:?}",
        outcome.best_epoch
    );
    assert!(cfg
        .select
        .describe(outcome.best_score)
        .contains("best val Dice"));
}

#[test]
fn checkpoint_round_trip_gives_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_cfg(dir.path(), 32);
    let (vs, net) = build(&cfg, Device::Cpu);
    let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let before = net.forward_t(&x, false);
    let path = dir.path().join("w.safetensors");
    save_weights(&vs, &path).unwrap();
    let other = FitConfig { seed: 99, ..cfg };
    let (mut vs2, net2) = build(&other, Device::Cpu);
    assert!(
        net2.forward_t(&x, false) != before,
        "a different seed starts elsewhere"
    );
    load_weights(&mut vs2, &path).unwrap();
    assert_eq!(net2.forward_t(&x, false), before);
    let mut bad = std::fs::read(&path).unwrap();
    bad.truncate(bad.len() / 2);
    std::fs::write(&path, bad).unwrap();
    let err = load_weights(&mut vs2, &path).unwrap_err().to_string();
    assert!(err.contains("w.safetensors"), "{err}");
}

#[test]
fn early_stopping_triggers_when_validation_stalls_and_resume_continues() {
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().unwrap();
    let data = phantom_split(dir.path(), 32);
    // A learning rate this small leaves the weights put; only batch-norm
    // statistics move, and they settle within a few epochs.
    let stalled = FitConfig {
        lr: 1e-12,
        patience: 2,
        epochs: 10,
        ..small_cfg(&dir.path().join("stall"), 32)
    };
    let out = fit(&stalled, &data, false, false).unwrap();
    assert!(out.stopped_early);
    assert!(out.epochs_run < 10, "stopped at {}", out.epochs_run);
    assert_eq!(
        out.epochs_run,
        out.best_epoch + 2,
        "stops `patience` epochs after the best"
    );

    let run = dir.path().join("resume");
    let first = fit(
        &FitConfig {
            epochs: 2,
            ..small_cfg(&run, 32)
        },
        &data,
        false,
        false,
    )
    .unwrap();
    assert_eq!(first.epochs_run, 2);
    let more = fit(
        &FitConfig {
            epochs: 3,
            ..small_cfg(&run, 32)
        },
        &data,
        true,
        false,
    )
    .unwrap();
    assert_eq!(more.epochs_run, 3);
    assert_eq!(more.history[..2], first.history[..]);
    assert_eq!(RunState::load(&run).unwrap().epoch, 3);
    assert!(run.join("best.safetensors").exists() && run.join("config.toml").exists());
}

#[test]
fn resumed_run_ends_where_an_uninterrupted_one_does() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = phantom_split(dir.path(), 32);
    let cfg = |name: &str, epochs| FitConfig {
        epochs,
        augment: Some(Default::default()),
        ..small_cfg(&dir.path().join(name), 32)
    };
    let straight = fit(&cfg("straight", 3), &data, false, false).unwrap();
    fit(&cfg("resumed", 2), &data, false, false).unwrap();
    let resumed = fit(&cfg("resumed", 3), &data, true, false).unwrap();
    let losses = |h: &[trainer::train::EpochRecord]| {
        h.iter()
            .map(|r| (r.train_loss, r.val_loss))
            .collect::<Vec<_>>()
    };
    // Adam's moments come back from optimiser.safetensors: the third epoch
    // is the same to the last bit. (Restarting them from zero, as before
    // they were saved, moved the third epoch's losses.)
    assert_eq!(losses(&resumed.history), losses(&straight.history));
    let weights = |name: &str| {
        let mut w =
            tch::Tensor::read_safetensors(dir.path().join(name).join("last.safetensors")).unwrap();
        w.sort_by(|a, b| a.0.cmp(&b.0));
        w
    };
    assert_eq!(weights("straight"), weights("resumed"));

    // Without the saved moments the same resume drifts: the check above
    // can fail.
    fit(&cfg("fresh", 2), &data, false, false).unwrap();
    std::fs::remove_file(dir.path().join("fresh/optimiser.safetensors")).unwrap();
    let fresh = fit(&cfg("fresh", 3), &data, true, false).unwrap();
    assert_ne!(losses(&fresh.history), losses(&straight.history));
}

#[test]
fn same_seed_same_losses_on_cpu() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = phantom_split(dir.path(), 32);
    let run = |name: &str| {
        let cfg = FitConfig {
            epochs: 2,
            augment: Some(Default::default()),
            ..small_cfg(&dir.path().join(name), 32)
        };
        fit(&cfg, &data, false, false).unwrap().history
    };
    let (a, b) = (run("a"), run("b"));
    let losses = |h: &[trainer::train::EpochRecord]| {
        h.iter()
            .map(|r| (r.train_loss, r.val_loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&a), losses(&b));
}

#[test]
fn channels_last_bf16_training_saves_checkpoints_that_load_into_plain_nets() {
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().unwrap();
    let data = phantom_split(dir.path(), 32);
    let cfg = FitConfig {
        epochs: 2,
        bf16: Some(true),
        channels_last: Some(true),
        ..small_cfg(&dir.path().join("run"), 32)
    };
    let outcome = fit(&cfg, &data, false, false).unwrap();
    assert_eq!(outcome.epochs_run, 2);
    assert!(outcome.history.iter().all(|r| r.train_loss.is_finite()));
    // The checkpoint is plain NCHW: a default (f32, NCHW) net loads it and
    // computes the same as the channels-last one does in f32.
    let (mut plain_vs, plain) = build(&small_cfg(dir.path(), 32), Device::Cpu);
    load_weights(&mut plain_vs, &dir.path().join("run/best.safetensors")).unwrap();
    let (mut nhwc_vs, nhwc) = build(&small_cfg(dir.path(), 32), Device::Cpu);
    trainer::train::amp::variables_to_channels_last(&nhwc_vs).unwrap();
    load_weights(&mut nhwc_vs, &dir.path().join("run/best.safetensors")).unwrap();
    let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let x_nhwc = trainer::train::amp::to_channels_last(&x).unwrap();
    let a = plain.forward_t(&x, false);
    let b = nhwc.forward_t(&x_nhwc, false);
    let diff = f64::try_from((a - b).abs().max()).unwrap();
    assert!(
        diff < 1e-4,
        "NCHW vs channels-last outputs differ by {diff}"
    );
}

/// The mask head trains beside the classifier, its checkpoint reloads into
/// the run's network, and the exported graph (which leaves the head out)
/// gives the same logits as the network.
#[test]
fn filter_with_a_mask_head_trains_reloads_and_exports_without_it() {
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().unwrap();
    let data = phantom_split(dir.path(), 32);
    let run = dir.path().join("filter");
    let cfg = FitConfig {
        model: Architecture::Resnet18Filter {
            dropout: 0.0,
            width: 8,
        },
        filter_mask_weight: 1.0,
        epochs: 2,
        ..small_cfg(&run, 32)
    };
    let outcome = fit(&cfg, &data, false, false).unwrap();
    assert!(outcome.history.iter().all(|r| r.train_loss.is_finite()));
    assert!(outcome
        .history
        .iter()
        .all(|r| r.train_dice.is_none()
            && r.train_accuracy.is_some_and(|a| (0.0..=1.0).contains(&a))));
    let trained = trainer::train::checkpoint::load_best(&run, Device::Cpu).unwrap();
    assert!(trained.vs.variables().contains_key("mask_head.weight"));
    let lowered = trainer::export::lower::lower(&trained.net, 32);
    let onnx = trainer::export::onnx_f32::to_onnx_f32(&lowered, "f", "image", "class_logits", &[]);
    let path = dir.path().join("f.onnx");
    std::fs::write(&path, prost::Message::encode_to_vec(&onnx)).unwrap();
    let plan = trainer::export::tract_check::load(&path, &[1, 3, 32, 32]).unwrap();
    let x = data.val.image(0);
    let got = trainer::export::tract_check::run(&plan, &[1, 3, 32, 32], x).unwrap();
    let want = Vec::<f32>::try_from(
        tch::no_grad(|| {
            trained
                .net
                .forward_t(&Tensor::from_slice(x).view([1, 3, 32, 32]), false)
        })
        .flatten(0, -1),
    )
    .unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-3, "tract {got:?} vs tch {want:?}");
    }
}

/// `init`, as a user who owns an ImageNet ResNet-50 converted to
/// safetensors would use it: the file holds the trunk under torchvision's
/// names plus what torchvision has and we do not (its 1000-way `fc`, the
/// batch-norm counters). The trunk starts from the file; the seed's head,
/// which the file cannot have, starts fresh; a file that is not a
/// checkpoint is refused by name.
#[test]
fn filter_starts_from_a_torchvision_style_checkpoint() {
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().unwrap();
    let data = phantom_split(dir.path(), 32);
    let model = Architecture::Resnet50Filter { dropout: 0.0 };
    let run = dir.path().join("init");
    // A stand-in for the converted file: the same names and shapes, other
    // values (another seed).
    let (donor, _) = build(
        &FitConfig {
            model: model.clone(),
            seed: 7,
            ..small_cfg(&run, 32)
        },
        Device::Cpu,
    );
    let donor = donor.variables();
    let mut named: Vec<(String, Tensor)> = donor
        .iter()
        .filter(|(n, _)| !n.starts_with("fc."))
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    named.push((
        "fc.weight".into(),
        Tensor::zeros([1000, 2048], (Kind::Float, Device::Cpu)),
    ));
    named.push((
        "fc.bias".into(),
        Tensor::zeros([1000], (Kind::Float, Device::Cpu)),
    ));
    named.push(("bn1.num_batches_tracked".into(), Tensor::from(0i64)));
    let file = dir.path().join("resnet50_imagenet.safetensors");
    Tensor::write_safetensors(&named, &file).unwrap();

    // At this learning rate Adam moves a weight by about 1e-12 an epoch:
    // what the run ends with is what it started from.
    let cfg = FitConfig {
        model,
        init: Some(file.clone()),
        epochs: 1,
        lr: 1e-12,
        ..small_cfg(&run, 32)
    };
    fit(&cfg, &data, false, false).unwrap();
    let trained = trainer::train::checkpoint::load_best(&run, Device::Cpu)
        .unwrap()
        .vs
        .variables();
    let (fresh, _) = build(&cfg, Device::Cpu);
    let fresh = fresh.variables();
    let diff = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).unwrap();
    for name in [
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer4.2.conv3.weight",
        "bn1.weight",
    ] {
        assert!(
            diff(&trained[name], &donor[name]) < 1e-9,
            "{name} from the file"
        );
        assert!(
            diff(&trained[name], &fresh[name]) > 1e-3,
            "{name} not the seed's"
        );
    }
    for name in ["fc.1.weight", "fc.7.bias"] {
        assert!(diff(&trained[name], &fresh[name]) < 1e-9, "{name} fresh");
    }

    std::fs::write(&file, b"not a checkpoint").unwrap();
    let err = fit(
        &FitConfig {
            out: dir.path().join("bad"),
            ..cfg
        },
        &data,
        false,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("resnet50_imagenet.safetensors") && err.contains("cannot initialise"),
        "{err}"
    );
}
