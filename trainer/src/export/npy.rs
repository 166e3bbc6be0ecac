//! Minimal `.npy` (NumPy format 1.0) writer for the slices that calibrate
//! and score the int8 files, so that Python peers (onnxruntime's quantiser)
//! see exactly the arrays the Rust exporter used.

use crate::train::checkpoint::write_atomic;
use crate::train::dataset::Prepared;
use crate::{Error, Result};
use std::path::Path;

/// Element types written here.
pub trait NpyElement: Copy {
    /// NumPy `descr`, e.g. `<f4`.
    const DESCR: &'static str;
    fn extend_le(self, out: &mut Vec<u8>);
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for u8 {
    const DESCR: &'static str = "|u1";
    fn extend_le(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

/// The bytes of a C-order `.npy` file holding `data` with `shape`.
pub fn encode<T: NpyElement>(shape: &[usize], data: &[T]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "npy: shape {shape:?} vs {} values",
        data.len()
    );
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        T::DESCR,
        shape_txt
    );
    // Magic (6) + version (2) + header length (2) + header, padded with
    // spaces and ending in a newline, is a multiple of 64 bytes.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in data {
        v.extend_le(&mut out);
    }
    out
}

pub fn write<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    write_atomic(path, &encode(shape, data))
}

/// What `scripts/ort_quantize.py --slices DIR` reads: `calibration.npy`,
/// `eval_images.npy` and `eval_masks.npy`, at `calib`'s and `eval`'s
/// (equal) model size.
pub fn write_slice_sets(dir: &Path, calib: &Prepared, eval: &Prepared) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let s = eval.size as usize;
    write(
        &dir.join("calibration.npy"),
        &[calib.len(), 3, s, s],
        &calib.images,
    )?;
    write(
        &dir.join("eval_images.npy"),
        &[eval.len(), 3, s, s],
        &eval.images,
    )?;
    write(
        &dir.join("eval_masks.npy"),
        &[eval.len(), s, s],
        &eval.masks,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_describes_the_array() {
        let bytes = encode(&[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(header.contains("'descr': '<f4'"), "{header}");
        assert!(header.contains("'shape': (2, 3)"), "{header}");
        assert!(header.ends_with('\n'));
        let body = &bytes[10 + hlen..];
        assert_eq!(body.len(), 24);
        assert_eq!(f32::from_le_bytes(body[20..24].try_into().unwrap()), 6.0);
    }

    #[test]
    fn one_dimensional_shapes_keep_the_tuple_comma() {
        let bytes = encode(&[3], &[1u8, 0, 1]);
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (3,)"), "{header}");
        assert!(header.contains("'descr': '|u1'"), "{header}");
        assert_eq!(&bytes[10 + hlen..], &[1, 0, 1]);
    }

    #[test]
    #[should_panic(expected = "npy: shape")]
    fn shape_must_match_the_data() {
        encode(&[2, 2], &[0.0f32; 3]);
    }
}
