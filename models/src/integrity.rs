//! sha256 of model files, so a swapped or damaged model is refused by name.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Lower-case hex sha256 of a file's bytes, streamed so large models do not
/// need to fit in memory twice.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Fails with both hashes and the file name when the file is not the one the
/// manifest describes.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(Error::HashMismatch {
            path: path.to_path_buf(),
            expected: expected.trim().to_ascii_lowercase(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_of_abc() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc.bin");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn flipped_byte_is_refused_with_both_hashes_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.onnx");
        std::fs::write(&p, b"some model bytes").unwrap();
        let good = sha256_file(&p).unwrap();
        verify_sha256(&p, &good).unwrap();
        verify_sha256(&p, &good.to_uppercase()).unwrap();

        let mut bytes = std::fs::read(&p).unwrap();
        bytes[3] ^= 0x01;
        std::fs::write(&p, &bytes).unwrap();
        let err = verify_sha256(&p, &good).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("model.onnx"), "{msg}");
        assert!(msg.contains(&good), "{msg}");
        assert!(msg.contains(&sha256_file(&p).unwrap()), "{msg}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = sha256_file(Path::new("/nonexistent/filter.onnx")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/filter.onnx"));
    }
}
