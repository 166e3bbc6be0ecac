//! Mapping a decoded slice to a model input and a model output back to the
//! slice. The trainer and the appliance both call [`prepare`] and
//! [`Geometry::to_source`], so what a model sees at run time is what it saw
//! in training.
//!
//! Order of operations: per-channel intensity normalisation on the source
//! pixels (statistics do not depend on the resize), grey replicated to three
//! channels, then the resize to the model's fixed input size.

use crate::resample::triangle_resize;
use crate::{Error, Result, SliceImage};
use serde::{Deserialize, Serialize};

/// How a slice of any size is brought to the model's square input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizePolicy {
    /// Scale each axis independently; right when inputs are already square.
    Stretch,
    /// Keep the aspect ratio and pad the short side with zeros (centred);
    /// right for camera frames and non-square acquisitions.
    Letterbox,
}

/// How raw intensities (any bit depth, any scanner scale) become model units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Normalisation {
    /// Divide by the format's full scale (255, 65535); fine for 8-bit files
    /// exported with a fixed window, wrong for raw scanner values.
    UnitRange,
    /// Per channel: map the `low`..`high` percentiles of the slice to 0..1 and
    /// clip. Robust to scanner scale and to a few hot pixels.
    Percentile { low: f32, high: f32 },
    /// Per channel: subtract the mean and divide by the standard deviation of
    /// the non-zero pixels (the head, not the air around it).
    ZScore,
}

/// The preprocessing recorded in the manifest for a model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub resize: ResizePolicy,
    pub normalisation: Normalisation,
}

impl Default for Preprocessing {
    fn default() -> Self {
        Self {
            resize: ResizePolicy::Letterbox,
            normalisation: Normalisation::Percentile {
                low: 0.5,
                high: 99.5,
            },
        }
    }
}

/// Where the source slice sits inside the model input, so outputs can be
/// mapped back to the source's own pixel grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub source_width: u32,
    pub source_height: u32,
    pub input_width: u32,
    pub input_height: u32,
    /// The rectangle of the input that holds image content (the rest is
    /// letterbox padding): x, y, width, height in input pixels.
    pub content: [u32; 4],
}

/// A model input: 3 planes of `height * width` floats, NCHW with N = 1.
#[derive(Debug, Clone)]
pub struct ModelInput {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
    pub geometry: Geometry,
    /// The raw slice's percentiles a [`Normalisation::Percentile`] measured,
    /// kept so a later step that windows the same slice (the overlay) need
    /// not measure them again; `None` for the other normalisations.
    pub window: Option<Window>,
}

/// Each channel's `low` and `high` percentiles of a raw slice.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub low: f32,
    pub high: f32,
    /// `(value at low, value at high)` per channel of the slice.
    pub channels: Vec<(f32, f32)>,
}

impl Geometry {
    pub fn new(source: (u32, u32), input: (u32, u32), policy: ResizePolicy) -> Self {
        let (sw, sh) = source;
        let (iw, ih) = input;
        let content = match policy {
            ResizePolicy::Stretch => [0, 0, iw, ih],
            ResizePolicy::Letterbox => {
                let scale = (iw as f64 / sw as f64).min(ih as f64 / sh as f64);
                let cw = ((sw as f64 * scale).round() as u32).clamp(1, iw);
                let ch = ((sh as f64 * scale).round() as u32).clamp(1, ih);
                [(iw - cw) / 2, (ih - ch) / 2, cw, ch]
            }
        };
        Self {
            source_width: sw,
            source_height: sh,
            input_width: iw,
            input_height: ih,
            content,
        }
    }

    /// Maps one input-sized plane (a probability or logit map) back onto the
    /// source grid: crop the content rectangle, resize bilinearly. Threshold
    /// after this, not before, so mask edges follow the source resolution.
    pub fn to_source(&self, plane: &[f32]) -> Vec<f32> {
        assert_eq!(plane.len(), (self.input_width * self.input_height) as usize);
        let [x0, y0, cw, ch] = self.content;
        let mut cropped = Vec::with_capacity((cw * ch) as usize);
        for y in y0..y0 + ch {
            let row = (y * self.input_width + x0) as usize;
            cropped.extend_from_slice(&plane[row..row + cw as usize]);
        }
        resize_plane(
            cropped,
            (cw, ch),
            self.source_width,
            self.source_height,
            false,
        )
    }

    /// Maps a source-sized plane into the input grid (zero padding outside the
    /// content rectangle): the forward twin of [`Geometry::to_source`].
    pub fn to_input(&self, plane: &[f32]) -> Vec<f32> {
        self.input_plane(plane.to_vec(), false)
    }

    /// [`Geometry::to_input`]; `unit`: the plane is known to lie in `0..=1`
    /// (a percentile-normalised one), which spares the resize a pass over
    /// the plane to find its range.
    fn input_plane(&self, plane: Vec<f32>, unit: bool) -> Vec<f32> {
        assert_eq!(
            plane.len(),
            (self.source_width * self.source_height) as usize
        );
        let [x0, y0, cw, ch] = self.content;
        let content = resize_plane(plane, (self.source_width, self.source_height), cw, ch, unit);
        if (cw, ch) == (self.input_width, self.input_height) {
            return content;
        }
        let mut out = vec![0.0f32; (self.input_width * self.input_height) as usize];
        for y in 0..ch {
            let row = &content[(y * cw) as usize..((y + 1) * cw) as usize];
            let start = ((y0 + y) * self.input_width + x0) as usize;
            out[start..start + cw as usize].copy_from_slice(row);
        }
        out
    }
}

/// `plane` (`src` = width, height) resampled to `w` x `h` with a triangle
/// filter: bilinear when enlarging, area-weighted when shrinking, so small
/// lesions are neither aliased away nor blocky.
/// `unit`: the plane is known to lie in `0..=1` (else its range is looked up).
fn resize_plane(plane: Vec<f32>, src: (u32, u32), w: u32, h: u32, unit: bool) -> Vec<f32> {
    if src == (w, h) {
        return plane;
    }
    // Results are clamped to 0..=1 as the image crate clamped them (what the
    // shipped models were trained on) when the plane lies in that range.
    // A plane outside it (z-scores) keeps its own range: clamping to 0..=1
    // lost every negative z-score, and only when a resize was needed.
    let bounds = if unit {
        (0.0, 1.0)
    } else {
        let (lo, hi) = value_range(&plane);
        if (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi) {
            (0.0, 1.0)
        } else {
            (lo, hi)
        }
    };
    triangle_resize(&plane, src, (w, h), bounds)
}

/// Normalises one channel's raw values in place; returns the percentiles a
/// [`Normalisation::Percentile`] measured.
pub fn normalise_plane(
    plane: &mut [f32],
    norm: Normalisation,
    full_scale: f32,
) -> Option<(f32, f32)> {
    match norm {
        Normalisation::UnitRange => {
            let inv = 1.0 / full_scale.max(f32::MIN_POSITIVE);
            plane.iter_mut().for_each(|v| *v *= inv);
            None
        }
        Normalisation::Percentile { low, high } => {
            let (lo, hi) = percentiles(plane, low, high);
            let span = hi - lo;
            if span <= f32::EPSILON {
                // A flat slice carries no contrast: map it to zeros rather
                // than dividing by zero.
                plane.iter_mut().for_each(|v| *v = 0.0);
            } else {
                // In f64: for float slices near f32's range, `v - lo` and
                // `span` overflow f32 and inf / inf is NaN.
                let (lo, span) = (f64::from(lo), f64::from(hi) - f64::from(lo));
                plane
                    .iter_mut()
                    .for_each(|v| *v = ((f64::from(*v) - lo) / span).clamp(0.0, 1.0) as f32);
            }
            Some((lo, hi))
        }
        Normalisation::ZScore => {
            let (sum, sq, n) = plane
                .iter()
                .filter(|v| **v != 0.0)
                .fold((0.0f64, 0.0f64, 0usize), |(s, q, n), &v| {
                    (s + v as f64, q + (v as f64) * (v as f64), n + 1)
                });
            if n < 2 {
                plane.iter_mut().for_each(|v| *v = 0.0);
                return None;
            }
            let mean = sum / n as f64;
            let std = ((sq / n as f64) - mean * mean).max(0.0).sqrt();
            let std = if std < 1e-6 { 1.0 } else { std };
            plane
                .iter_mut()
                .for_each(|v| *v = ((*v as f64 - mean) / std) as f32);
            None
        }
    }
}

/// The smallest and largest value of a plane (infinities when it is empty;
/// NaNs ignored).
fn value_range(plane: &[f32]) -> (f32, f32) {
    // Sixteen running minima and maxima: a single fold is one long chain of
    // dependent min/max instructions that the compiler may not reorder.
    // `f32::min` (NaN-ignoring) becomes packed min instructions; the
    // `if v < lo` form was 3.5x slower (shuffles and blends).
    const LANES: usize = 16;
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    let mut chunks = plane.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES {
            lo[k] = lo[k].min(chunk[k]);
            hi[k] = hi[k].max(chunk[k]);
        }
    }
    let fold = |(a, b): (f32, f32), &v: &f32| (a.min(v), b.max(v));
    let lanes = lo
        .iter()
        .zip(&hi)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), (&l, &h)| {
            (a.min(l), b.max(h))
        });
    chunks.remainder().iter().fold(lanes, fold)
}

/// The `low` and `high` percentiles (0..100) of a plane, by a 4096-bin
/// histogram over its range: exact enough for intensity scaling and linear
/// in the pixel count.
pub fn percentiles(plane: &[f32], low: f32, high: f32) -> (f32, f32) {
    let (min, max) = value_range(plane);
    if max <= min {
        return (min, min);
    }
    const BINS: usize = 4096;
    // In f64: a range wider than f32 can hold (float slices) would make the
    // scale zero, one narrower than its normal range (subnormal) infinite.
    let (min, max) = (f64::from(min), f64::from(max));
    let scale = (BINS - 1) as f64 / (max - min);
    let mut hist = vec![0u32; BINS];
    // To i32, not usize: x86_64 has one instruction for the former and
    // needs several for a saturating float-to-u64 cast. The bin is within
    // 0..BINS for every value in min..=max (NaN casts to 0).
    let bin = |v: f32| (((f64::from(v) - min) * scale) as i32).clamp(0, BINS as i32 - 1) as usize;
    for &v in plane {
        hist[bin(v)] += 1;
    }
    let n = plane.len() as f64;
    // A high below low reads as low, as it always has.
    let high = high.max(low);
    let targets = [low, high].map(|p| (f64::from(p) / 100.0 * n).clamp(0.0, n));
    // One walk up the cumulative counts finds both: the first non-empty bin
    // where the count reaches each target.
    let mut found = [max as f32; 2];
    let mut next = 0;
    let mut acc = 0.0;
    for (i, &c) in hist.iter().enumerate() {
        if c == 0 {
            continue;
        }
        acc += f64::from(c);
        while next < 2 && acc >= targets[next] {
            found[next] = (min + i as f64 / scale) as f32;
            next += 1;
        }
        if next == 2 {
            break;
        }
    }
    (found[0], found[1])
}

/// Brings a decoded slice to the model input: normalise, replicate grey to
/// three channels, resize into `width` x `height` by the policy.
pub fn prepare(
    slice: &SliceImage,
    pp: &Preprocessing,
    width: u32,
    height: u32,
) -> Result<ModelInput> {
    if slice.channels != 1 && slice.channels != 3 {
        return Err(Error::Invalid {
            what: "slice".into(),
            reason: format!("{} channels; expected 1 (grey) or 3", slice.channels),
        });
    }
    if width == 0 || height == 0 {
        return Err(Error::Invalid {
            what: "model input".into(),
            reason: format!("size {width}x{height}"),
        });
    }
    let geometry = Geometry::new((slice.width, slice.height), (width, height), pp.resize);
    let mut data = Vec::with_capacity(3 * (width * height) as usize);
    let mut normalised: Vec<Vec<f32>> = Vec::with_capacity(slice.channels);
    let mut measured = Vec::with_capacity(slice.channels);
    for c in 0..slice.channels {
        let mut plane = slice.plane(c).to_vec();
        measured.extend(normalise_plane(
            &mut plane,
            pp.normalisation,
            slice.full_scale(),
        ));
        // Percentile normalisation clamps to 0..=1 (a flat slice is zeros).
        let unit = matches!(pp.normalisation, Normalisation::Percentile { .. });
        normalised.push(geometry.input_plane(plane, unit));
    }
    let window = match pp.normalisation {
        Normalisation::Percentile { low, high } => Some(Window {
            low,
            high,
            channels: measured,
        }),
        _ => None,
    };
    for c in 0..3 {
        data.extend_from_slice(&normalised[if slice.channels == 1 { 0 } else { c }]);
    }
    Ok(ModelInput {
        width,
        height,
        data,
        geometry,
        window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_values_near_the_limits_of_f32_normalise_to_finite_values() {
        // Found by the slice fuzz target (an RGB float TIFF): v - lo and the
        // span overflowed f32 and inf / inf gave NaN model inputs.
        let mut plane = vec![-3.0e38, 3.0e38, 0.0, 1.0e38, -2.0e38, 3.4e38];
        let pct = Normalisation::Percentile {
            low: 0.5,
            high: 99.5,
        };
        normalise_plane(&mut plane, pct, 1.0);
        assert!(plane.iter().all(|v| (0.0..=1.0).contains(v)), "{plane:?}");
        assert!(plane[1] > plane[0], "{plane:?}");
    }

    /// The histogram percentiles as first written (a separate walk per
    /// percentile, a float-to-usize bin), kept to check the faster one.
    fn percentiles_reference(plane: &[f32], low: f32, high: f32) -> (f32, f32) {
        let (min, max) = plane
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if max <= min {
            return (min, min);
        }
        let (min, max) = (f64::from(min), f64::from(max));
        let scale = 4095.0 / (max - min);
        let mut hist = vec![0u32; 4096];
        for &v in plane {
            hist[(((f64::from(v) - min) * scale) as usize).min(4095)] += 1;
        }
        let n = plane.len() as f64;
        let find = |p: f32| -> f32 {
            let target = (p as f64 / 100.0 * n).clamp(0.0, n);
            let mut acc = 0.0;
            for (i, &c) in hist.iter().enumerate() {
                acc += c as f64;
                if acc >= target && c > 0 {
                    return (min + i as f64 / scale) as f32;
                }
            }
            max as f32
        };
        (find(low), find(high).max(find(low)))
    }

    #[test]
    fn percentiles_are_those_of_the_first_histogram_walk() {
        let mut state = 12345u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        };
        for len in [1usize, 7, 8, 9, 63, 4096, 65_536] {
            let mut plane: Vec<f32> = (0..len).map(|_| (next() % 4000) as f32 * 0.37).collect();
            if len > 8 {
                // A background of zeros, a hot pixel and a NaN, as slices have.
                plane[..len / 3].fill(0.0);
                plane[len / 2] = 1.0e6;
                plane[len - 1] = f32::NAN;
            }
            for (low, high) in [(0.5, 99.5), (1.0, 99.0), (0.0, 100.0), (60.0, 40.0)] {
                assert_eq!(
                    percentiles(&plane, low, high),
                    percentiles_reference(&plane, low, high),
                    "{len} values, {low}..{high}"
                );
            }
        }
    }

    #[test]
    fn prepare_keeps_the_percentiles_it_normalised_with() {
        let data: Vec<f32> = (0..2 * 4 * 4).map(|i| (i * i) as f32).collect();
        let slice = SliceImage::new(4, 8, 1, 16, data.clone());
        let pp = |normalisation| Preprocessing {
            resize: ResizePolicy::Stretch,
            normalisation,
        };
        let input = prepare(
            &slice,
            &pp(Normalisation::Percentile {
                low: 1.0,
                high: 99.0,
            }),
            4,
            4,
        )
        .unwrap();
        let window = input.window.unwrap();
        assert_eq!((window.low, window.high), (1.0, 99.0));
        assert_eq!(window.channels, vec![percentiles(&data, 1.0, 99.0)]);
        let input = prepare(&slice, &pp(Normalisation::ZScore), 4, 4).unwrap();
        assert!(input.window.is_none());
    }

    #[test]
    fn a_subnormal_intensity_range_does_not_index_out_of_the_histogram() {
        // A float TIFF whose values differ by less than f32's normal range.
        let mut plane = vec![0.0, 1e-40, 0.0, 1e-40];
        let (lo, hi) = percentiles(&plane, 0.5, 99.5);
        assert!(lo.is_finite() && hi.is_finite() && lo <= hi);
        normalise_plane(
            &mut plane,
            Normalisation::Percentile {
                low: 0.5,
                high: 99.5,
            },
            1.0,
        );
        assert!(plane.iter().all(|v| (0.0..=1.0).contains(v)), "{plane:?}");
    }

    fn blob(w: u32, h: u32, cx: f32, cy: f32, r: f32) -> Vec<f32> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| {
                let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
                if d <= r {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn same_size_stretch_is_identity() {
        let plane: Vec<f32> = (0..64 * 64).map(|i| (i % 97) as f32 / 97.0).collect();
        let g = Geometry::new((64, 64), (64, 64), ResizePolicy::Stretch);
        assert_eq!(g.to_input(&plane), plane);
        assert_eq!(g.to_source(&plane), plane);
    }

    #[test]
    fn letterbox_centres_content_and_pads_with_zeros() {
        let g = Geometry::new((200, 100), (256, 256), ResizePolicy::Letterbox);
        assert_eq!(g.content, [0, 64, 256, 128]);
        let out = g.to_input(&vec![1.0; 200 * 100]);
        assert_eq!(out[0], 0.0);
        assert_eq!(out[(64 * 256) as usize], 1.0);
        assert_eq!(out[(192 * 256) as usize], 0.0);
    }

    #[test]
    fn mask_round_trip_through_any_size_keeps_the_lesion() {
        for (sw, sh, policy) in [
            (512, 512, ResizePolicy::Stretch),
            (300, 220, ResizePolicy::Letterbox),
            (97, 181, ResizePolicy::Letterbox),
            (640, 480, ResizePolicy::Stretch),
        ] {
            let mask = blob(
                sw,
                sh,
                sw as f32 * 0.4,
                sh as f32 * 0.55,
                sw.min(sh) as f32 * 0.2,
            );
            let g = Geometry::new((sw, sh), (256, 256), policy);
            let back = g.to_source(&g.to_input(&mask));
            assert_eq!(back.len(), mask.len());
            let mut counts = crate::MaskCounts::default();
            for (p, t) in back.iter().zip(&mask) {
                counts.add(*p >= 0.5, *t >= 0.5);
            }
            assert!(
                counts.dice() > 0.95,
                "{sw}x{sh} {policy:?}: dice {}",
                counts.dice()
            );
        }
    }

    #[test]
    fn grey_is_replicated_and_16bit_scales_like_8bit() {
        let raw8: Vec<f32> = (0..32 * 32).map(|i| (i % 256) as f32).collect();
        let raw16: Vec<f32> = raw8.iter().map(|v| v * 257.0).collect();
        let pp = Preprocessing {
            resize: ResizePolicy::Stretch,
            normalisation: Normalisation::Percentile {
                low: 1.0,
                high: 99.0,
            },
        };
        let a = prepare(&SliceImage::new(32, 32, 1, 8, raw8), &pp, 32, 32).unwrap();
        let b = prepare(&SliceImage::new(32, 32, 1, 16, raw16), &pp, 32, 32).unwrap();
        let n = 32 * 32;
        assert_eq!(a.data[..n], a.data[n..2 * n]);
        assert_eq!(a.data[..n], a.data[2 * n..]);
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() < 2e-3, "{x} vs {y}");
        }
        assert!(a.data.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn flat_slice_normalises_to_zeros_not_nan() {
        for norm in [
            Normalisation::Percentile {
                low: 1.0,
                high: 99.0,
            },
            Normalisation::ZScore,
        ] {
            let mut plane = vec![42.0f32; 100];
            normalise_plane(&mut plane, norm, 255.0);
            assert!(plane.iter().all(|v| *v == 0.0), "{norm:?}");
        }
    }

    #[test]
    fn zscore_ignores_air() {
        let mut plane = vec![0.0f32; 10];
        plane.extend([10.0, 20.0, 30.0]);
        normalise_plane(&mut plane, Normalisation::ZScore, 255.0);
        assert!((plane[11]).abs() < 1e-6);
        assert!((plane[12] - 1.224_745).abs() < 1e-4);
    }

    #[test]
    fn a_plane_known_to_be_in_the_unit_range_resizes_as_one_looked_at() {
        // What `prepare` skips for a percentile-normalised plane: the range
        // pass must not have changed a bit of the result.
        let geometry = Geometry::new((256, 200), (128, 128), ResizePolicy::Letterbox);
        let mut plane: Vec<f32> = (0..256u32 * 200)
            .map(|i| (i.wrapping_mul(2_654_435_761) % 4096) as f32)
            .collect();
        let pct = Normalisation::Percentile {
            low: 0.5,
            high: 99.5,
        };
        normalise_plane(&mut plane, pct, 65535.0);
        let known = geometry.input_plane(plane.clone(), true);
        let looked = geometry.input_plane(plane, false);
        assert!(known
            .iter()
            .zip(&looked)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn value_range_ignores_nans_and_reads_every_lane_and_the_tail() {
        for n in [3usize, 15, 16, 17, 33, 1000] {
            let mut plane: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
            plane[n / 2] = f32::NAN;
            plane[n - 1] = -3.0;
            plane[0] = 9.0;
            assert_eq!(value_range(&plane), (-3.0, 9.0), "n {n}");
        }
        assert_eq!(value_range(&[]), (f32::INFINITY, f32::NEG_INFINITY));
    }

    #[test]
    fn resizing_keeps_values_outside_the_unit_range() {
        // A horizontal ramp from -2 to 3 (z-score-like), halved: clamped to
        // 0..=1 as the image crate's float resampling clamps, it would lose
        // its negative half.
        let (w, h) = (16u32, 8u32);
        let ramp: Vec<f32> = (0..w * h)
            .map(|i| -2.0 + 5.0 * (i % w) as f32 / (w - 1) as f32)
            .collect();
        let half = resize_plane(ramp.clone(), (w, h), w / 2, h / 2, false);
        let (min, max) = value_range(&half);
        assert!(min < -1.5 && max > 2.5, "range {min}..{max}");
        // Each row still rises left to right, and a resize of the ramp
        // shifted into 0..=1 is the same ramp shifted.
        assert!(half[..(w / 2) as usize].windows(2).all(|p| p[0] < p[1]));
        let shifted: Vec<f32> = ramp.iter().map(|v| (v + 2.0) / 5.0).collect();
        let unit = resize_plane(shifted, (w, h), w / 2, h / 2, false);
        for (a, b) in half.iter().zip(&unit) {
            assert!((a - (b * 5.0 - 2.0)).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn zscore_input_keeps_its_negative_values_through_a_resize() {
        let (w, h) = (64u32, 64u32);
        // Air (0) down the left edge, tissue of varied intensity elsewhere.
        let pixels: Vec<f32> = (0..w * h)
            .map(|i| {
                if (i % w) < 8 {
                    0.0
                } else {
                    (40 + (i * 7) % 200) as f32
                }
            })
            .collect();
        let slice = SliceImage::new(w, h, 1, 8, pixels);
        let pp = Preprocessing {
            resize: ResizePolicy::Stretch,
            normalisation: Normalisation::ZScore,
        };
        let resized = prepare(&slice, &pp, 32, 32).unwrap();
        let same = prepare(&slice, &pp, 64, 64).unwrap();
        let min = |d: &[f32]| d.iter().copied().fold(f32::INFINITY, f32::min);
        assert!(min(&same.data) < -1.0, "z-scores below the mean");
        assert!(min(&resized.data) < -1.0, "and still after a resize");
    }

    #[test]
    fn percentile_on_known_ramp() {
        let plane: Vec<f32> = (0..=1000).map(|v| v as f32).collect();
        let (lo, hi) = percentiles(&plane, 1.0, 99.0);
        assert!((lo - 10.0).abs() <= 1.0, "{lo}");
        assert!((hi - 990.0).abs() <= 1.0, "{hi}");
    }

    #[test]
    fn two_channel_slice_is_refused() {
        let s = SliceImage::new(2, 2, 2, 8, vec![0.0; 8]);
        assert!(prepare(&s, &Preprocessing::default(), 4, 4).is_err());
    }
}
