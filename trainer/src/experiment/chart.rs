//! The results chart: mean Dice per loss, one bar per architecture, the
//! spread over seeds as error bars; tumour slices on the left, small lesions
//! (where the seed says Tversky helps) on the right.

use super::results_doc::Aggregate;
use super::scores::Scores;
use crate::report::plots::{render, Canvas, Drawn, FONT};
use crate::Result;
use plotters::prelude::*;
use std::path::Path;

pub const CHART_SIZE: (u32, u32) = (1200, 500);
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

type Pick = fn(&Scores) -> Option<f64>;

pub fn plot_results(rows: &[Aggregate], path: &Path) -> Result<()> {
    let mut losses: Vec<&str> = Vec::new();
    let mut archs: Vec<&str> = Vec::new();
    for r in rows {
        if !losses.contains(&r.loss.as_str()) {
            losses.push(&r.loss);
        }
        if !archs.contains(&r.arch.as_str()) {
            archs.push(&r.arch);
        }
    }
    render(path, CHART_SIZE, |root| {
        let (left, right) = root.split_horizontally(CHART_SIZE.0 / 2);
        panel(
            &left,
            "per-slice Dice, tumour slices",
            rows,
            &losses,
            &archs,
            |s| Some(s.slice_dice_tumour),
        )?;
        panel(
            &right,
            "per-slice Dice, small lesions",
            rows,
            &losses,
            &archs,
            |s| s.small_dice,
        )
    })
}

fn panel(
    area: &Canvas,
    title: &str,
    rows: &[Aggregate],
    losses: &[&str],
    archs: &[&str],
    pick: Pick,
) -> Drawn {
    let n = losses.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..(n - 0.5), 0.0..1.0)?;
    let names: Vec<String> = losses.iter().map(|s| s.to_string()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(1)
        .x_labels(losses.len().max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("Dice (mean over seeds, bars: min-max)")
        .label_style((FONT, 14))
        .draw()?;
    let width = 0.8 / archs.len().max(1) as f64;
    for (j, arch) in archs.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        let offset = (j as f64 - (archs.len() as f64 - 1.0) / 2.0) * width;
        let bars: Vec<(f64, f64, f64, f64)> = losses
            .iter()
            .enumerate()
            .filter_map(|(i, loss)| {
                let row = rows.iter().find(|r| &r.arch == arch && &r.loss == loss)?;
                let (mean, _) = row.stat(pick)?;
                let (lo, hi) = row.range(pick)?;
                Some((i as f64 + offset, mean, lo, hi))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|&(x, mean, _, _)| {
                Rectangle::new(
                    [(x - width * 0.45, 0.0), (x + width * 0.45, mean)],
                    colour.filled(),
                )
            }))?
            .label(*arch)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
        chart.draw_series(bars.iter().map(|&(x, mean, lo, hi)| {
            ErrorBar::new_vertical(x, lo, mean, hi, BLACK.stroke_width(2), 10)
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}
