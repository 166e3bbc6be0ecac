//! The real anatomy phantoms are drawn on: axial slices of MNI152 and
//! Colin27 (see `trainer/anatomy/LICENSES.md`), embedded in the binary so a
//! copied trainer needs no data folder.

use crate::{Error, Result};
use models::SliceImage;
use std::path::Path;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/anatomy.rs"));
}

/// Side of every base slice (and of every phantom).
pub const SIZE: usize = 256;

/// One axial slice: real T1 and tissue memberships, all 0..1, `SIZE`^2.
#[derive(Debug, Clone)]
pub struct BaseSlice {
    pub name: String,
    pub t1: Vec<f32>,
    pub gm: Vec<f32>,
    pub wm: Vec<f32>,
    pub csf: Vec<f32>,
}

/// A template volume: its slices from inferior to superior.
#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub slices: Vec<BaseSlice>,
}

/// Decodes the embedded base slices into volumes (sorted by name, slices by z).
pub fn embedded_volumes() -> Result<Vec<Volume>> {
    let mut volumes: Vec<Volume> = Vec::new();
    for (name, t1_png, tissue_png) in embedded::BASE_SLICES {
        let origin = Path::new(name);
        let t1 = SliceImage::decode(t1_png, origin)?;
        let tissue = SliceImage::decode(tissue_png, origin)?;
        if t1.width as usize != SIZE || tissue.channels != 3 || tissue.width as usize != SIZE {
            return Err(Error::Invalid(format!(
                "base slice {name} is not {SIZE}x{SIZE} T1 + RGB tissue"
            )));
        }
        let unit = |p: &[f32]| p.iter().map(|v| v / 255.0).collect::<Vec<f32>>();
        let slice = BaseSlice {
            name: name.to_string(),
            t1: unit(t1.plane(0)),
            gm: unit(tissue.plane(0)),
            wm: unit(tissue.plane(1)),
            csf: unit(tissue.plane(2)),
        };
        let volume = name.split("_z").next().unwrap_or(name).to_string();
        match volumes.iter_mut().find(|v| v.name == volume) {
            Some(v) => v.slices.push(slice),
            None => volumes.push(Volume {
                name: volume,
                slices: vec![slice],
            }),
        }
    }
    if volumes.is_empty() {
        return Err(Error::Invalid("no base anatomy embedded".into()));
    }
    Ok(volumes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_templates_are_embedded_with_brain_in_them() {
        let vols = embedded_volumes().unwrap();
        let names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["colin27", "mni152"]);
        for v in &vols {
            assert!(v.slices.len() >= 25, "{}: {}", v.name, v.slices.len());
            for s in &v.slices {
                let brain = (0..SIZE * SIZE)
                    .filter(|&i| s.gm[i] + s.wm[i] > 0.5)
                    .count();
                assert!(brain > 3000, "{} has {brain} brain pixels", s.name);
            }
        }
    }
}
