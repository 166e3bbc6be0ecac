//! A picture to judge phantom realism at a glance: per row the real base
//! slice, then the phantom in each contrast, then its mask outlined.

use super::anatomy::{Volume, SIZE};
use super::render::{to_u8, CohortSettings, Contrast, PatientPlan, CONTRASTS};
use image::{Rgb, RgbImage};

/// Columns: real T1 | stacked (T1, FLAIR, T1c as RGB) | T1 | T1c | T2 | FLAIR | FLAIR + mask outline.
pub const COLUMNS: usize = 7;

/// Renders `rows` patients (those whose lesion shows), each on the slice where
/// its lesion is largest, with every other row on a small-lesion slice.
pub fn phantom_montage(volumes: &[Volume], seed: u64, rows: usize) -> RgbImage {
    let gap = 4;
    let cell = SIZE as u32 + gap;
    let mut out = RgbImage::from_pixel(
        COLUMNS as u32 * cell + gap,
        rows as u32 * cell + gap,
        Rgb([24, 24, 24]),
    );
    let settings = CohortSettings::default();
    let mut row = 0;
    let mut patient = 0;
    while row < rows && patient < 10 * rows + 10 {
        let plan = PatientPlan::draw(volumes, &settings, seed, patient);
        patient += 1;
        let volume = &volumes[plan.volume];
        let areas: Vec<(usize, usize)> = (0..plan.base.len())
            .map(|j| {
                (
                    plan.render(volume, j, true)
                        .mask
                        .iter()
                        .filter(|&&m| m)
                        .count(),
                    j,
                )
            })
            .filter(|(a, _)| *a > 0)
            .collect();
        let pick = if row % 2 == 1 {
            areas.iter().min()
        } else {
            areas.iter().max()
        };
        let Some(&(_, j)) = pick else { continue };
        let r = plan.render(volume, j, true);
        let base = &volume.slices[plan.base[j]];
        let y0 = gap + row as u32 * cell;
        let put = |out: &mut RgbImage, col: u32, f: &dyn Fn(usize) -> [u8; 3]| {
            for i in 0..SIZE * SIZE {
                let (x, y) = ((i % SIZE) as u32, (i / SIZE) as u32);
                out.put_pixel(gap + col * cell + x, y0 + y, Rgb(f(i)));
            }
        };
        put(&mut out, 0, &|i| [to_u8(base.t1[i]); 3]);
        put(&mut out, 1, &|i| {
            [
                to_u8(r.plane(Contrast::T1)[i]),
                to_u8(r.plane(Contrast::Flair)[i]),
                to_u8(r.plane(Contrast::T1c)[i]),
            ]
        });
        for (k, c) in CONTRASTS.iter().enumerate() {
            put(&mut out, 2 + k as u32, &|i| [to_u8(r.plane(*c)[i]); 3]);
        }
        let edge = |i: usize| {
            let (x, y) = (i % SIZE, i / SIZE);
            r.mask[i]
                && (x == 0
                    || y == 0
                    || x == SIZE - 1
                    || y == SIZE - 1
                    || !r.mask[i - 1]
                    || !r.mask[i + 1]
                    || !r.mask[i - SIZE]
                    || !r.mask[i + SIZE])
        };
        put(&mut out, 6, &|i| {
            if edge(i) {
                [255, 40, 40]
            } else {
                [to_u8(r.plane(Contrast::Flair)[i]); 3]
            }
        });
        row += 1;
    }
    out
}
