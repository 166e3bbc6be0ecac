//! Affine resampling of planes, shared by augmentation (image and mask must
//! move together) and by the phantom generator's per-patient pose.

/// Maps an output pixel centre to a source position:
/// `sx = m[0]*x + m[1]*y + m[2]`, `sy = m[3]*x + m[4]*y + m[5]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub m: [f32; 6],
}

/// A pose about the image centre, in output terms: rotate by `angle`
/// (radians, counter-clockwise on screen), scale, shift, mirror.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub angle: f32,
    pub scale_x: f32,
    pub scale_y: f32,
    pub shift_x: f32,
    pub shift_y: f32,
    pub flip_x: bool,
    pub flip_y: bool,
}

impl Default for Pose {
    fn default() -> Self {
        Self {
            angle: 0.0,
            scale_x: 1.0,
            scale_y: 1.0,
            shift_x: 0.0,
            shift_y: 0.0,
            flip_x: false,
            flip_y: false,
        }
    }
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        m: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    };

    /// The inverse mapping (output -> source) of `pose` for a `w` x `h` image.
    pub fn from_pose(pose: &Pose, w: usize, h: usize) -> Self {
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        let (s, c) = pose.angle.sin_cos();
        let fx = if pose.flip_x { -1.0 } else { 1.0 };
        let fy = if pose.flip_y { -1.0 } else { 1.0 };
        // output u = R * S * F * (src - centre) + centre + shift
        // => src = F * S^-1 * R^T * (u - centre - shift) + centre
        let (isx, isy) = (fx / pose.scale_x, fy / pose.scale_y);
        let a = isx * c;
        let b = isx * s;
        let d = -isy * s;
        let e = isy * c;
        let (ox, oy) = (cx + pose.shift_x, cy + pose.shift_y);
        Affine {
            m: [a, b, cx - a * ox - b * oy, d, e, cy - d * ox - e * oy],
        }
    }

    #[inline]
    fn source(&self, x: usize, y: usize) -> (f32, f32) {
        let (x, y) = (x as f32 + 0.5, y as f32 + 0.5);
        (
            self.m[0] * x + self.m[1] * y + self.m[2] - 0.5,
            self.m[3] * x + self.m[4] * y + self.m[5] - 0.5,
        )
    }

    /// Bilinear resampling; outside the source reads as zero (air).
    pub fn warp_bilinear(&self, plane: &[f32], w: usize, h: usize) -> Vec<f32> {
        let mut out = plane.to_vec();
        self.warp_bilinear_planes(&mut out, w, h);
        out
    }

    /// [`Affine::warp_bilinear`] of every `w` x `h` plane of `planes`, in
    /// place. The source position and weights of a pixel are worked out
    /// once for all planes, and pixels whose four neighbours lie inside the
    /// source (most of them) skip the bounds checks: the training loader
    /// warps three planes a slice, and this is most of its time.
    pub fn warp_bilinear_planes(&self, planes: &mut [f32], w: usize, h: usize) {
        let n = w * h;
        assert!(
            n > 0 && planes.len().is_multiple_of(n),
            "whole {w}x{h} planes"
        );
        let count = planes.len() / n;
        let mut out = vec![0.0f32; planes.len()];
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = self.source(x, y);
                let (fx, fy) = (sx.floor(), sy.floor());
                let (tx, ty) = (sx - fx, sy - fy);
                let (x0, y0) = (fx as isize, fy as isize);
                let i = y * w + x;
                if x0 >= 0 && y0 >= 0 && (x0 as usize) + 1 < w && (y0 as usize) + 1 < h {
                    let k = y0 as usize * w + x0 as usize;
                    for c in 0..count {
                        let p = &planes[c * n..(c + 1) * n];
                        out[c * n + i] = (1.0 - ty) * ((1.0 - tx) * p[k] + tx * p[k + 1])
                            + ty * ((1.0 - tx) * p[k + w] + tx * p[k + w + 1]);
                    }
                } else {
                    for c in 0..count {
                        let p = &planes[c * n..(c + 1) * n];
                        let at = |x: isize, y: isize| -> f32 {
                            if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
                                0.0
                            } else {
                                p[y as usize * w + x as usize]
                            }
                        };
                        out[c * n + i] = (1.0 - ty)
                            * ((1.0 - tx) * at(x0, y0) + tx * at(x0 + 1, y0))
                            + ty * ((1.0 - tx) * at(x0, y0 + 1) + tx * at(x0 + 1, y0 + 1));
                    }
                }
            }
        }
        planes.copy_from_slice(&out);
    }

    /// Nearest-neighbour resampling for label masks (no new label values).
    pub fn warp_nearest(&self, plane: &[u8], w: usize, h: usize) -> Vec<u8> {
        let mut out = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = self.source(x, y);
                let (sx, sy) = (sx.round(), sy.round());
                if sx >= 0.0 && sy >= 0.0 && (sx as usize) < w && (sy as usize) < h {
                    out[y * w + x] = plane[sy as usize * w + sx as usize];
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_pose_is_identity() {
        let plane: Vec<f32> = (0..12 * 10).map(|v| v as f32).collect();
        let a = Affine::from_pose(&Pose::default(), 12, 10);
        assert_eq!(a.warp_bilinear(&plane, 12, 10), plane);
        let m: Vec<u8> = (0..120).map(|v| v as u8).collect();
        assert_eq!(a.warp_nearest(&m, 12, 10), m);
    }

    /// The definition, pixel by pixel with every read bounds-checked: the
    /// fast path must give the same bits, edges and corners included.
    fn reference_bilinear(a: &Affine, plane: &[f32], w: usize, h: usize) -> Vec<f32> {
        let at = |x: isize, y: isize| -> f32 {
            if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
                0.0
            } else {
                plane[y as usize * w + x as usize]
            }
        };
        let mut out = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = a.source(x, y);
                let (x0, y0) = (sx.floor(), sy.floor());
                let (tx, ty) = (sx - x0, sy - y0);
                let (x0, y0) = (x0 as isize, y0 as isize);
                out[y * w + x] = (1.0 - ty) * ((1.0 - tx) * at(x0, y0) + tx * at(x0 + 1, y0))
                    + ty * ((1.0 - tx) * at(x0, y0 + 1) + tx * at(x0 + 1, y0 + 1));
            }
        }
        out
    }

    #[test]
    fn planes_warp_as_the_per_pixel_definition_does() {
        let (w, h) = (23, 17);
        let planes: Vec<f32> = (0..3 * w * h)
            .map(|v| ((v * 37) % 101) as f32 / 7.0)
            .collect();
        for (k, pose) in [
            Pose::default(),
            Pose {
                angle: 0.4,
                scale_x: 0.8,
                scale_y: 0.8,
                shift_x: 3.5,
                shift_y: -2.0,
                flip_x: true,
                ..Pose::default()
            },
            Pose {
                angle: -2.0,
                scale_x: 1.3,
                scale_y: 1.1,
                flip_y: true,
                ..Pose::default()
            },
        ]
        .iter()
        .enumerate()
        {
            let a = Affine::from_pose(pose, w, h);
            let mut warped = planes.clone();
            a.warp_bilinear_planes(&mut warped, w, h);
            for c in 0..3 {
                let want = reference_bilinear(&a, &planes[c * w * h..(c + 1) * w * h], w, h);
                assert_eq!(
                    &warped[c * w * h..(c + 1) * w * h],
                    &want[..],
                    "pose {k} plane {c}"
                );
            }
        }
    }

    #[test]
    fn flip_x_mirrors_columns() {
        let plane: Vec<u8> = (0..4 * 3).map(|v| v as u8).collect();
        let pose = Pose {
            flip_x: true,
            ..Pose::default()
        };
        let out = Affine::from_pose(&pose, 4, 3).warp_nearest(&plane, 4, 3);
        assert_eq!(&out[..4], &[3, 2, 1, 0]);
    }

    #[test]
    fn quarter_turn_moves_a_pixel_as_expected() {
        // 9x9, a dot right of centre; +90 degrees (counter-clockwise on a
        // y-down screen means it ends up above centre... or below: check one).
        let mut plane = vec![0u8; 81];
        plane[4 * 9 + 7] = 1;
        let pose = Pose {
            angle: std::f32::consts::FRAC_PI_2,
            ..Pose::default()
        };
        let out = Affine::from_pose(&pose, 9, 9).warp_nearest(&plane, 9, 9);
        let idx = out.iter().position(|&v| v == 1).expect("dot survives");
        assert_eq!((idx % 9, idx / 9), (4, 7));
    }
}
