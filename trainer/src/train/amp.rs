//! Channels-last layout and bfloat16 autocast, through the libtorch shim in
//! `trainer/cxx/amp.cpp` (tch 0.24 binds neither). The PyTorch reference
//! trains with both on CUDA; without them a like-for-like speed comparison
//! is not possible.

use crate::error::{Error, Result};
use tch::{nn, Device, Tensor};

mod ffi {
    use std::ffi::c_void;
    // Tensors cross as `at::Tensor*`, which is what tch's handles are.
    extern "C" {
        pub fn neuroscreen_channels_last(t: *const c_void) -> *mut c_void;
        pub fn neuroscreen_is_channels_last(t: *const c_void) -> i32;
        pub fn neuroscreen_autocast_enter_bf16(cuda: i32) -> i32;
        pub fn neuroscreen_autocast_exit(cuda: i32, was_enabled: i32);
    }
}

/// A copy of a 4-D tensor in channels-last (NHWC) memory order; the shape
/// and values are unchanged.
pub fn to_channels_last(t: &Tensor) -> Result<Tensor> {
    // SAFETY: the shim only reads the tensor and returns a new owned
    // at::Tensor (or null), which tch takes ownership of.
    let ptr = unsafe { ffi::neuroscreen_channels_last(t.as_ptr().cast()) };
    if ptr.is_null() {
        return Err(Error::Invalid(format!(
            "cannot lay out a tensor of shape {:?} channels-last (needs 4 dimensions)",
            t.size()
        )));
    }
    // SAFETY: a fresh heap-allocated at::Tensor from the shim.
    Ok(unsafe { Tensor::from_ptr(ptr.cast()) })
}

pub fn is_channels_last(t: &Tensor) -> bool {
    // SAFETY: read-only query on a live tensor.
    unsafe { ffi::neuroscreen_is_channels_last(t.as_ptr().cast()) != 0 }
}

/// Moves every 4-D variable (the convolution weights) to channels-last in
/// place, as `model.to(memory_format=torch.channels_last)` does, so the
/// optimiser keeps updating the same variables.
pub fn variables_to_channels_last(vs: &nn::VarStore) -> Result<usize> {
    let mut moved = 0;
    tch::no_grad(|| -> Result<()> {
        for (_, mut v) in vs.variables() {
            if v.dim() == 4 {
                let nhwc = to_channels_last(&v)?;
                v.set_data(&nhwc);
                moved += 1;
            }
        }
        Ok(())
    })?;
    Ok(moved)
}

/// Runs `f` with bfloat16 autocast on `device` when `enabled`: convolutions
/// and matmuls in bf16, reductions and the loss in f32, as
/// `torch.autocast(dtype=torch.bfloat16)` does.
pub fn bf16_autocast<T>(device: Device, enabled: bool, f: impl FnOnce() -> T) -> T {
    if !enabled {
        return f();
    }
    let cuda = i32::from(device.is_cuda());
    // SAFETY: plain calls into libtorch's thread-local autocast state; the
    // guard restores it even if `f` panics.
    let was = unsafe { ffi::neuroscreen_autocast_enter_bf16(cuda) };
    struct Exit(i32, i32);
    impl Drop for Exit {
        fn drop(&mut self) {
            unsafe { ffi::neuroscreen_autocast_exit(self.0, self.1) }
        }
    }
    let _exit = Exit(cuda, was);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;
    use tch::Kind;

    #[test]
    fn channels_last_keeps_values_and_changes_strides() {
        let t = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
        assert!(!is_channels_last(&t));
        let c = to_channels_last(&t).unwrap();
        assert!(is_channels_last(&c));
        assert_eq!(c.size(), t.size());
        // NHWC: the channel stride is 1, the width stride is C.
        assert_eq!(c.stride(), vec![60, 1, 15, 3]);
        assert_eq!(f64::try_from((&c - &t).abs().max()).unwrap(), 0.0);
    }

    #[test]
    fn channels_last_refuses_other_ranks() {
        let t = Tensor::zeros([3, 4], (Kind::Float, Device::Cpu));
        let e = to_channels_last(&t).unwrap_err().to_string();
        assert!(e.contains("[3, 4]"), "{e}");
    }

    #[test]
    fn variables_move_in_place_and_stay_trainable() {
        let vs = nn::VarStore::new(Device::Cpu);
        let conv = nn::conv2d(vs.root() / "c", 3, 8, 3, Default::default());
        let moved = variables_to_channels_last(&vs).unwrap();
        assert_eq!(moved, 1, "only the 4-D weight moves, not the bias");
        assert!(is_channels_last(&conv.ws));
        assert!(conv.ws.requires_grad());
        let before = conv.ws.copy();
        let mut opt = nn::Sgd::default().build(&vs, 0.1).unwrap();
        let x = Tensor::ones([1, 3, 6, 6], (Kind::Float, Device::Cpu));
        let loss = x.apply(&conv).sum(Kind::Float);
        opt.backward_step(&loss);
        let change = f64::try_from((&conv.ws - before).abs().max()).unwrap();
        assert!(change > 0.0, "the optimiser updates the moved weight");
    }

    #[test]
    fn cpu_autocast_runs_convolutions_in_bf16_and_restores_state() {
        let vs = nn::VarStore::new(Device::Cpu);
        let conv = nn::conv2d(vs.root() / "c", 3, 4, 3, Default::default());
        let x = Tensor::rand([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        let inside = bf16_autocast(Device::Cpu, true, || x.apply(&conv));
        assert_eq!(inside.kind(), Kind::BFloat16);
        let after = x.apply(&conv);
        assert_eq!(after.kind(), Kind::Float, "autocast ends with the region");
        let off = bf16_autocast(Device::Cpu, false, || x.apply(&conv));
        assert_eq!(off.kind(), Kind::Float);
    }
}
