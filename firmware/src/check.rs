//! `neuroscreen check`: the boot self-test. Model hashes are verified (by
//! loading the engine) and a known sample is screened and compared with the
//! result recorded beside the models when they were shipped, so a damaged
//! file, a mis-built binary or a CPU whose kernels misbehave is caught
//! before the first patient slice.

use crate::engine::{precision, Engine, EngineConfig};
use crate::error::{Error, Result};
use crate::store::RecordVerdict;
use models::manifest::Precision;
use models::SliceImage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const SELFTEST_FILE: &str = "selftest.json";

/// `models/selftest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfTest {
    pub format_version: u32,
    /// Relative to the models folder.
    pub sample: PathBuf,
    pub sample_sha256: String,
    /// Keyed by precision (`f32`, `int8`).
    pub expected: BTreeMap<String, Expected>,
    pub tolerance: Tolerance,
    pub recorded_with: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub verdict: RecordVerdict,
    pub tumour_probability: f32,
    pub area_px: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    pub probability: f32,
    /// Area may differ by this fraction of the expected area, or by
    /// `area_px`, whichever is larger (thresholded masks flip edge pixels).
    pub area_fraction: f64,
    pub area_px: u64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            probability: 0.02,
            area_fraction: 0.02,
            area_px: 8,
        }
    }
}

/// One precision's outcome: empty when it matched the record.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub problems: Vec<String>,
}

fn screen_sample(engine: &Engine, sample: &SliceImage) -> Result<Expected> {
    let s = engine.screen(sample)?;
    Ok(Expected {
        verdict: s.verdict.into(),
        tumour_probability: s.tumour_probability,
        area_px: s.segmentation.map_or(0, |g| g.summary.area_px),
    })
}

fn compare(got: &Expected, want: &Expected, tol: &Tolerance) -> Vec<String> {
    let mut problems = Vec::new();
    if got.verdict != want.verdict {
        problems.push(format!(
            "verdict {:?}, expected {:?}",
            got.verdict, want.verdict
        ));
    }
    let dp = (got.tumour_probability - want.tumour_probability).abs();
    if dp > tol.probability {
        problems.push(format!(
            "p(tumour) {:.4}, expected {:.4} (tolerance {})",
            got.tumour_probability, want.tumour_probability, tol.probability
        ));
    }
    let allowed = ((want.area_px as f64 * tol.area_fraction).ceil() as u64).max(tol.area_px);
    if got.area_px.abs_diff(want.area_px) > allowed {
        problems.push(format!(
            "area {} px, expected {} px (tolerance {allowed} px)",
            got.area_px, want.area_px
        ));
    }
    problems
}

fn load_sample(models: &Path, test: &SelfTest) -> Result<SliceImage> {
    let path = models.join(&test.sample);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != test.sample_sha256 {
        return Err(Error::SelfTest(format!(
            "{}: sha256 {actual} differs from the recorded {}",
            path.display(),
            test.sample_sha256
        )));
    }
    Ok(SliceImage::decode(&bytes, &path)?)
}

pub fn read(models: &Path) -> Result<SelfTest> {
    let path = models.join(SELFTEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::SelfTest(format!("{}: {e}", path.display())))
}

/// Runs the self-test at each of `precisions` (loading the engine verifies
/// every hash first), printing one line each.
pub fn run(
    models: &Path,
    precisions: &[Precision],
    base: &EngineConfig,
    out: &mut impl Write,
) -> Result<Vec<Outcome>> {
    let test = read(models)?;
    let sample = load_sample(models, &test)?;
    let mut outcomes = Vec::new();
    for &p in precisions {
        let name = precision::name(p);
        let expected = test.expected.get(name).cloned().ok_or_else(|| {
            Error::SelfTest(format!(
                "{}: nothing recorded for {name} (recorded: {})",
                models.join(SELFTEST_FILE).display(),
                test.expected.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let engine = load_engine(models, p, base)?;
        let got = screen_sample(&engine, &sample)?;
        let problems = compare(&got, &expected, &test.tolerance);
        writeln!(
            out,
            "{name:<5} {}: {} p={:.4} area {} px  {}",
            test.sample.display(),
            serde_json::to_value(got.verdict)?.as_str().unwrap_or("?"),
            got.tumour_probability,
            got.area_px,
            if problems.is_empty() {
                "ok".to_string()
            } else {
                format!("FAILED: {}", problems.join("; "))
            }
        )
        .map_err(Error::Report)?;
        outcomes.push(Outcome { problems });
    }
    Ok(outcomes)
}

fn load_engine(models: &Path, p: Precision, base: &EngineConfig) -> Result<Engine> {
    let config = EngineConfig {
        precision: p.into(),
        ..base.clone()
    };
    Engine::load(&models.join("manifest.json"), config)
}

/// The precisions every model of the manifest offers.
pub fn available(models: &Path) -> Result<Vec<Precision>> {
    let manifest = models::Manifest::load(&models.join("manifest.json"))?;
    Ok([Precision::F32, Precision::Int8]
        .into_iter()
        .filter(|p| manifest.models.iter().all(|m| m.file(*p).is_some()))
        .collect())
}

/// Records the current engine's result on `sample` at every available
/// precision into `models/selftest.json` (part of shipping a model set).
pub fn record(models: &Path, sample: &Path, base: &EngineConfig) -> Result<SelfTest> {
    let bytes = std::fs::read(sample).map_err(|e| Error::io(sample, e))?;
    let slice = SliceImage::decode(&bytes, sample)?;
    let relative = sample
        .strip_prefix(models)
        .map(Path::to_path_buf)
        .map_err(|_| {
            Error::SelfTest(format!(
                "{}: the sample must lie inside the models folder {}",
                sample.display(),
                models.display()
            ))
        })?;
    let mut expected = BTreeMap::new();
    for p in available(models)? {
        let engine = load_engine(models, p, base)?;
        expected.insert(
            precision::name(p).to_string(),
            screen_sample(&engine, &slice)?,
        );
    }
    let test = SelfTest {
        format_version: 1,
        sample: relative,
        sample_sha256: hex::encode(Sha256::digest(&bytes)),
        expected,
        tolerance: Tolerance::default(),
        recorded_with: format!("neuroscreen {}", env!("CARGO_PKG_VERSION")),
    };
    let text = serde_json::to_string_pretty(&test)? + "\n";
    crate::store::write_file_atomically(&models.join(SELFTEST_FILE), text.as_bytes())?;
    Ok(test)
}

/// The sample `record` takes when none is named: the first tumour sample
/// of `samples/samples.json`, so both stages run.
pub fn default_sample(models: &Path) -> Result<PathBuf> {
    let samples = models.join("samples");
    let truths = crate::demo::read_truth(&samples)?;
    truths
        .iter()
        .find(|t| t.truth == "tumour")
        .or(truths.first())
        .map(|t| samples.join(&t.file))
        .ok_or_else(|| Error::SelfTest(format!("{}: no samples", samples.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(verdict: RecordVerdict, p: f32, area: u64) -> Expected {
        Expected {
            verdict,
            tumour_probability: p,
            area_px: area,
        }
    }

    #[test]
    fn small_drift_passes_and_each_kind_of_change_is_named() {
        let tol = Tolerance::default();
        let want = e(RecordVerdict::Tumour, 0.9, 1000);
        assert!(compare(&e(RecordVerdict::Tumour, 0.91, 1015), &want, &tol).is_empty());
        let p = compare(&e(RecordVerdict::Clear, 0.5, 0), &want, &tol);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("verdict") && p[1].contains("p(tumour)") && p[2].contains("area"));
        // Small areas get the pixel floor, not a fraction of nearly nothing.
        let small = e(RecordVerdict::Tumour, 0.9, 10);
        assert!(compare(&e(RecordVerdict::Tumour, 0.9, 17), &small, &tol).is_empty());
        assert_eq!(
            compare(&e(RecordVerdict::Tumour, 0.9, 19), &small, &tol).len(),
            1
        );
    }
}
