//! DICOM in and out: MR files from the scanner or a folder export read as
//! slices (`read`, `frames`), folders of them grouped into series and put
//! in slice order (`series`), objects received over the network (`scp`),
//! and the results written back as DICOM: a binary Segmentation (`seg`) and
//! optionally a Secondary Capture with the overlay burned in (`capture`).
//! What the header says of the acquisition (`acquisition`) tells a result
//! whose input is unlike the models' training slices (EPI, a mosaic, ...).
//!
//! Intensities: the modality LUT (rescale slope and intercept) is applied;
//! no VOI window is. The models' own normalisation (from the manifest; the
//! shipped set takes each slice's 0.5..99.5 percentiles to 0..1) sets the
//! contrast, the same way for a DICOM file as for a PNG, so a window chosen
//! for a radiologist's eye (or a missing one) cannot change a verdict. The
//! stored overlay is windowed to the same percentiles for display.
//! MONOCHROME1 is inverted so bright means the same as in MONOCHROME2.
//! Signed pixels are converted to f32 (never through u16).

pub mod acquisition;
mod build;
pub mod capture;
mod frames;
mod header;
pub mod lengths;
mod read;
pub mod scp;
pub mod seg;
pub mod series;
mod uid;

pub use read::{decode, open, DicomFile, Frame, Identity};

use crate::error::Error;
use std::path::Path;

const MAGIC: &[u8; 4] = b"DICM";

/// A DICOM Part 10 file: "DICM" after the 128-byte preamble (or, for a file
/// written without its preamble, at the start).
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(MAGIC) || bytes.get(..4) == Some(MAGIC)
}

/// A decoding error in the words every other slice format uses:
/// "<file>: DICOM: <reason>".
fn fail(origin: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Contract(models::Error::Decode {
        path: origin.to_path_buf(),
        reason: format!("DICOM: {reason}"),
    })
}

/// The name a frame of a multi-frame file goes by in records:
/// `<file>#<frame>`, frames counted from 1 as DICOM does.
pub fn frame_input(file: &Path, frame: u32) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(format!("#{frame}"));
    name.into()
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
    fn garbage_after_the_magic_is_a_named_error() {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&[0xff; 40]);
        let e = decode(&bytes, Path::new("/in/x.dcm"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/in/x.dcm") && e.contains("DICOM"), "{e}");
    }

    #[test]
    fn frames_are_named_after_their_file() {
        assert_eq!(
            frame_input(Path::new("/in/cine.dcm"), 3),
            Path::new("/in/cine.dcm#3")
        );
    }
}
