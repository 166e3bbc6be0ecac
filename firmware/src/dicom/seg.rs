//! The tumour mask as a binary DICOM Segmentation (PS3.3 A.51): one frame,
//! one segment, referring to the source image (and frame) it was drawn on,
//! in the source's study and frame of reference, so a PACS viewer shows it
//! over the scan. Modelled on what highdicom writes; `dciodvfy` and
//! highdicom check it in the tests.

use super::build::{self, code, decimals, element, object, sequence};
use super::read::{Frame, Identity};
use super::uid;
use crate::error::Result;
use dicom_core::{PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use sha2::{Digest, Sha256};
use std::path::Path;

pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";
/// Series number of our SEG series: far from the scanner's own numbers.
const SERIES_NUMBER: &str = "9901";
const SOFTWARE: &str = env!("CARGO_PKG_VERSION");

/// What the SEG needs to know about its source.
pub struct Source<'a> {
    pub dataset: &'a InMemDicomObject,
    pub identity: &'a Identity,
    pub frame: &'a Frame,
    /// Whether the file holds more than one frame (the reference then
    /// names the frame).
    pub multi_frame: bool,
    pub origin: &'a Path,
}

/// The SEG file for `mask` (row-major, the source frame's size).
pub fn segmentation(source: &Source<'_>, mask: &[bool]) -> Result<Vec<u8>> {
    let ids = build::required(source.identity, source.origin)?;
    let slice = &source.frame.slice;
    let (rows, columns) = (slice.height, slice.width);
    let mask_sha = Sha256::digest(pack(mask));
    let number = source.frame.number.to_string();
    let sop_instance = uid::derived(&[
        ids.instance.as_bytes(),
        number.as_bytes(),
        &mask_sha,
        b"seg",
    ]);
    let series_instance = uid::derived(&[ids.series.as_bytes(), b"neuroscreen seg series"]);
    let dimension_organisation = uid::derived(&[sop_instance.as_bytes(), b"dimensions"]);
    let (date, time) = build::now();

    let mut ds = InMemDicomObject::new_empty();
    build::patient_and_study(source.dataset, &mut ds);
    let put = |ds: &mut InMemDicomObject, tag, vr, value: PrimitiveValue| {
        ds.put(element(tag, vr, value));
    };
    put(
        &mut ds,
        tags::SOP_CLASS_UID,
        VR::UI,
        SEGMENTATION_STORAGE.into(),
    );
    put(&mut ds, tags::SOP_INSTANCE_UID, VR::UI, sop_instance.into());
    put(&mut ds, tags::STUDY_INSTANCE_UID, VR::UI, ids.study.into());
    put(
        &mut ds,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        series_instance.into(),
    );
    put(&mut ds, tags::MODALITY, VR::CS, "SEG".into());
    put(&mut ds, tags::SERIES_NUMBER, VR::IS, SERIES_NUMBER.into());
    put(
        &mut ds,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "neuroscreen tumour mask (screening aid)".into(),
    );
    put(
        &mut ds,
        tags::INSTANCE_NUMBER,
        VR::IS,
        number.as_str().into(),
    );
    for (tag, value) in [
        (tags::INSTANCE_CREATION_DATE, &date),
        (tags::CONTENT_DATE, &date),
    ] {
        put(&mut ds, tag, VR::DA, value.as_str().into());
    }
    for (tag, value) in [
        (tags::INSTANCE_CREATION_TIME, &time),
        (tags::CONTENT_TIME, &time),
    ] {
        put(&mut ds, tag, VR::TM, value.as_str().into());
    }
    // General and Enhanced General Equipment.
    put(&mut ds, tags::MANUFACTURER, VR::LO, "neuroscreen".into());
    put(
        &mut ds,
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        "neuroscreen".into(),
    );
    put(&mut ds, tags::DEVICE_SERIAL_NUMBER, VR::LO, "0".into());
    put(&mut ds, tags::SOFTWARE_VERSIONS, VR::LO, SOFTWARE.into());
    // Frame of Reference: the source's, when it has one.
    if let Some(frame_of_reference) = &source.identity.frame_of_reference_uid {
        put(
            &mut ds,
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            frame_of_reference.as_str().into(),
        );
        let indicator = source
            .dataset
            .element_opt(tags::POSITION_REFERENCE_INDICATOR)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok().map(|s| s.into_owned()))
            .unwrap_or_default();
        put(
            &mut ds,
            tags::POSITION_REFERENCE_INDICATOR,
            VR::LO,
            indicator.into(),
        );
    }
    // Segmentation Image and Image Pixel.
    put(&mut ds, tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY".into());
    put(&mut ds, tags::CONTENT_LABEL, VR::CS, "TUMOUR".into());
    put(
        &mut ds,
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        "Automatic tumour mask, not a diagnosis".into(),
    );
    put(
        &mut ds,
        tags::CONTENT_CREATOR_NAME,
        VR::PN,
        PrimitiveValue::Empty,
    );
    put(&mut ds, tags::SEGMENTATION_TYPE, VR::CS, "BINARY".into());
    put(&mut ds, tags::SEGMENTS_OVERLAP, VR::CS, "NO".into());
    put(&mut ds, tags::SAMPLES_PER_PIXEL, VR::US, 1u16.into());
    put(
        &mut ds,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2".into(),
    );
    put(&mut ds, tags::NUMBER_OF_FRAMES, VR::IS, "1".into());
    put(&mut ds, tags::ROWS, VR::US, (rows as u16).into());
    put(&mut ds, tags::COLUMNS, VR::US, (columns as u16).into());
    for tag in [tags::BITS_ALLOCATED, tags::BITS_STORED] {
        put(&mut ds, tag, VR::US, 1u16.into());
    }
    put(&mut ds, tags::HIGH_BIT, VR::US, 0u16.into());
    put(&mut ds, tags::PIXEL_REPRESENTATION, VR::US, 0u16.into());
    put(&mut ds, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00".into());
    put(
        &mut ds,
        tags::PRESENTATION_LUT_SHAPE,
        VR::CS,
        "IDENTITY".into(),
    );
    ds.put(sequence(tags::SEGMENT_SEQUENCE, vec![segment()]));

    // References: the source image in the common instance reference, the
    // source image sequence and the frame's derivation.
    let referenced = || {
        let mut item = object(vec![
            element(tags::REFERENCED_SOP_CLASS_UID, VR::UI, ids.class),
            element(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, ids.instance),
        ]);
        if source.multi_frame {
            item.put(element(
                tags::REFERENCED_FRAME_NUMBER,
                VR::IS,
                number.as_str(),
            ));
        }
        item
    };
    ds.put(sequence(
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![object(vec![
            sequence(tags::REFERENCED_INSTANCE_SEQUENCE, vec![referenced()]),
            element(tags::SERIES_INSTANCE_UID, VR::UI, ids.series),
        ])],
    ));
    ds.put(sequence(tags::SOURCE_IMAGE_SEQUENCE, vec![referenced()]));

    // Multi-frame Dimension: segment number, then position when known.
    let position = source.frame.position;
    let dimension = |pointer, group, label: &str| {
        object(vec![
            element(
                tags::DIMENSION_ORGANIZATION_UID,
                VR::UI,
                dimension_organisation.as_str(),
            ),
            element(
                tags::DIMENSION_INDEX_POINTER,
                VR::AT,
                PrimitiveValue::from(pointer),
            ),
            element(
                tags::FUNCTIONAL_GROUP_POINTER,
                VR::AT,
                PrimitiveValue::from(group),
            ),
            element(tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label),
        ])
    };
    let mut dimensions = vec![dimension(
        tags::REFERENCED_SEGMENT_NUMBER,
        tags::SEGMENT_IDENTIFICATION_SEQUENCE,
        "Referenced Segment Number",
    )];
    let mut index_values = vec![1u32];
    if position.is_some() {
        dimensions.push(dimension(
            tags::IMAGE_POSITION_PATIENT,
            tags::PLANE_POSITION_SEQUENCE,
            "Image Position Patient",
        ));
        index_values.push(1);
    }
    ds.put(sequence(
        tags::DIMENSION_ORGANIZATION_SEQUENCE,
        vec![object(vec![element(
            tags::DIMENSION_ORGANIZATION_UID,
            VR::UI,
            dimension_organisation.as_str(),
        )])],
    ));
    ds.put(sequence(tags::DIMENSION_INDEX_SEQUENCE, dimensions));

    // Functional groups: geometry shared, references and position per frame.
    let mut shared = vec![sequence(
        tags::SEGMENT_IDENTIFICATION_SEQUENCE,
        vec![object(vec![element(
            tags::REFERENCED_SEGMENT_NUMBER,
            VR::US,
            1u16,
        )])],
    )];
    if let Some(orientation) = source.frame.orientation {
        shared.push(sequence(
            tags::PLANE_ORIENTATION_SEQUENCE,
            vec![object(vec![element(
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                decimals(&orientation),
            )])],
        ));
    }
    if let Some(spacing) = slice.pixel_spacing_mm {
        let mut measures = vec![element(tags::PIXEL_SPACING, VR::DS, decimals(&spacing))];
        if let Some(thickness) = source
            .dataset
            .element_opt(tags::SLICE_THICKNESS)
            .ok()
            .flatten()
            .and_then(|e| e.to_float64().ok())
            .filter(|t| t.is_finite() && *t > 0.0)
        {
            measures.push(element(
                tags::SLICE_THICKNESS,
                VR::DS,
                decimals(&[thickness]),
            ));
        }
        shared.push(sequence(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![object(measures)],
        ));
    }
    ds.put(sequence(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![object(shared)],
    ));
    let mut derivation_source = referenced();
    derivation_source.put(element(tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, "YES"));
    derivation_source.put(sequence(
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        vec![code(
            "121322",
            "DCM",
            "Source image for image processing operation",
        )],
    ));
    let mut per_frame = vec![
        sequence(
            tags::DERIVATION_IMAGE_SEQUENCE,
            vec![object(vec![
                sequence(tags::SOURCE_IMAGE_SEQUENCE, vec![derivation_source]),
                sequence(
                    tags::DERIVATION_CODE_SEQUENCE,
                    vec![code("113076", "DCM", "Segmentation")],
                ),
            ])],
        ),
        sequence(
            tags::FRAME_CONTENT_SEQUENCE,
            vec![object(vec![element(
                tags::DIMENSION_INDEX_VALUES,
                VR::UL,
                PrimitiveValue::U32(index_values.into()),
            )])],
        ),
    ];
    if let Some(position) = position {
        per_frame.push(sequence(
            tags::PLANE_POSITION_SEQUENCE,
            vec![object(vec![element(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                decimals(&position),
            )])],
        ));
    }
    ds.put(sequence(
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![object(per_frame)],
    ));
    ds.put(element(tags::PIXEL_DATA, VR::OB, pack(mask)));
    build::part10(ds, source.origin)
}

fn segment() -> InMemDicomObject {
    let version = SOFTWARE;
    object(vec![
        element(tags::SEGMENT_NUMBER, VR::US, 1u16),
        element(tags::SEGMENT_LABEL, VR::LO, "tumour"),
        sequence(
            tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
            vec![code(
                "49755003",
                "SCT",
                "Morphologically Abnormal Structure",
            )],
        ),
        sequence(
            tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
            vec![code("108369006", "SCT", "Neoplasm")],
        ),
        element(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC"),
        element(tags::SEGMENT_ALGORITHM_NAME, VR::LO, "neuroscreen"),
        sequence(
            tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
            vec![object(vec![
                sequence(
                    tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
                    vec![code("123110", "DCM", "Artificial Intelligence")],
                ),
                element(tags::ALGORITHM_NAME, VR::LO, "neuroscreen"),
                element(tags::ALGORITHM_VERSION, VR::LO, version),
            ])],
        ),
    ])
}

/// One bit per pixel, row-major, the first pixel in the lowest bit
/// (PS3.5 8.1.1), padded to an even length.
pub fn pack(mask: &[bool]) -> Vec<u8> {
    let mut bytes = vec![0u8; mask.len().div_ceil(8)];
    for (i, on) in mask.iter().enumerate() {
        if *on {
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_packed_lowest_first_and_padded_even() {
        let mut mask = vec![false; 10];
        mask[0] = true;
        mask[9] = true;
        assert_eq!(pack(&mask), [0b0000_0001, 0b0000_0010]);
        assert_eq!(pack(&[true; 3]), [0b111, 0]);
    }
}
