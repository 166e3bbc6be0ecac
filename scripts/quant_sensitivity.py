#!/usr/bin/env python3
"""Where does int8 lose accuracy? A fake-quantisation model of neuroscreen's
int8 export (trainer/src/export/quantize.rs), in torch over the float ONNX
file, that reproduces tract's int8 outputs (per-channel symmetric int8
weights, per-tensor uint8 activations over calibrated ranges, int32 biases,
QLinearConv outputs quantised over their post-ReLU range, adds /
concatenations / upsampling in float, the last convolution in float).

It scores the held-out slices (mean per-slice Dice over tumour slices, as
the exporter) for min-max and percentile ranges, then applies percentile
ranges to one stage of the network at a time (min-max elsewhere) to show
which stage's clipping costs Dice.

Usage: quant_sensitivity.py --f32 models/segmenter.f32.onnx --slices DIR
(DIR from `neuroscreen-train dump-slices`). Needs the .venv (torch, onnx).
"""
import argparse
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

torch.set_num_threads(1)


def load_ops(path):
    m = onnx.load(path)
    init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
    nodes = list(m.graph.node)
    consumers = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    ops = []
    skip = set()
    for n in nodes:
        if n.name in skip:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        out = n.output[0]
        relu = False
        cs = consumers.get(out, [])
        if n.op_type in ("Conv", "Add") and len(cs) == 1 and cs[0].op_type == "Relu":
            relu = True
            skip.add(cs[0].name)
            out = cs[0].output[0]
        if n.op_type == "Conv":
            ops.append(dict(kind="conv", inp=n.input[0], w=init[n.input[1]], b=init[n.input[2]],
                            stride=attrs["strides"][0], pad=attrs["pads"][0], relu=relu, out=out))
        elif n.op_type == "Add":
            ops.append(dict(kind="add", a=n.input[0], b=n.input[1], relu=relu, out=out))
        elif n.op_type == "MaxPool":
            ops.append(dict(kind="pool", inp=n.input[0], k=attrs["kernel_shape"][0],
                            stride=attrs["strides"][0], pad=attrs["pads"][0], out=out))
        elif n.op_type == "Resize":
            ops.append(dict(kind="up", inp=n.input[0], out=out))
        elif n.op_type == "Concat":
            ops.append(dict(kind="cat", a=n.input[0], b=n.input[1], out=out))
        else:
            raise ValueError(n.op_type)
    return ops, m.graph.input[0].name, m.graph.output[0].name


def run_float(ops, inp_name, x):
    v = {inp_name: x}
    for o in ops:
        k = o["kind"]
        if k == "conv":
            y = F.conv2d(v[o["inp"]], o["w"], o["b"], o["stride"], o["pad"])
            y = F.relu(y) if o["relu"] else y
        elif k == "add":
            y = v[o["a"]] + v[o["b"]]
            y = F.relu(y) if o["relu"] else y
        elif k == "pool":
            y = F.max_pool2d(v[o["inp"]], o["k"], o["stride"], o["pad"])
        elif k == "up":
            y = F.interpolate(v[o["inp"]], scale_factor=2, mode="nearest")
        elif k == "cat":
            y = torch.cat([v[o["a"]], v[o["b"]]], 1)
        v[o["out"]] = y
    return v


def act_params(lo, hi):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    s = max((hi - lo) / 255.0, 1e-8)
    z = float(np.clip(round(-lo / s), 0, 255))
    return s, z


def fq(x, s, z):
    return (torch.clamp(torch.round(x / s) + z, 0, 255) - z) * s


def wq(w):
    o = w.shape[0]
    mx = w.abs().reshape(o, -1).max(1).values
    s = torch.where(mx > 0, mx / 127.0, torch.ones_like(mx))
    q = torch.clamp(torch.round(w / s.view(-1, 1, 1, 1)), -127, 127)
    return q * s.view(-1, 1, 1, 1), s


def run_quant(ops, inp_name, x, ranges, float_convs=(), split_cat=False):
    """ranges: name -> (lo, hi). float_convs: indices of convs kept float.
    split_cat: a conv reading a Concat runs as one integer conv per input
    (each with its own input scale), summed in float."""
    fv = {inp_name: x}   # float view
    qv = {}              # name -> (dequantised tensor, s, z)
    cats = {}

    def quant(name):
        if name in qv:
            return qv[name]
        s, z = act_params(*ranges[name])
        t = (fq(fv[name], s, z), s, z)
        qv[name] = t
        return t

    def flt(name):
        if name in fv:
            return fv[name]
        return qv[name][0]

    ci = -1
    for o in ops:
        k = o["kind"]
        if k == "conv":
            ci += 1
            if ci in float_convs:
                y = F.conv2d(flt(o["inp"]), o["w"], o["b"], o["stride"], o["pad"])
                fv[o["out"]] = F.relu(y) if o["relu"] else y
                continue
            wd, ws = wq(o["w"])
            ys, yz = act_params(*ranges[o["out"]])
            if split_cat and o["inp"] in cats:
                a, b = cats[o["inp"]]
                ca = fv_or_q_shape(a, fv, qv)
                y = 0
                for part, lo_c, hi_c in ((a, 0, ca), (b, ca, o["w"].shape[1])):
                    xd, xs, xz = quant(part)
                    y = y + F.conv2d(xd, wd[:, lo_c:hi_c], None, o["stride"], o["pad"])
                bq = torch.round(o["b"] / (xs * ws)) * xs * ws
                y = y + bq.view(1, -1, 1, 1)
            else:
                xd, xs, xz = quant(o["inp"])
                bq = torch.round(o["b"] / (xs * ws)) * (xs * ws)
                y = F.conv2d(xd, wd, bq, o["stride"], o["pad"])
            y = F.relu(y) if o["relu"] else y
            qv[o["out"]] = (fq(y, ys, yz), ys, yz)
        elif k == "add":
            y = flt(o["a"]) + flt(o["b"])
            fv[o["out"]] = F.relu(y) if o["relu"] else y
        elif k == "pool":
            xd, s, z = quant(o["inp"])
            qv[o["out"]] = (F.max_pool2d(xd, o["k"], o["stride"], o["pad"]), s, z)
        elif k == "up":
            fv[o["out"]] = F.interpolate(flt(o["inp"]), scale_factor=2, mode="nearest")
        elif k == "cat":
            fv[o["out"]] = torch.cat([flt(o["a"]), flt(o["b"])], 1)
            cats[o["out"]] = (o["a"], o["b"])
    return fv, qv


def fv_or_q_shape(name, fv, qv):
    t = fv[name] if name in fv else qv[name][0]
    return t.shape[1]


def dice_tumour(outs, masks):
    ds = []
    for y, m in zip(outs, masks):
        p = y.reshape(-1) > 0
        t = torch.from_numpy(m.reshape(-1) != 0)
        if t.sum() == 0:
            continue
        tp = (p & t).sum().item()
        fp = (p & ~t).sum().item()
        fn = (~p & t).sum().item()
        ds.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(ds))


def calibrate(ops, inp_name, xs, method="percentile", low=0.01, high=99.99, cap=1 << 20):
    names = [inp_name] + [o["out"] for o in ops]
    mm = {n: (0.0, 0.0) for n in names}
    samples = {n: [] for n in names}
    per = cap // max(len(xs), 1)
    for x in xs:
        v = run_float(ops, inp_name, torch.from_numpy(x[None]))
        for n in names:
            flat = v[n].reshape(-1).numpy()
            lo, hi = mm[n]
            mm[n] = (min(lo, float(flat.min())), max(hi, float(flat.max())))
            stride = max(len(flat) // max(per, 1), 1)
            samples[n].append(flat[::stride])
    if method == "minmax":
        return mm
    out = {}
    for n in names:
        s = np.sort(np.concatenate(samples[n]))
        at = lambda p: float(s[int(round(p / 100 * (len(s) - 1)))])
        out[n] = (min(at(low), 0.0), max(at(high), 0.0))
    return out


def main():
    p = argparse.ArgumentParser(description="int8 sensitivity of the segmenter, per stage")
    p.add_argument("--f32", required=True)
    p.add_argument("--slices", required=True)
    p.add_argument("--low", type=float, default=0.01)
    p.add_argument("--high", type=float, default=99.99)
    a = p.parse_args()
    ops, inp, outn = load_ops(a.f32)
    cal = np.load(os.path.join(a.slices, "calibration.npy")).astype(np.float32)
    images = np.load(os.path.join(a.slices, "eval_images.npy")).astype(np.float32)
    masks = np.load(os.path.join(a.slices, "eval_masks.npy"))
    last_conv = sum(o["kind"] == "conv" for o in ops) - 1
    ref = [run_float(ops, inp, torch.from_numpy(x[None]))[outn] for x in images]

    def score(ranges, split_cat=False):
        outs = []
        for x in images:
            fv, qv = run_quant(ops, inp, torch.from_numpy(x[None]), ranges,
                               float_convs={last_conv}, split_cat=split_cat)
            outs.append(fv[outn] if outn in fv else qv[outn][0])
        d = torch.cat([(r - q).abs().reshape(-1) for r, q in zip(ref, outs)])
        return "Dice %.4f  |logit diff| max %.3f mean %.4f" % (
            dice_tumour(outs, masks), d.max().item(), d.mean().item())

    print(f"{len(cal)} calibration slices, {len(images)} held-out slices")
    print("f32                         Dice %.4f" % dice_tumour(ref, masks))
    mm = calibrate(ops, inp, cal, method="minmax")
    pc = calibrate(ops, inp, cal, low=a.low, high=a.high)
    print("int8 min-max                " + score(mm))
    print("int8 min-max, concat split  " + score(mm, split_cat=True))
    print(f"int8 percentile {a.low}..{a.high} " + score(pc))
    # Stages: split at every MaxPool (encoder) and Concat (decoder).
    cuts = [i for i, o in enumerate(ops) if o["kind"] in ("pool", "cat")]
    bounds = [0] + cuts + [len(ops)]
    names = [inp] + [o["out"] for o in ops]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        stage = {o["out"] for o in ops[lo:hi]} | ({inp} if lo == 0 else set())
        ranges = {n: (pc[n] if n in stage else mm[n]) for n in names}
        clipped = [n for n in stage if mm[n][1] > 0 and pc[n][1] / mm[n][1] < 0.7]
        print(f"percentile only in ops {lo:2}..{hi:2} ({len(clipped)} values clipped below 70 % of max): "
              + score(ranges))
        for n in sorted(clipped, key=names.index):
            print(f"    {n}: max {mm[n][1]:.2f}, percentile high {pc[n][1]:.2f}")


if __name__ == "__main__":
    main()
