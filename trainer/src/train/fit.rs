//! The training loop: seeded, early stopping on validation loss, best and
//! last checkpoints, resume, a JSONL line per epoch and a progress bar.

use super::adam::{AdamConfig, FusedAdam};
use super::amp::{bf16_autocast, to_channels_last, variables_to_channels_last};
use super::checkpoint::{self, load_weights, save_weights, RunState, BEST, LAST, OPTIMISER};
use super::config::{DeviceChoice, FitConfig, Optimiser};
use super::dataset::{
    epoch_order, for_each_batch, weighted_order, Batch, Batching, DataSplit, Prepared,
};
use super::early_stop::EarlyStopping;
use crate::nets::{parameter_count, widen, Architecture, Net};
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use models::metrics::{MaskCounts, SliceSummary};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use tch::nn;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u32,
    pub lr: f64,
    pub train_loss: f64,
    /// NaN when the network's outputs were (JSON: null).
    #[serde(deserialize_with = "super::early_stop::null_is_nan")]
    pub val_loss: f64,
    /// Segmenters: mean per-slice Dice over validation tumour slices, at
    /// model resolution, threshold 0.5. Filters: None.
    pub val_dice: Option<f64>,
    /// Filters: validation accuracy at probability 0.5. Segmenters: None.
    pub val_accuracy: Option<f64>,
    /// As `val_dice` and `val_accuracy`, on the training batches as they
    /// were trained (augmented, train mode, weights changing through the
    /// epoch). None in runs from before they were kept.
    #[serde(default)]
    pub train_dice: Option<f64>,
    #[serde(default)]
    pub train_accuracy: Option<f64>,
    /// Segmenters: share of the validation's clear slices with any mask
    /// pixel (at model resolution): the false alarms a segmenter trained
    /// on clear slices is meant to avoid. None without clear slices.
    #[serde(default)]
    pub val_clear_flagged: Option<f64>,
    pub seconds: f64,
    pub train_images_per_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FitOutcome {
    pub epochs_run: u32,
    pub best_epoch: u32,
    /// The best epoch's selection figure (`FitConfig::select`: the
    /// validation loss, or minus the validation Dice).
    pub best_score: f64,
    pub stopped_early: bool,
    pub history: Vec<EpochRecord>,
    pub device: String,
}

pub fn device_for(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => Err(Error::Invalid(
            "device = cuda, but libtorch reports no usable CUDA device (check LD_LIBRARY_PATH and `neuroscreen-train info`)"
                .into(),
        )),
    }
}

/// Lets cuDNN time its convolution algorithms once per input shape and keep
/// the fastest, as the PyTorch reference does (`cudnn.benchmark = True`);
/// without it cuDNN picks by heuristic. Batches here have at most two
/// shapes per epoch (full and the remainder), so the timing pays off.
pub fn autotune_convolutions(device: Device) {
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
}

/// libtorch has one random generator per process: two threads that seed it
/// and draw at once (parallel tests do; a service might) take turns drawing
/// and neither gets the numbers its seed promises.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Seeds libtorch's generator and holds it for the caller until the guard
/// is dropped: draw under the guard for reproducible numbers.
pub fn seeded(seed: i64) -> std::sync::MutexGuard<'static, ()> {
    let guard = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    guard
}

/// Builds the network of `cfg` in a fresh, seeded VarStore.
pub fn build(cfg: &FitConfig, device: Device) -> (nn::VarStore, Net) {
    let _seeded = seeded(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let mask_head = !cfg.model.is_segmenter() && cfg.filter_mask_weight > 0.0;
    let net = Net::for_training(&vs.root(), &cfg.model, mask_head);
    (vs, net)
}

/// Starts `vs` from `init`: a segmenter checkpoint of smaller widths is
/// widened into the config's (`nets::widen`); anything else is loaded by
/// name, variables it lacks keeping their fresh initialisation.
fn init_weights(vs: &mut nn::VarStore, cfg: &FitConfig, init: &Path) -> Result<()> {
    if let Architecture::ResUnet { widths } | Architecture::Unet { widths } = &cfg.model {
        let tensors = widen::read_checkpoint(init)?;
        if widen::checkpoint_widths(&tensors).is_some_and(|old| &old != widths) {
            let old = widen::widen_from(vs, widths, &tensors, init)?;
            tracing::info!(
                "initialised from {}, widened from {old:?} to {widths:?} (the new channels start silent)",
                init.display()
            );
            return Ok(());
        }
    }
    let missing = vs.load_partial(init).map_err(|e| Error::Data {
        path: init.to_path_buf(),
        reason: format!("cannot initialise from it: {e}"),
    })?;
    tracing::info!(
        "initialised from {} ({} variables kept fresh)",
        init.display(),
        missing.len()
    );
    Ok(())
}

/// How often a run without a terminal reports its progress.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(60);

/// Says when `every` has passed since it last said so.
struct Heartbeat {
    every: std::time::Duration,
    last: Instant,
}

impl Heartbeat {
    fn new(every: std::time::Duration, start: Instant) -> Self {
        Self { every, last: start }
    }

    fn due(&mut self, now: Instant) -> bool {
        let due = now.duration_since(self.last) >= self.every;
        if due {
            self.last = now;
        }
        due
    }
}

/// One line of an epoch's progress for a log file.
fn progress_line(
    epoch: u32,
    epochs: u32,
    done: usize,
    total: usize,
    loss: Option<f64>,
    per_s: f64,
) -> String {
    let left = total.saturating_sub(done) as f64 / per_s.max(1e-9);
    format!(
        "epoch {epoch}/{epochs}: {done}/{total} slices{}, {per_s:.1} slices/s, about {:.0} s left in the epoch",
        loss.map_or(String::new(), |l| format!(", loss {l:.4}")),
        left
    )
}

/// The CUDA speed-ups `cfg` asks for, resolved for `device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speedups {
    pub bf16: bool,
    pub channels_last: bool,
}

impl Speedups {
    pub fn resolve(cfg: &FitConfig, device: Device) -> Self {
        let cuda = device.is_cuda();
        Self {
            bf16: cfg.bf16.unwrap_or(cuda),
            channels_last: cfg.channels_last.unwrap_or(cuda),
        }
    }
}

/// Logits in f32 whatever the autocast computed them in.
fn forward(net: &Net, x: &Tensor, train: bool, s: Speedups, device: Device) -> Tensor {
    bf16_autocast(device, s.bf16, || net.forward_t(x, train)).to_kind(Kind::Float)
}

/// A host batch on `device`. On CUDA through pinned memory and an
/// asynchronous copy: a plain copy from pageable memory waits for the GPU
/// to finish everything queued, so every batch would drain the pipeline.
fn upload(host: Tensor, device: Device) -> Tensor {
    if device.is_cuda() {
        host.pin_memory(device)
            .to_device_(device, host.kind(), true, false)
    } else {
        host
    }
}

fn to_tensors(
    b: &Batch,
    size: u32,
    device: Device,
    segmenter: bool,
    speedups: Speedups,
) -> Result<(Tensor, Tensor)> {
    let s = i64::from(size);
    let n = b.n as i64;
    let mut x = upload(Tensor::from_slice(&b.images).view([n, 3, s, s]), device);
    if speedups.channels_last {
        x = to_channels_last(&x)?;
    }
    let y = if segmenter {
        upload(Tensor::from_slice(&b.masks).view([n, 1, s, s]), device)
    } else {
        upload(Tensor::from_slice(&b.labels), device)
    };
    Ok((x, y))
}

/// The filter's training loss: cross-entropy on the slice labels plus, with
/// a mask head, `filter_mask_weight` times a per-cell BCE against the mask
/// max-pooled to the head's grid (a cell holds tumour if any pixel does).
fn filter_training_loss(
    cfg: &FitConfig,
    net: &Net,
    x: &Tensor,
    labels: &Tensor,
    masks: &[f32],
    speedups: Speedups,
    device: Device,
) -> (Tensor, Tensor) {
    let Net::Filter(f) = net else {
        unreachable!("filters only")
    };
    let (logits, mask_logits) =
        bf16_autocast(device, speedups.bf16, || f.forward_with_mask_t(x, true));
    let logits = logits.to_kind(Kind::Float);
    let ce = logits.cross_entropy_for_logits(labels);
    let loss = match mask_logits {
        Some(m) => {
            let m = m.to_kind(Kind::Float);
            let (h, w) = (m.size()[2], m.size()[3]);
            let size = x.size();
            let target = upload(
                Tensor::from_slice(masks).view([size[0], 1, size[2], size[3]]),
                device,
            )
            .to_kind(Kind::Float)
            .adaptive_max_pool2d([h, w])
            .0;
            ce + cfg.filter_mask_weight
                * m.binary_cross_entropy_with_logits::<Tensor>(
                    &target,
                    None,
                    None,
                    tch::Reduction::Mean,
                )
        }
        None => ce,
    };
    (loss, logits)
}

/// A training batch's figures, kept on the device until read: loss x
/// slices, the score's sum and the number of slices it is over (segmenters:
/// per-slice Dice at 0.5 over the slices with tumour; filters: correct
/// slices over all).
fn tally(seg: bool, logits: &Tensor, target: &Tensor, loss: &Tensor, n: usize) -> Tensor {
    tch::no_grad(|| {
        let loss = loss.detach().to_kind(Kind::Float) * n as f64;
        let (score, count) = if seg {
            let p = logits.gt(0.0).to_kind(Kind::Float).flatten(1, -1);
            let y = target.to_kind(Kind::Float).flatten(1, -1);
            let overlap = (&p * &y).sum_dim_intlist(1, false, Kind::Float);
            let sizes =
                p.sum_dim_intlist(1, false, Kind::Float) + y.sum_dim_intlist(1, false, Kind::Float);
            let tumour = y.amax(1, false).gt(0.0).to_kind(Kind::Float);
            let dice = overlap * 2.0 / sizes.clamp_min(1.0);
            ((dice * &tumour).sum(Kind::Float), tumour.sum(Kind::Float))
        } else {
            let correct = logits.argmax(1, false).eq_tensor(target);
            (
                correct.to_kind(Kind::Float).sum(Kind::Float),
                Tensor::from(n as f32).to_device(logits.device()),
            )
        };
        Tensor::stack(&[loss, score, count], 0)
    })
}

/// Running sums of an epoch's tallies, read back from the device.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct TrainSums {
    loss: f64,
    score: f64,
    scored: f64,
}

impl TrainSums {
    fn score(&self) -> Option<f64> {
        (self.scored > 0.0).then(|| self.score / self.scored)
    }
}

fn loss_of(cfg: &FitConfig, logits: &Tensor, target: &Tensor) -> Tensor {
    if cfg.model.is_segmenter() {
        cfg.loss.compute(logits, target)
    } else {
        logits.cross_entropy_for_logits(target)
    }
}

/// Validation loss and the role's scores over a part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validation {
    pub loss: f64,
    pub dice: Option<f64>,
    pub accuracy: Option<f64>,
    pub clear_flagged: Option<f64>,
}

/// Validation loss and the role's score over a part, in eval mode.
pub fn validate(cfg: &FitConfig, net: &Net, data: &Prepared, device: Device) -> Result<Validation> {
    let seg = cfg.model.is_segmenter();
    let speedups = Speedups::resolve(cfg, device);
    let (mut loss_sum, mut n) = (0.0, 0usize);
    let mut counts = Vec::new();
    let mut correct = 0usize;
    let order = epoch_order(data.len(), 0, 0, false);
    let plan = Batching {
        batch: cfg.batch,
        augment: None,
        seed: 0,
        epoch: 0,
        workers: cfg.workers,
    };
    for_each_batch(data, &order, &plan, |b| {
        let (x, y) = to_tensors(&b, data.size, device, seg, speedups)?;
        tch::no_grad(|| {
            let logits = forward(net, &x, false, speedups, device);
            loss_sum += loss_of(cfg, &logits, &y).double_value(&[]) * b.n as f64;
            n += b.n;
            if seg {
                let pred = Vec::<f32>::try_from(
                    logits
                        .gt(0.0)
                        .to_kind(Kind::Float)
                        .flatten(0, -1)
                        .to_device(Device::Cpu),
                )
                .expect("float tensor");
                let plane = (data.size * data.size) as usize;
                for (k, &i) in b.indices.iter().enumerate() {
                    let p: Vec<bool> = pred[k * plane..(k + 1) * plane]
                        .iter()
                        .map(|&v| v > 0.5)
                        .collect();
                    let t: Vec<bool> = data.mask(i).iter().map(|&m| m != 0).collect();
                    counts.push(MaskCounts::from_masks(&p, &t));
                }
            } else {
                let pred = Vec::<i64>::try_from(logits.argmax(1, false).to_device(Device::Cpu))
                    .expect("int tensor");
                correct += pred.iter().zip(&b.labels).filter(|(p, l)| p == l).count();
            }
        });
        Ok(())
    })?;
    let loss = if n == 0 {
        f64::NAN
    } else {
        loss_sum / n as f64
    };
    if seg {
        let dice = SliceSummary::from_slices(&counts).mean_dice_tumour;
        let clear: Vec<&MaskCounts> = counts.iter().filter(|c| c.tp + c.fn_ == 0).collect();
        let flagged = clear.iter().filter(|c| c.fp > 0).count();
        Ok(Validation {
            loss,
            dice: Some(dice),
            accuracy: None,
            clear_flagged: (!clear.is_empty()).then(|| flagged as f64 / clear.len() as f64),
        })
    } else {
        Ok(Validation {
            loss,
            dice: None,
            accuracy: Some(correct as f64 / n.max(1) as f64),
            clear_flagged: None,
        })
    }
}

/// Adds `pending`'s tallies (emptied) to `sums`, refusing a non-finite loss.
fn read_tallies(pending: &mut Vec<Tensor>, sums: &mut TrainSums, epoch: u32) -> Result<()> {
    for t in pending.drain(..) {
        let v = Vec::<f64>::try_from(t.to_kind(Kind::Double).to_device(Device::Cpu))
            .map_err(|e| Error::Invalid(format!("reading a training loss back: {e}")))?;
        let [loss, score, scored] = v[..] else {
            unreachable!("a tally holds three values")
        };
        if !loss.is_finite() {
            return Err(Error::Invalid(format!(
                "training loss became {loss} at epoch {epoch}; lower the learning rate"
            )));
        }
        sums.loss += loss;
        sums.score += score;
        sums.scored += scored;
    }
    Ok(())
}

/// Trains `cfg.model` on `data`; with `resume`, continues the run in
/// `cfg.out` from its last checkpoint.
pub fn fit(
    cfg: &FitConfig,
    data: &DataSplit,
    resume: bool,
    show_progress: bool,
) -> Result<FitOutcome> {
    cfg.validate()?;
    let selected;
    let (train, val) = if cfg.model.is_segmenter() && cfg.tumour_slices_only {
        selected = (data.train.tumour_only(), data.val.tumour_only());
        (&selected.0, &selected.1)
    } else {
        (&data.train, &data.val)
    };
    if train.is_empty() || val.is_empty() {
        return Err(Error::Invalid(format!(
            "need training and validation slices; got {} and {} (more patients, or a smaller split.val)",
            train.len(),
            val.len()
        )));
    }
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let device = device_for(cfg.device)?;
    let (mut vs, net) = build(cfg, device);
    let speedups = Speedups::resolve(cfg, device);
    let mut state = RunState {
        config: cfg.clone(),
        epoch: 0,
        early: EarlyStopping::new(cfg.patience),
        history: Vec::new(),
        parameters: parameter_count(&vs),
    };
    if resume {
        state = RunState::load(&cfg.out)?;
        state.config.epochs = cfg.epochs;
        load_weights(&mut vs, &cfg.out.join(LAST))?;
    } else if let Some(init) = &cfg.init {
        init_weights(&mut vs, cfg, init)?;
    }
    if speedups.channels_last {
        variables_to_channels_last(&vs)?;
    }
    if speedups
        != (Speedups {
            bf16: false,
            channels_last: false,
        })
    {
        tracing::info!("on {device:?}: {speedups:?}");
    }
    autotune_convolutions(device);
    let mut opt = FusedAdam::new(
        &vs,
        match cfg.optimiser {
            Optimiser::Adam => AdamConfig::adam(cfg.lr),
            Optimiser::AdamW => AdamConfig::adamw(cfg.lr, cfg.weight_decay),
        },
    );
    if resume {
        let path = cfg.out.join(OPTIMISER);
        if path.exists() {
            opt.load(&path)?;
        } else {
            tracing::warn!(
                "{}: missing; Adam restarts from zero moments (a run saved before optimiser state was kept)",
                path.display()
            );
        }
    }

    let metrics_path = cfg.out.join("metrics.jsonl");
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(|e| Error::io(&metrics_path, e))?;
    let seg = cfg.model.is_segmenter();
    let types = cfg.source_types()?;
    let mut stopped_early = false;
    while state.epoch < cfg.epochs {
        if state.early.should_stop() {
            stopped_early = true;
            break;
        }
        let epoch = state.epoch + 1;
        // Dropout draws from libtorch's generator: seeding it per epoch lets
        // a resumed run draw what an uninterrupted one would have.
        drop(seeded(cfg.seed as i64 * 1_000_003 + i64::from(epoch)));
        let lr = cfg.schedule.lr(cfg.lr, epoch, cfg.epochs);
        opt.set_lr(lr);
        let order = weighted_order(&cfg.slice_weights(train, &types), cfg.seed, epoch);
        let bar = if show_progress {
            ProgressBar::new(order.len() as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} {bar:25} {pos}/{len} slices {per_sec} {msg}",
            )
            .expect("template"),
        );
        bar.set_prefix(format!("{epoch}/{}", cfg.epochs));
        let started = Instant::now();
        // A run in the background (`nohup ... > log`) has no terminal to
        // draw the bar on: it says where it is once a minute instead.
        let mut heartbeat =
            (show_progress && bar.is_hidden()).then(|| Heartbeat::new(HEARTBEAT, started));
        let (mut sums, mut seen) = (TrainSums::default(), 0usize);
        // Reading a loss back waits for the GPU: on CUDA only every few
        // batches, so the CPU queues the next steps meanwhile.
        let read_every = if device.is_cuda() { 8 } else { 1 };
        let mut pending: Vec<Tensor> = Vec::with_capacity(read_every);
        let score_name = cfg.model.score_name();
        let plan = Batching {
            batch: cfg.batch,
            augment: cfg.augment.as_ref(),
            seed: cfg.seed,
            epoch,
            workers: cfg.loader_workers(device),
        };
        for_each_batch(train, &order, &plan, |b| {
            if b.n == 1 && !seg {
                // A lone slice left over at the end of the epoch: on a
                // small input the filter's last stage is a 1x1 grid, and
                // batch norm's running variance of a single value is 0/0,
                // which poisons every later evaluation with NaN.
                return Ok(());
            }
            let (x, y) = to_tensors(&b, train.size, device, seg, speedups)?;
            let (loss, logits) = if seg || cfg.filter_mask_weight == 0.0 {
                let logits = forward(&net, &x, true, speedups, device);
                (loss_of(cfg, &logits, &y), logits)
            } else {
                filter_training_loss(cfg, &net, &x, &y, &b.masks, speedups, device)
            };
            opt.backward_step(&loss)?;
            pending.push(tally(seg, &logits, &y, &loss, b.n));
            seen += b.n;
            if pending.len() >= read_every {
                read_tallies(&mut pending, &mut sums, epoch)?;
                bar.set_message(format!(
                    "loss {:.4}{}",
                    sums.loss / seen as f64,
                    sums.score()
                        .map_or(String::new(), |s| format!(", {score_name} {s:.3}"))
                ));
            }
            bar.inc(b.n as u64);
            if let Some(beat) = heartbeat.as_mut() {
                let now = Instant::now();
                if beat.due(now) {
                    eprintln!(
                        "{}",
                        progress_line(
                            epoch,
                            cfg.epochs,
                            seen,
                            order.len(),
                            (seen > 0).then(|| sums.loss / seen as f64),
                            seen as f64 / (now - started).as_secs_f64().max(1e-9),
                        )
                    );
                }
            }
            Ok(())
        })?;
        read_tallies(&mut pending, &mut sums, epoch)?;
        let train_seconds = started.elapsed().as_secs_f64();
        let Validation {
            loss: val_loss,
            dice: val_dice,
            accuracy: val_accuracy,
            clear_flagged: val_clear_flagged,
        } = validate(cfg, &net, val, device)?;
        let record = EpochRecord {
            epoch,
            lr,
            train_loss: sums.loss / seen.max(1) as f64,
            val_loss,
            val_dice,
            val_accuracy,
            train_dice: sums.score().filter(|_| seg),
            train_accuracy: sums.score().filter(|_| !seg),
            val_clear_flagged,
            seconds: started.elapsed().as_secs_f64(),
            train_images_per_s: seen as f64 / train_seconds.max(1e-9),
        };
        bar.finish_and_clear();
        if show_progress {
            eprintln!(
                "epoch {epoch}: train loss {:.4}{}, val loss {:.4}, {}, {:.1} img/s",
                record.train_loss,
                sums.score()
                    .map_or(String::new(), |s| format!(" ({score_name} {s:.4})")),
                record.val_loss,
                match (val_dice, val_accuracy) {
                    (Some(d), _) => format!(
                        "val Dice (tumour slices) {d:.4}{}",
                        val_clear_flagged.map_or(String::new(), |f| format!(
                            ", clear slices flagged {:.1} %",
                            100.0 * f
                        ))
                    ),
                    (_, Some(a)) => format!("val accuracy {a:.4}"),
                    _ => String::new(),
                },
                record.train_images_per_s
            );
        }
        writeln!(
            metrics,
            "{}",
            serde_json::to_string(&record).expect("record serialises")
        )
        .and_then(|_| metrics.sync_data())
        .map_err(|e| Error::io(&metrics_path, e))?;
        if state
            .early
            .observe(epoch, cfg.select.score(val_loss, val_dice))
        {
            save_weights(&vs, &cfg.out.join(BEST))?;
        }
        save_weights(&vs, &cfg.out.join(LAST))?;
        opt.save(&cfg.out.join(OPTIMISER))?;
        state.epoch = epoch;
        state.history.push(record);
        state.save(&cfg.out)?;
    }
    if state.early.should_stop() {
        stopped_early = true;
    }
    let config_toml = toml::to_string_pretty(cfg).map_err(|e| Error::Invalid(e.to_string()))?;
    checkpoint::write_atomic(&cfg.out.join("config.toml"), config_toml.as_bytes())?;
    Ok(FitOutcome {
        epochs_run: state.epoch,
        best_epoch: state.early.best_epoch,
        best_score: state.early.best,
        stopped_early,
        history: state.history,
        device: format!("{device:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_log_hears_from_a_run_once_a_minute_with_what_is_left() {
        let start = Instant::now();
        let mut beat = Heartbeat::new(Duration::from_secs(60), start);
        assert!(!beat.due(start + Duration::from_secs(59)));
        assert!(beat.due(start + Duration::from_secs(61)));
        // Counted again from the last line, not from the start.
        assert!(!beat.due(start + Duration::from_secs(100)));
        assert!(beat.due(start + Duration::from_secs(121)));
        let line = progress_line(3, 8, 1000, 4115, Some(0.41234), 20.0);
        assert_eq!(
            line,
            "epoch 3/8: 1000/4115 slices, loss 0.4123, 20.0 slices/s, about 156 s left in the epoch"
        );
        assert!(!progress_line(1, 1, 0, 10, None, 0.0).contains("loss"));
    }

    #[test]
    fn tallies_add_up_and_a_nan_loss_stops_training() {
        let mut sums = TrainSums::default();
        let mut pending = vec![
            Tensor::from_slice(&[2.0f32, 1.5, 2.0]),
            Tensor::from_slice(&[0.5f32, 0.0, 1.0]),
        ];
        read_tallies(&mut pending, &mut sums, 1).unwrap();
        assert!(pending.is_empty());
        assert_eq!((sums.loss, sums.score()), (2.5, Some(0.5)));
        let mut pending = vec![Tensor::from_slice(&[f32::NAN, 0.0, 0.0])];
        let err = read_tallies(&mut pending, &mut sums, 7)
            .unwrap_err()
            .to_string();
        assert!(err.contains("NaN at epoch 7"), "{err}");
    }

    #[test]
    fn segmenter_tally_is_per_slice_dice_over_tumour_slices() {
        // Three 2x2 slices: a half-right tumour slice (Dice 2*1/(1+2) = 2/3),
        // a perfect one (1), and a clear slice with a false alarm, which
        // the Dice over tumour slices leaves out.
        let logit = |v: &[f32]| Tensor::from_slice(v).view([1, 1, 2, 2]);
        let logits = Tensor::cat(
            &[
                logit(&[5.0, -5.0, -5.0, -5.0]),
                logit(&[5.0, 5.0, -5.0, -5.0]),
                logit(&[5.0, -5.0, -5.0, -5.0]),
            ],
            0,
        );
        let target = Tensor::cat(
            &[
                logit(&[1.0, 1.0, 0.0, 0.0]),
                logit(&[1.0, 1.0, 0.0, 0.0]),
                logit(&[0.0, 0.0, 0.0, 0.0]),
            ],
            0,
        );
        let t = Vec::<f64>::try_from(
            tally(true, &logits, &target, &Tensor::from(0.5f32), 3).to_kind(Kind::Double),
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert!((t[0] - 1.5).abs() < 1e-6, "loss x slices {t:?}");
        assert!((t[1] - (2.0 / 3.0 + 1.0)).abs() < 1e-6, "{t:?}");
        assert_eq!(t[2], 2.0, "two tumour slices");
    }

    #[test]
    fn filter_tally_counts_correct_slices() {
        let logits = Tensor::from_slice(&[2.0f32, 1.0, 0.0, 3.0, 1.0, 0.5]).view([3, 2]);
        let labels = Tensor::from_slice(&[0i64, 1, 1]);
        let t = Vec::<f64>::try_from(
            tally(false, &logits, &labels, &Tensor::from(1.0f32), 3).to_kind(Kind::Double),
        )
        .unwrap();
        assert_eq!(t, vec![3.0, 2.0, 3.0]);
    }

    #[test]
    fn upload_keeps_a_cpu_batch_as_it_is() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        let u = upload(t.shallow_clone(), Device::Cpu);
        assert_eq!(u.data_ptr(), t.data_ptr(), "no copy on the CPU");
    }
}
