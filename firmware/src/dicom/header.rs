//! Header values as the appliance reads them: text trimmed of DICOM's
//! padding (a missing or empty value is `None`), integers, floats, and
//! multi-valued code strings.

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

/// The value as text, without the spaces and NULs DICOM pads with; `None`
/// when absent or empty.
pub fn text(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(['\0', ' ']).to_string())
        .filter(|s| !s.is_empty())
}

pub fn integer(object: &InMemDicomObject, tag: Tag) -> Option<i64> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<i64>().ok())
}

pub fn float(object: &InMemDicomObject, tag: Tag) -> Option<f64> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_float64().ok())
        .filter(|v| v.is_finite())
}

/// Each value of a multi-valued code string, upper case, padding trimmed,
/// empty ones left out.
pub fn codes(object: &InMemDicomObject, tag: Tag) -> Vec<String> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_multi_str().ok())
        .map(|v| {
            // A value built in memory may hold its backslashes unsplit; a
            // parsed one is split already.
            v.iter()
                .flat_map(|s| s.split('\\'))
                .map(|s| s.trim_matches(['\0', ' ']).to_uppercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::build::{element, object};
    use dicom_core::VR;
    use dicom_dictionary_std::tags;

    #[test]
    fn values_come_trimmed_and_absent_ones_are_none() {
        let o = object(vec![
            element(tags::SERIES_DESCRIPTION, VR::LO, " FLAIR AX \0"),
            element(tags::PATIENT_ID, VR::LO, "  "),
            element(tags::SERIES_NUMBER, VR::IS, "7 "),
            element(tags::SLICE_THICKNESS, VR::DS, "2.5"),
            element(tags::IMAGE_TYPE, VR::CS, "original\\PRIMARY\\\\M "),
        ]);
        assert_eq!(
            text(&o, tags::SERIES_DESCRIPTION).as_deref(),
            Some("FLAIR AX")
        );
        assert_eq!(text(&o, tags::PATIENT_ID), None);
        assert_eq!(text(&o, tags::MODALITY), None);
        assert_eq!(integer(&o, tags::SERIES_NUMBER), Some(7));
        assert_eq!(float(&o, tags::SLICE_THICKNESS), Some(2.5));
        assert_eq!(codes(&o, tags::IMAGE_TYPE), ["ORIGINAL", "PRIMARY", "M"]);
        assert!(codes(&o, tags::SCANNING_SEQUENCE).is_empty());
    }
}
