#!/usr/bin/env python3
"""Reframes small heads in a folder of PNG slices, for a what-if measurement.

    frame_heads.py SRC DST [--below 0.6] [--fill 0.8]
    frame_heads.py SRC --survey N [--below 0.6]
    frame_heads.py SRC DST --tree [--below 0.6] [--fill 0.8]

For each slice of SRC: the head is the box around pixels brighter than a tenth
of the slice's 99.5th percentile; its share is the box's larger side over the
slice's. With --survey, N slices drawn (seed 0) from the image files under SRC
(masks, `*_mask.*`, left out) are measured and the spread of their head shares
printed; nothing is written. With --tree, SRC is a data folder in the LGG
layout (patient folders, `<stem>_mask.<ext>` beside each image): DST mirrors it,
a slice to reframe is written as PNG with its mask cropped by the same box, and
every other file is a symbolic link to the original (DST holds no copy of a
slice left as it was; keep DST out of the repository all the same). Otherwise
a slice of SRC whose head share is under --below is cropped (zeros outside the
slice) to a square centred on the box, of side box / --fill, so the head fills
the frame about as in the training slices; any other slice is copied unchanged. Prints each slice's share and what was done.

Used on the registry's clear series (docs/EVALUATION.md, 2026-12-07 evening)
to ask whether the models' false alarms on ITK's T1 head come from its small
place in the frame. Not the appliance's preprocessing: the appliance does not
reframe, and the models were not trained on reframed slices.
"""
import argparse
import os
import random

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = ("png", "tif", "tiff", "jpg", "jpeg")


def is_mask(name):
    return name.rpartition(".")[0].endswith("_mask")


def is_image(name):
    return name.rpartition(".")[2].lower() in IMAGE_EXTENSIONS


def head_box(grey):
    """(x0, y0, x1, y1) inclusive, or None for a slice with nothing bright."""
    bright = grey > 0.1 * np.percentile(grey, 99.5)
    ys, xs = np.nonzero(bright)
    if len(xs) == 0:
        return None
    return xs.min(), ys.min(), xs.max(), ys.max()


def head_share(grey):
    box = head_box(grey)
    if box is None:
        return None, 0.0
    x0, y0, x1, y1 = box
    return box, max((x1 - x0 + 1) / grey.shape[1], (y1 - y0 + 1) / grey.shape[0])


def box_to_reframe(grey, below):
    """(the head's box, its share); the box is None when the slice stays as it is."""
    box, share = head_share(grey)
    return (box if box is not None and share < below else None), share


def grey_of(path):
    pixels = np.array(Image.open(path))
    return pixels, (pixels if pixels.ndim == 2 else pixels.max(axis=2))


def survey(src, n, below):
    files = sorted(
        os.path.join(d, f)
        for d, _, names in os.walk(src)
        for f in names
        if is_image(f) and not is_mask(f)
    )
    chosen = random.Random(0).sample(files, min(n, len(files)))
    shares = np.array([head_share(grey_of(f)[1])[1] for f in chosen])
    print(
        f"{src}: {len(chosen)} of {len(files)} slices; head share under {below}: "
        f"{(shares < below).sum()}; 5th percentile {np.percentile(shares, 5):.2f}, "
        f"median {np.median(shares):.2f}"
    )


def reframe(pixels, box, fill):
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = box
    side = int(round(max(x1 - x0 + 1, y1 - y0 + 1) / fill))
    left, top = (x0 + x1) // 2 - side // 2, (y0 + y1) // 2 - side // 2
    out = np.zeros((side, side) + pixels.shape[2:], dtype=pixels.dtype)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + side, w), min(top + side, h)
    out[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = pixels[sy0:sy1, sx0:sx1]
    return out


def tree(src, dst, below, fill):
    seen = reframed = 0
    for folder, _, names in os.walk(src):
        out = os.path.join(dst, os.path.relpath(folder, src))
        os.makedirs(out, exist_ok=True)
        for name in names:
            if is_mask(name):
                continue
            path = os.path.join(folder, name)
            if not is_image(name):
                os.symlink(path, os.path.join(out, name))
                continue
            stem = name.rpartition(".")[0]
            masks = [m for m in names if m.rpartition(".")[0] == stem + "_mask"]
            seen += 1
            pixels, grey = grey_of(path)
            box, _ = box_to_reframe(grey, below)
            if box is None:
                for f in [name] + masks:
                    os.symlink(os.path.join(folder, f), os.path.join(out, f))
                continue
            reframed += 1
            Image.fromarray(reframe(pixels, box, fill)).save(os.path.join(out, stem + ".png"))
            for m in masks:
                mask = np.array(Image.open(os.path.join(folder, m)))
                Image.fromarray(reframe(mask, box, fill)).save(
                    os.path.join(out, stem + "_mask.png")
                )
    print(f"{src}: {seen} slices, {reframed} reframed (head share under {below})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst", nargs="?")
    ap.add_argument("--below", type=float, default=0.6)
    ap.add_argument("--fill", type=float, default=0.8)
    ap.add_argument("--survey", type=int, metavar="N")
    ap.add_argument("--tree", action="store_true")
    args = ap.parse_args()
    if args.survey:
        survey(args.src, args.survey, args.below)
        return
    if args.dst is None:
        ap.error("DST is needed unless --survey is given")
    if args.tree:
        tree(args.src, args.dst, args.below, args.fill)
        return
    os.makedirs(args.dst, exist_ok=True)
    for name in sorted(os.listdir(args.src)):
        if not name.endswith(".png"):
            continue
        pixels, grey = grey_of(os.path.join(args.src, name))
        box, share = box_to_reframe(grey, args.below)
        if box is None:
            out, done = pixels, "copied"
        else:
            out = reframe(pixels, box, args.fill)
            done = f"cropped to {out.shape[1]}x{out.shape[0]}"
        Image.fromarray(out).save(os.path.join(args.dst, name))
        print(f"{name}: head share {share:.2f}, {done}")


if __name__ == "__main__":
    main()
