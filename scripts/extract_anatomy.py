#!/usr/bin/env python3
"""Cut the phantom generator's base slices from real brain MRI templates.

Run once by a maintainer; the output is committed under trainer/anatomy/ so
nothing is fetched at training or test time. Sources (both shipped inside
registry packages, see trainer/anatomy/LICENSES.md):

  * MNI152 2009a symmetric T1 plus its grey/white matter maps, from the PyPI
    `nilearn` wheel (nilearn/datasets/data/mni_icbm152_*_converted.nii.gz).
  * Colin27 T1 (ch2, 1 mm) and its brain-extracted twin (ch2bet), from the
    Debian package `mricron-data` (/usr/share/mricron/templates/).

For each kept axial slice it writes two 256x256 PNGs:
  <vol>_z<NNN>_t1.png      8-bit grey, the real T1 (per-volume 0.5..99.8 %ile)
  <vol>_z<NNN>_tissue.png  8-bit RGB: grey matter, white matter, CSF
                           probabilities (x255)

MNI has real tissue maps; CSF is the brain envelope minus GM and WM. Colin27
has none, so its GM/WM/CSF memberships come from a 3-class intensity mixture
on the brain-extracted volume (an approximation, said in docs/TRAINING.md).

Usage: pip install nibabel numpy scipy; python3 scripts/extract_anatomy.py NILEARN_DATA_DIR OUT_DIR
"""
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import binary_fill_holes
import zlib, struct

SIZE = 256
STEP = 4  # every 4th 1-mm axial slice: distinct anatomy, a few MB in git


def write_png(path, arr):
    """Minimal PNG writer (8-bit grey or RGB) so the script needs no PIL."""
    arr = np.ascontiguousarray(arr.astype(np.uint8))
    h, w = arr.shape[:2]
    colour = 0 if arr.ndim == 2 else 2
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def box_blur(vol, r):
    out = vol.astype(np.float32)
    for axis in range(3):
        c = np.cumsum(np.pad(out, [(r + 1, r) if a == axis else (0, 0) for a in range(3)]), axis=axis)
        hi = np.take(c, np.arange(2 * r + 1, c.shape[axis]), axis=axis)
        lo = np.take(c, np.arange(0, c.shape[axis] - 2 * r - 1), axis=axis)
        out = (hi - lo) / (2 * r + 1)
    return out


def to_axial(vol_slice):
    """x (left-right) by y (posterior-anterior) -> image rows anterior at top."""
    return np.flipud(vol_slice.T)


def pad_to(img, size=SIZE):
    h, w = img.shape[:2]
    out = np.zeros((size, size) + img.shape[2:], dtype=img.dtype)
    y0, x0 = (size - h) // 2, (size - w) // 2
    out[y0:y0 + h, x0:x0 + w] = img
    return out


def scale_t1(t1, brain):
    lo, hi = np.percentile(t1[brain > 0.5], [0.5, 99.8])
    return np.clip((t1 - lo) / (hi - lo), 0, 1)


def mixture_memberships(t1, brain, iters=30):
    """Soft CSF/GM/WM memberships from T1 intensity inside the brain mask."""
    vals = t1[brain]
    means = np.percentile(vals, [10, 50, 90]).astype(np.float64)
    sds = np.full(3, vals.std() / 4)
    weights = np.full(3, 1 / 3)
    for _ in range(iters):
        ll = np.stack([w * np.exp(-0.5 * ((vals - m) / s) ** 2) / s for m, s, w in zip(means, sds, weights)])
        resp = ll / np.maximum(ll.sum(0), 1e-12)
        n = resp.sum(1)
        means = (resp * vals).sum(1) / n
        sds = np.sqrt((resp * (vals - means[:, None]) ** 2).sum(1) / n) + 1e-6
        weights = n / n.sum()
    order = np.argsort(means)  # dark CSF, GM, bright WM on T1
    memb = np.zeros((3,) + t1.shape, dtype=np.float32)
    for k, idx in enumerate(order):
        memb[k][brain] = resp[idx]
    csf, gm, wm = memb
    return gm, wm, csf


def export(name, t1, gm, wm, csf, brain, out):
    t1s = scale_t1(t1, brain)
    zs = [z for z in range(t1.shape[2]) if brain[:, :, z].sum() > 0.25 * brain.sum(axis=(0, 1)).max()]
    kept = zs[::STEP]
    for z in kept:
        grey = pad_to(to_axial(t1s[:, :, z]) * 255)
        tissue = np.stack([to_axial(m[:, :, z]) for m in (gm, wm, csf)], axis=-1)
        write_png(out / f"{name}_z{z:03d}_t1.png", np.round(grey))
        write_png(out / f"{name}_z{z:03d}_tissue.png", np.round(pad_to(np.clip(tissue, 0, 1)) * 255))
    print(f"{name}: {len(kept)} slices (z {kept[0]}..{kept[-1]}), shape {t1.shape}")


def main():
    nl, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)

    t1 = nib.load(nl / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").get_fdata()
    # The "converted" maps store probabilities as 0..255 bytes.
    gm = nib.load(nl / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz").get_fdata() / 255.0
    wm = nib.load(nl / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz").get_fdata() / 255.0
    envelope = np.clip(box_blur((gm + wm) > 0.2, 2) * 1.5, 0, 1)
    csf = np.clip(envelope - gm - wm, 0, 1)
    export("mni152", t1, gm, wm, csf, envelope > 0.5, out)

    tmpl = Path("/usr/share/mricron/templates")
    t1 = nib.load(tmpl / "ch2.nii.gz").get_fdata()
    bet = nib.load(tmpl / "ch2bet.nii.gz").get_fdata()
    # ch2bet is zero outside the brain and can be zero in dark CSF; fill the
    # holes slice by slice so ventricles count as brain (CSF).
    brain = np.stack([binary_fill_holes(bet[:, :, z] > 0) for z in range(bet.shape[2])], axis=2)
    gm, wm, csf = mixture_memberships(t1, brain)
    export("colin27", t1, gm, wm, csf, brain, out)


if __name__ == "__main__":
    main()
