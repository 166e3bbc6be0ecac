//! Adam and AdamW through libtorch's fused multi-tensor kernel
//! (`trainer/cxx/fused_adam.cpp`), with state that can be saved and
//! restored.
//!
//! Why not tch's `nn::Adam`: it runs libtorch's per-parameter C++ loop,
//! several kernels per tensor every step, which on a GPU costs about as much
//! as a ResNet-50 step at the reference's batch sizes (PyTorch's own Adam
//! batches the tensors); and its moments cannot be read out, so a resumed
//! run restarted Adam from zero and drifted from an uninterrupted one.

use super::checkpoint::{read_tensors, write_tensors};
use crate::error::{Error, Result};
use std::path::Path;
use tch::{nn, Kind, Tensor};

mod ffi {
    use std::ffi::{c_char, c_long, c_void};
    extern "C" {
        #[allow(clippy::too_many_arguments)]
        pub fn neuroscreen_fused_adam(
            params: *const *mut c_void,
            exp_avgs: *const *mut c_void,
            exp_avg_sqs: *const *mut c_void,
            steps: *const *mut c_void,
            n: usize,
            lr: f64,
            beta1: f64,
            beta2: f64,
            weight_decay: f64,
            eps: f64,
            decoupled: i32,
            err: *mut c_char,
            errlen: usize,
        ) -> c_long;
        pub fn neuroscreen_clear_grads(params: *const *mut c_void, n: usize);
    }
}

/// Hyper-parameters; the defaults are `torch.optim.Adam`'s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW: weight decay applied to the weights, not added to the gradient.
    pub decoupled: bool,
}

impl AdamConfig {
    pub fn adam(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }

    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self {
            weight_decay,
            decoupled: true,
            ..Self::adam(lr)
        }
    }
}

/// One trainable variable and its Adam state.
struct Slot {
    name: String,
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// f32 scalar on the parameter's device, as the fused kernel reads it.
    step: Tensor,
}

pub struct FusedAdam {
    pub config: AdamConfig,
    slots: Vec<Slot>,
}

const EXP_AVG: &str = "exp_avg/";
const EXP_AVG_SQ: &str = "exp_avg_sq/";
const STEP: &str = "step/";

impl FusedAdam {
    /// Optimises every trainable variable of `vs`. Build it after any
    /// layout change (channels-last): the moments copy each variable's
    /// memory format, which the fused kernel needs to match.
    pub fn new(vs: &nn::VarStore, config: AdamConfig) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        // A fixed order, so saved state maps back by name and runs repeat.
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = tch::no_grad(|| {
            vars.into_iter()
                .map(|(name, param)| Slot {
                    exp_avg: param.zeros_like(),
                    exp_avg_sq: param.zeros_like(),
                    step: Tensor::zeros([], (Kind::Float, param.device())),
                    name,
                    param,
                })
                .collect()
        });
        Self { config, slots }
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn pointers(&self, pick: impl Fn(&Slot) -> &Tensor) -> Vec<*mut std::ffi::c_void> {
        self.slots
            .iter()
            .map(|s| pick(s).as_ptr() as *mut std::ffi::c_void)
            .collect()
    }

    /// Sets every gradient to none, as `zero_grad(set_to_none=True)`.
    pub fn zero_grad(&mut self) {
        let params = self.pointers(|s| &s.param);
        // SAFETY: live at::Tensor handles owned by the slots.
        unsafe { ffi::neuroscreen_clear_grads(params.as_ptr(), params.len()) }
    }

    /// Updates every parameter that has a gradient; returns how many did.
    pub fn step(&mut self) -> Result<usize> {
        let params = self.pointers(|s| &s.param);
        let exp_avgs = self.pointers(|s| &s.exp_avg);
        let exp_avg_sqs = self.pointers(|s| &s.exp_avg_sq);
        let steps = self.pointers(|s| &s.step);
        let mut err = [0 as std::ffi::c_char; 512];
        let c = &self.config;
        // SAFETY: four arrays of the same length of live at::Tensor handles
        // owned by the slots; the shim updates them in place and writes at
        // most `err.len()` bytes, NUL-terminated, into `err`.
        let updated = unsafe {
            ffi::neuroscreen_fused_adam(
                params.as_ptr(),
                exp_avgs.as_ptr(),
                exp_avg_sqs.as_ptr(),
                steps.as_ptr(),
                params.len(),
                c.lr,
                c.beta1,
                c.beta2,
                c.weight_decay,
                c.eps,
                i32::from(c.decoupled),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if updated < 0 {
            // SAFETY: the shim NUL-terminated the message within the buffer.
            let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
            return Err(Error::Invalid(format!(
                "Adam step failed in libtorch: {}",
                msg.to_string_lossy()
            )));
        }
        Ok(updated as usize)
    }

    /// `zero_grad`, backward, `step`, as one training step does.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<usize> {
        self.zero_grad();
        loss.backward();
        self.step()
    }

    /// Writes the moments and step counts by variable name (safetensors,
    /// atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut named = Vec::with_capacity(3 * self.slots.len());
        for s in &self.slots {
            named.push((format!("{EXP_AVG}{}", s.name), s.exp_avg.contiguous()));
            named.push((format!("{EXP_AVG_SQ}{}", s.name), s.exp_avg_sq.contiguous()));
            named.push((format!("{STEP}{}", s.name), s.step.shallow_clone()));
        }
        write_tensors(&named, path, "optimiser state")
    }

    /// Restores what `save` wrote for the same network; refuses a file
    /// that lacks a variable or holds one of another shape.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let saved: std::collections::HashMap<String, Tensor> =
            read_tensors(path, "optimiser state")?.into_iter().collect();
        let bad = |reason: String| Error::Data {
            path: path.to_path_buf(),
            reason,
        };
        tch::no_grad(|| {
            for s in &mut self.slots {
                for (prefix, dst) in [
                    (EXP_AVG, &mut s.exp_avg),
                    (EXP_AVG_SQ, &mut s.exp_avg_sq),
                    (STEP, &mut s.step),
                ] {
                    let key = format!("{prefix}{}", s.name);
                    let src = saved
                        .get(&key)
                        .ok_or_else(|| bad(format!("no `{key}` (saved for another network?)")))?;
                    if src.size() != dst.size() {
                        return Err(bad(format!(
                            "`{key}` has shape {:?}, the network needs {:?}",
                            src.size(),
                            dst.size()
                        )));
                    }
                    dst.copy_(src);
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{Module, OptimizerConfig};
    use tch::Device;

    fn net(vs: &nn::VarStore) -> impl Module {
        let p = vs.root();
        nn::seq()
            .add(nn::conv2d(&p / "c", 3, 4, 3, Default::default()))
            .add_fn(|x| x.relu().mean_dim(&[2i64, 3][..], false, Kind::Float))
            .add(nn::linear(&p / "l", 4, 2, Default::default()))
    }

    fn fresh(seed: i64) -> (nn::VarStore, impl Module) {
        let _g = crate::train::fit::seeded(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = net(&vs);
        (vs, m)
    }

    fn batch() -> (Tensor, Tensor) {
        let _g = crate::train::fit::seeded(7);
        (
            Tensor::rand([6, 3, 8, 8], (Kind::Float, Device::Cpu)),
            Tensor::randint(2, [6], (Kind::Int64, Device::Cpu)),
        )
    }

    fn max_diff(a: &nn::VarStore, b: &nn::VarStore) -> f64 {
        let bv = b.variables();
        a.variables()
            .iter()
            .map(|(n, t)| f64::try_from((t - &bv[n]).abs().max()).unwrap())
            .fold(0.0, f64::max)
    }

    /// Five steps of the fused update against tch's (libtorch's C++)
    /// optimiser from the same start: the same algorithm to float rounding.
    fn matches_libtorch(ours: AdamConfig, theirs: impl OptimizerConfig) {
        let (x, y) = batch();
        let (vs_a, a) = fresh(1);
        let (vs_b, b) = fresh(1);
        let mut fused = FusedAdam::new(&vs_a, ours);
        let mut reference = theirs.build(&vs_b, ours.lr).unwrap();
        for _ in 0..5 {
            assert_eq!(
                fused
                    .backward_step(&a.forward(&x).cross_entropy_for_logits(&y))
                    .unwrap(),
                4
            );
            reference.backward_step(&b.forward(&x).cross_entropy_for_logits(&y));
        }
        let moved = max_diff(&vs_a, &fresh(1).0);
        let apart = max_diff(&vs_a, &vs_b);
        assert!(moved > 1e-2, "the weights moved ({moved})");
        assert!(apart < 1e-6, "fused and libtorch differ by {apart}");
    }

    #[test]
    fn fused_adam_follows_libtorch_adam() {
        matches_libtorch(AdamConfig::adam(1e-2), nn::Adam::default());
    }

    #[test]
    fn fused_adamw_follows_libtorch_adamw() {
        matches_libtorch(
            AdamConfig::adamw(1e-2, 0.1),
            nn::AdamW {
                wd: 0.1,
                ..Default::default()
            },
        );
    }

    #[test]
    fn saved_state_continues_the_same_trajectory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        let (x, y) = batch();
        let (vs_a, a) = fresh(3);
        let mut opt_a = FusedAdam::new(&vs_a, AdamConfig::adam(1e-2));
        for _ in 0..3 {
            opt_a
                .backward_step(&a.forward(&x).cross_entropy_for_logits(&y))
                .unwrap();
        }
        opt_a.save(&path).unwrap();
        // A second copy at the same weights: with the saved moments it takes
        // the same next step; with fresh ones (what resume did before) not.
        let restart = |load: bool| {
            let (mut vs, m) = fresh(4);
            tch::no_grad(|| vs.copy(&vs_a)).unwrap();
            let mut opt = FusedAdam::new(&vs, AdamConfig::adam(1e-2));
            if load {
                opt.load(&path).unwrap();
            }
            opt.backward_step(&m.forward(&x).cross_entropy_for_logits(&y))
                .unwrap();
            vs
        };
        let (resumed, restarted) = (restart(true), restart(false));
        opt_a
            .backward_step(&a.forward(&x).cross_entropy_for_logits(&y))
            .unwrap();
        assert_eq!(max_diff(&vs_a, &resumed), 0.0);
        assert!(max_diff(&vs_a, &restarted) > 1e-4);
    }

    #[test]
    fn state_of_another_network_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        let (vs, _) = fresh(0);
        FusedAdam::new(&vs, AdamConfig::adam(1e-3))
            .save(&path)
            .unwrap();
        let other = nn::VarStore::new(Device::Cpu);
        let _ = nn::linear(other.root() / "z", 2, 2, Default::default());
        let err = FusedAdam::new(&other, AdamConfig::adam(1e-3))
            .load(&path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("opt.safetensors") && err.contains("`exp_avg/z."),
            "{err}"
        );
    }

    #[test]
    fn a_parameter_without_gradient_is_left_alone() {
        let vs = nn::VarStore::new(Device::Cpu);
        let used = vs.root().var("used", &[3], nn::Init::Const(1.0));
        let unused = vs.root().var("unused", &[3], nn::Init::Const(1.0));
        let mut opt = FusedAdam::new(&vs, AdamConfig::adam(0.1));
        let updated = opt.backward_step(&used.sum(Kind::Float)).unwrap();
        assert_eq!(updated, 1);
        assert_eq!(f64::try_from(unused.sum(Kind::Float)).unwrap(), 3.0);
        assert!(f64::try_from(used.sum(Kind::Float)).unwrap() < 3.0);
    }

    #[test]
    fn channels_last_weights_update_like_plain_ones() {
        let (x, y) = batch();
        let (vs_a, a) = fresh(5);
        let (vs_b, b) = fresh(5);
        crate::train::amp::variables_to_channels_last(&vs_b).unwrap();
        let mut opt_a = FusedAdam::new(&vs_a, AdamConfig::adam(1e-2));
        let mut opt_b = FusedAdam::new(&vs_b, AdamConfig::adam(1e-2));
        for _ in 0..3 {
            opt_a
                .backward_step(&a.forward(&x).cross_entropy_for_logits(&y))
                .unwrap();
            opt_b
                .backward_step(&b.forward(&x).cross_entropy_for_logits(&y))
                .unwrap();
        }
        assert!(crate::train::amp::is_channels_last(
            &vs_b.variables()["c.weight"]
        ));
        assert!(max_diff(&vs_a, &vs_b) < 1e-6);
    }
}
