//! File names for a slice's outputs that two inputs cannot share.

use sha2::{Digest, Sha256};
use std::path::Path;

/// The input's name (made safe for any file system) plus 12 hex digits of
/// the sha256 of its absolute path: `scan a/s1.png b/s1.png` gives two
/// stems, and scanning the same file again gives the same one.
pub fn stem_for(input: &Path) -> String {
    let absolute = std::fs::canonicalize(input)
        .or_else(|_| std::path::absolute(input))
        .unwrap_or_else(|_| input.to_path_buf());
    let digest = Sha256::digest(absolute.as_os_str().as_encoded_bytes());
    let name: String = readable_name(input)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let name = if name.is_empty() {
        "slice".into()
    } else {
        name
    };
    format!("{name}-{}", &hex::encode(digest)[..12])
}

/// The file's stem; a frame of a multi-frame DICOM file (`cine.dcm#3`)
/// reads `cine_f3`.
fn readable_name(input: &Path) -> String {
    let file = input
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some((name, frame)) = file.rsplit_once('#') {
        if !frame.is_empty() && frame.chars().all(|c| c.is_ascii_digit()) {
            let stem = Path::new(name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            return format!("{stem}_f{frame}");
        }
    }
    input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_in_two_folders_gives_two_stems() {
        let a = stem_for(Path::new("/scans/a/slice 1.png"));
        let b = stem_for(Path::new("/scans/b/slice 1.png"));
        assert_ne!(a, b);
        assert!(
            a.starts_with("slice_1-") && a.len() == "slice_1-".len() + 12,
            "{a}"
        );
        assert_eq!(a, stem_for(Path::new("/scans/a/slice 1.png")));
    }

    #[test]
    fn frames_of_one_file_get_their_own_readable_stems() {
        let a = stem_for(Path::new("/in/cine.dcm#1"));
        let b = stem_for(Path::new("/in/cine.dcm#2"));
        assert!(
            a.starts_with("cine_f1-") && b.starts_with("cine_f2-"),
            "{a} {b}"
        );
    }

    #[test]
    fn relative_and_absolute_spellings_agree() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.png");
        std::fs::write(&f, b"x").unwrap();
        let dotted = d.path().join(".").join("x.png");
        assert_eq!(stem_for(&f), stem_for(&dotted));
    }
}
