//! Turning command-line paths into the list of slice files to process.

use crate::error::{Error, Result};
use crate::store::RESULTS_LOG;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const SLICE_EXTENSIONS: [&str; 7] = ["png", "tif", "tiff", "jpg", "jpeg", "dcm", "dicom"];

/// Files are taken as given (a bad one becomes an error line later, not a
/// refusal now); folders are walked for slice files, masks (`*_mask.*`)
/// left out unless their slice is missing (then the mask is listed, so the
/// scan says so rather than skipping it unseen), in sorted order so runs are
/// repeatable, except that the DICOM files of a folder come grouped by
/// series and in slice order (`dicom::series`). Sub-folders holding a
/// `results.jsonl` are our own results (masks, overlays, screens) and are
/// not walked, so a results folder inside a scanned folder is not rescanned.
/// Anything inside a folder that is named like a slice but is not a file
/// (a FIFO, a socket, a device, a folder called `x.png`, a broken link) is
/// listed too: reading it refuses it by name and kind, one error line.
/// A link to a folder is followed once: a link loop is not walked forever.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            let mut seen = HashSet::new();
            walk(p, &mut found, &mut seen)?;
            out.extend(crate::dicom::series::order(found));
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>) -> Result<()> {
    let real = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    if !seen.insert(real) {
        tracing::warn!(folder = %dir.display(), "a link back to a folder already walked: not walked again");
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in &entries {
        if p.is_dir() && !named_like_a_slice(p) {
            if !p.join(RESULTS_LOG).exists() {
                walk(p, out, seen)?;
            }
        } else if is_slice_file(p) || (is_mask(p) && !has_its_slice(p, &entries)) {
            out.push(p.clone());
        }
    }
    Ok(())
}

/// A slice's extension: such a name that is not a file is an input gone
/// wrong, said rather than walked or skipped.
pub fn named_like_a_slice(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SLICE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A tumour mask by the LGG naming (`<slice>_mask.<ext>`): never screened.
pub fn is_mask(p: &Path) -> bool {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    stem.ends_with("_mask") && named_like_a_slice(p)
}

fn has_its_slice(mask: &Path, siblings: &[PathBuf]) -> bool {
    let stem = mask.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let slice = stem.trim_end_matches("_mask");
    siblings
        .iter()
        .any(|p| p.file_stem().and_then(|s| s.to_str()) == Some(slice) && is_slice_file(p))
}

/// The mask beside a slice by the LGG naming (`<stem>_mask.<ext>`), if
/// there is one.
pub fn mask_beside(slice: &Path) -> Option<PathBuf> {
    let stem = slice.file_stem()?.to_str()?;
    let ext = slice.extension()?.to_str()?;
    let mask = slice.with_file_name(format!("{stem}_mask.{ext}"));
    mask.is_file().then_some(mask)
}

/// A mask file as one flag per pixel: any non-zero grey value is tumour.
pub fn read_mask(path: &Path) -> std::result::Result<Vec<bool>, image::ImageError> {
    Ok(image::open(path)?
        .to_luma8()
        .pixels()
        .map(|p| p[0] != 0)
        .collect())
}

pub fn is_slice_file(p: &Path) -> bool {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem.ends_with("_mask") {
        return false;
    }
    match p.extension().and_then(|e| e.to_str()) {
        Some(_) => named_like_a_slice(p),
        // Scanners and DICOM exports often name files by number alone.
        None => starts_like_dicom(p),
    }
}

/// Read without blocking: a FIFO without an extension in a watched folder
/// once held `run --once` for good.
fn starts_like_dicom(p: &Path) -> bool {
    crate::input_file::head(p, 132).is_ok_and(|head| crate::dicom::is_dicom(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_to_sorted_slices_without_masks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        for f in ["b.png", "a.TIF", "a_mask.tif", "notes.txt", "sub/c.jpeg"] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        let files = expand(&[d.path().to_path_buf(), PathBuf::from("/given/as/is.txt")]).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap_or(p).display().to_string())
            .collect();
        assert_eq!(names, ["a.TIF", "b.png", "sub/c.jpeg", "/given/as/is.txt"]);
    }

    #[test]
    fn a_mask_without_its_slice_is_listed_so_the_scan_reports_it() {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.png", "a_mask.png", "b_mask.tif"] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        let files = expand(&[d.path().to_path_buf()]).unwrap();
        assert_eq!(files, [d.path().join("a.png"), d.path().join("b_mask.tif")]);
        assert!(is_mask(&d.path().join("b_mask.tif")));
        assert!(!is_mask(&d.path().join("b_mask.txt")));
    }

    #[test]
    fn a_results_folder_inside_a_scanned_folder_is_not_rescanned() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("out")).unwrap();
        for f in ["a.png", "out/a-1234_overlay.png", "out/results.jsonl"] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        let files = expand(&[d.path().to_path_buf()]).unwrap();
        assert_eq!(files, [d.path().join("a.png")]);
    }

    #[test]
    fn special_files_named_like_slices_are_listed_so_each_gets_its_error() {
        let d = tempfile::tempdir().unwrap();
        let fifo = |name: &str| {
            let c =
                std::ffi::CString::new(d.path().join(name).as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        };
        fifo("pipe.png");
        // Without an extension a file is peeked at for DICOM's magic: a FIFO
        // must not block that.
        fifo("IM0001");
        std::fs::create_dir(d.path().join("folder.png")).unwrap();
        std::fs::write(d.path().join("folder.png/inside.png"), b"x").unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.path().join("zero.png")).unwrap();
        std::os::unix::fs::symlink(d.path(), d.path().join("back")).unwrap();
        std::fs::write(d.path().join("a.png"), b"x").unwrap();
        let files = expand(&[d.path().to_path_buf()]).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.png", "folder.png", "pipe.png", "zero.png"]);
    }
}
