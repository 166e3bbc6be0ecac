#!/usr/bin/env python3
"""Writes the committed reliability fixtures (run from the repo root with the
venv's python: Pillow, numpy and pydicom are in scripts/requirements.txt).

  fuzz/corpus/<target>/    small seeds for the libFuzzer targets
  tests/fixtures/hostile/  files `neuroscreen scan` must refuse, each with an
                           error line naming it (tests/hostile_input.rs)

Deterministic: rerunning rewrites the same bytes (the committed files are
what the tests use; this script is how they were made).
"""
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz" / "corpus"
HOSTILE = ROOT / "tests" / "fixtures" / "hostile"
rng = np.random.default_rng(0)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(w: int, h: int, depth=8, colour=0) -> bytes:
    """A PNG whose IHDR claims w x h, with an empty IDAT: no pixels at all."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")


def png_zero_bomb(w: int, h: int) -> bytes:
    """A valid grey PNG of w x h zeros: tiny on disk, w*h bytes decoded."""
    row = b"\x00" + b"\x00" * w
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def tiff(w, h, samples, bits, fmt, data: bytes, photometric=1, extra=None) -> bytes:
    """A little-endian single-strip uncompressed TIFF written by hand, so
    sample counts, bit depths and sizes can be anything."""
    entries = [
        (256, 4, 1, w),  # ImageWidth
        (257, 4, 1, h),  # ImageLength
        (258, 3, 1, bits),  # BitsPerSample (first sample; see below)
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, photometric),
        (273, 4, 1, 0),  # StripOffsets, patched
        (277, 3, 1, samples),
        (278, 4, 1, h),  # RowsPerStrip
        (279, 4, 1, len(data)),  # StripByteCounts
        (339, 3, 1, fmt),  # SampleFormat: 1 uint, 2 int, 3 float
    ]
    if extra is not None:
        entries.append((338, 3, 1, extra))  # ExtraSamples
    entries.sort()
    ifd_offset = 8
    ifd_len = 2 + 12 * len(entries) + 4
    bps_offset = ifd_offset + ifd_len
    bps = b""
    if samples > 2:
        bps = struct.pack("<" + "H" * samples, *([bits] * samples))
    strip_offset = bps_offset + len(bps)
    out = b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = strip_offset
        if tag == 258 and samples > 2:
            out += struct.pack("<HHII", tag, typ, samples, bps_offset)
            continue
        if tag == 258 and samples == 2:  # two SHORTs fit in the entry itself
            out += struct.pack("<HHIHH", tag, typ, samples, bits, bits)
            continue
        if typ == 3:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0)
    return out + bps + data


def pil_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def blob(w, h, dtype=np.uint8, scale=255):
    y, x = np.mgrid[0:h, 0:w]
    v = np.exp(-(((x - w / 2) / (w / 3)) ** 2 + ((y - h / 2) / (h / 3)) ** 2))
    v = v + 0.1 * rng.random((h, w))
    return (v / v.max() * scale).astype(dtype)


def write(folder: Path, name: str, data: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def dicom_bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def lying_length(mr: bytes) -> bytes:
    """MR_small (explicit VR little endian) with a private OB element just
    before PatientName that declares 3 GB and holds 16 bytes: dicom-parser
    sizes and zero-fills a buffer from the declared length."""
    at = mr.index(b"\x10\x00\x10\x00PN")
    element = struct.pack("<HH2sHI", 0x0009, 0x1001, b"OB", 0, 3_000_000_000) + bytes(16)
    return mr[:at] + element + mr[at:]


def slice_seeds():
    d = FUZZ / "slice"
    g = blob(16, 12)
    write(d, "grey8.png", pil_bytes(Image.fromarray(g), "PNG"))
    write(d, "grey16.png", pil_bytes(Image.fromarray(blob(9, 7, np.uint16, 65535)), "PNG"))
    rgb = np.stack([blob(8, 8), blob(8, 8)[::-1], blob(8, 8)[:, ::-1]], axis=-1)
    write(d, "rgb8.png", pil_bytes(Image.fromarray(rgb), "PNG"))
    write(d, "rgba8.png", pil_bytes(Image.fromarray(rgb).convert("RGBA"), "PNG"))
    write(d, "la8.png", pil_bytes(Image.fromarray(g).convert("LA"), "PNG"))
    write(d, "palette.png", pil_bytes(Image.fromarray(rgb).convert("P"), "PNG"))
    write(d, "bilevel.png", pil_bytes(Image.fromarray(g).convert("1"), "PNG"))
    write(d, "interlaced.png", pil_bytes(Image.fromarray(g), "PNG", interlace=1))
    write(d, "grey8.tif", pil_bytes(Image.fromarray(g), "TIFF"))
    write(d, "rgb8_lzw.tif", pil_bytes(Image.fromarray(rgb), "TIFF", compression="tiff_lzw"))
    write(d, "grey8_packbits.tif", pil_bytes(Image.fromarray(g), "TIFF", compression="packbits"))
    write(d, "grey8_deflate.tif", pil_bytes(Image.fromarray(g), "TIFF", compression="tiff_adobe_deflate"))
    write(d, "grey16.tif", pil_bytes(Image.fromarray(blob(9, 7, np.uint16, 65535)), "TIFF"))
    write(d, "float32.tif", pil_bytes(Image.fromarray(blob(9, 7, np.float32, 3.5)), "TIFF"))
    f3 = blob(6, 5, np.float32, 2.0).tobytes() * 3
    write(d, "rgb_float32.tif", tiff(6, 5, 3, 32, 3, f3[: 6 * 5 * 3 * 4], photometric=2))
    write(d, "grey8.jpg", pil_bytes(Image.fromarray(blob(16, 16)), "JPEG", quality=80))
    write(d, "rgb8.jpg", pil_bytes(Image.fromarray(np.repeat(rgb, 2, 0).repeat(2, 1)), "JPEG", quality=80))
    write(d, "progressive.jpg", pil_bytes(Image.fromarray(blob(16, 16)), "JPEG", progressive=True))
    sample = Image.open(ROOT / "models" / "samples" / "sample_01_tumour_stacked.png").resize((24, 24))
    write(d, "sample_small.png", pil_bytes(sample, "PNG"))
    write(d, "header_only.png", png_header_only(20, 20))


def dicom_seeds():
    d = FUZZ / "dicom"
    for name in [
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "SC_rgb_small_odd.dcm",
    ]:
        ds = pydicom.dcmread(get_testdata_file(name))
        # Smaller seeds fuzz faster: keep a corner of native images.
        if ds.file_meta.TransferSyntaxUID in (
            pydicom.uid.ExplicitVRLittleEndian,
            pydicom.uid.ImplicitVRLittleEndian,
            pydicom.uid.ExplicitVRBigEndian,
        ) and ds.Rows > 16:
            ds.PixelData = ds.pixel_array[:16, :16].copy().tobytes() if ds.file_meta.TransferSyntaxUID != pydicom.uid.ExplicitVRBigEndian else ds.pixel_array[:16, :16].astype(">i2").tobytes()
            ds.Rows, ds.Columns = 16, 16
        write(d, name, dicom_bytes(ds))
    # pydicom's test files are MIT-licensed (see pydicom's LICENSE). The
    # JPEG 2000 ones stop a fuzz build with debug assertions at once: fuzz
    # with `-O` (fuzz/known-crashes/README.md).
    for name in ["JPEG2000.dcm", "MR_small_jp2klossless.dcm"]:
        write(d, name, Path(get_testdata_file(name)).read_bytes())


def manifest_seeds():
    d = FUZZ / "manifest"
    text = (ROOT / "models" / "manifest.json").read_text()
    write(d, "shipped.json", text.encode())
    import json

    m = json.loads(text)
    m2 = json.loads(text)
    filt = json.loads(json.dumps(m2["models"][0]))
    filt["name"] = "filter"
    filt["role"] = "filter"
    filt["output"] = {"name": "class_logits", "shape": [1, 2], "kind": "logits", "classes": ["clear", "tumour"]}
    m2["models"].append(filt)
    m2["pipeline"]["filter"] = "filter"
    write(d, "with_filter.json", json.dumps(m2).encode())
    m3 = json.loads(text)
    for e in m3["models"]:
        e.pop("provenance", None)
        e.pop("metrics", None)
        e["input"]["preprocessing"] = {"resize": "stretch", "normalisation": {"kind": "z_score"}}
    write(d, "minimal.json", json.dumps(m3, separators=(",", ":")).encode())


def config_seeds():
    d = FUZZ / "config"
    write(d, "example.toml", (ROOT / "firmware" / "appliance.example.toml").read_bytes())
    for p in sorted((ROOT / "board" / "profiles").glob("*.toml")):
        write(d, p.name, p.read_bytes())
    write(d, "empty.toml", b"")
    write(
        d,
        "small.toml",
        b'[models]\ndir = "m"\nthreads = 2\nprecision = "int8"\n[inbox]\npixel_spacing_mm = [0.5, 0.5]\n'
        b'[store]\nmax_age_days = 30\nmax_results = 100\n[display]\nkind = "none"\n[pipeline]\nqueue = 4\n',
    )


def camera_seeds():
    """Each recorded frame of board/tests/fixtures/camera/ behind the header
    the `camera` target reads (fuzz/src/lib.rs, `camera_header`): format
    index in FrameFormat::ALL (grey, yuyv, mjpeg, rgb24), width and height
    as little-endian u16, stride as little-endian u64."""
    d = FUZZ / "camera"
    frames = ROOT / "board" / "tests" / "fixtures" / "camera"

    def frame(fmt, w, h, stride, data):
        index = ["grey", "yuyv", "mjpeg", "rgb24"].index(fmt)
        return struct.pack("<BHHQ", index, w, h, stride) + data

    for name, fmt, stride in [
        ("grey_96x72_stride104.raw", "grey", 104),
        ("yuyv_96x72.raw", "yuyv", 192),
        ("mjpeg_96x72.jpg", "mjpeg", 0),
        ("mjpeg_96x72_no_dht.jpg", "mjpeg", 0),
        ("rgb24_96x72_stride296.raw", "rgb24", 296),
    ]:
        write(d, name, frame(fmt, 96, 72, stride, (frames / name).read_bytes()))
    # Small ones too: the fuzzer mutates short inputs faster, and a grey
    # JPEG takes the decoder's other colour path.
    write(d, "grey_4x2_stride5", frame("grey", 4, 2, 5, bytes(range(1, 10))))
    write(d, "yuyv_4x2", frame("yuyv", 4, 2, 8, bytes([16, 90, 235, 240] * 4)))
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    write(d, "mjpeg_grey_16x16.jpg", frame("mjpeg", 16, 16, 0, pil_bytes(Image.fromarray(ramp), "JPEG", quality=80)))


def hostile():
    # Not cleared first: rle_overrun.dcm there is an input the `dicom` fuzz
    # target found (dicom-rs's RLE decoder panicked on it), kept as found.
    d = HOSTILE
    g = blob(64, 64)
    png = pil_bytes(Image.fromarray(g), "PNG")
    tif = pil_bytes(Image.fromarray(g), "TIFF")
    jpg = pil_bytes(Image.fromarray(g), "JPEG", quality=90)
    mr = dicom_bytes(pydicom.dcmread(get_testdata_file("MR_small.dcm")))
    write(d, "truncated.png", png[: len(png) // 3])
    write(d, "truncated.tif", tif[: len(tif) // 3])
    write(d, "truncated.jpg", jpg[: len(jpg) // 3])
    write(d, "truncated.dcm", mr[: len(mr) // 2])
    write(d, "zero_bytes.png", b"")
    write(d, "zero_bytes.dcm", b"")
    write(d, "not_an_image.png", b"this is a text file with a .png name\n")
    # Headers claiming 60000 x 60000 pixels (10.8 GB as 8-bit RGB).
    write(d, "huge_60000.png", png_header_only(60000, 60000, 8, 2))
    write(d, "huge_60000.tif", tiff(60000, 60000, 1, 8, 1, b"\x00" * 64))
    sof = jpg.index(b"\xff\xc0")
    write(d, "huge_60000.jpg", jpg[: sof + 5] + struct.pack(">HH", 60000, 60000) + jpg[sof + 9 :])
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.Rows, ds.Columns = 60000, 60000
    write(d, "huge_60000.dcm", dicom_bytes(ds))
    # Within the side limit, over the pixel budget: 8192 x 8192 zeros,
    # 64 MB decoded from a 64 kB file.
    write(d, "bomb_8192.png", png_zero_bomb(8192, 8192))
    # 16-bit and float TIFFs in forms the appliance cannot use.
    write(d, "grey16_cut_strip.tif", tiff(64, 64, 1, 16, 1, b"\x01\x02" * 100))
    nan = np.full((8, 8, 3), np.nan, dtype=np.float32)
    write(d, "float_nan.tif", tiff(8, 8, 3, 32, 3, nan.tobytes(), photometric=2))
    write(d, "float32_grey.tif", tiff(8, 8, 1, 32, 3, np.ones((8, 8), np.float32).tobytes()))
    write(d, "float64.tif", tiff(8, 8, 1, 64, 3, np.ones((8, 8)).tobytes()))
    # Wrong channel counts.
    write(d, "two_channels.tif", tiff(8, 8, 2, 8, 1, bytes(range(128)), extra=0))
    write(d, "five_channels.tif", tiff(8, 8, 5, 8, 1, bytes(range(256)) + bytes(64), photometric=2, extra=0))
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.SamplesPerPixel = 4
    write(d, "four_samples.dcm", dicom_bytes(ds))
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    del ds.PixelData
    write(d, "no_pixel_data.dcm", dicom_bytes(ds))
    write(d, "garbage_after_magic.dcm", b"\x00" * 128 + b"DICM" + bytes(range(256)) * 2)
    write(d, "lying_length_3gb.dcm", lying_length(mr))
    # A tumour mask whose slice is not there.
    write(d, "lonely_mask.png", pil_bytes(Image.fromarray(((g > 128) * 255).astype(np.uint8)), "PNG"))


if __name__ == "__main__":
    slice_seeds()
    dicom_seeds()
    manifest_seeds()
    config_seeds()
    camera_seeds()
    hostile()
    print("written:", FUZZ, HOSTILE)
