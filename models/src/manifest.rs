//! The model manifest: what the trainer promises and the appliance relies on.
//!
//! One JSON file next to the ONNX files. Paths in it are relative to the
//! manifest's own directory so the whole folder can be copied to a board.

use crate::integrity::verify_sha256;
use crate::{Error, Preprocessing, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    /// Which entries the appliance runs, by name.
    pub pipeline: Pipeline,
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// The filter that decides tumour / no tumour first; `None` sends every
    /// slice to the segmenter.
    pub filter: Option<String>,
    pub segmenter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Filter,
    Segmenter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    F32,
    Int8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub role: Role,
    /// e.g. `resunet`, `unet`, `resnet50_filter`, `resnet18_filter`,
    /// `resnet18_filter_w16` (a narrower ResNet-18).
    pub architecture: String,
    pub files: Vec<ModelFile>,
    pub input: InputSpec,
    pub output: OutputSpec,
    /// Probability at or above which a pixel (segmenter) or a slice (filter)
    /// counts as tumour. Applied after sigmoid/softmax.
    pub threshold: f32,
    /// Segmenter only: a mask with fewer pixels at or above `threshold`, counted
    /// at the model's input size, is emptied and the slice called clear. Small
    /// specks are where the segmenter's false alarms on clear scans of other
    /// contrasts live (docs/EVALUATION.md); 0 keeps any pixel.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_mask_px: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Measured figures, named with how they were computed
    /// (e.g. `dice_per_slice_tumour_only`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub precision: Precision,
    /// Relative to the manifest's directory.
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    #[serde(rename = "NCHW")]
    Nchw,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    /// [1, 3, height, width].
    pub shape: [usize; 4],
    pub layout: Layout,
    /// What each of the three channels holds, e.g. `["t1_pre", "flair",
    /// "t1_post"]` for the LGG stack; a grey slice is replicated to all three.
    pub channels: Vec<String>,
    pub preprocessing: Preprocessing,
}

impl InputSpec {
    pub fn height(&self) -> u32 {
        self.shape[2] as u32
    }
    pub fn width(&self) -> u32 {
        self.shape[3] as u32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    Logits,
    Probabilities,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: OutputKind,
    /// Class names in output order: `["clear", "tumour"]` for a filter,
    /// `["tumour"]` for a one-channel segmenter.
    pub classes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub data: String,
    pub seed: u64,
    pub epochs: u32,
    pub code_revision: String,
    pub trained_on: String,
    pub created: String,
}

impl Manifest {
    /// Reads and validates a manifest; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text, path)
    }

    /// Parses and validates manifest text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self> {
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| Error::Manifest {
            path: origin.to_path_buf(),
            reason: e.to_string(),
        })?;
        manifest
            .validate()
            .map_err(|source| Error::InvalidManifest {
                path: origin.to_path_buf(),
                source,
            })?;
        Ok(manifest)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serialises")
    }

    pub fn entry(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    pub fn filter(&self) -> Option<&ModelEntry> {
        self.pipeline.filter.as_deref().and_then(|n| self.entry(n))
    }

    pub fn segmenter(&self) -> &ModelEntry {
        self.entry(&self.pipeline.segmenter)
            .expect("validated: pipeline.segmenter names an entry")
    }

    /// Checks every listed file against its sha256; the first mismatch is
    /// returned with the file and both hashes.
    pub fn verify_files(&self, dir: &Path) -> Result<()> {
        for m in &self.models {
            for f in &m.files {
                verify_sha256(&dir.join(&f.path), &f.sha256)?;
            }
        }
        Ok(())
    }

    /// Internal consistency; the error names the offending key.
    pub fn validate(&self) -> std::result::Result<(), ManifestError> {
        if self.format_version != FORMAT_VERSION {
            return Err(ManifestError::FormatVersion {
                found: self.format_version,
            });
        }
        let mut seen = std::collections::HashSet::new();
        for (index, m) in self.models.iter().enumerate() {
            let at = || EntryAt {
                index,
                name: m.name.clone(),
            };
            if m.name.is_empty() {
                return Err(ManifestError::EmptyName { index });
            }
            if !seen.insert(&m.name) {
                return Err(ManifestError::DuplicateName { at: at() });
            }
            if m.files.is_empty() {
                return Err(ManifestError::NoFiles { at: at() });
            }
            for (file, f) in m.files.iter().enumerate() {
                if f.sha256.len() != 64 || !f.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(ManifestError::Sha256 { at: at(), file });
                }
                if Path::new(&f.path).is_absolute() || f.path.split('/').any(|p| p == "..") {
                    return Err(ManifestError::PathOutside { at: at(), file });
                }
            }
            let s = m.input.shape;
            if s[0] != 1 || s[1] != 3 || s[2] == 0 || s[3] == 0 {
                return Err(ManifestError::InputShape { at: at(), shape: s });
            }
            if m.input.channels.len() != 3 {
                return Err(ManifestError::InputChannels { at: at() });
            }
            if !(m.threshold > 0.0 && m.threshold < 1.0) {
                return Err(ManifestError::Threshold {
                    at: at(),
                    threshold: m.threshold,
                });
            }
            if m.output.classes.is_empty() {
                return Err(ManifestError::NoClasses { at: at() });
            }
            if m.role == Role::Filter && m.min_mask_px != 0 {
                return Err(ManifestError::MinMaskOnFilter { at: at() });
            }
        }
        let check = |name: &str, role: Role, key: &'static str| match self.entry(name) {
            None => Err(ManifestError::PipelineUnknown {
                key,
                name: name.to_string(),
            }),
            Some(m) if m.role != role => Err(ManifestError::PipelineRole {
                key,
                name: name.to_string(),
                role: m.role,
            }),
            Some(_) => Ok(()),
        };
        check(&self.pipeline.segmenter, Role::Segmenter, "segmenter")?;
        if let Some(f) = &self.pipeline.filter {
            check(f, Role::Filter, "filter")?;
        }
        Ok(())
    }
}

/// Which `models` entry a [`ManifestError`] concerns: written
/// `models[index] (name)`, as the key is in the JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryAt {
    pub index: usize,
    pub name: String,
}

impl std::fmt::Display for EntryAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "models[{}] ({})", self.index, self.name)
    }
}

/// What [`Manifest::validate`] refuses; each message names the offending key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManifestError {
    #[error("format_version is {found}, this build reads {FORMAT_VERSION}")]
    FormatVersion { found: u32 },
    #[error("models[{index}].name is empty")]
    EmptyName { index: usize },
    #[error("{at}: duplicate name")]
    DuplicateName { at: EntryAt },
    #[error("{at}.files is empty")]
    NoFiles { at: EntryAt },
    #[error("{at}.files[{file}].sha256 is not 64 hex digits")]
    Sha256 { at: EntryAt, file: usize },
    #[error("{at}.files[{file}].path must stay inside the manifest's folder")]
    PathOutside { at: EntryAt, file: usize },
    #[error("{at}.input.shape is {shape:?}; expected [1, 3, H, W]")]
    InputShape { at: EntryAt, shape: [usize; 4] },
    #[error("{at}.input.channels must name 3 channels")]
    InputChannels { at: EntryAt },
    #[error("{at}.threshold {threshold} is not in (0, 1)")]
    Threshold { at: EntryAt, threshold: f32 },
    #[error("{at}: min_mask_px is a segmenter's setting; a filter has no mask")]
    MinMaskOnFilter { at: EntryAt },
    #[error("{at}.output.classes is empty")]
    NoClasses { at: EntryAt },
    /// `pipeline.<key>` names no entry.
    #[error("pipeline.{key} names '{name}', which is not in models")]
    PipelineUnknown { key: &'static str, name: String },
    /// `pipeline.<key>` names an entry of the other role.
    #[error("pipeline.{key} names '{name}', whose role is {role:?}")]
    PipelineRole {
        key: &'static str,
        name: String,
        role: Role,
    },
}

/// Whether a segmenter's mask of `pixels` set pixels (at its input size)
/// stands under the manifest's `min_mask_px`, or is emptied and the slice
/// called clear. The appliance, `eval-set` and the exporter's pair
/// threshold all decide here, so what is evaluated is what runs.
pub fn mask_stands(pixels: usize, min_mask_px: usize) -> bool {
    pixels >= min_mask_px.max(1)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ModelEntry {
    pub fn file(&self, precision: Precision) -> Option<&ModelFile> {
        self.files.iter().find(|f| f.precision == precision)
    }

    pub fn file_path(&self, dir: &Path, precision: Precision) -> Option<PathBuf> {
        self.file(precision).map(|f| dir.join(&f.path))
    }

    /// Whether this segmenter's mask of `pixels` set pixels (at its input
    /// size) stands; see [`mask_stands`].
    pub fn keeps_mask(&self, pixels: usize) -> bool {
        mask_stands(pixels, self.min_mask_px)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::sha256_file;
    use crate::preprocess::{Normalisation, ResizePolicy};

    fn entry(name: &str, role: Role, file: &str, sha: &str) -> ModelEntry {
        ModelEntry {
            name: name.into(),
            role,
            architecture: "resunet".into(),
            files: vec![ModelFile {
                precision: Precision::F32,
                path: file.into(),
                sha256: sha.into(),
            }],
            input: InputSpec {
                name: "image".into(),
                shape: [1, 3, 256, 256],
                layout: Layout::Nchw,
                channels: vec!["t1_pre".into(), "flair".into(), "t1_post".into()],
                preprocessing: Preprocessing {
                    resize: ResizePolicy::Letterbox,
                    normalisation: Normalisation::Percentile {
                        low: 0.5,
                        high: 99.5,
                    },
                },
            },
            output: OutputSpec {
                name: "mask_logits".into(),
                shape: vec![1, 1, 256, 256],
                kind: OutputKind::Logits,
                classes: vec!["tumour".into()],
            },
            threshold: 0.5,
            min_mask_px: 0,
            provenance: None,
            metrics: BTreeMap::new(),
        }
    }

    fn write_set(dir: &Path) -> PathBuf {
        std::fs::write(dir.join("seg.onnx"), b"segmenter bytes").unwrap();
        std::fs::write(dir.join("filter.onnx"), b"filter bytes").unwrap();
        let m = Manifest {
            format_version: FORMAT_VERSION,
            pipeline: Pipeline {
                filter: Some("filter".into()),
                segmenter: "seg".into(),
            },
            models: vec![
                entry(
                    "seg",
                    Role::Segmenter,
                    "seg.onnx",
                    &sha256_file(&dir.join("seg.onnx")).unwrap(),
                ),
                entry(
                    "filter",
                    Role::Filter,
                    "filter.onnx",
                    &sha256_file(&dir.join("filter.onnx")).unwrap(),
                ),
            ],
        };
        let path = dir.join("manifest.json");
        std::fs::write(&path, m.to_json()).unwrap();
        path
    }

    #[test]
    fn round_trip_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_set(dir.path());
        let m = Manifest::load(&path).unwrap();
        assert_eq!(m.segmenter().name, "seg");
        assert_eq!(m.filter().unwrap().role, Role::Filter);
        m.verify_files(dir.path()).unwrap();
        let again: Manifest = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn min_mask_px_is_written_only_when_set_and_only_a_segmenter_has_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_set(dir.path());
        let mut m = Manifest::load(&path).unwrap();
        assert_eq!(m.segmenter().min_mask_px, 0);
        assert!(!m.to_json().contains("min_mask_px"));
        m.models[0].min_mask_px = 32;
        let again: Manifest = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(again.segmenter().min_mask_px, 32);
        again.validate().unwrap();
        assert!(!m.models[1].keeps_mask(0) && m.models[1].keeps_mask(1));
        assert!(!again.segmenter().keeps_mask(31) && again.segmenter().keeps_mask(32));
        m.models[1].min_mask_px = 8;
        assert_eq!(
            m.validate(),
            Err(ManifestError::MinMaskOnFilter {
                at: EntryAt {
                    index: 1,
                    name: "filter".into()
                }
            })
        );
    }

    #[test]
    fn flipped_byte_in_a_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_set(dir.path());
        let m = Manifest::load(&path).unwrap();
        let mut bytes = std::fs::read(dir.path().join("filter.onnx")).unwrap();
        bytes[0] ^= 0x80;
        std::fs::write(dir.path().join("filter.onnx"), bytes).unwrap();
        let msg = m.verify_files(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("filter.onnx") && msg.contains("sha256 mismatch"),
            "{msg}"
        );
    }

    #[test]
    fn validation_errors_name_the_entry_and_the_key_as_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_set(dir.path());
        let mut m = Manifest::load(&path).unwrap();
        m.models[1].threshold = 1.5;
        assert_eq!(
            m.validate(),
            Err(ManifestError::Threshold {
                at: EntryAt {
                    index: 1,
                    name: "filter".into()
                },
                threshold: 1.5
            })
        );
        m.models[1].threshold = 0.5;
        m.pipeline.filter = Some("seg".into());
        assert!(matches!(
            m.validate(),
            Err(ManifestError::PipelineRole {
                key: "filter",
                role: Role::Segmenter,
                ..
            })
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("\"segmenter\": \"seg\"", "\"segmenter\": \"nope\""),
        )
        .unwrap();
        let err = Manifest::load(&path).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidManifest { source: ManifestError::PipelineUnknown { key: "segmenter", name }, .. } if name == "nope"),
            "{err:?}"
        );
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_set(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        let cases = [
            (
                text.replace("\"segmenter\": \"seg\"", "\"segmenter\": \"nope\""),
                "pipeline.segmenter",
            ),
            (
                text.replacen("\"threshold\": 0.5", "\"threshold\": 1.5", 1),
                "threshold",
            ),
            (text.replacen("256,", "0,", 1), "input.shape"),
            (
                text.replacen("\"seg.onnx\"", "\"../seg.onnx\"", 1),
                "path must stay inside",
            ),
            (
                text.replacen("\"format_version\": 1", "\"format_version\": 9", 1),
                "format_version",
            ),
            (text.replacen("\"role\"", "\"rôle\"", 1), "unknown field"),
            ("{".to_string(), "EOF"),
        ];
        for (bad, needle) in cases {
            std::fs::write(&path, &bad).unwrap();
            let msg = Manifest::load(&path).unwrap_err().to_string();
            assert!(msg.contains("manifest.json"), "{msg}");
            assert!(msg.contains(needle), "{msg} lacks {needle}");
        }
    }
}
