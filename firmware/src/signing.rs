//! `neuroscreen manifest keygen|sign|verify`: the publisher's side of signed
//! model sets (the board's side is `models.public_key` in its config, checked
//! by `Engine::load`).

use crate::error::{Error, Result};
use crate::store::{private, write_file_atomically};
use models::signature::{self, SigningKey};
use models::Manifest;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes a new private key to `out` (owner-only, never over an existing
/// file) and its public key to `<out>.pub`; returns the public key in hex.
pub fn keygen(out: &Path) -> Result<String> {
    let key = signature::generate()?;
    let mut file = private::file_options()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| Error::io(out, e))?;
    private::restrict(&file, out)?;
    file.write_all(format!("{}\n", hex::encode(key.to_bytes())).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(out, e))?;
    let public = hex::encode(key.verifying_key().as_bytes());
    write_file_atomically(&public_key_path(out), format!("{public}\n").as_bytes())?;
    Ok(public)
}

pub fn public_key_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Signs `<models>/manifest.json` (which must be a valid manifest whose
/// files match their hashes: a signature vouches for the whole set) and
/// writes `manifest.json.sig`; returns its path.
pub fn sign(key_file: &Path, models: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(key_file).map_err(|e| Error::io(key_file, e))?;
    let key: SigningKey = signature::parse_signing_key(&text).map_err(|source| Error::Key {
        path: key_file.to_path_buf(),
        source,
    })?;
    let manifest = models.join("manifest.json");
    let bytes = std::fs::read(&manifest).map_err(|e| Error::io(&manifest, e))?;
    let parsed = Manifest::from_json(&String::from_utf8_lossy(&bytes), &manifest)?;
    parsed.verify_files(models)?;
    let sig = signature::signature_path(&manifest);
    write_file_atomically(&sig, signature::sign(&key, &bytes).as_bytes())?;
    Ok(sig)
}

/// What a board with `public_key` pinned checks at start: the signature,
/// then every model file's sha256.
pub fn verify(public_key: &str, models: &Path) -> Result<()> {
    let key = signature::parse_public_key(public_key).map_err(|source| Error::Key {
        path: PathBuf::from("--public-key"),
        source,
    })?;
    let manifest = models.join("manifest.json");
    let bytes = std::fs::read(&manifest).map_err(|e| Error::io(&manifest, e))?;
    signature::verify(&manifest, &bytes, &key)?;
    Manifest::from_json(&String::from_utf8_lossy(&bytes), &manifest)?.verify_files(models)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_private_key_is_owner_only_and_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("signing.key");
        let public = keygen(&key).unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(public_key_path(&key))
                .unwrap()
                .trim(),
            public
        );
        let before = std::fs::read(&key).unwrap();
        assert!(keygen(&key)
            .unwrap_err()
            .to_string()
            .contains("signing.key"));
        assert_eq!(std::fs::read(&key).unwrap(), before);
    }
}
