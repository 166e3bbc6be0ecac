//! Triangle-filter resampling of one float plane, the arithmetic of the
//! `image` crate's `resize(.., FilterType::Triangle)` (image 0.25) done for
//! one channel on contiguous rows.
//!
//! Why not call `image`: the appliance resizes three planes of every slice
//! for the filter, and `image`'s generic path (four channels per pixel,
//! bounds-checked reads, one row of weights per output pixel) was a visible
//! share of the filter's stage. Why the same arithmetic, down to the order
//! of the sums: the shipped models were trained on `image`'s output, and the
//! trainer calls this too, so both sides stay bit-identical with what came
//! before (tested against `image` itself).

/// The source taps and normalised weights of each output position along an
/// axis of `src` samples resized to `dst`, all weights in one array (a
/// vector per output cost the horizontal pass a pointer chase per pixel).
struct Taps {
    /// Per output: first source sample, offset into `weights`, tap count.
    spans: Vec<(usize, usize, usize)>,
    weights: Vec<f32>,
}

fn triangle(x: f32) -> f32 {
    if x.abs() < 1.0 {
        1.0 - x.abs()
    } else {
        0.0
    }
}

impl Taps {
    fn new(src: u32, dst: u32) -> Self {
        let ratio = src as f32 / dst as f32;
        let sratio = if ratio < 1.0 { 1.0 } else { ratio };
        let support = sratio; // the triangle's support is 1 source pixel
        let (mut spans, mut weights) = (Vec::new(), Vec::new());
        for out in 0..dst {
            let centre = (out as f32 + 0.5) * ratio;
            let left = ((centre - support).floor() as i64).clamp(0, i64::from(src) - 1);
            let right = ((centre + support).ceil() as i64).clamp(left + 1, i64::from(src));
            // The kernel puts a pixel's centre at 0: compare from its edge.
            let centre = centre - 0.5;
            let mut ws: Vec<f32> = (left..right)
                .map(|i| triangle((i as f32 - centre) / sratio))
                .collect();
            let mut sum = 0.0f32;
            for w in &ws {
                sum += w;
            }
            for w in &mut ws {
                *w /= sum;
            }
            spans.push((left as usize, weights.len(), ws.len()));
            weights.extend(ws);
        }
        Self { spans, weights }
    }

    /// Each output's first source sample and its weights, in order.
    fn iter(&self) -> impl Iterator<Item = (usize, &[f32])> {
        self.spans
            .iter()
            .map(|&(first, at, n)| (first, &self.weights[at..at + n]))
    }
}

/// `plane` (`sw` x `sh`, row-major) resampled to `dw` x `dh`, each output
/// clamped to `lo..=hi` as `image` clamps to its pixel type's range.
pub fn triangle_resize(
    plane: &[f32],
    (sw, sh): (u32, u32),
    (dw, dh): (u32, u32),
    (lo, hi): (f32, f32),
) -> Vec<f32> {
    assert_eq!(plane.len(), (sw * sh) as usize, "plane size");
    let (sw_us, dw_us) = (sw as usize, dw as usize);
    // Vertical pass first, as `image` does: whole rows at a time, each
    // output value still summed over its taps in order from zero.
    let rows = Taps::new(sh, dh);
    let mut tmp = vec![0.0f32; sw_us * dh as usize];
    for (out_row, (first, ws)) in tmp.chunks_exact_mut(sw_us).zip(rows.iter()) {
        for (k, &w) in ws.iter().enumerate() {
            let src = &plane[(first + k) * sw_us..(first + k + 1) * sw_us];
            for (acc, &v) in out_row.iter_mut().zip(src) {
                *acc += v * w;
            }
        }
    }
    let cols = Taps::new(sw, dw);
    let mut out = vec![0.0f32; dw_us * dh as usize];
    // Four rows at a time: each output is still one chain of dependent adds
    // (the order `image` sums in), so four rows give the CPU four chains to
    // overlap where one row left it waiting on each add.
    let mut blocks = out.chunks_exact_mut(4 * dw_us);
    let mut sources = tmp.chunks_exact(4 * sw_us);
    for (out_rows, tmp_rows) in (&mut blocks).zip(&mut sources) {
        horizontal::<4>(out_rows, tmp_rows, &cols, (lo, hi));
    }
    let (out_rest, tmp_rest) = (blocks.into_remainder(), sources.remainder());
    for (out_row, tmp_row) in out_rest
        .chunks_exact_mut(dw_us)
        .zip(tmp_rest.chunks_exact(sw_us))
    {
        horizontal::<1>(out_row, tmp_row, &cols, (lo, hi));
    }
    out
}

/// The horizontal pass over `R` rows: `out` holds `R` output rows, `tmp`
/// the `R` matching rows of the vertical pass.
fn horizontal<const R: usize>(out: &mut [f32], tmp: &[f32], cols: &Taps, (lo, hi): (f32, f32)) {
    let (dw, sw) = (out.len() / R, tmp.len() / R);
    for (o, (first, ws)) in cols.iter().enumerate() {
        let mut t = [0.0f32; R];
        for (k, &w) in ws.iter().enumerate() {
            for (r, acc) in t.iter_mut().enumerate() {
                *acc += tmp[r * sw + first + k] * w;
            }
        }
        for (r, &v) in t.iter().enumerate() {
            out[r * dw + o] = if v < lo {
                lo
            } else if v > hi {
                hi
            } else {
                v
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops::{self, FilterType};
    use image::{ImageBuffer, Luma};

    fn plane(w: u32, h: u32, seed: u32) -> Vec<f32> {
        // Deterministic values spread over 0..=1, ends included.
        (0..w * h)
            .map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(seed)) % 1001) as f32 / 1000.0)
            .collect()
    }

    #[test]
    fn matches_the_image_crate_bit_for_bit() {
        for (src, dst) in [
            ((256, 256), (128, 128)),
            ((240, 240), (128, 128)),
            ((100, 100), (128, 128)),
            ((256, 200), (128, 100)),
            ((37, 53), (64, 17)),
            ((1, 5), (3, 2)),
        ] {
            let p = plane(src.0, src.1, 7);
            let img =
                ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(src.0, src.1, p.clone()).unwrap();
            let want = imageops::resize(&img, dst.0, dst.1, FilterType::Triangle).into_raw();
            let got = triangle_resize(&p, src, dst, (0.0, 1.0));
            assert_eq!(got.len(), want.len());
            let differ = got
                .iter()
                .zip(&want)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(differ, 0, "{src:?} -> {dst:?}");
        }
    }

    #[test]
    fn clamps_to_the_bounds_given() {
        let p = vec![-3.0, 5.0, -3.0, 5.0];
        let wide = triangle_resize(&p, (4, 1), (2, 1), (-3.0, 5.0));
        assert!(wide.iter().all(|v| (-3.0..=5.0).contains(v)) && wide[0] > 0.0);
        let unit = triangle_resize(&p, (4, 1), (2, 1), (0.0, 1.0));
        assert!(unit.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
