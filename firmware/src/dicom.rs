//! DICOM slices (MR files from the scanner or a folder export) as
//! `SliceImage`s: explicit/implicit little endian, big endian, RLE, JPEG
//! baseline/lossless and JPEG 2000 (pure-Rust `openjp2`) through dicom-rs.
//!
//! Intensities: the modality LUT (rescale slope and intercept) is applied;
//! no VOI window is, because the models' own normalisation (percentiles of
//! each slice, from the manifest) sets the contrast, the same way for a
//! DICOM file as for a PNG. MONOCHROME1 is inverted so bright means the
//! same as in MONOCHROME2. Signed pixels come through as signed floats.

use crate::error::{Error, Result};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use dicom_pixeldata::{
    ConvertOptions, ModalityLutOption, PhotometricInterpretation, PixelDecoder, VoiLutOption,
};
use models::SliceImage;
use std::path::Path;

const MAGIC: &[u8; 4] = b"DICM";

/// A DICOM Part 10 file: "DICM" after the 128-byte preamble (or, for a file
/// written without its preamble, at the start).
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(MAGIC) || bytes.get(..4) == Some(MAGIC)
}

fn fail(origin: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Contract(models::Error::Decode {
        path: origin.to_path_buf(),
        reason: format!("DICOM: {reason}"),
    })
}

/// Decodes the (single) frame of a DICOM image; the error names the file.
///
/// dicom-rs's decoders panic on some malformed files (the `dicom` fuzz
/// target found its RLE decoder indexing past its buffer): such a panic is
/// caught and becomes this file's error, instead of ending the appliance
/// and, at its restart, ending it again on the same queued file.
pub fn decode(bytes: &[u8], origin: &Path) -> Result<SliceImage> {
    std::panic::catch_unwind(|| decode_unguarded(bytes, origin)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(fail(
            origin,
            format!("the pixel decoder failed on this file ({what})"),
        ))
    })
}

fn decode_unguarded(bytes: &[u8], origin: &Path) -> Result<SliceImage> {
    let body = if bytes.get(128..132) == Some(MAGIC) {
        &bytes[128..]
    } else {
        bytes
    };
    let object = OpenFileOptions::new()
        .from_reader(body)
        .map_err(|e| fail(origin, e))?;
    check_declared_size(&object).map_err(|reason| fail(origin, reason))?;
    let pixels = object.decode_pixel_data().map_err(|e| fail(origin, e))?;
    let frames = pixels.number_of_frames();
    if frames != 1 {
        return Err(fail(
            origin,
            format!("{frames} frames in one file; multi-frame images are not supported yet"),
        ));
    }
    let (w, h) = (pixels.columns(), pixels.rows());
    models::slice::check_size(w, h).map_err(|reason| fail(origin, reason))?;
    let channels = usize::from(pixels.samples_per_pixel());
    if channels != 1 && channels != 3 {
        return Err(fail(origin, format!("{channels} samples per pixel")));
    }
    let options = ConvertOptions::new()
        .with_modality_lut(ModalityLutOption::Default)
        .with_voi_lut(VoiLutOption::Identity);
    let interleaved: Vec<f32> = pixels
        .to_vec_frame_with_options(0, &options)
        .map_err(|e| fail(origin, e))?;
    let n = w as usize * h as usize;
    if interleaved.len() != n * channels {
        return Err(fail(
            origin,
            format!(
                "{} samples decoded for {w}x{h}x{channels} (truncated pixel data?)",
                interleaved.len()
            ),
        ));
    }
    let mut planar = vec![0f32; n * channels];
    for (i, v) in interleaved.iter().enumerate() {
        planar[(i % channels) * n + i / channels] = *v;
    }
    if *pixels.photometric_interpretation() == PhotometricInterpretation::Monochrome1 {
        let (lo, hi) = planar
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        planar.iter_mut().for_each(|v| *v = hi + lo - *v);
    }
    let bit_depth = match pixels.bits_allocated() {
        8 => 8,
        16 => 16,
        _ => 32,
    };
    let mut slice = SliceImage::new(w, h, channels, bit_depth, planar);
    slice.pixel_spacing_mm = pixel_spacing(&object);
    Ok(slice)
}

/// The image size the header declares, refused before the pixel decoder
/// allocates for it: a compressed frame is decoded into a buffer sized from
/// Rows x Columns x samples x frames, whatever the file's own length.
fn check_declared_size(object: &dicom_object::DefaultDicomObject) -> Result<(), String> {
    let number = |tag, name: &str| -> Result<u64, String> {
        object
            .element(tag)
            .map_err(|_| format!("no {name}"))?
            .to_int::<u64>()
            .map_err(|e| format!("{name}: {e}"))
    };
    let rows = number(tags::ROWS, "Rows")?;
    let columns = number(tags::COLUMNS, "Columns")?;
    let (Ok(rows), Ok(columns)) = (u32::try_from(rows), u32::try_from(columns)) else {
        return Err(format!("{columns}x{rows} pixels is not a slice we accept"));
    };
    models::slice::check_size(columns, rows)?;
    let samples = object
        .element(tags::SAMPLES_PER_PIXEL)
        .ok()
        .and_then(|e| e.to_int::<u64>().ok())
        .unwrap_or(1);
    if samples != 1 && samples != 3 {
        return Err(format!("{samples} samples per pixel"));
    }
    let frames = object
        .element(tags::NUMBER_OF_FRAMES)
        .ok()
        .and_then(|e| e.to_int::<u64>().ok())
        .unwrap_or(1);
    if frames != 1 {
        return Err(format!(
            "{frames} frames in one file; multi-frame images are not supported yet"
        ));
    }
    Ok(())
}

/// PixelSpacing (0028,0030), "row\column" in mm; absent or unusable gives
/// `None` (the area is then reported in pixels only).
fn pixel_spacing(object: &dicom_object::DefaultDicomObject) -> Option<[f64; 2]> {
    let element = object.element(tags::PIXEL_SPACING).ok()?;
    let values = element.to_multi_float64().ok()?;
    match values.as_slice() {
        [r, c]
            if [r, c]
                .iter()
                .all(|v| v.is_finite() && **v > 0.0 && **v < 10.0) =>
        {
            Some([*r, *c])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_with_and_without_preamble() {
        let mut with = vec![0u8; 132];
        with[128..].copy_from_slice(MAGIC);
        assert!(is_dicom(&with));
        assert!(is_dicom(b"DICM\x02\x00"));
        assert!(!is_dicom(b"\x89PNG\r\n\x1a\n"));
        assert!(!is_dicom(&[]));
    }

    #[test]
    fn a_decoder_panic_on_a_malformed_rle_file_is_this_files_error() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hostile/rle_overrun.dcm");
        let bytes = std::fs::read(path).unwrap();
        let e = decode(&bytes, Path::new("/in/rle.dcm"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/in/rle.dcm") && e.contains("decoder failed"),
            "{e}"
        );
    }

    #[test]
    fn garbage_after_the_magic_is_a_named_error() {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&[0xff; 40]);
        let e = decode(&bytes, Path::new("/in/x.dcm"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/in/x.dcm") && e.contains("DICOM"), "{e}");
    }
}
