//! Evaluation charts as PNG: training curves, ROC, confusion matrix.
//!
//! plotters draws into an RGB buffer (its own PNG encoder would pull in a
//! second `image` version) and text uses DejaVu Sans embedded in the binary:
//! the build and the eval machines have no network and maybe no fontconfig.

use super::classification::{ConfusionCounts, RocPoint};
use super::png::write_rgb_png;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::OnceLock;

/// Pixel size (width, height) of [`plot_training_curves`]' PNG.
pub const CURVES_SIZE: (u32, u32) = (1200, 500);
/// Pixel size of [`plot_roc`]'s PNG.
pub const ROC_SIZE: (u32, u32) = (600, 600);
/// Pixel size of [`plot_confusion_matrix`]'s PNG.
pub const CONFUSION_SIZE: (u32, u32) = (560, 480);

pub(crate) const FONT: &str = "sans-serif";
const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const TRAIN_COLOUR: RGBColor = RGBColor(31, 119, 180);
const VAL_COLOUR: RGBColor = RGBColor(214, 39, 40);
const DICE_COLOUR: RGBColor = RGBColor(44, 160, 44);

/// One epoch of training, as logged. The score is the role's: Dice for a
/// segmenter, accuracy for a filter; NaN where it was not recorded (runs
/// from before the training score was kept have none for training).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub train_score: f64,
    pub val_score: f64,
}

pub(crate) type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;
pub(crate) type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Loss and the role's score (`score`: "Dice" or "accuracy"), train and
/// validation, against epoch, side by side. The epoch whose checkpoint is
/// kept (lowest validation loss: what early stopping keeps as `best`) is
/// marked on both.
pub fn plot_training_curves(epochs: &[EpochRecord], score: &str, path: &Path) -> Result<()> {
    if epochs.is_empty() {
        return Err(Error::Invalid("training curves: no epochs".into()));
    }
    let first = epochs.iter().map(|e| e.epoch).min().unwrap_or(0) as f64;
    let last = epochs.iter().map(|e| e.epoch).max().unwrap_or(0) as f64;
    let x_range = first..(last.max(first + 1.0));
    // Epochs are whole numbers: no more ticks than epochs, or labels repeat.
    let x_labels = ((last - first) as usize + 1).clamp(2, 10);
    let losses = epochs.iter().flat_map(|e| [e.train_loss, e.val_loss]);
    let loss_range = padded_range(losses);
    let kept = epochs
        .iter()
        .filter(|e| e.val_loss.is_finite())
        .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss));

    render(path, CURVES_SIZE, |root| {
        let (left, right) = root.split_horizontally(CURVES_SIZE.0 / 2);
        let mut loss = ChartBuilder::on(&left)
            .caption("loss", (FONT, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range.clone(), loss_range)?;
        loss.configure_mesh()
            .x_desc("epoch")
            .x_labels(x_labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc("loss")
            .label_style((FONT, 14))
            .draw()?;
        for (name, colour, pick) in [
            (
                "train",
                TRAIN_COLOUR,
                (|e: &EpochRecord| e.train_loss) as fn(&EpochRecord) -> f64,
            ),
            ("validation", VAL_COLOUR, |e: &EpochRecord| e.val_loss),
        ] {
            loss.draw_series(LineSeries::new(
                finite_points(epochs, pick),
                colour.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        if let Some(k) = kept {
            loss.draw_series([Circle::new(
                (k.epoch as f64, k.val_loss),
                6,
                BLACK.stroke_width(2),
            )])?
            .label(format!("kept: epoch {}", k.epoch))
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
        }
        // Losses fall: the top right is where the curves are not.
        loss.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()?;

        let mut dice = ChartBuilder::on(&right)
            .caption(score, (FONT, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range, 0.0..1.0)?;
        dice.configure_mesh()
            .x_desc("epoch")
            .x_labels(x_labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(score)
            .label_style((FONT, 14))
            .draw()?;
        for (name, colour, pick) in [
            (
                format!("train {score}"),
                TRAIN_COLOUR,
                (|e: &EpochRecord| e.train_score) as fn(&EpochRecord) -> f64,
            ),
            (format!("validation {score}"), DICE_COLOUR, |e| e.val_score),
        ] {
            let points = finite_points(epochs, pick);
            if points.is_empty() {
                continue;
            }
            dice.draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        if let Some(k) = kept.filter(|k| k.val_score.is_finite()) {
            dice.draw_series([Circle::new(
                (k.epoch as f64, k.val_score),
                6,
                BLACK.stroke_width(2),
            )])?
            .label(format!(
                "kept: epoch {}, {score} {:.3}",
                k.epoch, k.val_score
            ))
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
        }
        dice.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()?;
        Ok(())
    })
}

/// ROC curve with the chance diagonal; the AUC (or why there is none) in the title.
pub fn plot_roc(roc: &[RocPoint], auc: Option<f64>, path: &Path) -> Result<()> {
    let title = match auc {
        Some(a) => format!("filter ROC, AUC = {a:.3}"),
        None => "filter ROC undefined (one class only)".to_string(),
    };
    render(path, ROC_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 22))
            .margin(16)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("false positive rate (1 - specificity)")
            .y_desc("true positive rate (sensitivity)")
            .label_style((FONT, 14))
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            6,
            4,
            RGBColor(128, 128, 128).stroke_width(1),
        ))?;
        chart.draw_series(LineSeries::new(
            roc.iter().map(|p| (p.fpr, p.tpr)),
            TRAIN_COLOUR.stroke_width(2),
        ))?;
        Ok(())
    })
}

/// 2x2 heatmap of slice counts: rows the truth, columns the filter's call.
pub fn plot_confusion_matrix(counts: &ConfusionCounts, threshold: f32, path: &Path) -> Result<()> {
    let cells = [
        [("TP", counts.tp), ("FN", counts.fn_)],
        [("FP", counts.fp), ("TN", counts.tn)],
    ];
    let max = cells
        .iter()
        .flatten()
        .map(|c| c.1)
        .max()
        .unwrap_or(0)
        .max(1);
    let (x0, y0, cell) = (170i32, 110i32, 170i32);
    let centred = |size: u32| {
        (FONT, size)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center))
    };
    render(path, CONFUSION_SIZE, |root| {
        let w = CONFUSION_SIZE.0 as i32;
        root.draw(&Text::new(
            format!("filter per slice, tumour if p >= {threshold:.2}"),
            (w / 2, 24),
            centred(20),
        ))?;
        root.draw(&Text::new("filter call", (x0 + cell, 60), centred(16)))?;
        for (j, name) in ["tumour", "clear"].into_iter().enumerate() {
            let x = x0 + cell * j as i32 + cell / 2;
            root.draw(&Text::new(name, (x, y0 - 20), centred(16)))?;
        }
        for (i, name) in ["truth: tumour", "truth: clear"].into_iter().enumerate() {
            let y = y0 + cell * i as i32 + cell / 2;
            root.draw(&Text::new(name, (x0 / 2, y), centred(16)))?;
        }
        for (i, row) in cells.iter().enumerate() {
            for (j, &(name, n)) in row.iter().enumerate() {
                let (x, y) = (x0 + cell * j as i32, y0 + cell * i as i32);
                let share = n as f64 / max as f64;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    heat(share).filled(),
                ))?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], BLACK))?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let (cx, cy) = (x + cell / 2, y + cell / 2);
                root.draw(&Text::new(name, (cx, cy - 22), centred(18).color(&ink)))?;
                root.draw(&Text::new(
                    n.to_string(),
                    (cx, cy + 14),
                    centred(30).color(&ink),
                ))?;
            }
        }
        Ok(())
    })
}

// White to dark blue, so the larger count reads as the darker cell.
fn heat(share: f64) -> RGBColor {
    let lerp = |from: f64, to: f64| (from + (to - from) * share.clamp(0.0, 1.0)).round() as u8;
    RGBColor(lerp(255.0, 8.0), lerp(255.0, 48.0), lerp(255.0, 107.0))
}

fn finite_points(epochs: &[EpochRecord], pick: impl Fn(&EpochRecord) -> f64) -> Vec<(f64, f64)> {
    epochs
        .iter()
        .map(|e| (e.epoch as f64, pick(e)))
        .filter(|(_, y)| y.is_finite())
        .collect()
}

// Diverging losses (inf, NaN) are left out rather than flattening the plot.
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let bottom = if lo < 0.0 { lo - pad } else { 0.0 };
    bottom..(hi + pad)
}

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    ok.then_some(())
        .ok_or_else(|| Error::Invalid("embedded DejaVu Sans font was rejected".into()))
}

pub(crate) fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Canvas) -> Drawn,
) -> Result<()> {
    register_font()?;
    let fail = |e: &dyn std::fmt::Display| Error::Invalid(format!("{}: {e}", path.display()));
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        draw(&root).map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    write_rgb_png(path, size, &rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(path: &Path) -> image::RgbImage {
        assert!(std::fs::metadata(path).unwrap().len() > 0);
        image::open(path).unwrap().to_rgb8()
    }

    /// Text was drawn if the PNG holds many grey levels (antialiased glyphs),
    /// not only the few flat colours of lines and fills.
    fn has_antialiased_text(img: &image::RgbImage) -> bool {
        let greys: std::collections::HashSet<u8> = img
            .pixels()
            .filter(|p| p[0] == p[1] && p[1] == p[2])
            .map(|p| p[0])
            .collect();
        greys.len() > 20
    }

    fn epochs() -> Vec<EpochRecord> {
        (1..=12)
            .map(|e| EpochRecord {
                epoch: e,
                train_loss: 1.0 / e as f64,
                val_loss: 1.2 / e as f64 + 0.05,
                train_score: 1.0 - 0.8 / (e as f64 + 1.0),
                val_score: 1.0 - 1.0 / (e as f64 + 1.0),
            })
            .collect()
    }

    #[test]
    fn the_score_panel_draws_a_training_curve_only_when_one_was_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let train_pixels_right = |epochs: &[EpochRecord]| {
            let path = dir.path().join("score.png");
            plot_training_curves(epochs, "accuracy", &path).unwrap();
            let img = decoded(&path);
            let half = img.width() / 2;
            img.enumerate_pixels()
                .filter(|(x, _, p)| {
                    *x >= half
                        && p[0] == TRAIN_COLOUR.0
                        && p[1] == TRAIN_COLOUR.1
                        && p[2] == TRAIN_COLOUR.2
                })
                .count()
        };
        let recorded = epochs();
        let mut older = epochs();
        older.iter_mut().for_each(|e| e.train_score = f64::NAN);
        assert!(train_pixels_right(&recorded) > 50);
        assert_eq!(train_pixels_right(&older), 0);
    }

    #[test]
    fn training_curves_png_has_expected_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let mut e = epochs();
        e[3].val_loss = f64::NAN;
        plot_training_curves(&e, "Dice", &path).unwrap();
        let img = decoded(&path);
        assert_eq!(img.dimensions(), CURVES_SIZE);
        assert!(has_antialiased_text(&img));
    }

    #[test]
    fn training_curves_with_one_epoch_and_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.png");
        plot_training_curves(&epochs()[..1], "Dice", &path).unwrap();
        assert_eq!(decoded(&path).dimensions(), CURVES_SIZE);
        assert!(plot_training_curves(&[], "Dice", &path).is_err());
    }

    #[test]
    fn roc_png_has_expected_size_with_and_without_auc() {
        let dir = tempfile::tempdir().unwrap();
        let roc = [
            RocPoint { fpr: 0.0, tpr: 0.0 },
            RocPoint { fpr: 0.1, tpr: 0.7 },
            RocPoint { fpr: 1.0, tpr: 1.0 },
        ];
        let path = dir.path().join("roc.png");
        plot_roc(&roc, Some(0.93), &path).unwrap();
        let img = decoded(&path);
        assert_eq!(img.dimensions(), ROC_SIZE);
        assert!(has_antialiased_text(&img));
        let undefined = dir.path().join("roc_undefined.png");
        plot_roc(&[], None, &undefined).unwrap();
        assert_eq!(decoded(&undefined).dimensions(), ROC_SIZE);
    }

    #[test]
    fn confusion_png_has_expected_size_and_follows_the_counts() {
        let dir = tempfile::tempdir().unwrap();
        let a = ConfusionCounts {
            tp: 40,
            fp: 3,
            fn_: 5,
            tn: 90,
        };
        let b = ConfusionCounts { tp: 41, ..a };
        let (pa, pa2, pb) = (
            dir.path().join("a.png"),
            dir.path().join("a2.png"),
            dir.path().join("b.png"),
        );
        plot_confusion_matrix(&a, 0.5, &pa).unwrap();
        plot_confusion_matrix(&a, 0.5, &pa2).unwrap();
        plot_confusion_matrix(&b, 0.5, &pb).unwrap();
        let (ia, ia2, ib) = (decoded(&pa), decoded(&pa2), decoded(&pb));
        assert_eq!(ia.dimensions(), CONFUSION_SIZE);
        assert!(has_antialiased_text(&ia));
        assert_eq!(ia, ia2, "same counts, same picture");
        assert_ne!(ia, ib, "other counts, other picture");
    }

    #[test]
    fn unwritable_path_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("roc.png");
        assert!(matches!(plot_roc(&[], None, &path), Err(Error::Io { .. })));
    }
}
