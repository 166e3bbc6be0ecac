//! Results and the inbox hold patients' images: folders the appliance makes
//! are 0700 and files it writes 0600, set explicitly rather than left to
//! whatever umask the service was started with.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents, 0700) and makes `dir` itself 0700,
/// also when it already existed with wider permissions.
pub fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder.create(dir).map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
        .map_err(|e| Error::io(dir, e))?;
    Ok(())
}

/// Options that create a file 0600 (before any byte is written).
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    options.mode(FILE_MODE);
    options
}

/// The mode passed at creation is filtered through the umask; this makes
/// it exact.
pub fn restrict(file: &File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .map_err(|e| Error::io(path, e))?;
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_are_owner_only_even_when_they_existed_wider() {
        let d = tempfile::tempdir().unwrap();
        let nested = d.path().join("a/b");
        create_dir(&nested).unwrap();
        assert_eq!(mode(&nested), DIR_MODE);
        std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o777)).unwrap();
        create_dir(&nested).unwrap();
        assert_eq!(mode(&nested), DIR_MODE);
    }

    #[test]
    fn files_are_owner_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let f = file_options().write(true).create(true).open(&p).unwrap();
        restrict(&f, &p).unwrap();
        assert_eq!(mode(&p), FILE_MODE);
    }
}
