//! Augmentation applied identically to a slice and its mask: the geometry
//! moves both (bilinear for the image, nearest for the mask so no new label
//! values appear); intensity jitter and noise touch the image only.

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
        let pose = Pose {
            scale_x: s,
            scale_y: s,
            ..pose
        };
        let affine = Affine::from_pose(&pose, w, h);
        affine.warp_bilinear_planes(image, w, h);
        let warped = affine.warp_nearest(mask, w, h);
        mask.copy_from_slice(&warped);

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
        for plane in image.chunks_exact_mut(n) {
            let gain = 1.0 + rng.random_range(-self.gain..=self.gain);
            let offset = rng.random_range(-self.offset..=self.offset);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

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
            ..Augmentation::default()
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
}
