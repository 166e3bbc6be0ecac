//! Which of a model's files (f32 or int8) the appliance runs.

use crate::error::{Error, Result};
use models::manifest::Precision;
use models::ModelEntry;

/// The operator's wish; `Auto` leaves it to the hardware.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    #[default]
    Auto,
    F32,
    Int8,
}

impl From<Precision> for PrecisionChoice {
    fn from(p: Precision) -> Self {
        match p {
            Precision::F32 => PrecisionChoice::F32,
            Precision::Int8 => PrecisionChoice::Int8,
        }
    }
}

/// f32 on every CPU. With tract 0.23 the int8 graph is the slower one on
/// x86_64 and, by every measure available here, on aarch64 too: on x86 it
/// takes 4-7x f32's time (`neuroscreen bench`), and under emulation as a
/// Cortex-A72 or A76 it executes about 4x f32's instructions for the same
/// slices, only an eighth of them in the integer matmul kernel; the rest is
/// architecture-independent work around it (the zero-point sums, im2col,
/// requantisation) that f32 does not do (`scripts/arm_int8_proxy.sh`,
/// docs/ARM_INT8.md). Earlier builds took int8 on aarch64 on the belief
/// that only ARM had integer kernels. The int8 files still ship (3.8x
/// smaller; `--precision int8` runs them) for the day a board measures
/// them faster.
pub fn preferred_on_this_cpu() -> Precision {
    Precision::F32
}

/// Picks the file to load for one model. `Auto` takes `preferred` and falls
/// back to whichever file exists; an explicit choice that the manifest does
/// not offer is refused rather than silently swapped.
pub fn resolve(
    entry: &ModelEntry,
    choice: PrecisionChoice,
    preferred: Precision,
) -> Result<Precision> {
    let wanted = match choice {
        PrecisionChoice::Auto => {
            let other = match preferred {
                Precision::F32 => Precision::Int8,
                Precision::Int8 => Precision::F32,
            };
            return [preferred, other]
                .into_iter()
                .find(|p| entry.file(*p).is_some())
                .ok_or_else(|| unavailable(entry, preferred));
        }
        PrecisionChoice::F32 => Precision::F32,
        PrecisionChoice::Int8 => Precision::Int8,
    };
    entry
        .file(wanted)
        .map(|_| wanted)
        .ok_or_else(|| unavailable(entry, wanted))
}

pub fn name(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "f32",
        Precision::Int8 => "int8",
    }
}

fn unavailable(entry: &ModelEntry, wanted: Precision) -> Error {
    let available: Vec<&str> = entry.files.iter().map(|f| name(f.precision)).collect();
    Error::PrecisionUnavailable {
        model: entry.name.clone(),
        wanted: name(wanted).into(),
        available: if available.is_empty() {
            "nothing".into()
        } else {
            available.join(", ")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_with(files: &[Precision]) -> ModelEntry {
        let json = serde_json::json!({
            "name": "seg", "role": "segmenter", "architecture": "resunet",
            "files": files.iter().map(|p| serde_json::json!({
                "precision": name(*p), "path": format!("seg_{}.onnx", name(*p)),
                "sha256": "0".repeat(64),
            })).collect::<Vec<_>>(),
            "input": {"name": "image", "shape": [1, 3, 8, 8], "layout": "NCHW",
                      "channels": ["a", "b", "c"],
                      "preprocessing": {"resize": "stretch", "normalisation": {"kind": "unit_range"}}},
            "output": {"name": "mask_logits", "shape": [1, 1, 8, 8], "kind": "logits", "classes": ["tumour"]},
            "threshold": 0.5,
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn auto_prefers_the_cpu_choice_and_falls_back() {
        let both = entry_with(&[Precision::F32, Precision::Int8]);
        for preferred in [Precision::F32, Precision::Int8] {
            assert_eq!(
                resolve(&both, PrecisionChoice::Auto, preferred).unwrap(),
                preferred
            );
        }
        let only_int8 = entry_with(&[Precision::Int8]);
        assert_eq!(
            resolve(&only_int8, PrecisionChoice::Auto, Precision::F32).unwrap(),
            Precision::Int8
        );
        let only_f32 = entry_with(&[Precision::F32]);
        assert_eq!(
            resolve(&only_f32, PrecisionChoice::Auto, Precision::Int8).unwrap(),
            Precision::F32
        );
    }

    #[test]
    fn explicit_choice_missing_from_the_manifest_is_refused_by_name() {
        let only_f32 = entry_with(&[Precision::F32]);
        let msg = resolve(&only_f32, PrecisionChoice::Int8, Precision::F32)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("'seg'") && msg.contains("int8") && msg.contains("lists: f32"),
            "{msg}"
        );
        assert_eq!(
            resolve(&only_f32, PrecisionChoice::F32, Precision::Int8).unwrap(),
            Precision::F32
        );
    }

    #[test]
    fn auto_takes_f32_on_every_cpu_when_the_manifest_has_it() {
        assert_eq!(preferred_on_this_cpu(), Precision::F32);
        let both = entry_with(&[Precision::F32, Precision::Int8]);
        assert_eq!(
            resolve(&both, PrecisionChoice::Auto, preferred_on_this_cpu()).unwrap(),
            Precision::F32
        );
    }
}
