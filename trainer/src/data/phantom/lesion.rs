//! Synthetic lesions: an irregular 3D blob whose cross-section on each slice
//! is the tumour mask, with an oedema halo and optional ring enhancement.

use super::anatomy::SIZE;
use rand::Rng;
use std::f32::consts::PI;

/// A lesion in patient space: slice index `z` along the patient's stack,
/// pixels in-plane (after the patient's pose).
#[derive(Debug, Clone)]
pub struct Lesion {
    pub centre_z: f32,
    pub half_extent_z: f32,
    pub centre: (f32, f32),
    /// In-plane drift of the centre per slice away from `centre_z`.
    pub drift: (f32, f32),
    /// Equatorial radius in pixels.
    pub radius: f32,
    /// Radial harmonics (amplitude, phase) for k = 2, 3, ...: an irregular
    /// rather than elliptical outline.
    pub harmonics: Vec<(f32, f32)>,
    pub elongation: (f32, f32),
    pub halo_width: f32,
    /// Ring enhancement on the post-contrast channel, and its thickness.
    pub ring: Option<f32>,
    /// 0.6..1: how far lesion intensities move from the tissue's own.
    pub strength: f32,
    /// Smooth texture inside the lesion: a coarse grid of -1..1 values.
    pub texture: [[f32; 6]; 6],
}

/// What one slice of a lesion covers.
#[derive(Debug, Clone)]
pub struct CrossSection {
    /// The tumour mask: exactly the pixels rendered as lesion.
    pub mask: Vec<bool>,
    /// Oedema weight 0..1, zero inside the mask and outside the brain.
    pub halo: Vec<f32>,
    /// Pixels of the mask that enhance as a ring.
    pub ring: Vec<bool>,
}

impl Lesion {
    /// Draws a lesion centred on a brain pixel of `brain` (a `SIZE`^2 plane of
    /// tissue membership), spanning about `extent` slices around `centre_z`.
    pub fn random<R: Rng>(rng: &mut R, brain: &[f32], centre_z: f32, extent: f32) -> Option<Self> {
        let candidates: Vec<usize> = (0..SIZE * SIZE).filter(|&i| brain[i] > 0.9).collect();
        if candidates.is_empty() {
            return None;
        }
        let at = candidates[rng.random_range(0..candidates.len())];
        // Sizes from a few pixels to large; log-uniform so small lesions,
        // where Tversky loss is meant to help, are well represented.
        let radius = if rng.random_bool(0.15) {
            rng.random_range(1.2..3.0f32)
        } else {
            (rng.random_range(3.0f32.ln()..32.0f32.ln())).exp()
        };
        let harmonics = (2..7)
            .map(|k| {
                (
                    rng.random_range(0.0..0.3 / k as f32 * 2.0),
                    rng.random_range(0.0..2.0 * PI),
                )
            })
            .collect();
        let mut texture = [[0.0; 6]; 6];
        texture
            .iter_mut()
            .flatten()
            .for_each(|v| *v = rng.random_range(-1.0..1.0));
        Some(Self {
            centre_z,
            half_extent_z: (extent / 2.0).max(0.6),
            centre: ((at % SIZE) as f32 + 0.5, (at / SIZE) as f32 + 0.5),
            drift: (rng.random_range(-1.5..1.5), rng.random_range(-1.5..1.5)),
            radius,
            harmonics,
            elongation: (rng.random_range(0.75..1.3), rng.random_range(0.75..1.3)),
            halo_width: rng.random_range(2.0..12.0),
            ring: rng.random_bool(0.3).then(|| rng.random_range(1.2..3.0)),
            strength: rng.random_range(0.6..1.0),
            texture,
        })
    }

    /// Radius scale on slice `z`: an ellipsoid profile along the stack.
    pub fn profile(&self, z: f32) -> f32 {
        let t = (z - self.centre_z) / self.half_extent_z;
        (1.0 - t * t).max(0.0).sqrt()
    }

    /// The lesion on slice `z`, clipped to `brain` (membership > 0.5).
    pub fn cross_section(&self, z: f32, brain: &[f32]) -> CrossSection {
        let n = SIZE * SIZE;
        let mut cs = CrossSection {
            mask: vec![false; n],
            halo: vec![0.0; n],
            ring: vec![false; n],
        };
        let scale = self.profile(z);
        let dz = z - self.centre_z;
        let (cx, cy) = (
            self.centre.0 + self.drift.0 * dz,
            self.centre.1 + self.drift.1 * dz,
        );
        let r0 = self.radius * scale;
        // Oedema reaches one slice beyond the tumour's last, fainter there.
        if dz.abs() > self.half_extent_z + 1.0 {
            return cs;
        }
        let halo_gain = if scale > 0.0 { 1.0 } else { 0.5 };
        let big = self.radius * 1.7 + self.halo_width + 2.0;
        let (x0, x1) = (
            ((cx - big).floor().max(0.0)) as usize,
            ((cx + big).ceil().min(SIZE as f32)) as usize,
        );
        let (y0, y1) = (
            ((cy - big).floor().max(0.0)) as usize,
            ((cy + big).ceil().min(SIZE as f32)) as usize,
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let i = y * SIZE + x;
                if brain[i] <= 0.5 {
                    continue;
                }
                let dx = (x as f32 + 0.5 - cx) / self.elongation.0;
                let dy = (y as f32 + 0.5 - cy) / self.elongation.1;
                let d = (dx * dx + dy * dy).sqrt();
                let theta = dy.atan2(dx);
                let wobble: f32 = self
                    .harmonics
                    .iter()
                    .enumerate()
                    .map(|(k, (a, p))| a * ((k as f32 + 2.0) * theta + p).cos())
                    .sum();
                let edge = r0 * (1.0 + wobble).max(0.3);
                if scale > 0.0 && d <= edge {
                    cs.mask[i] = true;
                    if let Some(w) = self.ring {
                        cs.ring[i] = d >= edge - w;
                    }
                } else {
                    let outside = d - edge;
                    if outside > 0.0 && outside < self.halo_width {
                        cs.halo[i] =
                            halo_gain * (1.0 - outside / self.halo_width) * brain[i].min(1.0);
                    }
                }
            }
        }
        cs
    }

    /// Texture factor at a pixel: smooth, about 1 +/- 0.12.
    pub fn texture_at(&self, x: usize, y: usize) -> f32 {
        let gx = x as f32 / SIZE as f32 * 5.0;
        let gy = y as f32 / SIZE as f32 * 5.0;
        let (ix, iy) = ((gx as usize).min(4), (gy as usize).min(4));
        let (tx, ty) = (gx - ix as f32, gy - iy as f32);
        let t = &self.texture;
        let v = (1.0 - ty) * ((1.0 - tx) * t[iy][ix] + tx * t[iy][ix + 1])
            + ty * ((1.0 - tx) * t[iy + 1][ix] + tx * t[iy + 1][ix + 1]);
        1.0 + 0.12 * v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn all_brain() -> Vec<f32> {
        vec![1.0; SIZE * SIZE]
    }

    #[test]
    fn cross_sections_shrink_away_from_the_centre_and_stay_in_brain() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let brain = all_brain();
        let mut lesion = Lesion::random(&mut rng, &brain, 10.0, 8.0).unwrap();
        lesion.radius = 20.0;
        let area = |z: f32| {
            lesion
                .cross_section(z, &brain)
                .mask
                .iter()
                .filter(|&&m| m)
                .count()
        };
        assert!(area(10.0) > area(12.0) && area(12.0) > area(13.5));
        assert_eq!(area(15.0), 0);
        let far = lesion.cross_section(20.0, &brain);
        assert!(
            far.halo.iter().all(|&h| h == 0.0),
            "no oedema far from the lesion"
        );
        let mut half = brain.clone();
        half[..SIZE * SIZE / 2].iter_mut().for_each(|v| *v = 0.0);
        let cs = lesion.cross_section(10.0, &half);
        assert!(cs.mask[..SIZE * SIZE / 2].iter().all(|&m| !m));
        assert!(cs.halo[..SIZE * SIZE / 2].iter().all(|&h| h == 0.0));
    }

    #[test]
    fn halo_and_ring_sit_where_they_should() {
        let brain = all_brain();
        for seed in 0..30 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let lesion = Lesion::random(&mut rng, &brain, 5.0, 6.0).unwrap();
            let cs = lesion.cross_section(5.0, &brain);
            for i in 0..SIZE * SIZE {
                assert!(!(cs.mask[i] && cs.halo[i] > 0.0), "halo inside mask");
                assert!(!cs.ring[i] || cs.mask[i], "ring outside mask");
            }
        }
    }
}
