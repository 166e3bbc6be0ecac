//! Small pieces for writing DICOM objects with dicom-object: elements,
//! code items, the patient and study copied from the source, the file.

use super::read::Identity;
use crate::error::{Error, Result};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use std::path::Path;

pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

pub fn element(tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) -> InMemElement {
    DataElement::new(tag, vr, value.into())
}

pub fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> InMemElement {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

pub fn object(elements: Vec<InMemElement>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

/// A Code Sequence item: value, scheme, meaning.
pub fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    object(vec![
        element(tags::CODE_VALUE, VR::SH, value),
        element(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
        element(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

/// Decimal strings, backslash-separated, as DS values are written.
pub fn decimals(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| {
            let s = format!("{v}");
            // DS holds at most 16 characters.
            if s.len() > 16 {
                format!("{v:.10e}")
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("\\")
}

/// Patient and study as the source has them, so the result files under the
/// same patient and study in a PACS. Type 2 attributes the source lacks are
/// written empty, as the IODs require.
pub fn patient_and_study(source: &InMemDicomObject, out: &mut InMemDicomObject) {
    const COPIED: [(Tag, VR); 10] = [
        (tags::SPECIFIC_CHARACTER_SET, VR::CS),
        (tags::PATIENT_NAME, VR::PN),
        (tags::PATIENT_ID, VR::LO),
        (tags::PATIENT_BIRTH_DATE, VR::DA),
        (tags::PATIENT_SEX, VR::CS),
        (tags::STUDY_DATE, VR::DA),
        (tags::STUDY_TIME, VR::TM),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
        (tags::STUDY_ID, VR::SH),
        (tags::ACCESSION_NUMBER, VR::SH),
    ];
    for (tag, vr) in COPIED {
        match source.element_opt(tag).ok().flatten() {
            Some(e) => {
                out.put(e.clone());
            }
            None if tag != tags::SPECIFIC_CHARACTER_SET => {
                out.put(element(tag, vr, PrimitiveValue::Empty));
            }
            None => {}
        }
    }
    for tag in [tags::STUDY_DESCRIPTION, tags::PATIENT_AGE] {
        if let Some(e) = source.element_opt(tag).ok().flatten() {
            out.put(e.clone());
        }
    }
}

/// The source's identity must name a study, a series and an instance for a
/// result to refer to it.
pub struct Required<'a> {
    pub study: &'a str,
    pub series: &'a str,
    pub instance: &'a str,
    pub class: &'a str,
}

pub fn required<'a>(identity: &'a Identity, origin: &Path) -> Result<Required<'a>> {
    let missing = |what: &str| Error::Dicom {
        path: origin.to_path_buf(),
        reason: format!("no {what}; a result object cannot refer to this image"),
    };
    Ok(Required {
        study: identity
            .study_instance_uid
            .as_deref()
            .ok_or_else(|| missing("StudyInstanceUID"))?,
        series: identity
            .series_instance_uid
            .as_deref()
            .ok_or_else(|| missing("SeriesInstanceUID"))?,
        instance: identity
            .sop_instance_uid
            .as_deref()
            .ok_or_else(|| missing("SOPInstanceUID"))?,
        class: identity
            .sop_class_uid
            .as_deref()
            .ok_or_else(|| missing("SOPClassUID"))?,
    })
}

/// Date (YYYYMMDD) and time (HHMMSS) now, UTC: the appliance has no
/// reliable idea of the scanner's time zone.
pub fn now() -> (String, String) {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    (digits[..8].to_string(), digits[8..14].to_string())
}

/// The Part 10 file: preamble, meta group, data set in explicit VR little
/// endian.
pub fn part10(dataset: InMemDicomObject, origin: &Path) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::Dicom {
        path: origin.to_path_buf(),
        reason,
    };
    let file = dataset
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(EXPLICIT_VR_LITTLE_ENDIAN))
        .map_err(|e| fail(format!("cannot build the file meta group: {e}")))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| fail(format!("cannot encode: {e}")))?;
    Ok(bytes)
}
