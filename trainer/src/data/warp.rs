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
                let (sx, sy) = self.source(x, y);
                let (x0, y0) = (sx.floor(), sy.floor());
                let (tx, ty) = (sx - x0, sy - y0);
                let (x0, y0) = (x0 as isize, y0 as isize);
                out[y * w + x] = (1.0 - ty) * ((1.0 - tx) * at(x0, y0) + tx * at(x0 + 1, y0))
                    + ty * ((1.0 - tx) * at(x0, y0 + 1) + tx * at(x0 + 1, y0 + 1));
            }
        }
        out
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
