#!/usr/bin/env python3
"""onnxruntime peer for neuroscreen's own int8 quantiser.

Quantises a shipped float model (segmenter or filter) with onnxruntime's
static post-training quantiser (per-channel int8 weights, uint8
activations, the same calibration slices the Rust exporter used), then
scores the float file, our int8 file and onnxruntime's int8 file with
onnxruntime on the same held-out slices against the true masks.

The slices come from `neuroscreen-train dump-slices` (calibration.npy,
eval_images.npy, eval_masks.npy). The score is the exporter's: for a
segmenter, mean per-slice Dice over slices whose mask is not empty, logit
> 0; for a filter, accuracy in percent at P(tumour) >= 0.5, a slice being
tumour when its mask is not empty.

Usage:
  ort_quantize.py [--task segmenter|filter] --f32 models/segmenter.f32.onnx \
      --ours models/segmenter.int8.onnx --slices SLICES_DIR \
      --ort-out OUT/segmenter.ort-int8.onnx [--format qdq|qoperator]

Prints one JSON object on stdout (everything else goes to stderr).
Needs the .venv (onnx, onnxruntime, numpy).
"""
import argparse
import contextlib
import json
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)


class Slices(CalibrationDataReader):
    def __init__(self, input_name, images):
        self.input_name = input_name
        self.images = images
        self.i = 0

    def get_next(self):
        if self.i >= len(self.images):
            return None
        x = self.images[self.i : self.i + 1].astype(np.float32)
        self.i += 1
        return {self.input_name: x}

    def rewind(self):
        self.i = 0


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def outputs(path, images, threads):
    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    return [sess.run(None, {name: images[i : i + 1]})[0].reshape(-1) for i in range(len(images))]


def mean_dice_tumour(outs, masks):
    """Mean per-slice Dice over slices whose true mask is not empty."""
    dice = []
    for y, m in zip(outs, masks):
        truth = m.reshape(-1) != 0
        if not truth.any():
            continue
        pred = y > 0.0
        tp = int(np.sum(pred & truth))
        fp = int(np.sum(pred & ~truth))
        fn = int(np.sum(~pred & truth))
        dice.append(2.0 * tp / (2 * tp + fp + fn))
    return float(np.mean(dice)) if dice else float("nan")


def accuracy_percent(outs, masks):
    """Share of slices whose (clear, tumour) logits call the truth, in %."""
    right = [
        (y[1] > y[0]) == bool((m != 0).any()) for y, m in zip(outs, masks)
    ]
    return 100.0 * float(np.mean(right)) if right else float("nan")


def logit_diff(a, b):
    d = np.abs(np.concatenate(a) - np.concatenate(b))
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean())}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["segmenter", "filter"], default="segmenter")
    p.add_argument("--f32", required=True, help="float ONNX file")
    p.add_argument("--ours", help="our int8 ONNX file (optional)")
    p.add_argument("--slices", required=True, help="folder from `neuroscreen-train dump-slices`")
    p.add_argument("--ort-out", help="where to write onnxruntime's int8 file (default: a temp file)")
    p.add_argument("--format", choices=["qdq", "qoperator"], default="qoperator")
    p.add_argument(
        "--calibration-method", choices=["minmax", "percentile", "entropy"], default="minmax"
    )
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    a = p.parse_args()

    calib = np.load(os.path.join(a.slices, "calibration.npy")).astype(np.float32)
    images = np.load(os.path.join(a.slices, "eval_images.npy")).astype(np.float32)
    masks = np.load(os.path.join(a.slices, "eval_masks.npy"))
    if len(images) != len(masks):
        sys.exit(f"{len(images)} held-out images but {len(masks)} masks")

    tmp = None
    ort_out = a.ort_out
    if ort_out is None:
        tmp = tempfile.TemporaryDirectory()
        ort_out = os.path.join(tmp.name, "ort-int8.onnx")
    input_name = session(a.f32, 1).get_inputs()[0].name
    method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[a.calibration_method]
    # The calibrators print progress on stdout; keep stdout for the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        quantize_static(
            a.f32,
            ort_out,
            Slices(input_name, calib),
            quant_format=QuantFormat.QDQ if a.format == "qdq" else QuantFormat.QOperator,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
        )

    score, metric = {
        "segmenter": (mean_dice_tumour, "Dice"),
        "filter": (accuracy_percent, "accuracy %"),
    }[a.task]
    f32_out = outputs(a.f32, images, a.threads)
    result = {
        "task": a.task,
        "metric": metric,
        "eval_slices": int(len(images)),
        "calibration_slices": int(len(calib)),
        "ort_format": a.format,
        "ort_calibration": a.calibration_method,
        "ort_int8_bytes": os.path.getsize(ort_out),
        "score": {"f32": score(f32_out, masks)},
        "logit_diff_vs_f32": {},
    }
    ort_q = outputs(ort_out, images, a.threads)
    result["score"]["ort_int8"] = score(ort_q, masks)
    result["logit_diff_vs_f32"]["ort_int8"] = logit_diff(f32_out, ort_q)
    if a.ours:
        ours = outputs(a.ours, images, a.threads)
        result["score"]["ours_int8"] = score(ours, masks)
        result["logit_diff_vs_f32"]["ours_int8"] = logit_diff(f32_out, ours)
    if a.ort_out:
        result["ort_int8_path"] = a.ort_out
    print(json.dumps(result))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
