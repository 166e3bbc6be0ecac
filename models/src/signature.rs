//! An optional ed25519 signature over `manifest.json`, so a model set swapped
//! as a whole (new ONNX files *and* a manifest with their hashes) is still
//! refused by a board whose config pins the publisher's public key. The
//! manifest carries every model file's sha256, so signing its bytes covers
//! the models too.
//!
//! Files: `manifest.json.sig` beside the manifest holds the 64-byte
//! signature in hex; keys are 32 bytes in hex (the private key file holds
//! the seed and is written owner-only by the CLI).

use crate::{Error, Result};
use ed25519_dalek::{Signature, Signer, Verifier};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};

/// The signature file of a manifest: `<manifest>.sig`.
pub fn signature_path(manifest: &Path) -> PathBuf {
    let mut name = manifest.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Why a key's text is refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not 32 bytes of hex; `len` is the trimmed text's length.
    #[error("expected 64 hex digits ({len} characters given): {source}")]
    Hex {
        len: usize,
        #[source]
        source: hex::FromHexError,
    },
    #[error("not an ed25519 public key: {0}")]
    NotEd25519(#[source] ed25519_dalek::SignatureError),
}

/// A public key as written in `appliance.toml`: 64 hex digits.
pub fn parse_public_key(text: &str) -> std::result::Result<VerifyingKey, KeyError> {
    let bytes = hex32(text)?;
    VerifyingKey::from_bytes(&bytes).map_err(KeyError::NotEd25519)
}

/// A private key file's text: the 32-byte seed as 64 hex digits.
pub fn parse_signing_key(text: &str) -> std::result::Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&hex32(text)?))
}

fn hex32(text: &str) -> std::result::Result<[u8; 32], KeyError> {
    let text = text.trim();
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|source| KeyError::Hex {
        len: text.len(),
        source,
    })?;
    Ok(out)
}

/// A new key pair from the operating system's random source.
pub fn generate() -> Result<SigningKey> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| Error::io("/dev/urandom", e))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The signature file's text for `manifest_bytes`.
pub fn sign(key: &SigningKey, manifest_bytes: &[u8]) -> String {
    hex::encode(key.sign(manifest_bytes).to_bytes()) + "\n"
}

/// Checks `manifest_bytes` (read from `manifest`) against its `.sig` file;
/// a missing, malformed or non-matching signature is refused naming the
/// file.
pub fn verify(manifest: &Path, manifest_bytes: &[u8], key: &VerifyingKey) -> Result<()> {
    let sig_path = signature_path(manifest);
    let refuse = |reason: String| Error::Signature {
        path: sig_path.clone(),
        reason,
    };
    let text = match std::fs::read_to_string(&sig_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(
                "missing: the config pins a public key, so the model set must be signed".into(),
            ))
        }
        Err(e) => return Err(Error::io(&sig_path, e)),
    };
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(text.trim(), &mut bytes)
        .map_err(|e| refuse(format!("not a signature (128 hex digits expected): {e}")))?;
    key.verify(manifest_bytes, &Signature::from_bytes(&bytes))
        .map_err(|_| {
            refuse(format!(
                "does not verify {} against the pinned public key {}: the model set was changed or signed by someone else",
                manifest.display(),
                hex::encode(key.as_bytes())
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(dir: &Path) -> (PathBuf, SigningKey) {
        let key = generate().unwrap();
        let manifest = dir.join("manifest.json");
        std::fs::write(&manifest, b"{\"format_version\": 1}").unwrap();
        std::fs::write(
            signature_path(&manifest),
            sign(&key, &std::fs::read(&manifest).unwrap()),
        )
        .unwrap();
        (manifest, key)
    }

    #[test]
    fn a_signed_manifest_verifies_and_any_change_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (manifest, key) = signed(d.path());
        let public = key.verifying_key();
        verify(&manifest, &std::fs::read(&manifest).unwrap(), &public).unwrap();
        let msg = verify(&manifest, b"{\"format_version\": 2}", &public)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("manifest.json.sig") && msg.contains("does not verify"),
            "{msg}"
        );
    }

    #[test]
    fn another_key_or_a_missing_signature_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (manifest, _) = signed(d.path());
        let bytes = std::fs::read(&manifest).unwrap();
        let other = generate().unwrap().verifying_key();
        assert!(verify(&manifest, &bytes, &other).is_err());
        std::fs::remove_file(signature_path(&manifest)).unwrap();
        let msg = verify(&manifest, &bytes, &other).unwrap_err().to_string();
        assert!(
            msg.contains("manifest.json.sig") && msg.contains("missing"),
            "{msg}"
        );
    }

    #[test]
    fn keys_round_trip_through_hex_and_bad_text_is_named() {
        let key = generate().unwrap();
        let again = parse_signing_key(&hex::encode(key.to_bytes())).unwrap();
        assert_eq!(again.verifying_key(), key.verifying_key());
        let public = parse_public_key(&hex::encode(key.verifying_key().as_bytes())).unwrap();
        assert_eq!(public, key.verifying_key());
        assert!(parse_public_key("abc")
            .unwrap_err()
            .to_string()
            .contains("64 hex digits"));
        assert!(matches!(
            parse_signing_key(" abc\n"),
            Err(KeyError::Hex { len: 3, .. })
        ));
    }
}
