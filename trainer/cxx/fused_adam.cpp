// Adam/AdamW as libtorch's fused multi-tensor kernel, which tch 0.24 does
// not bind. tch's optimisers run libtorch's C++ Adam: a loop over the
// parameters, several kernels each (ResNet-50: ~160 tensors, over a
// thousand launches a step). On a GPU at the reference's batch sizes those
// launches cost about as much as the step itself; `torch.optim.Adam` avoids
// them with its foreach path (its default on CUDA) or `fused=True`.
#include <ATen/ATen.h>
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_fused_adam.h>
#include <ATen/ops/_fused_adamw.h>
#include <c10/core/GradMode.h>

#include <cstring>
#include <exception>
#include <vector>

namespace {

void write_error(char *err, size_t errlen, const char *what) {
  if (err == nullptr || errlen == 0) return;
  std::strncpy(err, what, errlen - 1);
  err[errlen - 1] = '\0';
}

}  // namespace

extern "C" {

// One Adam step over the parameters that have a gradient (the others are
// skipped, as torch.optim skips `p.grad is None`). `steps` holds one f32
// scalar per parameter on its device, incremented here before the update,
// as PyTorch's fused path does. `decoupled` selects AdamW. Returns the
// number of parameters updated, or -1 with a message in `err`.
long neuroscreen_fused_adam(at::Tensor *const *params, at::Tensor *const *exp_avgs,
                            at::Tensor *const *exp_avg_sqs, at::Tensor *const *steps,
                            size_t n, double lr, double beta1, double beta2,
                            double weight_decay, double eps, int decoupled, char *err,
                            size_t errlen) {
  try {
    c10::NoGradGuard no_grad;
    std::vector<at::Tensor> p, g, m, v, s;
    p.reserve(n);
    g.reserve(n);
    m.reserve(n);
    v.reserve(n);
    s.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const at::Tensor &grad = params[i]->grad();
      if (!grad.defined()) continue;
      p.push_back(*params[i]);
      g.push_back(grad);
      m.push_back(*exp_avgs[i]);
      v.push_back(*exp_avg_sqs[i]);
      s.push_back(*steps[i]);
    }
    if (p.empty()) return 0;
    at::_foreach_add_(s, 1);
    const std::vector<at::Tensor> no_max;
    if (decoupled) {
      at::_fused_adamw_(p, g, m, v, no_max, s, lr, beta1, beta2, weight_decay, eps,
                        /*amsgrad=*/false, /*maximize=*/false);
    } else {
      at::_fused_adam_(p, g, m, v, no_max, s, lr, beta1, beta2, weight_decay, eps,
                       /*amsgrad=*/false, /*maximize=*/false);
    }
    return static_cast<long>(p.size());
  } catch (const std::exception &e) {
    write_error(err, errlen, e.what());
    return -1;
  } catch (...) {
    write_error(err, errlen, "unknown libtorch exception");
    return -1;
  }
}

// Drops the gradients (`zero_grad(set_to_none=True)`): the next backward
// writes fresh ones instead of adding into zeroed buffers, one memset
// kernel per parameter fewer.
void neuroscreen_clear_grads(at::Tensor *const *params, size_t n) {
  for (size_t i = 0; i < n; ++i) params[i]->mutable_grad() = at::Tensor();
}
}
