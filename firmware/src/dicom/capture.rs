//! The overlay (slice windowed for display, mask burned in red) as a
//! Secondary Capture image (PS3.3 A.8.1) in the source's study, for
//! viewers that cannot show a SEG. Off unless configured: burned-in
//! pixels are a picture, not data a viewer can switch off or measure.

use super::build::{self, code, element, object, sequence};
use super::read::Identity;
use super::uid;
use crate::error::Result;
use dicom_core::{PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use image::RgbImage;
use sha2::{Digest, Sha256};
use std::path::Path;

pub const SECONDARY_CAPTURE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.7";
const SERIES_NUMBER: &str = "9902";

pub fn secondary_capture(
    dataset: &InMemDicomObject,
    identity: &Identity,
    frame_number: u32,
    multi_frame: bool,
    overlay: &RgbImage,
    origin: &Path,
) -> Result<Vec<u8>> {
    let ids = build::required(identity, origin)?;
    let pixels = overlay.as_raw();
    let number = frame_number.to_string();
    let sop_instance = uid::derived(&[
        ids.instance.as_bytes(),
        number.as_bytes(),
        &Sha256::digest(pixels),
        b"secondary capture",
    ]);
    let series_instance = uid::derived(&[ids.series.as_bytes(), b"neuroscreen sc series"]);
    let (date, time) = build::now();
    let mut ds = InMemDicomObject::new_empty();
    build::patient_and_study(dataset, &mut ds);
    let mut source = object(vec![
        element(tags::REFERENCED_SOP_CLASS_UID, VR::UI, ids.class),
        element(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, ids.instance),
    ]);
    if multi_frame {
        source.put(element(
            tags::REFERENCED_FRAME_NUMBER,
            VR::IS,
            number.as_str(),
        ));
    }
    source.put(sequence(
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        vec![code(
            "121322",
            "DCM",
            "Source image for image processing operation",
        )],
    ));
    let mut pixel_data = pixels.to_vec();
    if pixel_data.len() % 2 == 1 {
        pixel_data.push(0);
    }
    let elements = vec![
        element(tags::SOP_CLASS_UID, VR::UI, SECONDARY_CAPTURE_STORAGE),
        element(tags::SOP_INSTANCE_UID, VR::UI, sop_instance),
        element(tags::STUDY_INSTANCE_UID, VR::UI, ids.study),
        element(tags::SERIES_INSTANCE_UID, VR::UI, series_instance),
        element(tags::MODALITY, VR::CS, "OT"),
        // Type 2C in General Series; the source's, else empty (unknown).
        laterality(dataset),
        element(tags::SERIES_NUMBER, VR::IS, SERIES_NUMBER),
        element(
            tags::SERIES_DESCRIPTION,
            VR::LO,
            "neuroscreen overlay (screening aid)",
        ),
        element(tags::INSTANCE_NUMBER, VR::IS, number.as_str()),
        element(tags::CONVERSION_TYPE, VR::CS, "WSD"),
        element(tags::MANUFACTURER, VR::LO, "neuroscreen"),
        element(tags::INSTANCE_CREATION_DATE, VR::DA, date.as_str()),
        element(tags::INSTANCE_CREATION_TIME, VR::TM, time.as_str()),
        element(tags::CONTENT_DATE, VR::DA, date.as_str()),
        element(tags::CONTENT_TIME, VR::TM, time.as_str()),
        element(tags::PATIENT_ORIENTATION, VR::CS, PrimitiveValue::Empty),
        element(tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY"),
        element(
            tags::DERIVATION_DESCRIPTION,
            VR::ST,
            "Slice windowed to its 0.5-99.5 percentiles; automatic tumour mask in red",
        ),
        sequence(tags::SOURCE_IMAGE_SEQUENCE, vec![source]),
        element(tags::BURNED_IN_ANNOTATION, VR::CS, "NO"),
        element(tags::SAMPLES_PER_PIXEL, VR::US, 3u16),
        element(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB"),
        element(tags::PLANAR_CONFIGURATION, VR::US, 0u16),
        element(tags::ROWS, VR::US, overlay.height() as u16),
        element(tags::COLUMNS, VR::US, overlay.width() as u16),
        element(tags::BITS_ALLOCATED, VR::US, 8u16),
        element(tags::BITS_STORED, VR::US, 8u16),
        element(tags::HIGH_BIT, VR::US, 7u16),
        element(tags::PIXEL_REPRESENTATION, VR::US, 0u16),
        element(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"),
        element(tags::PIXEL_DATA, VR::OB, pixel_data),
    ];
    for e in elements {
        ds.put(e);
    }
    build::part10(ds, origin)
}

fn laterality(dataset: &InMemDicomObject) -> dicom_object::mem::InMemElement {
    dataset
        .element_opt(tags::LATERALITY)
        .ok()
        .flatten()
        .cloned()
        .unwrap_or_else(|| element(tags::LATERALITY, VR::CS, PrimitiveValue::Empty))
}
