//! `neuroscreen`: the scanner-side screening appliance.

use anyhow::Result;
use clap::{Parser, Subcommand};
use firmware::engine::{Engine, EngineConfig, PrecisionChoice};
use firmware::{bench, check, config, demo, engine, inputs, inspect, scan, service, store};
use firmware::{signing, soak};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "neuroscreen",
    version,
    about = "Offline brain-tumour screening appliance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that slices decode and map to the model input the way the appliance will see them
    Inspect {
        /// Slice files (PNG, TIFF, JPEG) or folders of them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Model input side in pixels
        #[arg(long, default_value_t = 256)]
        size: u32,
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// The main job on the shipped data: the shipped models over models/samples, results and
    /// screen snapshots in --out, a table of verdicts beside the known truth
    Demo {
        /// Results folder
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
        /// Folder holding manifest.json and the models [default as for scan]
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto)]
        precision: PrecisionChoice,
    },
    /// Screen slices: filter, segment the flagged ones, store masks, overlays and results.jsonl
    Scan {
        /// Slice files (PNG, TIFF, JPEG) or folders of them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Results folder (created if missing; results.jsonl is appended to)
        #[arg(long)]
        out: PathBuf,
        /// appliance.toml: its [models] (dir, precision, threads, min_component_px,
        /// public_key), [inputs] limits, pixel spacing and DICOM settings; flags given here win
        #[arg(long)]
        config: Option<PathBuf>,
        /// Folder holding manifest.json and the models [default: models.dir of --config, else
        /// ./models, else the models/ folder of the repository this binary was built from]
        #[arg(long)]
        models: Option<PathBuf>,
        /// Which model files to run; auto takes f32 (the faster with tract; int8 when only it
        /// ships) [default: models.precision of --config, else auto]
        #[arg(long, value_enum)]
        precision: Option<PrecisionChoice>,
        /// Drop mask components smaller than this many pixels (0 keeps all) [default:
        /// models.min_component_px of --config, else 0]
        #[arg(long)]
        min_component_px: Option<usize>,
        /// Pixel spacing in mm for slices that do not state it: one value, or rows,columns;
        /// records then carry the area in mm²
        #[arg(long, value_delimiter = ',', num_args = 1..=2)]
        pixel_spacing_mm: Vec<f64>,
        /// For DICOM inputs that get a mask, also write the overlay as a DICOM Secondary
        /// Capture (<stem>.sc.dcm) beside the SEG
        #[arg(long)]
        secondary_capture: bool,
    },
    /// The service: screen what arrives in the inbox (and any PATHs given) until SIGTERM or Ctrl-C
    Run {
        /// appliance.toml (every key optional; see --print-config)
        #[arg(long, required_unless_present = "print_config")]
        config: Option<PathBuf>,
        /// Files or folders to screen besides the inbox
        paths: Vec<PathBuf>,
        /// Screen the PATHs and the inbox backlog, then stop instead of watching
        #[arg(long)]
        once: bool,
        /// Overrides models.precision
        #[arg(long, value_enum)]
        precision: Option<PrecisionChoice>,
        /// Print a commented config with every default and exit
        #[arg(long)]
        print_config: bool,
    },
    /// Latency per stage with tract at f32 and int8, beside onnxruntime on the same files; start-up; peak RSS
    Bench {
        /// Folder holding manifest.json, the models and samples/ [default as for scan]
        #[arg(long)]
        models: Option<PathBuf>,
        /// Timed runs per figure
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Threads for tract and onnxruntime alike [default: every core]
        #[arg(long)]
        threads: Option<usize>,
        /// Python that has onnxruntime [default: .venv/bin/python3 if present, else python3]
        #[arg(long)]
        python: Option<PathBuf>,
        /// Skip the onnxruntime peer (a board without Python)
        #[arg(long)]
        no_ort: bool,
        /// Also write every figure as JSON here
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also screen every slice under this folder with the filter on and
        /// off (a `<slice>_mask` file beside each gives the truth, as in the
        /// LGG layout): time per slice, what the filter passes and misses
        #[arg(long)]
        slices: Option<PathBuf>,
    },
    /// One precision of `bench`, in its own process (used by bench)
    #[command(hide = true)]
    BenchWorker {
        #[arg(long)]
        models: PathBuf,
        #[arg(long, value_enum)]
        precision: PrecisionChoice,
        #[arg(long)]
        threads: usize,
        #[arg(long)]
        runs: usize,
        #[arg(long)]
        slices: Option<PathBuf>,
    },
    /// Boot self-test: verify model hashes and screen the known sample against its recorded result
    Check {
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
    },
    /// Hardware in the loop: `serve` on the board, `drive` it from a test bench (docs/DEPLOY.md)
    Hil {
        #[command(subcommand)]
        command: HilCommand,
    },
    /// Signed model sets: make keys, sign a manifest, verify one
    Manifest {
        #[command(subcommand)]
        action: ManifestAction,
    },
    /// Long run through the real service (`run` on a fresh box, slices renamed into its
    /// inbox): RSS, open fds and latency percentiles per window
    Soak {
        /// Fresh (or empty) folder for the box: inbox, results, config, service log
        #[arg(long)]
        dir: PathBuf,
        /// Slices to feed (copies of the samples, made as it goes)
        #[arg(long, default_value_t = 10_000)]
        slices: usize,
        /// Slices per sample row
        #[arg(long, default_value_t = 1_000)]
        window: usize,
        /// Folder holding manifest.json and samples/ [default as for scan]
        #[arg(long)]
        models: Option<PathBuf>,
        /// models.threads of the service
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto)]
        precision: PrecisionChoice,
        /// Also write every figure as JSON here
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum HilCommand {
    /// On the board: screen the slices a bench sends over TCP and answer each with its result
    /// and stage latencies (listens only when started)
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:7878 (port 0: any free port, printed)
        #[arg(long)]
        listen: String,
        /// Folder holding manifest.json and the models [default as for scan]
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto)]
        precision: PrecisionChoice,
        /// Inference threads [default: every core]
        #[arg(long)]
        threads: Option<usize>,
        /// Results store for the slices received (each is kept under received/)
        #[arg(long, default_value = "hil-results")]
        out: PathBuf,
        /// Stop after the first bench disconnects
        #[arg(long)]
        once: bool,
    },
    /// On the host: send slices to a board, print results, p50/p95 per stage and throughput
    Drive {
        /// The board's address, HOST:PORT
        #[arg(long)]
        board: String,
        /// Slice files or folders of them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Send every slice this many times
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Write every figure and answer as JSON here
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write one CSV row per answer here
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Keep trying to connect this long (a board still starting)
        #[arg(long, default_value_t = 30)]
        connect_wait_s: u64,
    },
}

#[derive(Subcommand)]
enum ManifestAction {
    /// Make a signing key pair: the private key (owner-only) at --out, the public key at <out>.pub
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign <models>/manifest.json (after checking every model's sha256) into manifest.json.sig
    Sign {
        /// Private key file from `keygen`
        #[arg(long)]
        key: PathBuf,
        /// Folder holding manifest.json [default as for scan]
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// Check a model set as a board pinning --public-key does: signature, then hashes
    Verify {
        /// 64 hex digits, as in `models.public_key`
        #[arg(long)]
        public_key: String,
        #[arg(long)]
        models: Option<PathBuf>,
    },
}

/// Exit codes: 0 all inputs done, 1 some inputs failed (each has an error
/// line), 2 the command could not run at all (bad models, unwritable folder).
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jpeg2k=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // When the log cannot be written (its disk full), tracing would say
        // so with eprintln!, which panics on that same failed stderr: the
        // soak's service died that way. A lost log line is not worth the box.
        .log_internal_errors(false)
        .init();
    store::fail_oversized_writes_instead_of_dying();
    match run(Cli::parse().command) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "neuroscreen: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Returns how many inputs failed.
fn run(command: Command) -> Result<usize> {
    match command {
        Command::Inspect { paths, size, json } => {
            let files = inputs::expand(&paths)?;
            Ok(inspect::run(
                &files,
                size,
                json,
                &mut std::io::stdout().lock(),
            )?)
        }
        Command::Demo {
            out,
            models,
            precision,
        } => {
            let appliance = appliance_config(None, models, Some(precision))?;
            let samples = appliance.models.dir.join("samples");
            let truths = demo::read_truth(&samples)?;
            let files: Vec<PathBuf> = truths.iter().map(|t| samples.join(&t.file)).collect();
            let engine = load_engine(&appliance)?;
            let store = store::ResultsStore::open(&out)?;
            let screener = scan::Screener::new(std::sync::Arc::new(engine), &store);
            let summary = scan::run(&screener, &files, &mut std::io::stdout().lock())?;
            let rows = demo::review(store.dir(), &samples, &truths)?;
            demo::print_table(&rows, &mut std::io::stdout().lock())?;
            println!("screens, masks and overlays: {}", store.dir().display());
            Ok(summary.errors)
        }
        Command::Scan {
            paths,
            out,
            config,
            models,
            precision,
            min_component_px,
            pixel_spacing_mm,
            secondary_capture,
        } => {
            let files = inputs::expand(&paths)?;
            let mut appliance = appliance_config(config.as_deref(), models, precision)?;
            if let Some(px) = min_component_px {
                appliance.models.min_component_px = px;
            }
            let engine = load_engine(&appliance)?;
            let store = store::ResultsStore::open(&out)?;
            tracing::info!(inputs = files.len(), out = %store.dir().display(), "scanning");
            let spacing = pixel_spacing(&pixel_spacing_mm)?.or(appliance.inbox.pixel_spacing_mm);
            let screener = scan::Screener::new(std::sync::Arc::new(engine), &store)
                .with_limits(appliance.inputs)
                .with_spacing(spacing)
                .with_secondary_capture(secondary_capture || appliance.dicom.secondary_capture);
            let summary = scan::run(&screener, &files, &mut std::io::stdout().lock())?;
            Ok(summary.errors)
        }
        Command::Run {
            config,
            paths,
            once,
            precision,
            print_config,
        } => run_service(config, paths, once, precision, print_config),
        Command::Bench {
            models,
            runs,
            threads,
            python,
            no_ort,
            json,
            slices,
        } => {
            let models = models.unwrap_or_else(default_models_dir);
            let threads = threads.unwrap_or_else(|| EngineConfig::default().threads);
            let ort = (!no_ort).then(|| {
                let python = python.unwrap_or_else(default_python);
                (python, ort_script(&models))
            });
            let report = bench::run(&bench::BenchOptions {
                models,
                runs: runs.max(1),
                threads,
                ort,
                slices,
            })?;
            bench::print(&report, &mut std::io::stdout().lock())?;
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report)? + "\n";
                store::write_file_atomically(&path, text.as_bytes())?;
            }
            Ok(0)
        }
        Command::BenchWorker {
            models,
            precision,
            threads,
            runs,
            slices,
        } => {
            let report = bench::worker(
                &models,
                precision,
                threads.max(1),
                runs.max(1),
                slices.as_deref(),
            )?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(0)
        }
        Command::Check {
            models,
            config,
            precision,
            all,
            record,
            sample,
        } => run_check(models, config, precision, all, record, sample),
        Command::Manifest { action } => run_manifest(action),
        Command::Soak {
            dir,
            slices,
            window,
            models,
            threads,
            precision,
            json,
        } => {
            let models = models.unwrap_or_else(default_models_dir);
            let options = soak::SoakOptions {
                dir,
                models: std::path::absolute(&models)?,
                slices: slices.max(1),
                window: window.max(1),
                threads: threads.max(1),
                precision: clap::ValueEnum::to_possible_value(&precision)
                    .map_or("auto".into(), |v| v.get_name().to_string()),
            };
            let report = soak::run(&options, &mut std::io::stdout().lock())?;
            println!(
                "soak: {} slices ({} errors) in {:.0} s; service exit code {:?}",
                report.slices, report.errors, report.seconds, report.service_exit_code
            );
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report)? + "\n";
                store::write_file_atomically(&path, text.as_bytes())?;
            }
            let clean = report.errors == 0 && report.service_exit_code == Some(0);
            Ok(usize::from(!clean))
        }
        Command::Hil { command } => run_hil(command),
    }
}

fn run_hil(command: HilCommand) -> Result<usize> {
    match command {
        HilCommand::Serve {
            listen,
            models,
            precision,
            threads,
            out,
            once,
        } => {
            let mut appliance = appliance_config(None, models, Some(precision))?;
            if let Some(t) = threads {
                appliance.models.threads = t.max(1);
            }
            let engine = load_engine(&appliance)?;
            let store = store::ResultsStore::open(&out)?;
            let screener = scan::Screener::new(std::sync::Arc::new(engine), &store);
            firmware::hil::serve::serve(&screener, &listen, once)?;
            Ok(0)
        }
        HilCommand::Drive {
            board,
            paths,
            repeat,
            report,
            csv,
            connect_wait_s,
        } => {
            let files = inputs::expand(&paths)?;
            let result = firmware::hil::drive::drive(&firmware::hil::drive::DriveOptions {
                board,
                files,
                repeat,
                connect_wait: std::time::Duration::from_secs(connect_wait_s),
            })?;
            firmware::hil::drive::print(&result, &mut std::io::stdout().lock())?;
            if let Some(path) = report {
                let text = serde_json::to_string_pretty(&result)? + "\n";
                store::write_file_atomically(&path, text.as_bytes())?;
            }
            if let Some(path) = csv {
                firmware::hil::drive::write_csv(&result, &path)?;
            }
            Ok(result.errors)
        }
    }
}

fn run_manifest(action: ManifestAction) -> Result<usize> {
    match action {
        ManifestAction::Keygen { out } => {
            let public = signing::keygen(&out)?;
            println!(
                "private key: {} (owner-only; keep it off the board)",
                out.display()
            );
            println!(
                "public key:  {public}\n  (in {}; pin it on the board as [models] public_key)",
                signing::public_key_path(&out).display()
            );
        }
        ManifestAction::Sign { key, models } => {
            let models = models.unwrap_or_else(default_models_dir);
            let sig = signing::sign(&key, &models)?;
            println!("signed: {}", sig.display());
        }
        ManifestAction::Verify { public_key, models } => {
            let models = models.unwrap_or_else(default_models_dir);
            signing::verify(&public_key, &models)
                .map_err(|e| anyhow::anyhow!(e).context("model set refused"))?;
            println!("verified: signature and every model's sha256");
        }
    }
    Ok(0)
}

fn run_service(
    config: Option<PathBuf>,
    paths: Vec<PathBuf>,
    once: bool,
    precision: Option<PrecisionChoice>,
    print_config: bool,
) -> Result<usize> {
    if print_config {
        print!("{}", config::EXAMPLE);
        return Ok(0);
    }
    let path = config.expect("clap requires --config");
    let mut config = config::ApplianceConfig::load(&path)?;
    if let Some(p) = precision {
        config.models.precision = p;
    }
    let engine = load_engine(&config)?;
    let report = service::run(&config, engine, service::RunOptions { paths, once })?;
    let s = &report.summary;
    tracing::info!(
        screened = s.inputs,
        tumour = s.tumour,
        clear = s.clear,
        errors = s.errors,
        already_done = report.skipped_as_done,
        left_for_next_start = report.left_queued,
        not_stored = report.store_failures,
        "stopped"
    );
    if let Some(html) = &report.session_html {
        println!("session summary: {}", html.display());
    }
    // An input that could not be stored failed as much as a bad one did.
    Ok(s.errors + report.store_failures)
}

fn run_check(
    models: Option<PathBuf>,
    config: Option<PathBuf>,
    precision: Option<PrecisionChoice>,
    all: bool,
    record: bool,
    sample: Option<PathBuf>,
) -> Result<usize> {
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

/// The settings a screening command runs with: `config` (or the defaults,
/// models from [`default_models_dir`]), then the flags given, which win.
fn appliance_config(
    config: Option<&Path>,
    models: Option<PathBuf>,
    precision: Option<PrecisionChoice>,
) -> Result<config::ApplianceConfig> {
    let mut appliance = match config {
        Some(path) => config::ApplianceConfig::load(path)?,
        None => config::ApplianceConfig {
            models: config::ModelsConfig {
                dir: default_models_dir(),
                ..config::ModelsConfig::default()
            },
            ..config::ApplianceConfig::default()
        },
    };
    if let Some(dir) = models {
        appliance.models.dir = dir;
    }
    if let Some(p) = precision {
        appliance.models.precision = p;
    }
    Ok(appliance)
}

/// The engine as `appliance` says: its model set, precision, threads and,
/// when `models.public_key` pins one, only a set signed with that key.
fn load_engine(appliance: &config::ApplianceConfig) -> Result<Engine> {
    Engine::load(
        &appliance.models.dir.join("manifest.json"),
        appliance.engine(),
    )
    .map_err(|e| anyhow::anyhow!(e).context("refusing to start"))
}

fn pixel_spacing(values: &[f64]) -> Result<Option<[f64; 2]>> {
    let spacing = match *values {
        [] => return Ok(None),
        [s] => [s, s],
        [r, c] => [r, c],
        _ => anyhow::bail!("--pixel-spacing-mm takes one or two values"),
    };
    config::check_spacing(spacing).map_err(|e| anyhow::anyhow!("--pixel-spacing-mm: {e}"))?;
    Ok(Some(spacing))
}

fn default_python() -> PathBuf {
    let venv = Path::new(".venv/bin/python3");
    if venv.exists() {
        venv.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

/// `scripts/ort_bench.py` beside the models folder's repository, else the
/// one of the repository this binary was built from.
fn ort_script(models: &Path) -> PathBuf {
    let beside = models.join("../scripts/ort_bench.py");
    if beside.exists() {
        beside
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ort_bench.py")
    }
}

fn default_models_dir() -> PathBuf {
    let here = Path::new("models");
    if here.join("manifest.json").exists() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
    }
}
