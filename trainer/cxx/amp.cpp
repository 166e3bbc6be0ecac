// Two libtorch features tch 0.24 does not bind: channels-last memory format
// and the autocast dtype (tch's `autocast` is CUDA float16 only). The
// PyTorch reference trains with both, so the trainer needs them to be
// compared like for like. Kept to the smallest C ABI the Rust side needs.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

extern "C" {

// A new tensor in channels-last layout, or null when the input is not 4-D
// or libtorch throws.
at::Tensor *neuroscreen_channels_last(const at::Tensor *t) {
  try {
    if (t->dim() != 4) return nullptr;
    return new at::Tensor(t->contiguous(at::MemoryFormat::ChannelsLast));
  } catch (...) {
    return nullptr;
  }
}

int neuroscreen_is_channels_last(const at::Tensor *t) {
  try {
    return t->dim() == 4 && t->is_contiguous(at::MemoryFormat::ChannelsLast);
  } catch (...) {
    return 0;
  }
}

// Enters a bfloat16 autocast region on CUDA (cuda != 0) or the CPU and
// returns whether autocast was enabled before, for the matching exit.
int neuroscreen_autocast_enter_bf16(int cuda) {
  const auto dev = cuda ? at::kCUDA : at::kCPU;
  const bool was = at::autocast::is_autocast_enabled(dev);
  at::autocast::set_autocast_dtype(dev, at::kBFloat16);
  at::autocast::set_autocast_enabled(dev, true);
  at::autocast::increment_nesting();
  return was ? 1 : 0;
}

// Leaves the region; the cast-weight cache must be dropped when the
// outermost region ends, or the next step would reuse bf16 copies of weights
// the optimiser has since changed (what torch.autocast's __exit__ does).
void neuroscreen_autocast_exit(int cuda, int was_enabled) {
  const auto dev = cuda ? at::kCUDA : at::kCPU;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(dev, was_enabled != 0);
}
}
