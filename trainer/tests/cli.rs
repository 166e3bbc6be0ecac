//! The trainer binary as a user runs it.

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_neuroscreen-train"))
}

/// `export` of a segmenter and a filter run into `out`, scored on a few
/// slices; `extra` flags go before the runs.
fn export_set(
    seg: &std::path::Path,
    filter: &std::path::Path,
    out: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> std::process::Output {
    bin()
        .arg("export")
        .args(extra)
        .arg("--segmenter")
        .arg(seg)
        .arg("--filter")
        .arg(filter)
        .arg("--out")
        .arg(out)
        .args(["--calibration-slices", "4", "--eval-slices", "8"])
        .output()
        .unwrap()
}

/// CUDA must stay reachable: the default `--as-needed` link would drop
/// libtorch_cuda.so (nothing references it directly) and CUDA would then
/// silently report unavailable on a GPU machine.
#[test]
fn binary_keeps_libtorch_cuda_linked() {
    let out = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_neuroscreen-train")])
        .output()
        .expect("readelf (binutils) is installed by scripts/setup.sh");
    assert!(out.status.success());
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(
        dynamic.contains("[libtorch_cuda.so]"),
        "libtorch_cuda.so missing from DT_NEEDED:\n{dynamic}"
    );
    assert!(dynamic.contains("[libtorch_cpu.so]"));
}

#[test]
fn phantoms_command_writes_the_lgg_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["phantoms", "--patients", "2", "--seed", "3", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("2 patients,"), "{stdout}");
    let root = dir.path().join("kaggle_3m");
    let folders: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(folders.len(), 2);
    assert!(root.join("phantoms.csv").exists());
}

#[test]
fn bad_arguments_get_a_clear_message() {
    let out = bin()
        .args(["phantoms", "--out", "/tmp/x", "--patients", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--patients must be at least 1"));
}

/// The experiment end to end at toy size: phantoms generated, a 1 x 1 x 2
/// grid trained and scored, the document and chart written; a second call
/// resumes from results.jsonl instead of training again.
#[test]
fn experiment_writes_results_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        bin()
            .args(["experiment", "--phantoms", "6", "--archs", "resunet"])
            .args(["--losses", "tversky", "--seeds", "0,1", "--epochs", "1"])
            .args(["--input-size", "32", "--widths", "4,8", "--label", "toy"])
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg("--doc")
            .arg(dir.path().join("docs/RESULTS.md"))
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = std::fs::read_to_string(dir.path().join("docs/RESULTS.md")).unwrap();
    assert!(doc.contains("| resunet | tversky | 2 |"), "{doc}");
    assert!(doc.contains("resunet-tversky-s1"), "{doc}");
    assert!(doc.contains("toy: 32 px input"), "{doc}");
    let chart = image::open(dir.path().join("docs/results_dice.png")).unwrap();
    assert_eq!((chart.width(), chart.height()), (1200, 500));
    let results = dir.path().join("out/results.jsonl");
    let first = std::fs::read_to_string(&results).unwrap();
    assert_eq!(first.lines().count(), 2);
    let trained = std::fs::metadata(
        dir.path()
            .join("out/runs/resunet-tversky-s0/best.safetensors"),
    )
    .unwrap()
    .modified()
    .unwrap();
    let again = run();
    assert!(again.status.success());
    assert_eq!(std::fs::read_to_string(&results).unwrap(), first);
    let still = std::fs::metadata(
        dir.path()
            .join("out/runs/resunet-tversky-s0/best.safetensors"),
    )
    .unwrap()
    .modified()
    .unwrap();
    assert_eq!(trained, still, "a finished run is not trained again");
}

/// "Filter on" in the experiment: a filter trained on the experiment's own
/// split gates the held-out slices at a threshold picked on its validation
/// patients, and finished cells are scored again from their checkpoints
/// rather than retrained; a filter that trained on the experiment's test
/// patients is refused by name.
#[test]
fn experiment_gates_with_a_filter_from_its_own_split_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let experiment = |filter: Option<&std::path::Path>| {
        let mut cmd = bin();
        cmd.args(["experiment", "--phantoms", "6", "--archs", "resunet"])
            .args(["--losses", "dice", "--seeds", "0", "--epochs", "1"])
            .args(["--input-size", "32", "--widths", "4,8", "--label", "toy"])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg("--doc")
            .arg(dir.path().join("RESULTS.md"));
        if let Some(f) = filter {
            cmd.arg("--filter").arg(f);
        }
        cmd.output().unwrap()
    };
    let fit_filter = |out: &str, config: Option<&str>| {
        let mut cmd = bin();
        cmd.args(["fit", "--model", "resnet18", "--filter-width", "4"])
            .args(["--input-size", "32", "--epochs", "1", "--batch", "8"])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join(out));
        if let Some(text) = config {
            let path = dir.path().join(format!("{out}.toml"));
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dir.path().join(out)
    };
    let first = experiment(None);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let best = dir.path().join("out/runs/resunet-dice-s0/best.safetensors");
    let trained = std::fs::metadata(&best).unwrap().modified().unwrap();

    let same_split = fit_filter("filter", None);
    let gated = experiment(Some(&same_split));
    assert!(
        gated.status.success(),
        "{}",
        String::from_utf8_lossy(&gated.stderr)
    );
    let doc = std::fs::read_to_string(dir.path().join("RESULTS.md")).unwrap();
    assert!(doc.contains("## Filter on vs off"), "{doc}");
    assert!(
        doc.contains("keeps at least 95 % of the tumour slices"),
        "{doc}"
    );
    let results = std::fs::read_to_string(dir.path().join("out/results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 1);
    assert!(results.contains("\"gate\":\""), "{results}");
    assert!(results.contains("\"filter_on\":{"), "{results}");
    let still = std::fs::metadata(&best).unwrap().modified().unwrap();
    assert_eq!(trained, still, "scored again, not retrained");

    // No test patients: it trains on every patient the experiment holds out.
    let leaky = fit_filter("leaky", Some("[split]\ntest = 0.0\nval = 0.2\n"));
    let refused = experiment(Some(&leaky));
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("leaky: the filter trained or early-stopped on"),
        "{err}"
    );
}

/// scripts/gpu/train.sh in a CPU dry run at toy size, speed and experiment
/// included: every stage runs, and what it leaves in OUT fits what the
/// team's device tool brings back from a GPU machine (at most 8 plain
/// files, 16 MiB each, 64 MiB in all) with the small checkpoints, the
/// reports and the experiment's results inside.
#[test]
fn gpu_script_dry_run_fits_the_transfer_limits() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let run = Command::new("bash")
        .arg(root.join("scripts/gpu/train.sh"))
        .env("BIN", env!("CARGO_BIN_EXE_neuroscreen-train"))
        .env("DEVICE", "cpu")
        .env("OUT", &out_dir)
        .env("WORK", dir.path().join("work"))
        .env("PYTHON", root.join(".venv/bin/python3"))
        .env("REFERENCE", dir.path().join("no-reference.py"))
        .env(
            "SPEED_ARGS",
            "--batch 2 --steps 1 --warmup 1 --rounds 1 --threads 1",
        )
        .envs([
            ("PATIENTS", "6"),
            ("SIZE", "32"),
            ("SEG_EPOCHS", "1"),
            ("FILTER_EPOCHS", "1"),
            ("WORKERS", "1"),
            ("EXPERIMENT", "1"),
            ("EXP_EPOCHS", "1"),
            // The GPU budget (420 s) cut the experiment short on a loaded
            // 2-core machine; this test is about what comes back, not time.
            ("BUDGET_S", "3600"),
        ])
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");

    const MIB: u64 = 1 << 20;
    let mut total = 0;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        assert!(meta.is_file(), "{:?} is not a plain file", entry.path());
        assert!(
            meta.len() <= 16 * MIB,
            "{:?}: {} bytes",
            entry.path(),
            meta.len()
        );
        total += meta.len();
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    assert!(names.len() <= 8, "{names:?}");
    assert!(total <= 64 * MIB, "{total} bytes");

    let summary = std::fs::read_to_string(out_dir.join("summary.txt")).unwrap();
    for needle in [
        "speed: {",
        "adam step: {",
        "loader: {",
        "fit resunet: ",
        "eval resunet: ",
        "fit resnet50 last epoch: ",
        "eval resnet50: | ROC AUC",
        "eval r18w16: | ROC AUC",
        "experiment: ",
        "runs/resnet50/best.safetensors",
        "== exit 0",
    ] {
        assert!(summary.contains(needle), "{needle:?} missing:\n{summary}");
    }
    let listing = Command::new("bash")
        .arg("-c")
        .arg("cat results.tar.gz.part* | tar -tz")
        .current_dir(&out_dir)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    for member in [
        "runs/resunet/best.safetensors",
        "runs/r18w16/best.safetensors",
        "runs/resnet50/eval/report.md",
        "experiment/RESULTS.md",
        "experiment/results.jsonl",
    ] {
        assert!(
            listing.lines().any(|l| l == member),
            "{member} missing:\n{listing}"
        );
    }
    assert!(!listing.contains("runs/resnet50/best.safetensors"));
    assert!(!listing.contains("last.safetensors"));
    assert!(!listing.contains("optimiser.safetensors"));
}

/// `export` end to end at toy size, as the shipped set is made: a segmenter
/// and a filter trained on phantoms, exported to f32 and int8 ONNX with the
/// manifest and model card. The manifest loads and verifies, names both
/// models in the pipeline, the filter runs at a threshold picked for
/// sensitivity (never above 0.5), and every file it lists exists with its
/// recorded sha256.
#[test]
fn export_writes_a_set_the_appliance_can_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gen = bin()
        .args(["phantoms", "--patients", "6", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let fit = |name: &str, model: &[&str]| {
        let o = bin()
            .arg("fit")
            .args(model)
            .args(["--input-size", "32", "--epochs", "1", "--batch", "8"])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dir.path().join(name)
    };
    let seg = fit("seg", &["--model", "resunet", "--widths", "4,8"]);
    let filter = fit("filter", &["--model", "resnet18", "--filter-width", "4"]);
    let out = dir.path().join("models");
    let export = export_set(&seg, &filter, &out, &[]);
    let printed = String::from_utf8_lossy(&export.stdout).into_owned();
    assert!(
        export.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(printed.contains("held-out test (f32"), "{printed}");

    let manifest = models::Manifest::load(&out.join("manifest.json")).unwrap();
    manifest.verify_files(&out).unwrap();
    assert_eq!(manifest.pipeline.filter.as_deref(), Some("filter"));
    assert_eq!(manifest.models.len(), 2);
    let filter_entry = manifest.models.iter().find(|m| m.name == "filter").unwrap();
    assert!(
        filter_entry.threshold > 0.0 && filter_entry.threshold <= 0.5,
        "{}",
        filter_entry.threshold
    );
    for m in &manifest.models {
        assert!(
            m.files
                .iter()
                .any(|f| f.precision == models::manifest::Precision::F32),
            "{}: no f32 file",
            m.name
        );
    }
    let card = std::fs::read_to_string(out.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("The filter's threshold"), "{card}");
}

/// Rewrites an LGG-layout folder as the real copies in our data folder
/// are: JPEG slices (grey when `grey`) and PNG masks, no TIFF left.
fn as_jpeg_and_png(root: &std::path::Path, grey: bool) {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().and_then(|e| e.to_str()) != Some("tif") {
                continue;
            }
            let img = image::open(&p).unwrap();
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            if stem.ends_with("_mask") {
                img.to_luma8().save(p.with_extension("png")).unwrap();
            } else if grey {
                img.to_luma8().save(p.with_extension("jpg")).unwrap();
            } else {
                img.to_rgb8().save(p.with_extension("jpg")).unwrap();
            }
            std::fs::remove_file(&p).unwrap();
        }
    }
}

/// Several named, weighted sources in the real data's formats: `fit` says
/// per source what it read and how it split it, the segmenter trains on
/// clear slices too, `export` writes the card's data note, and `eval-set`
/// scores the set per source (with the stacked source's FLAIR channel alone
/// as a cohort of its own) and on a folder of clear slices, in f32 and int8.
#[test]
fn sources_fit_export_and_score_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let phantoms = |name: &str, contrast: &str, seed: &str| {
        let root = dir.path().join(name);
        let o = bin()
            .args(["phantoms", "--patients", "6", "--seed", seed])
            .args(["--contrast", contrast, "--out"])
            .arg(&root)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        root
    };
    let stacked = phantoms("stacked", "stacked", "1");
    let grey = phantoms("grey", "t1c", "2");
    as_jpeg_and_png(&stacked, false);
    as_jpeg_and_png(&grey, true);
    let fit = |name: &str, model: &[&str]| {
        let o = bin()
            .arg("fit")
            .args(model)
            .args(["--input-size", "32", "--epochs", "1", "--batch", "8"])
            .arg("--data")
            .arg(format!("stk={}:1", stacked.display()))
            .arg("--data")
            .arg(format!("gry={}:0.5", grey.display()))
            .arg("--out")
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{printed}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        for source in ["stk: ", "gry: "] {
            let line = printed
                .lines()
                .find(|l| l.starts_with(source))
                .unwrap_or_else(|| panic!("no line for {source}: {printed}"));
            assert!(
                line.contains("0 files skipped") && line.contains("6 patients"),
                "{line}"
            );
        }
        dir.path().join(name)
    };
    let seg = fit(
        "seg",
        &[
            "--model",
            "resunet",
            "--widths",
            "4,8",
            "--all-slices",
            "--loss",
            "all-slices",
            "--tumour-oversample",
            "2",
        ],
    );
    let metrics = std::fs::read_to_string(seg.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"val_clear_flagged\":"), "{metrics}");
    // Resumed with no --config and no --data, the run goes on with its own
    // sources and model (it once looked for data/phantoms instead).
    let resumed = bin()
        .args(["fit", "--resume", "--epochs", "2", "--out"])
        .arg(&seg)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&resumed.stdout).into_owned();
    assert!(
        resumed.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(
        printed.contains("stk: ") && printed.contains("gry: "),
        "{printed}"
    );
    let metrics = std::fs::read_to_string(seg.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");
    let filter = fit("filter", &["--model", "resnet18", "--filter-width", "4"]);
    let note = dir.path().join("note.md");
    std::fs::write(&note, "Trained on two toy sources; terms: none.\n").unwrap();
    let out = dir.path().join("models");
    let export = export_set(
        &seg,
        &filter,
        &out,
        &["--data-note".as_ref(), note.as_os_str()],
    );
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let card = std::fs::read_to_string(out.join("MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("## Training data\n\nTrained on two toy sources"),
        "{card}"
    );
    assert!(!card.contains("Phantoms, not patients"), "{card}");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("stk="), "provenance names the sources");
    assert!(!manifest.contains("threshold_for_pair"), "{manifest}");
    // The filter's threshold picked beside the exported segmenter instead.
    let paired = dir.path().join("models-pair");
    let export = export_set(
        &seg,
        &filter,
        &paired,
        &[
            "--filter-threshold".as_ref(),
            "pair".as_ref(),
            "--min-mask-px".as_ref(),
            "3".as_ref(),
        ],
    );
    let printed = String::from_utf8_lossy(&export.stdout).into_owned();
    assert!(
        export.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(
        printed.contains("of the tumour slices the segmenter finds on each source"),
        "{printed}"
    );
    let card = std::fs::read_to_string(paired.join("MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("the tumour slices the segmenter finds"),
        "{card}"
    );
    let manifest_pair = std::fs::read_to_string(paired.join("manifest.json")).unwrap();
    assert!(
        manifest_pair.contains("threshold_for_pair"),
        "{manifest_pair}"
    );
    assert!(
        manifest_pair.contains("\"min_mask_px\": 3"),
        "{manifest_pair}"
    );
    assert!(card.contains("fewer than 3 pixels"), "{card}");

    // A candidate is scored on the validation patients, the very slices
    // the filter's threshold was picked on, and says so everywhere.
    let candidate = dir.path().join("models-candidate");
    let export = export_set(&seg, &filter, &candidate, &["--candidate".as_ref()]);
    let printed = String::from_utf8_lossy(&export.stdout).into_owned();
    assert!(
        export.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(!printed.contains("held-out"), "{printed}");
    let line = printed
        .lines()
        .find(|l| l.contains("threshold") && l.contains("picked on"))
        .unwrap_or_else(|| panic!("no threshold line: {printed}"));
    let number_after = |key: &str| -> usize {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key}: {line}")) + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let picked_on = number_after("picked on ");
    let scored = number_after("; validation (f32, ") + number_after(" tumour / ");
    assert_eq!(picked_on, scored, "{line}");
    let card = std::fs::read_to_string(candidate.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("**Candidate, not a shipped set**"), "{card}");
    assert!(!card.contains("held-out test"), "{card}");
    let manifest = std::fs::read_to_string(candidate.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("scored_on_validation_patients"),
        "{manifest}"
    );
    assert!(!manifest.contains("test_f32_tract"), "{manifest}");
    assert!(!manifest_pair.contains("scored_on_validation_patients"));

    let clear = dir.path().join("clear/series");
    std::fs::create_dir_all(&clear).unwrap();
    for i in 0..3u32 {
        image::GrayImage::from_fn(40, 40, |x, y| image::Luma([((x * y + i) % 200) as u8]))
            .save(clear.join(format!("s{i}.png")))
            .unwrap();
    }
    std::fs::write(clear.join("broken.png"), b"nope").unwrap();
    let report = dir.path().join("report");
    let eval_set = |filter_run: &Path, report: &Path, extra: &[&std::ffi::OsStr]| {
        bin()
            .arg("eval-set")
            .arg("--models")
            .arg(&out)
            .arg("--run")
            .arg(&seg)
            .arg("--filter-run")
            .arg(filter_run)
            .arg("--out")
            .arg(report)
            .args(extra)
            .output()
            .unwrap()
    };
    let other = format!("other={}", dir.path().join("clear").display());
    let card_path = out.join("MODEL_CARD.md");
    let o = eval_set(
        &filter,
        &report,
        &[
            "--clear".as_ref(),
            other.as_ref(),
            "--card".as_ref(),
            card_path.as_os_str(),
        ],
    );
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    let errors = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{printed}{errors}");
    assert!(
        errors.contains("broken.png"),
        "a bad file is named: {errors}"
    );
    assert!(printed.contains("other: 3 clear slices"), "{printed}");
    let md = std::fs::read_to_string(report.join("per_source.md")).unwrap();
    for cohort in [
        "| stk | f32 |",
        "| stk FLAIR alone | f32 |",
        "| gry | f32 |",
        "| other | f32 |",
    ] {
        assert!(md.contains(cohort), "{cohort} missing:\n{md}");
    }
    assert!(
        !md.contains("gry FLAIR alone"),
        "a grey source has no FLAIR cohort"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("per_source.json")).unwrap())
            .unwrap();
    let rows = json.as_array().unwrap();
    assert!(rows.iter().any(|r| r["precision"] == "int8") || !manifest.contains("int8.onnx"));
    let other = rows
        .iter()
        .find(|r| r["cohort"] == "other" && r["precision"] == "f32")
        .unwrap();
    assert_eq!(other["appliance"]["clear_slices"], 3);
    assert_eq!(other["appliance"]["tumour_slices"], 0);
    let csv = std::fs::read_to_string(report.join("slices.csv")).unwrap();
    assert!(csv.starts_with("cohort,precision,patient,tumour,"), "{csv}");
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("other,f32,")).count(),
        3,
        "a row per clear slice: {csv}"
    );
    assert!(report.join("montage_real.png").exists());
    assert!(report.join("montage_clear.png").exists());
    let card = std::fs::read_to_string(out.join("MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("Trained on two toy sources"),
        "the card's start is kept"
    );
    assert!(
        card.contains("## Per source, as the appliance runs it"),
        "{card}"
    );
    assert!(card.contains("| stk FLAIR alone | f32 |"), "{card}");

    // A minimum no mask reaches: every mask is emptied, as the appliance
    // would, so no slice is flagged.
    let strict = dir.path().join("report-strict");
    let o = eval_set(
        &filter,
        &strict,
        &[
            "--precision".as_ref(),
            "f32".as_ref(),
            "--min-mask-px".as_ref(),
            "100000".as_ref(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let areas = |dir: &Path| -> Vec<String> {
        let csv = std::fs::read_to_string(dir.join("slices.csv")).unwrap();
        let col = csv
            .lines()
            .next()
            .unwrap()
            .split(',')
            .position(|c| c == "mask_area_px")
            .unwrap();
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').nth(col).unwrap().to_string())
            .collect()
    };
    assert!(
        areas(&report).iter().any(|a| a != "0"),
        "without a minimum some slice has a mask"
    );
    let strict_areas = areas(&strict);
    assert!(
        !strict_areas.is_empty() && strict_areas.iter().all(|a| a == "0"),
        "{strict_areas:?}"
    );
    let md = std::fs::read_to_string(strict.join("per_source.md")).unwrap();
    assert!(md.contains("--min-mask-px 100000"), "{md}");

    // The training patients: their own report, none of them among the
    // held-out patients scored above, and said to be seen in training.
    let trained = dir.path().join("report-training");
    let o = eval_set(
        &filter,
        &trained,
        &[
            "--precision".as_ref(),
            "f32".as_ref(),
            "--training".as_ref(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(trained.join("per_source.md")).unwrap();
    assert!(
        md.contains("seen in training, not a held-out figure"),
        "{md}"
    );
    assert!(md.contains(" --training"), "{md}");
    let patients = |dir: &Path| -> std::collections::BTreeSet<String> {
        std::fs::read_to_string(dir.join("slices.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("other,"))
            .map(|l| l.split(',').nth(2).unwrap().to_string())
            .collect()
    };
    let (seen, held_out) = (patients(&trained), patients(&report));
    assert!(!seen.is_empty() && !held_out.is_empty());
    assert!(seen.is_disjoint(&held_out), "{seen:?} {held_out:?}");

    // Only each slice's largest mask part kept: no mask grows, and the
    // report names the rule; a share over 1 is refused.
    let largest = dir.path().join("report-largest");
    let o = eval_set(
        &filter,
        &largest,
        &[
            "--precision".as_ref(),
            "f32".as_ref(),
            "--component-share".as_ref(),
            "1".as_ref(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (one, all) in areas(&largest).iter().zip(areas(&report)) {
        let (one, all): (usize, usize) = (one.parse().unwrap(), all.parse().unwrap());
        assert!(one <= all, "{one} > {all}");
    }
    let md = std::fs::read_to_string(largest.join("per_source.md")).unwrap();
    assert!(md.contains("--component-share 1"), "{md}");
    let o = eval_set(
        &filter,
        &dir.path().join("report-bad"),
        &["--component-share".as_ref(), "1.5".as_ref()],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--component-share 1.5"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A filter trained on one of the two folders alone, under another
    // name and with no test part (every patient trained or validated on),
    // saw held-out patients of the segmenter's run: refused, though its
    // patients carry no `stk/` prefix and it names a subfolder of the
    // segmenter's folder.
    let leaky = dir.path().join("filter-leaky");
    let config = dir.path().join("leaky.toml");
    std::fs::write(
        &config,
        format!(
            "out = {:?}\nepochs = 1\nbatch = 8\ninput_size = 32\n\n[[sources]]\nname = \"alone\"\n\
             path = {:?}\n\n[model]\nkind = \"resnet18_filter\"\nwidth = 4\ndropout = 0.0\n\n\
             [split]\ntest = 0.0\nval = 0.2\n",
            leaky.display().to_string(),
            stacked.join("kaggle_3m").display().to_string()
        ),
    )
    .unwrap();
    let o = bin()
        .arg("fit")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = eval_set(&leaky, &dir.path().join("report-leaky"), &[]);
    let errors = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{errors}");
    assert!(
        errors.contains("trained or validated on") && errors.contains("held-out patients"),
        "{errors}"
    );

    // The two runs scored the same slices: `compare` pairs them, and the
    // strict one flags no tumour slice.
    let table = dir.path().join("compare.md");
    let o = bin()
        .arg("compare")
        .arg(report.join("slices.csv"))
        .arg(strict.join("slices.csv"))
        .args(["--resamples", "200", "--out"])
        .arg(&table)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout);
    assert_eq!(std::fs::read_to_string(&table).unwrap(), printed);
    let sensitivity: Vec<&str> = printed
        .lines()
        .filter(|l| l.contains("| f32 |") && l.contains("| appliance sensitivity |"))
        .collect();
    assert!(!sensitivity.is_empty(), "{printed}");
    for l in sensitivity {
        let second = l.split('|').nth(6).unwrap().trim();
        assert!(second.starts_with("0.000"), "{l}");
    }

    // `misses` on the strict run: every tumour slice missed, and never
    // with a mask standing (none can, at that minimum).
    let o = bin()
        .arg("misses")
        .arg(strict.join("slices.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<Vec<&str>> = printed
        .lines()
        .take_while(|l| !l.starts_with("Patients"))
        .filter(|l| l.contains("| f32 |") || l.contains("| int8 |"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert!(!rows.is_empty(), "{printed}");
    for cells in rows {
        assert_eq!(cells[3], cells[4], "all missed: {cells:?}");
        assert_eq!(cells[5], "0", "no mask stood: {cells:?}");
    }

    // A filter whose training patients include the segmenter's held-out
    // ones is refused by name: this one holds no patient out.
    let leaky = dir.path().join("leaky");
    let no_test = dir.path().join("no_test.toml");
    std::fs::write(&no_test, "[split]\ntest = 0.0\nval = 0.2\n").unwrap();
    let o = bin()
        .arg("fit")
        .arg("--config")
        .arg(&no_test)
        .args(["--model", "resnet18", "--filter-width", "4"])
        .args(["--input-size", "32", "--epochs", "1", "--batch", "8"])
        .arg("--data")
        .arg(format!("stk={}:1", stacked.display()))
        .arg("--data")
        .arg(format!("gry={}:0.5", grey.display()))
        .arg("--out")
        .arg(&leaky)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = eval_set(&leaky, &report, &[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("held-out patients"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
