//! Per-patient plans and slice rendering: real anatomy posed per patient,
//! contrast synthesised per channel from tissue memberships, the lesion
//! painted in, then bias field, gain/gamma and Rician noise.

use super::anatomy::{Volume, SIZE};
use super::lesion::Lesion;
use crate::data::warp::{Affine, Pose};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// The MRI contrasts a phantom can be rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contrast {
    T1,
    T1c,
    T2,
    Flair,
}

pub const CONTRASTS: [Contrast; 4] = [Contrast::T1, Contrast::T1c, Contrast::T2, Contrast::Flair];

/// How a patient's slices are written: the LGG stack or one grey contrast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// RGB = pre-contrast T1, FLAIR, post-contrast T1, as in the LGG set.
    Stacked,
    Single(Contrast),
}

impl Form {
    pub fn label(&self) -> String {
        match self {
            Form::Stacked => "stacked".into(),
            Form::Single(c) => format!("{c:?}").to_lowercase(),
        }
    }
}

/// Everything random about one patient, drawn once from the patient's seed.
#[derive(Debug, Clone)]
pub struct PatientPlan {
    pub id: String,
    pub volume: usize,
    /// Indices into the volume's slices, inferior to superior.
    pub base: Vec<usize>,
    pub pose: Pose,
    pub form: Form,
    pub gain: [f32; 4],
    pub gamma: f32,
    pub bias: [f32; 6],
    pub noise_sigma: f32,
    pub lesion: Option<Lesion>,
    /// Seed of the per-slice noise stream, separate from the plan's stream so
    /// a render without the lesion has identical noise.
    pub noise_seed: u64,
}

/// One rendered slice before quantisation, all four contrasts.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// T1, T1c, T2, FLAIR planes (nominally 0..1, not yet clipped).
    pub planes: [Vec<f32>; 4],
    pub mask: Vec<bool>,
    pub halo: Vec<f32>,
}

impl Rendered {
    pub fn plane(&self, c: Contrast) -> &[f32] {
        &self.planes[CONTRASTS.iter().position(|&k| k == c).unwrap()]
    }
}

/// Settings that shape a cohort.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CohortSettings {
    /// Mean share of slices that carry tumour (LGG: 1,373 / 3,929 = 0.35).
    pub tumour_fraction: f64,
    /// Share of patients without any lesion.
    pub clear_patients: f64,
    pub forms: FormChoice,
}

impl Default for CohortSettings {
    fn default() -> Self {
        Self {
            tumour_fraction: 0.35,
            clear_patients: 0.0,
            forms: FormChoice::Stacked,
        }
    }
}

/// Which form(s) a cohort is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormChoice {
    Stacked,
    Single(Contrast),
    /// Half the patients stacked, the rest one random single contrast each.
    Mixed,
}

impl PatientPlan {
    pub fn draw(volumes: &[Volume], settings: &CohortSettings, seed: u64, patient: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(
            seed ^ (patient as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let volume = rng.random_range(0..volumes.len());
        let available = volumes[volume].slices.len();
        let count = rng.random_range(available.min(18)..=available);
        let start = rng.random_range(0..=available - count);
        let base: Vec<usize> = (start..start + count).collect();
        let s = rng.random_range(0.85..1.1f32);
        let pose = Pose {
            angle: rng.random_range(-12.0f32..12.0).to_radians(),
            scale_x: s * rng.random_range(0.95..1.05),
            scale_y: s * rng.random_range(0.95..1.05),
            shift_x: rng.random_range(-10.0..10.0),
            shift_y: rng.random_range(-10.0..10.0),
            flip_x: rng.random_bool(0.5),
            flip_y: false,
        };
        let form = match settings.forms {
            FormChoice::Stacked => Form::Stacked,
            FormChoice::Single(c) => Form::Single(c),
            FormChoice::Mixed => {
                if rng.random_bool(0.5) {
                    Form::Stacked
                } else {
                    Form::Single(CONTRASTS[rng.random_range(0..4)])
                }
            }
        };
        let gain = [0; 4].map(|_| rng.random_range(0.85..1.15f32));
        let gamma = rng.random_range(0.8..1.25f32);
        let amp = rng.random_range(0.0..0.25f32);
        let bias = [0; 6].map(|_| rng.random_range(-1.0..1.0f32) * amp);
        let noise_sigma = rng.random_range(0.008..0.035f32);
        let noise_seed = rng.random();
        let id = format!(
            "PHANTOM_{}_{:04}",
            volumes[volume].name.to_uppercase(),
            patient + 1
        );
        let mut plan = PatientPlan {
            id,
            volume,
            base,
            pose,
            form,
            gain,
            gamma,
            bias,
            noise_sigma,
            lesion: None,
            noise_seed,
        };
        if !rng.random_bool(settings.clear_patients.clamp(0.0, 1.0)) {
            let n = count as f32;
            let extent =
                (settings.tumour_fraction as f32 * rng.random_range(0.6..1.4f32) * n).clamp(1.0, n);
            let half = extent / 2.0;
            let centre_z = rng.random_range(half.min(n / 2.0)..=(n - half).max(n / 2.0));
            // The centre must lie in brain on the lesion's middle slice.
            let mid = (centre_z.round() as usize).min(count - 1);
            let brain = plan.posed_brain(&volumes[volume], mid);
            plan.lesion = Lesion::random(&mut rng, &brain, centre_z, extent);
        }
        plan
    }

    fn posed(&self, volume: &Volume, j: usize) -> [Vec<f32>; 4] {
        let b = &volume.slices[self.base[j]];
        let a = Affine::from_pose(&self.pose, SIZE, SIZE);
        [&b.t1, &b.gm, &b.wm, &b.csf].map(|p| a.warp_bilinear(p, SIZE, SIZE))
    }

    fn posed_brain(&self, volume: &Volume, j: usize) -> Vec<f32> {
        let [_, gm, wm, csf] = self.posed(volume, j);
        (0..SIZE * SIZE)
            .map(|i| (gm[i] + wm[i] + csf[i]).min(1.0))
            .collect()
    }

    /// Renders slice `j` (0-based along the patient's stack).
    // Eight parallel planes are read and written per pixel; one index reads
    // better than eight zipped iterators.
    #[allow(clippy::needless_range_loop)]
    pub fn render(&self, volume: &Volume, j: usize, with_lesion: bool) -> Rendered {
        let n = SIZE * SIZE;
        let [t1, gm, wm, csf] = self.posed(volume, j);
        let brain: Vec<f32> = (0..n).map(|i| (gm[i] + wm[i] + csf[i]).min(1.0)).collect();
        let cs = self
            .lesion
            .as_ref()
            .filter(|_| with_lesion)
            .map(|l| (l, l.cross_section(j as f32, &brain)));

        // Tissue contrast per channel: T1 is the real scan; the others are
        // synthesised from memberships with a little of the real T1's detail,
        // and scalp/skull (non-brain) kept from the T1 at a lower weight.
        let mut planes = [
            vec![0.0f32; n],
            vec![0.0f32; n],
            vec![0.0f32; n],
            vec![0.0f32; n],
        ];
        for i in 0..n {
            let outside = 1.0 - brain[i];
            let detail = 0.12 * (t1[i] - 0.5) * brain[i];
            planes[0][i] = t1[i];
            planes[1][i] = t1[i] * (1.0 + 0.12 * outside);
            planes[2][i] =
                0.62 * gm[i] + 0.42 * wm[i] + 0.95 * csf[i] + 0.45 * outside * t1[i] - detail;
            planes[3][i] =
                0.78 * gm[i] + 0.58 * wm[i] + 0.06 * csf[i] + 0.55 * outside * t1[i] + detail;
        }
        let mut mask = vec![false; n];
        let mut halo = vec![0.0f32; n];
        if let Some((lesion, cs)) = cs {
            let k = lesion.strength;
            for i in 0..n {
                let h = cs.halo[i];
                if h > 0.0 {
                    planes[0][i] *= 1.0 - 0.12 * h * k;
                    planes[1][i] *= 1.0 - 0.12 * h * k;
                    planes[2][i] += 0.28 * h * k;
                    planes[3][i] += 0.22 * h * k;
                }
                if cs.mask[i] {
                    let tex = lesion.texture_at(i % SIZE, i / SIZE);
                    let mix = |base: f32, target: f32| (base + (target - base) * k) * tex;
                    planes[0][i] = mix(planes[0][i], 0.28);
                    planes[1][i] = if cs.ring[i] {
                        mix(planes[1][i], 1.0)
                    } else if lesion.ring.is_some() {
                        mix(planes[1][i], 0.2)
                    } else {
                        mix(planes[1][i], 0.32)
                    };
                    planes[2][i] = mix(planes[2][i], 0.9);
                    planes[3][i] = mix(planes[3][i], 0.97);
                }
            }
            mask = cs.mask;
            halo = cs.halo;
        }

        // Scanner effects: smooth multiplicative bias field, per-channel gain
        // and a shared gamma, then Rician noise (magnitude of complex noise).
        let mut noise_rng = ChaCha8Rng::seed_from_u64(
            self.noise_seed ^ (j as u64).wrapping_mul(0xA24B_AED4_963E_E407),
        );
        let normal = Normal::new(0.0f32, self.noise_sigma).expect("finite sigma");
        let b = &self.bias;
        for (c, plane) in planes.iter_mut().enumerate() {
            for (i, v) in plane.iter_mut().enumerate() {
                let x = (i % SIZE) as f32 / SIZE as f32 * 2.0 - 1.0;
                let y = (i / SIZE) as f32 / SIZE as f32 * 2.0 - 1.0;
                let field = 1.0
                    + b[0] * x
                    + b[1] * y
                    + b[2] * x * y
                    + b[3] * (x * x - 0.33)
                    + b[4] * (y * y - 0.33)
                    + b[5] * 0.1 * j as f32;
                let s = self.gain[c] * v.max(0.0).powf(self.gamma) * field.max(0.3);
                let (n1, n2) = (normal.sample(&mut noise_rng), normal.sample(&mut noise_rng));
                *v = ((s + n1).powi(2) + n2 * n2).sqrt();
            }
        }
        Rendered { planes, mask, halo }
    }
}

/// 0..1 float to byte, clipping what the bias field pushed over.
pub fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}
