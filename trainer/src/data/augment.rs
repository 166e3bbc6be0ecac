//! Augmentation applied identically to a slice and its mask: the geometry
//! moves both (bilinear for the image, nearest for the mask so no new label
//! values appear); intensity jitter and noise touch the image only.
//!
//! For real scans the intensity side is strong on purpose (the SynthSeg
//! idea, Billot et al. 2023: a network that never sees the same intensity
//! mapping twice cannot rely on one contrast or scanner): a stacked slice
//! sometimes becomes one of its channels alone (a grey slice, as a scanner
//! sends one series at a time), and each channel gets a random gamma, now
//! and then a random non-monotonic intensity curve (contrast inversions as
//! between T1 and T2), a smooth bias field, blur, gain, offset and noise.

use super::warp::{Affine, Pose};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    /// Uniform rotation in +/- degrees (seed paper: random rotations).
    pub rotation_deg: f32,
    /// Horizontal flip with probability 0.5 (left/right hemispheres).
    pub flip_horizontal: bool,
    /// Vertical flip with probability 0.5; off by default since scanners do
    /// not send upside-down slices.
    pub flip_vertical: bool,
    /// Isotropic scale drawn from this range.
    pub scale: (f32, f32),
    /// Per-channel gain jitter: factor in 1 +/- this.
    pub gain: f32,
    /// Per-channel offset jitter, in normalised units.
    pub offset: f32,
    /// Standard deviation of additive Gaussian noise is drawn from 0..this.
    pub noise: f32,
    /// Probability that a slice becomes `grey_channel` alone, copied to all
    /// three channels (LGG: channel 1 is FLAIR, on which the masks are drawn).
    #[serde(default)]
    pub grey_prob: f32,
    #[serde(default = "flair")]
    pub grey_channel: usize,
    /// A slice without tumour that turns grey takes any of its channels,
    /// drawn uniformly, instead of `grey_channel`: LGG's clear slices then
    /// also teach the segmenter what a clear grey T1 and post-contrast T1
    /// look like (dark ventricles in bright white matter, which it took for
    /// a tumour on T1 slices from registry packages). Tumour slices keep
    /// `grey_channel`, where their masks are drawn.
    #[serde(default)]
    pub grey_clear_any_channel: bool,
    /// Gamma exp(U(-this, this)) per channel.
    #[serde(default)]
    pub gamma: f32,
    /// Probability of a random piecewise-linear intensity curve per slice
    /// (zero stays zero: background stays dark).
    #[serde(default)]
    pub curve_prob: f32,
    /// Probability of a smooth multiplicative bias field; its log has
    /// quadratic terms with coefficients in +/- `bias_strength`.
    #[serde(default)]
    pub bias_prob: f32,
    #[serde(default)]
    pub bias_strength: f32,
    /// Probability of a Gaussian blur with sigma in 0.3..`blur_sigma` px.
    #[serde(default)]
    pub blur_prob: f32,
    #[serde(default)]
    pub blur_sigma: f32,
    /// Probability that a grey slice's dark fluid (the CSF that FLAIR and
    /// T1 show dark) is made bright, as T2 and proton density show it:
    /// bright CSF is what the segmenter mistook for tumour on real T2/PD
    /// slices. Only pixels outside the tumour mask change.
    #[serde(default)]
    pub bright_fluid_prob: f32,
    /// Probability that a slice is seen as if acquired coarser: box-averaged
    /// down by a factor drawn from 1..`lowres_factor` and brought back to
    /// the model's size bilinearly. Training slices are 256 (LGG) and 512
    /// (Figshare) px wide; a scanner may send 128 px or less with the head a
    /// third of the frame, which the blur alone (a Gaussian, no loss of
    /// samples) does not imitate.
    #[serde(default)]
    pub lowres_prob: f32,
    #[serde(default)]
    pub lowres_factor: f32,
    /// Uniform shift along each axis of up to this share of the side. A
    /// tumour type seen mostly in one place (Figshare's pituitary tumours,
    /// all in the sella) otherwise teaches the segmenter where to draw
    /// rather than what: its misplaced glioma outlines sat in the sella.
    #[serde(default)]
    pub shift: f32,
}

fn flair() -> usize {
    1
}

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            rotation_deg: 15.0,
            flip_horizontal: true,
            flip_vertical: false,
            scale: (0.9, 1.1),
            gain: 0.1,
            offset: 0.05,
            noise: 0.02,
            grey_prob: 0.3,
            grey_channel: 1,
            grey_clear_any_channel: false,
            gamma: 0.4,
            curve_prob: 0.2,
            bias_prob: 0.5,
            bias_strength: 0.3,
            blur_prob: 0.2,
            blur_sigma: 1.2,
            bright_fluid_prob: 0.0,
            lowres_prob: 0.0,
            lowres_factor: 3.0,
            shift: 0.0,
        }
    }
}

impl Augmentation {
    /// The seed paper's augmentation alone: geometry, mild gain, offset and
    /// noise, none of the intensity randomisation.
    pub fn seed_only() -> Self {
        Self {
            grey_prob: 0.0,
            gamma: 0.0,
            curve_prob: 0.0,
            bias_prob: 0.0,
            blur_prob: 0.0,
            ..Self::default()
        }
    }
}

impl Augmentation {
    /// Augments a `channels` x `h` x `w` planar image (model units) and its
    /// `h` x `w` 0/1 mask in place.
    pub fn apply<R: Rng>(
        &self,
        rng: &mut R,
        image: &mut [f32],
        mask: &mut [u8],
        w: usize,
        h: usize,
    ) {
        let n = w * h;
        assert_eq!(mask.len(), n, "mask size");
        assert_eq!(image.len() % n, 0, "image is not whole planes");
        let channels = image.len() / n;
        if self.grey_prob > 0.0
            && self.grey_channel < channels
            && rng.random_bool(f64::from(self.grey_prob))
        {
            let channel = if self.grey_clear_any_channel && mask.iter().all(|&m| m == 0) {
                rng.random_range(0..channels)
            } else {
                self.grey_channel
            };
            let src = image[channel * n..(channel + 1) * n].to_vec();
            for plane in image.chunks_exact_mut(n) {
                plane.copy_from_slice(&src);
            }
        }
        // A grey slice (all channels alike) must stay grey: one draw of the
        // intensity changes for all its channels.
        let grey = image.chunks_exact(n).all(|p| p == &image[..n]);
        // No draw at all when off, so runs without it replay exactly.
        if grey
            && self.bright_fluid_prob > 0.0
            && rng.random_bool(f64::from(self.bright_fluid_prob.min(1.0)))
        {
            let strength = rng.random_range(0.6..=1.0);
            brighten_dark_fluid(&mut image[..n], mask, w, h, strength);
            let (first, rest) = image.split_at_mut(n);
            for plane in rest.chunks_exact_mut(n) {
                plane.copy_from_slice(first);
            }
        }
        let pose = Pose {
            angle: rng
                .random_range(-self.rotation_deg..=self.rotation_deg)
                .to_radians(),
            scale_x: 1.0,
            scale_y: 1.0,
            shift_x: 0.0,
            shift_y: 0.0,
            flip_x: self.flip_horizontal && rng.random_bool(0.5),
            flip_y: self.flip_vertical && rng.random_bool(0.5),
        };
        let s = if self.scale.1 > self.scale.0 {
            rng.random_range(self.scale.0..self.scale.1)
        } else {
            self.scale.0
        };
        // Drawn only when on, so runs without it replay exactly.
        let (shift_x, shift_y) = if self.shift > 0.0 {
            let side = |n: usize| n as f32 * self.shift.min(0.5);
            (
                rng.random_range(-side(w)..=side(w)),
                rng.random_range(-side(h)..=side(h)),
            )
        } else {
            (0.0, 0.0)
        };
        let pose = Pose {
            scale_x: s,
            scale_y: s,
            shift_x,
            shift_y,
            ..pose
        };
        let affine = Affine::from_pose(&pose, w, h);
        affine.warp_bilinear_planes(image, w, h);
        let warped = affine.warp_nearest(mask, w, h);
        mask.copy_from_slice(&warped);
        // Drawn only when on, so runs without it replay exactly; one factor
        // for every channel (one acquisition), so a grey slice stays grey.
        if self.lowres_prob > 0.0
            && self.lowres_factor > 1.0
            && rng.random_bool(f64::from(self.lowres_prob.min(1.0)))
        {
            let factor = rng.random_range(1.0..self.lowres_factor);
            for plane in image.chunks_exact_mut(n) {
                lower_resolution(plane, w, h, factor);
            }
        }

        let sigma = if self.noise > 0.0 {
            rng.random_range(0.0..self.noise)
        } else {
            0.0
        };
        let noise = Normal::new(0.0f32, sigma.max(f32::MIN_POSITIVE)).expect("finite sigma");
        // A sample of noise per pixel is most of the random numbers a slice
        // needs: they come from a fast generator seeded from `rng`, so they
        // still follow from the caller's seed (ChaCha for all of them made
        // it the loader's largest cost).
        let mut pixel_rng = SmallRng::seed_from_u64(rng.random());
        let shared = grey.then(|| self.draw(rng));
        for plane in image.chunks_exact_mut(n) {
            let own;
            let d = match &shared {
                Some(d) => d,
                None => {
                    own = self.draw(rng);
                    &own
                }
            };
            d.apply(plane, w, h);
            let (gain, offset) = (d.gain, d.offset);
            for v in plane.iter_mut() {
                *v = *v * gain
                    + offset
                    + if sigma > 0.0 {
                        noise.sample(&mut pixel_rng)
                    } else {
                        0.0
                    };
            }
        }
    }
}

/// One channel's intensity changes, drawn once (and shared by the
/// channels of a grey slice).
#[derive(Debug, Clone)]
struct ChannelDraws {
    gamma: Option<f32>,
    /// Values of the curve at 0, 1/4, ..., 1 (first is 0).
    curve: Option<[f32; 5]>,
    /// Coefficients of the bias field's log: x, y, xy, x^2, y^2.
    bias: Option<[f32; 5]>,
    blur: Option<f32>,
    gain: f32,
    offset: f32,
}

impl Augmentation {
    fn draw<R: Rng>(&self, rng: &mut R) -> ChannelDraws {
        let chance = |rng: &mut R, p: f32| p > 0.0 && rng.random_bool(f64::from(p.min(1.0)));
        let gamma = (self.gamma > 0.0).then(|| rng.random_range(-self.gamma..=self.gamma).exp());
        let curve = chance(rng, self.curve_prob).then(|| {
            let mut c = [0.0f32; 5];
            for v in c.iter_mut().skip(1) {
                *v = rng.random_range(0.0..=1.0);
            }
            c
        });
        let bias = chance(rng, self.bias_prob).then(|| {
            let mut b = [0.0f32; 5];
            for v in b.iter_mut() {
                *v = rng.random_range(-self.bias_strength..=self.bias_strength);
            }
            b
        });
        let blur = (self.blur_sigma > 0.3 && chance(rng, self.blur_prob))
            .then(|| rng.random_range(0.3..self.blur_sigma));
        ChannelDraws {
            gamma,
            curve,
            bias,
            blur,
            gain: 1.0 + rng.random_range(-self.gain..=self.gain),
            offset: rng.random_range(-self.offset..=self.offset),
        }
    }
}

impl ChannelDraws {
    /// Gamma, curve, bias and blur on one plane of normalised intensities
    /// (0..1 after the percentile mapping); the plane is then rescaled so
    /// its largest value is 1 again, as the appliance's normalisation would.
    fn apply(&self, plane: &mut [f32], w: usize, h: usize) {
        if self.gamma.is_none()
            && self.curve.is_none()
            && self.bias.is_none()
            && self.blur.is_none()
        {
            return;
        }
        if let Some(g) = self.gamma {
            for v in plane.iter_mut() {
                *v = v.clamp(0.0, 1.0).powf(g);
            }
        }
        if let Some(c) = self.curve {
            for v in plane.iter_mut() {
                let x = v.clamp(0.0, 1.0) * 4.0;
                let k = (x as usize).min(3);
                let t = x - k as f32;
                *v = c[k] * (1.0 - t) + c[k + 1] * t;
            }
        }
        if let Some(b) = self.bias {
            for y in 0..h {
                let fy = 2.0 * y as f32 / h.max(2) as f32 - 1.0;
                for x in 0..w {
                    let fx = 2.0 * x as f32 / w.max(2) as f32 - 1.0;
                    let log =
                        b[0] * fx + b[1] * fy + b[2] * fx * fy + b[3] * fx * fx + b[4] * fy * fy;
                    plane[y * w + x] *= log.exp();
                }
            }
        }
        if let Some(sigma) = self.blur {
            gaussian_blur(plane, w, h, sigma);
        }
        let max = plane.iter().copied().fold(0.0f32, f32::max);
        if max > 1e-6 {
            for v in plane.iter_mut() {
                *v /= max;
            }
        }
    }
}

/// Makes the dark fluid inside the head bright, as on T2 or proton density:
/// pixels well inside the head (eroded by a sixteenth of the slice, so the
/// dark skull and scalp edge stay), darker than the head's
/// 25th percentile and outside the tumour `mask`, move `strength` of the
/// way to the head's 98th percentile, with a softened edge. The head is
/// what the background, flooded in from the border, does not reach.
fn brighten_dark_fluid(plane: &mut [f32], mask: &[u8], w: usize, h: usize, strength: f32) {
    // Selection on a smoothed copy: noise and thin dark texture between
    // gyri are not fluid; ventricles and wide sulci are.
    let mut smooth = plane.to_vec();
    gaussian_blur(&mut smooth, w, h, (w.min(h) as f32 / 128.0).max(0.5) * 1.5);
    let max = smooth.iter().copied().fold(0.0f32, f32::max);
    let tissue: Vec<bool> = smooth.iter().map(|&v| v > 0.15 * max).collect();
    let mut inside: Vec<f32> = smooth
        .iter()
        .zip(&tissue)
        .filter(|(_, &t)| t)
        .map(|(&v, _)| v)
        .collect();
    if inside.len() < 16 {
        return;
    }
    inside.sort_by(f32::total_cmp);
    let low = inside[inside.len() / 10];
    let high = inside[inside.len() * 98 / 100];
    // The head is everything the background (dark pixels reached from the
    // border) does not reach: dark fluid enclosed by tissue belongs to it.
    let mut outside = vec![false; w * h];
    let mut stack: Vec<usize> = (0..w * h)
        .filter(|&i| {
            let (x, y) = (i % w, i / w);
            (x == 0 || y == 0 || x + 1 == w || y + 1 == h) && !tissue[i]
        })
        .collect();
    while let Some(i) = stack.pop() {
        if outside[i] || tissue[i] {
            continue;
        }
        outside[i] = true;
        let (x, y) = (i % w, i / w);
        if x > 0 {
            stack.push(i - 1);
        }
        if x + 1 < w {
            stack.push(i + 1);
        }
        if y > 0 {
            stack.push(i - w);
        }
        if y + 1 < h {
            stack.push(i + w);
        }
    }
    let mut head: Vec<bool> = outside.iter().map(|&o| !o).collect();
    // Its rim is bone and scalp, dark on every contrast: eroded away.
    for _ in 0..(w.min(h) / 16).max(1) {
        let before = head.clone();
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                head[i] = before[i]
                    && x > 0
                    && y > 0
                    && x + 1 < w
                    && y + 1 < h
                    && before[i - 1]
                    && before[i + 1]
                    && before[i - w]
                    && before[i + w];
            }
        }
    }
    let weight: Vec<f32> = (0..w * h)
        .map(|i| f32::from(u8::from(head[i] && smooth[i] < low && mask[i] == 0)))
        .collect();
    let mut soft = weight.clone();
    gaussian_blur(&mut soft, w, h, 0.8);
    for (i, v) in plane.iter_mut().enumerate() {
        // The softened edge may spill onto the lesion or outside the head;
        // neither changes.
        let k = if mask[i] == 0 && !outside[i] {
            soft[i].max(weight[i])
        } else {
            0.0
        };
        *v += (high - *v) * strength * k.clamp(0.0, 1.0);
    }
}

/// Resamples `plane` as if acquired `factor` times coarser: each pixel of
/// the coarse grid is the mean of the fine pixels it covers, and the fine
/// grid is read back from it bilinearly (pixel centres aligned, edges
/// clamped). The mask is left alone: the truth does not blur.
fn lower_resolution(plane: &mut [f32], w: usize, h: usize, factor: f32) {
    let coarse = |len: usize| ((len as f32 / factor).round() as usize).clamp(2.min(len), len);
    let (cw, ch) = (coarse(w), coarse(h));
    if cw == w && ch == h {
        return;
    }
    let mut sum = vec![0.0f32; cw * ch];
    let mut count = vec![0u32; cw * ch];
    for y in 0..h {
        let cy = y * ch / h;
        for x in 0..w {
            let c = cy * cw + x * cw / w;
            sum[c] += plane[y * w + x];
            count[c] += 1;
        }
    }
    let low: Vec<f32> = sum
        .iter()
        .zip(&count)
        .map(|(s, &k)| s / k.max(1) as f32)
        .collect();
    // Where fine pixel `i` falls on the coarse axis: two neighbours and the
    // weight of the second.
    let taps = |i: usize, fine: usize, coarse: usize| {
        let pos =
            ((i as f32 + 0.5) * coarse as f32 / fine as f32 - 0.5).clamp(0.0, (coarse - 1) as f32);
        let first = pos.floor() as usize;
        (first, (first + 1).min(coarse - 1), pos - first as f32)
    };
    let columns: Vec<(usize, usize, f32)> = (0..w).map(|x| taps(x, w, cw)).collect();
    for y in 0..h {
        let (y0, y1, ty) = taps(y, h, ch);
        for (x, &(x0, x1, tx)) in columns.iter().enumerate() {
            let top = low[y0 * cw + x0] * (1.0 - tx) + low[y0 * cw + x1] * tx;
            let bottom = low[y1 * cw + x0] * (1.0 - tx) + low[y1 * cw + x1] * tx;
            plane[y * w + x] = top * (1.0 - ty) + bottom * ty;
        }
    }
}

/// Separable Gaussian blur, edges clamped.
fn gaussian_blur(plane: &mut [f32], w: usize, h: usize, sigma: f32) {
    let r = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-r..=r)
        .map(|i| (-((i * i) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / sum).collect();
    let mut tmp = vec![0.0f32; plane.len()];
    // Along rows (step 1 within a row of w), then along columns (step w).
    blur_pass(plane, &mut tmp, (w, h), (1, w), &kernel);
    blur_pass(&tmp, plane, (h, w), (w, 1), &kernel);
}

/// One 1-D pass: `lines` lines of `len` samples, sample k of line l at
/// `l * step.1 + k * step.0`.
fn blur_pass(
    src: &[f32],
    dst: &mut [f32],
    (len, lines): (usize, usize),
    step: (usize, usize),
    kernel: &[f32],
) {
    let r = (kernel.len() / 2) as isize;
    for l in 0..lines {
        for k in 0..len {
            let mut acc = 0.0;
            for (j, kv) in kernel.iter().enumerate() {
                let kk = (k as isize + j as isize - r).clamp(0, len as isize - 1) as usize;
                acc += kv * src[l * step.1 + kk * step.0];
            }
            dst[l * step.1 + k * step.0] = acc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn shift_moves_image_and_mask_alike_within_its_share() {
        let (w, h) = (64, 64);
        let mut mask = vec![0u8; w * h];
        for y in 28..36 {
            for x in 28..36 {
                mask[y * w + x] = 1;
            }
        }
        let centre = |m: &[u8]| {
            let on: Vec<usize> = (0..w * h).filter(|&i| m[i] == 1).collect();
            let n = on.len() as f32;
            (
                on.iter().map(|&i| (i % w) as f32).sum::<f32>() / n,
                on.iter().map(|&i| (i / w) as f32).sum::<f32>() / n,
            )
        };
        let (cx, cy) = centre(&mask);
        let shift_only = Augmentation {
            gain: 0.0,
            offset: 0.0,
            noise: 0.0,
            rotation_deg: 0.0,
            flip_horizontal: false,
            scale: (1.0, 1.0),
            shift: 0.2,
            ..Augmentation::seed_only()
        };
        let mut largest = 0.0f32;
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut image: Vec<f32> = mask.iter().map(|&m| m as f32).collect();
            let mut m = mask.clone();
            shift_only.apply(&mut rng, &mut image, &mut m, w, h);
            let (x, y) = centre(&m);
            let (dx, dy) = (x - cx, y - cy);
            assert!(dx.abs() <= 0.2 * 64.0 + 1.0 && dy.abs() <= 0.2 * 64.0 + 1.0);
            largest = largest.max(dx.abs()).max(dy.abs());
            let agree = (0..w * h)
                .filter(|&i| (image[i] >= 0.5) == (m[i] == 1))
                .count();
            assert!(agree as f64 / (w * h) as f64 > 0.99, "seed {seed}: {agree}");
        }
        assert!(largest > 6.0, "20 draws never moved far: {largest}");
    }

    #[test]
    fn image_and_mask_move_together() {
        let (w, h) = (64, 64);
        let mut mask = vec![0u8; w * h];
        for y in 10..30 {
            for x in 35..50 {
                mask[y * w + x] = 1;
            }
        }
        let geometry_only = Augmentation {
            gain: 0.0,
            offset: 0.0,
            noise: 0.0,
            rotation_deg: 30.0,
            ..Augmentation::seed_only()
        };
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut image: Vec<f32> = mask.iter().map(|&m| m as f32).collect();
            image.extend(image.clone());
            let mut m = mask.clone();
            geometry_only.apply(&mut rng, &mut image, &mut m, w, h);
            assert!(m.iter().all(|&v| v <= 1));
            let agree = (0..w * h)
                .filter(|&i| (image[i] >= 0.5) == (m[i] == 1))
                .count();
            assert!(agree as f64 / (w * h) as f64 > 0.99, "seed {seed}: {agree}");
            assert_eq!(image[..w * h], image[w * h..], "channels move alike");
            let area = m.iter().filter(|&&v| v == 1).count() as f64;
            assert!((area / 300.0 - 1.0).abs() < 0.3, "area {area}");
        }
    }

    #[test]
    fn deterministic_per_seed_and_jitters_intensity() {
        let (w, h) = (16, 16);
        let base: Vec<f32> = (0..3 * w * h).map(|i| (i % 7) as f32 / 7.0).collect();
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut img = base.clone();
            let mut m = vec![0u8; w * h];
            Augmentation::default().apply(&mut rng, &mut img, &mut m, w, h);
            img
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    fn stacked(w: usize, h: usize) -> Vec<f32> {
        (0..3 * w * h)
            .map(|i| {
                let (c, p) = (i / (w * h), i % (w * h));
                ((p % w) as f32 / w as f32) * (c as f32 + 1.0) / 3.0
            })
            .collect()
    }

    /// Every slice turns grey; no geometry, jitter or intensity change, so
    /// a channel can be recognised after.
    fn always_grey() -> Augmentation {
        Augmentation {
            grey_prob: 1.0,
            rotation_deg: 0.0,
            flip_horizontal: false,
            scale: (1.0, 1.0),
            noise: 0.0,
            gain: 0.0,
            offset: 0.0,
            gamma: 0.0,
            curve_prob: 0.0,
            bias_prob: 0.0,
            blur_prob: 0.0,
            ..Augmentation::default()
        }
    }

    #[test]
    fn clear_slices_turn_grey_from_any_channel_tumour_slices_from_flair() {
        let (w, h) = (8, 8);
        let n = w * h;
        let grey_any = Augmentation {
            grey_clear_any_channel: true,
            ..always_grey()
        };
        let base = stacked(w, h);
        let source_channel = |img: &[f32]| (0..3).find(|&c| img[..n] == base[c * n..(c + 1) * n]);
        let mut seen = [0usize; 3];
        for seed in 0..60 {
            let (mut clear, mut none) = (base.clone(), vec![0u8; n]);
            grey_any.apply(
                &mut ChaCha8Rng::seed_from_u64(seed),
                &mut clear,
                &mut none,
                w,
                h,
            );
            assert!(clear.chunks_exact(n).all(|p| p == &clear[..n]), "grey");
            seen[source_channel(&clear).expect("one of the channels")] += 1;
            let (mut tumour, mut mask) = (base.clone(), vec![0u8; n]);
            mask[n / 2] = 1;
            grey_any.apply(
                &mut ChaCha8Rng::seed_from_u64(seed),
                &mut tumour,
                &mut mask,
                w,
                h,
            );
            assert_eq!(
                source_channel(&tumour),
                Some(1),
                "a tumour slice stays FLAIR"
            );
        }
        assert!(seen.iter().all(|&k| k > 5), "every channel drawn: {seen:?}");
    }

    #[test]
    fn grey_draw_copies_the_flair_channel_and_keeps_slices_grey() {
        let (w, h) = (24, 24);
        let n = w * h;
        let always_grey = always_grey();
        let base = stacked(w, h);
        let mut img = base.clone();
        let mut m = vec![0u8; n];
        always_grey.apply(&mut ChaCha8Rng::seed_from_u64(1), &mut img, &mut m, w, h);
        for c in 0..3 {
            assert_eq!(
                img[c * n..(c + 1) * n],
                base[n..2 * n],
                "channel {c} is FLAIR"
            );
        }
        // Full intensity randomisation on a grey slice leaves it grey.
        for seed in 0..30 {
            let mut g = base[n..2 * n].repeat(3);
            let mut m = vec![0u8; n];
            Augmentation {
                noise: 0.0,
                curve_prob: 1.0,
                bias_prob: 1.0,
                blur_prob: 1.0,
                ..Augmentation::default()
            }
            .apply(&mut ChaCha8Rng::seed_from_u64(seed), &mut g, &mut m, w, h);
            assert_eq!(g[..n], g[n..2 * n], "seed {seed}");
            assert_eq!(g[..n], g[2 * n..], "seed {seed}");
        }
    }

    #[test]
    fn intensity_randomisation_changes_contrast_and_stays_finite() {
        let (w, h) = (32, 32);
        let strong = Augmentation {
            curve_prob: 1.0,
            bias_prob: 1.0,
            blur_prob: 1.0,
            grey_prob: 0.0,
            ..Augmentation::default()
        };
        let base = stacked(w, h);
        let mut differs = 0;
        for seed in 0..20 {
            let mut img = base.clone();
            let mut m = vec![0u8; w * h];
            strong.apply(&mut ChaCha8Rng::seed_from_u64(seed), &mut img, &mut m, w, h);
            assert!(img.iter().all(|v| v.is_finite()), "seed {seed}");
            // Each plane is rescaled to peak near 1 before gain and offset.
            for plane in img.chunks_exact(w * h) {
                let max = plane.iter().copied().fold(f32::MIN, f32::max);
                assert!((0.5..1.6).contains(&max), "seed {seed}: max {max}");
            }
            if (img[w * h + 5] - base[w * h + 5]).abs() > 0.05 {
                differs += 1;
            }
        }
        assert!(differs > 10, "intensities rarely changed: {differs}/20");
    }

    /// A grey "head": a disc of tissue (0.5) with a dark ventricle (0.02)
    /// and a bright lesion (0.9, in the mask), on a black background.
    #[test]
    fn bright_fluid_lights_the_ventricle_and_nothing_else() {
        let (w, h) = (64usize, 64usize);
        let mut plane = vec![0.0f32; w * h];
        let mut mask = vec![0u8; w * h];
        let d = |x: usize, y: usize, cx: f32, cy: f32| {
            ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt()
        };
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if d(x, y, 32.0, 32.0) < 28.0 {
                    plane[i] = 0.5 + 0.01 * ((x + y) % 5) as f32;
                }
                if d(x, y, 28.0, 32.0) < 5.0 {
                    plane[i] = 0.02;
                }
                if d(x, y, 44.0, 32.0) < 4.0 {
                    plane[i] = 0.2;
                    mask[i] = 1;
                }
            }
        }
        let before = plane.clone();
        brighten_dark_fluid(&mut plane, &mask, w, h, 1.0);
        let ventricle = 32 * w + 28;
        assert!(plane[ventricle] > 0.45, "{}", plane[ventricle]);
        // Tissue away from the fluid keeps its grey.
        for i in [12 * w + 32, 50 * w + 32, 32 * w + 14] {
            assert!(
                (plane[i] - before[i]).abs() < 0.02,
                "pixel {i}: {} -> {}",
                before[i],
                plane[i]
            );
        }
        for i in 0..w * h {
            if mask[i] == 1 || before[i] == 0.0 {
                assert_eq!(plane[i], before[i], "lesion and background stay, pixel {i}");
            }
        }
        // The same through `apply`, on a grey three-channel slice: it stays grey.
        let aug = Augmentation {
            bright_fluid_prob: 1.0,
            // Noise is drawn per plane; without it a grey slice stays grey.
            noise: 0.0,
            ..Augmentation::seed_only()
        };
        let mut image: Vec<f32> = before.repeat(3);
        let mut m = mask.clone();
        aug.apply(&mut ChaCha8Rng::seed_from_u64(1), &mut image, &mut m, w, h);
        let n = w * h;
        assert_eq!(image[..n], image[n..2 * n]);
        assert_eq!(image[..n], image[2 * n..]);
        assert_ne!(image[..n], before[..], "changed");
    }

    #[test]
    fn lower_resolution_averages_away_fine_detail_and_keeps_flat_regions() {
        let (w, h) = (32, 24);
        let mut flat = vec![0.4f32; w * h];
        lower_resolution(&mut flat, w, h, 2.5);
        assert!(flat.iter().all(|v| (v - 0.4).abs() < 1e-6));
        // A one-pixel checkerboard is below a factor-2 grid's resolution:
        // it comes back as its mean.
        let mut checker: Vec<f32> = (0..w * h)
            .map(|i| f32::from(u8::from((i % w + i / w) % 2 == 0)))
            .collect();
        lower_resolution(&mut checker, w, h, 2.0);
        assert!(
            checker.iter().all(|v| (v - 0.5).abs() < 1e-5),
            "{checker:?}"
        );
        // A ramp keeps its direction and its ends' order.
        let mut ramp: Vec<f32> = (0..w * h).map(|i| (i % w) as f32 / w as f32).collect();
        lower_resolution(&mut ramp, w, h, 3.0);
        let row = &ramp[5 * w..6 * w];
        assert!(row.windows(2).all(|p| p[1] >= p[0] - 1e-6), "{row:?}");
        assert!(row[w - 1] - row[0] > 0.5);
        // Factor 1 is the identity.
        let mut same = checker.clone();
        lower_resolution(&mut same, w, h, 1.0);
        assert_eq!(same, checker);
    }

    #[test]
    fn lower_resolution_through_apply_keeps_grey_slices_grey_and_the_mask() {
        let (w, h) = (32, 32);
        let n = w * h;
        let aug = Augmentation {
            lowres_prob: 1.0,
            lowres_factor: 4.0,
            noise: 0.0,
            ..always_grey()
        };
        let grey: Vec<f32> = (0..n)
            .map(|i| f32::from(u8::from((i % w) % 3 == 0)))
            .collect();
        let mut mask = vec![0u8; n];
        mask[10 * w + 10..10 * w + 14].fill(1);
        let mut changed = 0;
        for seed in 0..10 {
            let mut image = grey.repeat(3);
            let mut m = mask.clone();
            aug.apply(
                &mut ChaCha8Rng::seed_from_u64(seed),
                &mut image,
                &mut m,
                w,
                h,
            );
            assert_eq!(m, mask, "seed {seed}: the mask does not blur");
            assert_eq!(image[..n], image[n..2 * n], "seed {seed}");
            assert_eq!(image[..n], image[2 * n..], "seed {seed}");
            if image[..n] != grey[..] {
                changed += 1;
            }
        }
        assert!(changed >= 8, "lowered only {changed} of 10");
        // Off (the default) draws nothing: a run without it replays.
        let off = Augmentation::default();
        let run = |a: &Augmentation| {
            let mut image = grey.repeat(3);
            let mut m = mask.clone();
            a.apply(&mut ChaCha8Rng::seed_from_u64(3), &mut image, &mut m, w, h);
            image
        };
        assert_eq!(
            run(&off),
            run(&Augmentation {
                lowres_factor: 6.0,
                ..off
            })
        );
    }

    #[test]
    fn blur_keeps_the_mean_and_smooths_an_edge() {
        let (w, h) = (16, 4);
        let mut plane: Vec<f32> = (0..w * h).map(|i| f32::from(i % w >= 8)).collect();
        let before: f32 = plane.iter().sum();
        gaussian_blur(&mut plane, w, h, 1.0);
        let after: f32 = plane.iter().sum();
        assert!((before - after).abs() < 1e-3);
        assert!(plane[7] > 0.1 && plane[8] < 0.9, "{:?}", &plane[..w]);
    }
}
