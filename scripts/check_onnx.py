#!/usr/bin/env python3
"""Reference check of an exported ONNX file: onnx.checker (full check) and an
onnxruntime run. Used by the trainer's tests; needs the .venv (onnx, onnxruntime, numpy).

Usage: check_onnx.py MODEL.onnx INPUT.f32 OUTPUT.f32 N C H W
INPUT.f32 holds little-endian float32 values of the [N,C,H,W] input; the
first model output is written to OUTPUT.f32 the same way.
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model_path, in_path, out_path = sys.argv[1:4]
    shape = [int(v) for v in sys.argv[4:8]]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    x = np.fromfile(in_path, dtype="<f4").reshape(shape)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    y = sess.run(None, {name: x})[0]
    y.astype("<f4").tofile(out_path)
    print(f"ok {model_path}: opset {model.opset_import[0].version}, output {list(y.shape)}")


if __name__ == "__main__":
    main()
