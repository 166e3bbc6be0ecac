//! Coronal and sagittal slices cut from a patient's stack of axial slices.
//!
//! Why: the LGG set is axial only and the Figshare set, the only source of
//! other planes, has a tumour on every slice, so a model trained on both
//! learns that a slice which is not axial holds a tumour (measured on the
//! registry's coronal T1 head, docs/EVALUATION.md). Cutting LGG's volumes
//! along the other two axes gives clear non-axial slices (and tumour ones,
//! with their masks cut the same way). The axial spacing is not in the
//! files, so the stack is stretched until the head is about as tall as
//! 0.8 of its width: the cut slices are blurrier across the axial planes
//! than a real coronal acquisition, an approximation stated where used.

use crate::data::lgg::{Sample, SliceRecord};
use models::SliceImage;

/// Which axis a cut runs across.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// A row of every axial slice: left-right by superior-inferior.
    Coronal,
    /// A column of every axial slice: anterior-posterior by
    /// superior-inferior.
    Sagittal,
}

/// The head's height over its width in a cut; the axial spacing is unknown.
const HEIGHT_OVER_WIDTH: f32 = 0.8;

/// `planes` coronal and `planes` sagittal slices of one patient, cut at even
/// steps through the middle 70 % of the head. `slices` are the patient's
/// axial slices in any order; they are sorted by slice number, the first
/// taken as the most inferior (as in LGG). Empty when there are fewer than
/// three slices or they differ in size or channels.
pub fn cut_patient(slices: &[&Sample], planes: usize) -> Vec<Sample> {
    let mut stack: Vec<&Sample> = slices.to_vec();
    stack.sort_by_key(|s| s.record.index);
    let Some(first) = stack.first() else {
        return Vec::new();
    };
    let (w, h, c) = (
        first.image.width as usize,
        first.image.height as usize,
        first.image.channels,
    );
    let same = stack.iter().all(|s| {
        (
            s.image.width as usize,
            s.image.height as usize,
            s.image.channels,
        ) == (w, h, c)
            && s.mask.len() == w * h
    });
    if stack.len() < 3 || !same || planes == 0 {
        return Vec::new();
    }
    let (cols, rows) = head_extent(&stack, w, h);
    let width = (cols.1 - cols.0 + 1) as f32;
    let n = stack.len();
    let stretch = (HEIGHT_OVER_WIDTH * width / n as f32).clamp(1.0, 8.0);
    let height = ((n as f32 * stretch).round() as usize).max(n);
    let mut out = Vec::with_capacity(2 * planes);
    for (plane, (lo, hi)) in [(Plane::Coronal, rows), (Plane::Sagittal, cols)] {
        let extent = (hi - lo) as f32;
        for k in 0..planes {
            let at = lo as f32 + extent * (0.15 + 0.7 * (k as f32 + 0.5) / planes as f32);
            out.push(cut(&stack, plane, at.round() as usize, height, (w, h, c)));
        }
    }
    out
}

/// The columns and rows (inclusive bounds) where any slice shows the head:
/// pixels above a tenth of the volume's bright end (its 99.5th percentile)
/// in any channel.
fn head_extent(stack: &[&Sample], w: usize, h: usize) -> ((usize, usize), (usize, usize)) {
    let mut values: Vec<f32> = stack
        .iter()
        .flat_map(|s| s.image.data.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let bright = if values.is_empty() {
        0.0
    } else {
        let k = ((values.len() - 1) as f32 * 0.995) as usize;
        *values.select_nth_unstable_by(k, f32::total_cmp).1
    };
    let cut = 0.1 * bright;
    let (mut x0, mut x1, mut y0, mut y1) = (w, 0, h, 0);
    for s in stack {
        for (i, px) in s.image.data.chunks_exact(w).enumerate() {
            let y = i % h;
            for (x, &v) in px.iter().enumerate() {
                if v > cut {
                    x0 = x0.min(x);
                    x1 = x1.max(x);
                    y0 = y0.min(y);
                    y1 = y1.max(y);
                }
            }
        }
    }
    if x0 > x1 || y0 > y1 {
        ((0, w - 1), (0, h - 1))
    } else {
        ((x0, x1), (y0, y1))
    }
}

/// One cut at row (coronal) or column (sagittal) `at`, `height` rows tall,
/// superior at the top, linear between neighbouring axial slices; the mask
/// is cut the same way and kept where it reaches one half.
fn cut(
    stack: &[&Sample],
    plane: Plane,
    at: usize,
    height: usize,
    (w, h, c): (usize, usize, usize),
) -> Sample {
    let across = match plane {
        Plane::Coronal => w,
        Plane::Sagittal => h,
    };
    // Where pixel `i` of the cut's line lies in an axial slice's plane.
    let index = |i: usize| match plane {
        Plane::Coronal => at * w + i,
        Plane::Sagittal => i * w + at,
    };
    let n = stack.len();
    let mut data = vec![0.0f32; c * height * across];
    let mut mask = vec![0u8; height * across];
    for r in 0..height {
        // Row 0 is the top of the head: the last (most superior) slice.
        let z = (n - 1) as f32 * (1.0 - r as f32 / (height - 1).max(1) as f32);
        let below = (z.floor() as usize).min(n - 1);
        let above = (below + 1).min(n - 1);
        let t = z - below as f32;
        let (a, b) = (&stack[below], &stack[above]);
        for ch in 0..c {
            let (pa, pb) = (a.image.plane(ch), b.image.plane(ch));
            let row = &mut data[(ch * height + r) * across..(ch * height + r + 1) * across];
            for (i, v) in row.iter_mut().enumerate() {
                *v = pa[index(i)] * (1.0 - t) + pb[index(i)] * t;
            }
        }
        let marked = |m: &[u8], i: usize| if m[index(i)] != 0 { 1.0 } else { 0.0 };
        for (i, m) in mask[r * across..(r + 1) * across].iter_mut().enumerate() {
            let v = marked(&a.mask, i) * (1.0 - t) + marked(&b.mask, i) * t;
            *m = u8::from(v >= 0.5);
        }
    }
    let first = &stack[0].record;
    let name = match plane {
        Plane::Coronal => format!("coronal cut at row {at}"),
        Plane::Sagittal => format!("sagittal cut at column {at}"),
    };
    Sample {
        record: SliceRecord {
            patient: first.patient.clone(),
            index: 0,
            image: first.image.with_file_name(&name),
            mask: first.mask.with_file_name(&name),
        },
        image: SliceImage::new(
            across as u32,
            height as u32,
            c,
            stack[0].image.bit_depth,
            data,
        ),
        mask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// An axial stack of `n` slices, `w` x `h`, 3 channels: a bright box
    /// (the head) whose value is the slice number, and a tumour cube in
    /// slices 4..=6, columns 10..14, rows 20..26.
    fn stack(n: u32, w: u32, h: u32) -> Vec<Sample> {
        (1..=n)
            .map(|k| {
                let mut data = vec![0.0f32; 3 * (w * h) as usize];
                let mut mask = vec![0u8; (w * h) as usize];
                for ch in 0..3 {
                    for y in 4..h - 4 {
                        for x in 2..w - 2 {
                            data[(ch * (w * h) + y * w + x) as usize] = 100.0 + k as f32;
                        }
                    }
                }
                if (4..=6).contains(&k) {
                    for y in 20..26 {
                        for x in 10..14 {
                            mask[(y * w + x) as usize] = 1;
                        }
                    }
                }
                Sample {
                    record: SliceRecord {
                        patient: "P".into(),
                        index: k,
                        image: PathBuf::from(format!("P/P_{k}.png")),
                        mask: PathBuf::from(format!("P/P_{k}_mask.png")),
                    },
                    image: SliceImage::new(w, h, 3, 8, data),
                    mask,
                }
            })
            .collect()
    }

    #[test]
    fn cuts_both_planes_with_the_head_upright_and_the_mask_carried() {
        let slices = stack(10, 40, 48);
        // Shuffled: the cut must sort by slice number itself.
        let mut refs: Vec<&Sample> = slices.iter().rev().collect();
        refs.swap(2, 7);
        let cuts = cut_patient(&refs, 3);
        assert_eq!(cuts.len(), 6);
        // Head 36 columns wide, 10 slices: stretched 0.8 * 36 / 10 = 2.88.
        let height = (10.0f32 * 2.88).round() as u32;
        for (k, s) in cuts.iter().enumerate() {
            let across = if k < 3 { 40 } else { 48 };
            assert_eq!((s.image.width, s.image.height), (across, height), "cut {k}");
            assert_eq!(s.record.patient, "P");
            // Top row from the most superior slice (10), bottom from the first.
            let col = across as usize / 2;
            let top = s.image.plane(0)[col];
            let bottom = s.image.plane(0)[(height as usize - 1) * across as usize + col];
            assert_eq!((top, bottom), (110.0, 101.0), "cut {k}");
        }
        // The tumour (rows 20..26) lies on the coronal cuts through those rows
        // only, between the heights of slices 4 and 6.
        let rows_at = |k: usize| {
            let s = &cuts[k];
            let across = s.image.width as usize;
            let marked: Vec<usize> = (0..s.image.height as usize)
                .filter(|r| s.mask[r * across..(r + 1) * across].contains(&1))
                .collect();
            marked
        };
        let tumour_cuts: Vec<usize> = (0..3).filter(|&k| !rows_at(k).is_empty()).collect();
        assert_eq!(
            tumour_cuts.len(),
            1,
            "one of the three coronal cuts crosses rows 20..26"
        );
        let marked = rows_at(tumour_cuts[0]);
        // z = 9 * (1 - r / (h - 1)) must lie within slices 4..=6 (z 3..=5),
        // give or take the half-way rounding.
        for &r in &marked {
            let z = 9.0 * (1.0 - r as f32 / (height - 1) as f32);
            assert!((2.5..=5.5).contains(&z), "row {r} at z {z}");
        }
        let s = &cuts[tumour_cuts[0]];
        let across = s.image.width as usize;
        let cols: Vec<usize> = (0..across)
            .filter(|&x| s.mask[marked[0] * across + x] == 1)
            .collect();
        assert_eq!(cols, (10..14).collect::<Vec<_>>());
    }

    #[test]
    fn refuses_short_or_mixed_stacks() {
        let slices = stack(2, 40, 48);
        assert!(cut_patient(&slices.iter().collect::<Vec<_>>(), 2).is_empty());
        let mut mixed = stack(5, 40, 48);
        mixed[3].image = SliceImage::new(10, 10, 3, 8, vec![0.0; 300]);
        mixed[3].mask = vec![0; 100];
        assert!(cut_patient(&mixed.iter().collect::<Vec<_>>(), 2).is_empty());
        let fine = stack(5, 40, 48);
        assert!(cut_patient(&fine.iter().collect::<Vec<_>>(), 0).is_empty());
        assert_eq!(cut_patient(&fine.iter().collect::<Vec<_>>(), 2).len(), 4);
    }
}
