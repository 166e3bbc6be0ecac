"""The PyTorch (Python, eager) peer for `neuroscreen-train speed`.

Imports the team's reference models and its `bench` function from the given
file (kept outside this repository; its path is an argument)
and runs the cases the Rust side asks for, so both sides use the same batch,
steps, warm-up and thread count. Prints one JSON object per line: first the
environment, then one row per case.
"""
import argparse
import importlib.util
import json
import sys

import torch
import torch.nn.functional as F


def load_reference(path):
    spec = importlib.util.spec_from_file_location("torch_reference", path)
    if spec is None or spec.loader is None:
        sys.exit(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--model", action="append", required=True, choices=["resunet", "resnet50"])
    ap.add_argument("--batch", type=int, action="append", required=True)
    ap.add_argument("--dtype", action="append", required=True, choices=["fp32", "bf16"])
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    a = ap.parse_args()
    ref = load_reference(a.reference)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    seg_t = lambda bs, d: (torch.rand(bs, 1, 256, 256, device=d) > 0.97).float()
    cls_t = lambda bs, d: torch.randint(0, 2, (bs,), device=d)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    print(json.dumps(dict(torch=torch.__version__, device=name, threads=torch.get_num_threads())), flush=True)
    for bs in a.batch:
        for dt in a.dtype:
            for m in a.model:
                torch.manual_seed(0)
                if m == "resunet":
                    row = ref.bench("resunet", ref.ResUNet(), ref.tversky_loss, seg_t, bs, dt, dev,
                                    steps=a.steps, warm=a.warmup)
                else:
                    row = ref.bench("resnet50", ref.classifier(), F.cross_entropy, cls_t, bs, dt, dev,
                                    steps=a.steps, warm=a.warmup)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
