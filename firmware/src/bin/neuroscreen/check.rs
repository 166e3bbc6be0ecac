//! `neuroscreen check`: the boot self-test.

use crate::settings::default_models_dir;
use anyhow::Result;
use firmware::engine::{self, EngineConfig, PrecisionChoice};
use firmware::{check, config};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Folder holding manifest.json and selftest.json [default as for scan]
    #[arg(long, conflicts_with = "config")]
    models: Option<PathBuf>,
    /// Take models.dir and models.precision from appliance.toml
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum)]
    precision: Option<PrecisionChoice>,
    /// Check every precision the manifest offers, not only the one that would run
    #[arg(long)]
    all: bool,
    /// Record the current results as the expected ones (when shipping a model set)
    #[arg(long)]
    record: bool,
    /// Sample for --record [default: the first tumour sample in samples/samples.json]
    #[arg(long, requires = "record")]
    sample: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<usize> {
    let Args {
        models,
        config,
        precision,
        all,
        record,
        sample,
    } = args;
    let (models, mut engine_config) = match config {
        Some(path) => {
            let c = config::ApplianceConfig::load(&path)?;
            (c.models.dir.clone(), c.engine())
        }
        None => (
            models.unwrap_or_else(default_models_dir),
            EngineConfig::default(),
        ),
    };
    if let Some(p) = precision {
        engine_config.precision = p;
    }
    if record {
        let sample = match sample {
            Some(s) => s,
            None => check::default_sample(&models)?,
        };
        let test = check::record(&models, &sample, &engine_config)?;
        println!(
            "recorded {} for {} in {}",
            test.expected.keys().cloned().collect::<Vec<_>>().join(", "),
            test.sample.display(),
            models.join(check::SELFTEST_FILE).display()
        );
        return Ok(0);
    }
    let precisions = if all {
        check::available(&models)?
    } else {
        // The precision the service would run: what auto (or the choice)
        // resolves to for the segmenter, the model every slice may reach.
        let manifest = models::Manifest::load(&models.join("manifest.json"))?;
        vec![engine::precision::resolve(
            manifest.segmenter(),
            engine_config.precision,
            engine::precision::preferred_on_this_cpu(),
        )?]
    };
    let outcomes = check::run(
        &models,
        &precisions,
        &engine_config,
        &mut std::io::stdout().lock(),
    )
    .map_err(|e| anyhow::anyhow!(e).context("self-test FAILED"))?;
    let failed = outcomes.iter().filter(|o| !o.problems.is_empty()).count();
    if failed > 0 {
        anyhow::bail!(
            "self-test FAILED at {failed} of {} precisions",
            outcomes.len()
        );
    }
    println!("self-test passed: model hashes verified, sample result as recorded");
    Ok(0)
}
