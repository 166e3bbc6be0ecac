#!/usr/bin/env python3
"""Int8 forms of a shipped model set, for timing them in tract.

Writes, for each form, a models folder (the f32 files copied, the int8 files
made by onnxruntime's static quantiser, a manifest with their sha256) that
`neuroscreen bench --profile --models OUT/FORM` times beside the shipped
int8 files. Forms: activations uint8 or int8, asymmetric or symmetric, QDQ
(QuantizeLinear/DequantizeLinear around float operators) or QOperator
(QLinearConv and onnxruntime's QLinearAdd/QLinearConcat), or QOperator for the
convolutions only (`qopconv`: QLinearConv, everything else float between
QuantizeLinear/DequantizeLinear, the form our own export writes).

The calibration is eight pseudo-random images: the files are for timing
only (a CNN's time does not depend on its scales), never to ship.

Usage: quant_forms.py MODELS OUT [FORM ...]   FORM like u8-asym-qdq
Needs the .venv (onnx, onnxruntime, numpy).
"""
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

FORMS = [
    "u8-asym-qdq",
    "s8-asym-qdq",
    "s8-sym-qdq",
    "u8-asym-qop",
    "s8-sym-qop",
    "u8-asym-qopconv",
    "s8-sym-qopconv",
]


class Random(CalibrationDataReader):
    def __init__(self, name, shape):
        rng = np.random.default_rng(0)
        self.feeds = [{name: rng.random(shape, dtype=np.float32)} for _ in range(8)]

    def get_next(self):
        return self.feeds.pop() if self.feeds else None


def quantise(src, dst, form):
    act, sym, fmt = form.split("-")
    model = onnx.load(src)
    name = model.graph.input[0].name
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    quantize_static(
        src,
        dst,
        Random(name, shape),
        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
        op_types_to_quantize=["Conv"] if fmt == "qopconv" else None,
        activation_type=QuantType.QInt8 if act == "s8" else QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"ActivationSymmetric": sym == "sym", "WeightSymmetric": True},
    )


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    models, out = sys.argv[1], sys.argv[2]
    forms = sys.argv[3:] or FORMS
    with open(os.path.join(models, "manifest.json")) as f:
        manifest = json.load(f)
    for form in forms:
        if form not in FORMS:
            print(f"{form}: not one of {', '.join(FORMS)}", file=sys.stderr)
            return 2
        folder = os.path.join(out, form)
        os.makedirs(folder, exist_ok=True)
        kept = json.loads(json.dumps(manifest))
        for entry in kept["models"]:
            files = {f["precision"]: f for f in entry["files"]}
            if "f32" not in files or "int8" not in files:
                continue
            f32 = os.path.join(folder, files["f32"]["path"])
            shutil.copyfile(os.path.join(models, files["f32"]["path"]), f32)
            quantise(f32, os.path.join(folder, files["int8"]["path"]), form)
            for f in entry["files"]:
                with open(os.path.join(folder, f["path"]), "rb") as b:
                    f["sha256"] = hashlib.sha256(b.read()).hexdigest()
        kept.pop("signature", None)
        with open(os.path.join(folder, "manifest.json"), "w") as f:
            json.dump(kept, f, indent=1)
        print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
