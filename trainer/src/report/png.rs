//! PNG output shared by the plots and the montage.

use crate::{Error, Result};
use image::{codecs::png::PngEncoder, ExtendedColorType, ImageEncoder};
use std::path::Path;

/// Encodes a packed RGB8 buffer and writes it to `path`.
pub(crate) fn write_rgb_png(path: &Path, (width, height): (u32, u32), rgb: &[u8]) -> Result<()> {
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(rgb, width, height, ExtendedColorType::Rgb8)
        .map_err(|e| Error::Invalid(format!("{}: PNG encoding: {e}", path.display())))?;
    std::fs::write(path, png).map_err(|e| Error::io(path, e))
}
