//! `eval-set`: a shipped model set scored per source, as the appliance runs
//! it (tract, f32 and int8), on the held-out patients of the run it came
//! from and on folders of real clear slices.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use trainer::export::per_source::{
    clear_cohort, render_markdown, run_set, score_cohort, slice_rows, test_cohorts,
    training_cohorts, validation_cohorts, Cohort, CohortScores, Flip, LoadedSet, SLICE_CSV_HEADER,
};
use trainer::report::{write_montage, MontageRow};
use trainer::train::checkpoint::{load_run_data, run_config};

#[derive(clap::Args)]
pub struct EvalSetArgs {
    /// Model set folder (manifest.json and its ONNX files)
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// The segmenter's run folder, or the config TOML it was trained from:
    /// its data sources and split give the held-out patients
    #[arg(long)]
    run: PathBuf,
    /// The filter's run folder or config TOML: refused when its training or
    /// validation patients include a held-out patient of --run
    #[arg(long)]
    filter_run: Option<PathBuf>,
    /// A folder of real slices without tumour, NAME=DIR (repeatable): every
    /// image under it is a clear slice
    #[arg(long)]
    clear: Vec<String>,
    /// Precisions to run (the segmenter's file must exist at each)
    #[arg(long, value_delimiter = ',', default_value = "f32,int8")]
    precision: Vec<String>,
    /// Report folder: per_source.md, per_source.json, montage_real.png
    /// (pictures of the data's pixels: keep out of the repository) and
    /// montage_clear.png (the --clear folders' slices)
    #[arg(long)]
    out: PathBuf,
    /// A model card to append the per-source tables to (replacing the ones
    /// an earlier eval-set appended)
    #[arg(long)]
    card: Option<PathBuf>,
    /// Score the run's validation patients instead of its held-out test
    /// patients: to choose a setting (e.g. --seg-threshold) without looking
    /// at the test patients
    #[arg(long, conflicts_with = "card")]
    validation: bool,
    /// Score the run's training patients instead (their slices as acquired,
    /// without the run's cuts): how well the model fits what it learnt
    /// from, to set beside the validation figures; never a result
    #[arg(long, conflicts_with_all = ["card", "validation"])]
    training: bool,
    /// Cut the segmenter's per-pixel P(tumour) here instead of at the
    /// manifest's threshold
    #[arg(long, conflicts_with = "card")]
    seg_threshold: Option<f32>,
    /// Call a slice clear when its mask has fewer pixels than this (model
    /// resolution) instead of the manifest's min_mask_px
    #[arg(long, conflicts_with = "card")]
    min_mask_px: Option<usize>,
    /// Clear every mask component under this share of the slice's largest
    /// (0 to 1, model resolution, before the minimum mask is counted)
    /// instead of the manifest's rule
    #[arg(long, conflicts_with = "card")]
    component_share: Option<f32>,
    /// Run these stages on the slice and on its left-right mirror and
    /// average the two (test-time flip; the appliance does not do this):
    /// filter, segmenter or both
    #[arg(long, value_delimiter = ',', conflicts_with = "card")]
    flip: Vec<FlipStage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FlipStage {
    Filter,
    Segmenter,
}

/// Whose slices are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patients {
    HeldOut,
    Validation,
    Training,
}

impl Patients {
    fn of(a: &EvalSetArgs) -> Self {
        match (a.training, a.validation) {
            (true, _) => Self::Training,
            (false, true) => Self::Validation,
            (false, false) => Self::HeldOut,
        }
    }

    /// As the report's header names them.
    fn label(self) -> &'static str {
        match self {
            Self::HeldOut => "held-out",
            Self::Validation => "validation",
            Self::Training => "training (seen in training, not a held-out figure)",
        }
    }

    /// The flag that chose them, as the report's command line shows it.
    fn flag(self) -> &'static str {
        match self {
            Self::HeldOut => "",
            Self::Validation => " --validation",
            Self::Training => " --training",
        }
    }
}

/// Where eval-set's section of a model card begins.
const CARD_MARKER: &str = "<!-- per-source tables: neuroscreen-train eval-set -->";

pub fn run(a: EvalSetArgs) -> Result<()> {
    let manifest_path = a.models.join("manifest.json");
    let manifest = models::Manifest::load(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    manifest
        .verify_files(&a.models)
        .with_context(|| format!("checking {}", a.models.display()))?;
    let mut cfg = run_config(&a.run).with_context(|| format!("reading {}", a.run.display()))?;
    cfg.input_size = manifest.segmenter().input.width();
    let patients = Patients::of(&a);
    if patients == Patients::Training {
        // The cuts are added to the training part only; the split itself
        // does not depend on them.
        for source in &mut cfg.sources {
            source.reslice = 0;
        }
    }
    let data = load_run_data(&cfg).with_context(|| format!("loading {}", cfg.data_label()))?;
    if let Some(f) = &a.filter_run {
        let fcfg = run_config(f).with_context(|| format!("reading {}", f.display()))?;
        let fdata = load_run_data(&fcfg)?;
        // Compared by folder and id: the two runs may name their sources
        // differently, or have one source where the other has several.
        let held_out = data.patients_by_folder(&data.split.test);
        let mut seen = fdata.patients_by_folder(&fdata.split.train);
        seen.extend(fdata.patients_by_folder(&fdata.split.val));
        let leaked = trainer::train::dataset::shared_patients(&held_out, &seen);
        anyhow::ensure!(
            leaked.is_empty(),
            "the filter run {} trained or validated on {} held-out patients of {} (e.g. {} in {})",
            f.display(),
            leaked.len(),
            a.run.display(),
            leaked[0].1,
            leaked[0].0.display()
        );
    }
    for r in &data.source_reports {
        println!("{r}");
    }
    let mut cohorts = match patients {
        Patients::Training => training_cohorts(&data)?,
        Patients::Validation => validation_cohorts(&data)?,
        Patients::HeldOut => test_cohorts(&data)?,
    };
    let held_out = cohorts.len();
    for c in &a.clear {
        let (name, dir) = c
            .split_once('=')
            .with_context(|| format!("--clear {c:?}: expected NAME=DIR"))?;
        let (cohort, problems) = clear_cohort(name, std::path::Path::new(dir), cfg.input_size)?;
        for p in &problems {
            eprintln!("skipped {p}");
        }
        println!(
            "{name}: {} clear slices from {dir}, {} files skipped",
            cohort.data.len(),
            problems.len()
        );
        cohorts.push(cohort);
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut all: Vec<CohortScores> = Vec::new();
    let (mut montage_rows, mut clear_rows) = (Vec::new(), Vec::new());
    let mut slices_csv = format!("{SLICE_CSV_HEADER}\n");
    for name in &a.precision {
        let precision = match name.as_str() {
            "f32" => models::manifest::Precision::F32,
            "int8" => models::manifest::Precision::Int8,
            other => anyhow::bail!("--precision {other}: expected f32 or int8"),
        };
        let Some(mut set) = LoadedSet::load(&a.models, &manifest, precision)? else {
            println!("{name}: the set has no segmenter file at this precision; skipped");
            continue;
        };
        if let Some(t) = a.seg_threshold {
            anyhow::ensure!(
                t > 0.0 && t < 1.0,
                "--seg-threshold {t}: expected a probability between 0 and 1"
            );
            set = set.with_segmenter_threshold(t);
        }
        if let Some(px) = a.min_mask_px {
            set = set.with_min_mask_px(px);
        }
        if let Some(share) = a.component_share {
            anyhow::ensure!(
                (0.0..=1.0).contains(&share),
                "--component-share {share}: expected a share between 0 and 1"
            );
            set = set.with_component_share(share);
        }
        set = set.with_flip(Flip {
            filter: a.flip.contains(&FlipStage::Filter),
            segmenter: a.flip.contains(&FlipStage::Segmenter),
        });
        let total: usize = cohorts.iter().map(|c| c.data.len()).sum();
        let bar = ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} slices {per_sec} {msg}")
                .expect("template"),
        );
        bar.set_prefix(name.clone());
        for (k, cohort) in cohorts.iter().enumerate() {
            bar.set_message(cohort.name.clone());
            let out = run_set(&set, &cohort.data)?;
            bar.inc(cohort.data.len() as u64);
            all.push(score_cohort(cohort, precision, &out)?);
            slices_csv.push_str(&slice_rows(cohort, precision, &out));
            for g in 0..cohort.groups.len() {
                let (part, part_out) = cohort.group(g, &out);
                all.push(score_cohort(&part, precision, &part_out)?);
            }
            if precision == models::manifest::Precision::F32 {
                let rows = rows_for(cohort, &out.masks);
                if k < held_out {
                    montage_rows.extend(rows);
                } else {
                    clear_rows.extend(rows);
                }
            }
        }
        bar.finish_and_clear();
    }
    let md = render_markdown(&all);
    print!("{md}");
    let flip: Vec<&str> = a
        .flip
        .iter()
        .map(|f| match f {
            FlipStage::Filter => "filter",
            FlipStage::Segmenter => "segmenter",
        })
        .collect();
    let header = format!(
        "# Per-source evaluation of {}\n\nSegmenter run {} (data: {}; patient-level split seed {}, each source split on its own); every {} slice, tract, model resolution {} px{}{}. Command: `neuroscreen-train eval-set --models {} --run {}{}{}{}{}`.\n\n",
        a.models.display(),
        a.run.display(),
        cfg.data_label(),
        cfg.seed,
        patients.label(),
        cfg.input_size,
        a.seg_threshold
            .map(|t| format!(", segmenter cut at P >= {t} (not the manifest's)"))
            .unwrap_or_default()
            + &a.min_mask_px
                .map(|px| format!(", masks under {px} px emptied (not the manifest's minimum)"))
                .unwrap_or_default()
            + &a.component_share
                .map(|s| format!(", mask parts under {s} of the largest cleared"))
                .unwrap_or_default(),
        if flip.is_empty() {
            String::new()
        } else {
            format!(
                ", {} averaged over the slice and its mirror (not what the appliance does)",
                flip.join(" and ")
            )
        },
        a.models.display(),
        a.run.display(),
        patients.flag(),
        a.seg_threshold
            .map(|t| format!(" --seg-threshold {t}"))
            .unwrap_or_default()
            + &a.min_mask_px
                .map(|px| format!(" --min-mask-px {px}"))
                .unwrap_or_default()
            + &a.component_share
                .map(|s| format!(" --component-share {s}"))
                .unwrap_or_default(),
        if flip.is_empty() {
            String::new()
        } else {
            format!(" --flip {}", flip.join(","))
        },
        a.clear
            .iter()
            .map(|c| format!(" --clear {c}"))
            .collect::<String>()
    );
    let md_path = a.out.join("per_source.md");
    std::fs::write(&md_path, format!("{header}{md}"))
        .with_context(|| format!("writing {}", md_path.display()))?;
    let csv_path = a.out.join("slices.csv");
    std::fs::write(&csv_path, &slices_csv)
        .with_context(|| format!("writing {}", csv_path.display()))?;
    let json_path = a.out.join("per_source.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&all)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    if let Some(card) = &a.card {
        let text =
            std::fs::read_to_string(card).with_context(|| format!("reading {}", card.display()))?;
        let kept = text.split(CARD_MARKER).next().unwrap_or("").trim_end();
        let section = format!(
            "{kept}\n\n{CARD_MARKER}\n## Per source, as the appliance runs it\n\n{}{md}",
            header.trim_start_matches(|c| c != '\n').trim_start()
        );
        trainer::train::checkpoint::write_atomic(card, section.as_bytes())?;
        println!("appended the tables to {}", card.display());
    }
    if !montage_rows.is_empty() {
        write_montage(&montage_rows, &a.out.join("montage_real.png"))?;
    }
    if !clear_rows.is_empty() {
        write_montage(&clear_rows, &a.out.join("montage_clear.png"))?;
    }
    println!(
        "\nwrote {}, {}, {} (a row per slice), montage_real.png (the data's pixels: not for the repository) and montage_clear.png (the --clear folders' slices)",
        md_path.display(),
        json_path.display(),
        csv_path.display()
    );
    Ok(())
}

/// Up to four rows per cohort: its two largest lesions, its smallest, and a
/// clear slice the segmenter marked (or the first clear slice).
fn rows_for(cohort: &Cohort, masks: &[Vec<bool>]) -> Vec<MontageRow> {
    let d = &cohort.data;
    let mut tumour: Vec<usize> = (0..d.len()).filter(|&i| d.labels[i]).collect();
    tumour.sort_by_key(|&i| std::cmp::Reverse(d.true_area[i]));
    let mut pick: Vec<usize> = tumour.iter().take(2).copied().collect();
    if let Some(&small) = tumour.last() {
        if !pick.contains(&small) {
            pick.push(small);
        }
    }
    let clear: Vec<usize> = (0..d.len()).filter(|&i| !d.labels[i]).collect();
    if let Some(&c) = clear
        .iter()
        .find(|&&i| masks[i].iter().any(|&m| m))
        .or(clear.first())
    {
        pick.push(c);
    }
    let s = d.size;
    let n = (s * s) as usize;
    pick.into_iter()
        .map(|i| {
            let img = d.image(i);
            let px = |v: f32| (v.clamp(0.0, 1.0) * 255.0) as u8;
            MontageRow {
                image: image::RgbImage::from_fn(s, s, |x, y| {
                    let k = (y * s + x) as usize;
                    image::Rgb([px(img[k]), px(img[n + k]), px(img[2 * n + k])])
                }),
                truth: image::GrayImage::from_fn(s, s, |x, y| {
                    image::Luma([d.mask(i)[(y * s + x) as usize] * 255])
                }),
                prediction: image::GrayImage::from_fn(s, s, |x, y| {
                    image::Luma([u8::from(masks[i][(y * s + x) as usize]) * 255])
                }),
            }
        })
        .collect()
}
