//! What the header says about how an image was acquired, and whether that
//! is outside what the models were trained on.
//!
//! The shipped models learnt from conventional FLAIR, T1 and post-contrast
//! T1 slices (docs/TRAINING_DATA.md). A scanner pushes whatever series the
//! radiographer sends: diffusion and BOLD (echo-planar, bright CSF, coarse
//! and distorted), phase images, Siemens mosaics (a grid of slices in one
//! image), localisers, other modalities. The models still give a verdict on
//! those, and on the real EPI series of docs/EVALUATION.md they raised most
//! of their false alarms; the result says so beside the verdict rather than
//! hiding it, so the reader knows how much it is worth.

use super::header::{codes, float, text};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// Siemens' private diffusion b-value, read only under its own creator.
const SIEMENS_CREATOR: Tag = Tag(0x0019, 0x0010);
const SIEMENS_B_VALUE: Tag = Tag(0x0019, 0x100C);
const SIEMENS_MR_HEADER: &str = "SIEMENS MR HEADER";

/// The few header values the caution rests on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acquisition {
    pub modality: Option<String>,
    /// ImageType values, upper case.
    pub image_type: Vec<String>,
    /// ScanningSequence values (SE, GR, IR, EP, RM), upper case.
    pub scanning_sequence: Vec<String>,
    pub sequence_name: Option<String>,
    pub series_description: Option<String>,
    /// DiffusionBValue, or Siemens' private one.
    pub b_value: Option<f64>,
}

impl Acquisition {
    pub fn read(object: &InMemDicomObject) -> Self {
        // An implicit VR file gives a private element as UN bytes, whose
        // numeric reading is the first byte's code ('5' -> 53): the IS
        // text is parsed from the bytes instead.
        let siemens_b = || {
            (text(object, SIEMENS_CREATOR).as_deref() == Some(SIEMENS_MR_HEADER))
                .then(|| {
                    let e = object.element_opt(SIEMENS_B_VALUE).ok().flatten()?;
                    let bytes = e.to_bytes().ok()?;
                    std::str::from_utf8(&bytes)
                        .ok()?
                        .trim_matches(['\0', ' '])
                        .parse::<f64>()
                        .ok()
                        .filter(|b| b.is_finite())
                })
                .flatten()
        };
        Self {
            modality: text(object, tags::MODALITY).map(|m| m.to_uppercase()),
            image_type: codes(object, tags::IMAGE_TYPE),
            scanning_sequence: codes(object, tags::SCANNING_SEQUENCE),
            sequence_name: text(object, tags::SEQUENCE_NAME),
            series_description: text(object, tags::SERIES_DESCRIPTION),
            b_value: float(object, tags::DIFFUSION_B_VALUE).or_else(siemens_b),
        }
    }

    /// Each way the image differs from the models' training slices, in a
    /// radiographer's words; empty for a conventional MR slice.
    pub fn outside_training(&self) -> Vec<String> {
        let typed = |v: &str| self.image_type.iter().any(|t| t == v);
        let mut reasons = Vec::new();
        if let Some(m) = self.modality.as_deref().filter(|m| *m != "MR") {
            reasons.push(format!("modality {m}, not MR"));
        }
        // Past the first two values: Siemens' and GE's M / P / R / I, and
        // Philips' P or P_SE-style values, mark a phase image.
        let phase = self
            .image_type
            .iter()
            .skip(2)
            .any(|t| t == "P" || t == "PHASE" || t.starts_with("P_"));
        if phase {
            reasons.push("a phase image".into());
        }
        let epi = self.scanning_sequence.iter().any(|s| s == "EP");
        let name = self.sequence_name.as_deref().unwrap_or("").to_lowercase();
        if ["ADC", "EADC", "FA", "TENSOR"].iter().any(|t| typed(t)) {
            reasons.push("a diffusion map (ADC, FA)".into());
        } else if typed("DIFFUSION")
            || typed("TRACEW")
            || self.b_value.is_some()
            || name.trim_start_matches('*').starts_with("ep_b")
        {
            let b = self.b_value.map_or(String::new(), |b| format!(" (b={b})"));
            let how = if epi {
                "diffusion-weighted EPI"
            } else {
                "diffusion-weighted"
            };
            reasons.push(format!("{how}{b}"));
        } else if epi {
            reasons.push("echo-planar (EPI: BOLD or perfusion)".into());
        }
        if typed("MOSAIC") {
            reasons.push("a mosaic of slices in one image".into());
        }
        let description = self
            .series_description
            .as_deref()
            .unwrap_or("")
            .to_lowercase();
        if typed("LOCALIZER")
            || ["scout", "localizer", "localiser", "survey"]
                .iter()
                .any(|w| description.contains(w))
        {
            reasons.push("a localiser (scout)".into());
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::build::{element, object};

    /// The caution the header alone gives.
    fn caution(object: &InMemDicomObject) -> Option<String> {
        crate::caution::text(&Acquisition::read(object).outside_training())
    }
    use dicom_core::VR;

    fn reasons(a: Acquisition) -> Vec<String> {
        a.outside_training()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_conventional_mr_slice_has_no_caution() {
        for (scan, name, description) in [
            ("SE", "fse", "FSE PD AXIAL OBL"),
            ("RM", "flair", "FLAIR"),
            ("GR", "*fl2d1", "T1 post contrast"),
            ("IR", "*tir2d1_13", "t2_tirm_tra_dark-fluid"),
        ] {
            let a = Acquisition {
                modality: Some("MR".into()),
                image_type: strings(&["ORIGINAL", "PRIMARY", "M", "ND", "NORM"]),
                scanning_sequence: strings(&[scan]),
                sequence_name: Some(name.into()),
                series_description: Some(description.into()),
                b_value: None,
            };
            assert!(reasons(a.clone()).is_empty(), "{a:?}");
        }
        // A header that says nothing is no reason to doubt the slice.
        assert!(reasons(Acquisition::default()).is_empty());
    }

    /// The heads of heudiconv 1.5.1's real Siemens files (tests/data):
    /// a b=1500 diffusion mosaic and a BOLD mosaic.
    #[test]
    fn siemens_diffusion_and_bold_mosaics_are_named() {
        let diffusion = Acquisition {
            modality: Some("MR".into()),
            image_type: strings(&[
                "ORIGINAL",
                "PRIMARY",
                "DIFFUSION",
                "NONE",
                "MB",
                "ND",
                "MOSAIC",
            ]),
            scanning_sequence: strings(&["EP"]),
            sequence_name: Some("ep_b1500#2".into()),
            series_description: Some("dMRI_mb3_AP_1.5".into()),
            b_value: Some(1500.0),
        };
        assert_eq!(
            reasons(diffusion.clone()),
            [
                "diffusion-weighted EPI (b=1500)",
                "a mosaic of slices in one image"
            ]
        );
        // The sequence name alone tells diffusion when no tag does.
        let unnamed = Acquisition {
            image_type: strings(&["ORIGINAL", "PRIMARY", "M"]),
            b_value: None,
            ..diffusion
        };
        assert_eq!(reasons(unnamed), ["diffusion-weighted EPI"]);
        let bold = Acquisition {
            modality: Some("MR".into()),
            image_type: strings(&["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]),
            scanning_sequence: strings(&["EP"]),
            sequence_name: Some("*epfid2d1_64".into()),
            series_description: Some("ax_asc_35sl".into()),
            b_value: None,
        };
        assert_eq!(
            reasons(bold),
            [
                "echo-planar (EPI: BOLD or perfusion)",
                "a mosaic of slices in one image"
            ]
        );
    }

    #[test]
    fn maps_phase_localisers_and_other_modalities_are_named() {
        let adc = Acquisition {
            image_type: strings(&["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]),
            scanning_sequence: strings(&["EP"]),
            ..Acquisition::default()
        };
        assert_eq!(reasons(adc), ["a diffusion map (ADC, FA)"]);
        let phase = Acquisition {
            image_type: strings(&["ORIGINAL", "PRIMARY", "P", "ND"]),
            scanning_sequence: strings(&["GR"]),
            ..Acquisition::default()
        };
        assert_eq!(reasons(phase), ["a phase image"]);
        let philips_phase = Acquisition {
            image_type: strings(&["ORIGINAL", "PRIMARY", "P_SE", "P", "SE"]),
            ..Acquisition::default()
        };
        assert_eq!(reasons(philips_phase), ["a phase image"]);
        let philips_magnitude = Acquisition {
            image_type: strings(&["ORIGINAL", "PRIMARY", "M_SE", "M", "SE"]),
            ..Acquisition::default()
        };
        assert!(reasons(philips_magnitude).is_empty());
        let scout = Acquisition {
            series_description: Some("AAHead_Scout_32ch-head-coil".into()),
            ..Acquisition::default()
        };
        assert_eq!(reasons(scout), ["a localiser (scout)"]);
        let ct = Acquisition {
            modality: Some("CT".into()),
            image_type: strings(&["ORIGINAL", "PRIMARY", "LOCALIZER"]),
            ..Acquisition::default()
        };
        assert_eq!(reasons(ct), ["modality CT, not MR", "a localiser (scout)"]);
    }

    #[test]
    fn the_header_is_read_with_siemens_b_value_only_under_its_creator() {
        let mut elements = vec![
            element(tags::MODALITY, VR::CS, "MR"),
            element(
                tags::IMAGE_TYPE,
                VR::CS,
                "ORIGINAL\\PRIMARY\\DIFFUSION\\NONE\\ND\\MOSAIC",
            ),
            element(tags::SCANNING_SEQUENCE, VR::CS, "EP"),
            element(tags::SEQUENCE_NAME, VR::SH, "ep_b1000#1"),
            element(tags::SERIES_DESCRIPTION, VR::LO, "dwi "),
            element(SIEMENS_B_VALUE, VR::IS, "1000"),
        ];
        let foreign = object(elements.clone());
        let read = Acquisition::read(&foreign);
        assert_eq!(read.modality.as_deref(), Some("MR"));
        assert_eq!(read.image_type[2], "DIFFUSION");
        assert_eq!(read.scanning_sequence, ["EP"]);
        assert_eq!(read.series_description.as_deref(), Some("dwi"));
        // Without Siemens' creator the element may mean anything.
        assert_eq!(read.b_value, None);
        elements.push(element(SIEMENS_CREATOR, VR::LO, SIEMENS_MR_HEADER));
        let siemens = object(elements.clone());
        assert_eq!(Acquisition::read(&siemens).b_value, Some(1000.0));
        // As an implicit VR file gives it: UN bytes holding the IS text.
        elements.retain(|e| e.header().tag != SIEMENS_B_VALUE);
        elements.push(element(SIEMENS_B_VALUE, VR::UN, b"5 ".to_vec()));
        assert_eq!(Acquisition::read(&object(elements)).b_value, Some(5.0));
        assert_eq!(
            caution(&siemens).as_deref(),
            Some(
                "outside the models' training: diffusion-weighted EPI (b=1000); \
                 a mosaic of slices in one image"
            )
        );
        let flair = object(vec![
            element(tags::MODALITY, VR::CS, "MR"),
            element(tags::SCANNING_SEQUENCE, VR::CS, "RM"),
            element(tags::SEQUENCE_NAME, VR::SH, "flair"),
        ]);
        assert_eq!(caution(&flair), None);
        let standard = object(vec![element(tags::DIFFUSION_B_VALUE, VR::FD, 800.0f64)]);
        assert_eq!(Acquisition::read(&standard).b_value, Some(800.0));
    }
}
