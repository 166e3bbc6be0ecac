//! Opening an input the way an unattended box must: only a regular file (or
//! a link to one) is read; a FIFO, socket, device, folder or broken link is
//! named and refused without blocking; no read goes past the limit for its
//! kind of input, and a file over it is refused before its bytes are read.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::fs::{File, FileType};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;

/// `[inputs]` in the appliance config.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputLimits {
    /// PNG, TIFF, JPEG slices: a 512 x 512 16-bit slice is 0.5 MiB.
    pub max_image_mib: u64,
    /// DICOM objects (`.dcm`, `.dicom`, no extension): a single MR slice is
    /// about 0.5 MiB, a multi-frame series some tens.
    pub max_dicom_mib: u64,
    /// Decoding or screening one slice (or one frame) past this many seconds
    /// is recorded as an error naming the stage, and the next slice goes on.
    /// 0 turns the limit off.
    pub stage_timeout_s: f64,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_image_mib: 64,
            max_dicom_mib: 128,
            stage_timeout_s: 10.0,
        }
    }
}

impl InputLimits {
    /// The largest file accepted at `path`, and the config key that sets it.
    pub fn max_bytes(&self, path: &Path) -> (u64, &'static str) {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            None | Some("dcm" | "dicom") => {
                (self.max_dicom_mib.saturating_mul(MIB), "max_dicom_mib")
            }
            Some(_) => (self.max_image_mib.saturating_mul(MIB), "max_image_mib"),
        }
    }

    pub fn stage_timeout(&self) -> Option<Duration> {
        (self.stage_timeout_s > 0.0).then(|| Duration::from_secs_f64(self.stage_timeout_s))
    }

    /// For `neuroscreen check`'s config validation: names the bad key.
    pub fn problem(&self) -> Option<String> {
        if self.max_image_mib == 0 || self.max_dicom_mib == 0 {
            return Some("inputs.max_image_mib and inputs.max_dicom_mib must be at least 1".into());
        }
        if !self.stage_timeout_s.is_finite() || self.stage_timeout_s < 0.0 {
            return Some("inputs.stage_timeout_s must be 0 (no limit) or a positive number".into());
        }
        None
    }
}

/// The whole file, at most its kind's limit.
pub fn read(path: &Path, limits: &InputLimits) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    let (max, key) = limits.max_bytes(path);
    if len > max {
        return Err(too_large(path, len, max, key));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // The file may grow between the stat and the read: the read is bounded
    // by the limit, not by the size seen.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(too_large(path, bytes.len() as u64, max, key));
    }
    Ok(bytes)
}

/// The first `n` bytes (fewer if the file is shorter), refusing what
/// [`read`] refuses except the size.
pub fn head(path: &Path, n: usize) -> Result<Vec<u8>> {
    let (file, _) = open_regular(path)?;
    let mut bytes = Vec::with_capacity(n);
    file.take(n as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// Opens without blocking (a FIFO with no writer would wait for one
/// forever) and checks the type of what was opened, not of a path looked
/// at earlier, which a rename could have swapped.
fn open_regular(path: &Path) -> Result<(File, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    Ok((file, meta.len()))
}

fn open_error(path: &Path, e: std::io::Error) -> Error {
    let link = std::fs::symlink_metadata(path).ok();
    let kind = match e.raw_os_error() {
        Some(libc::ELOOP) => Some("a symbolic link that loops"),
        Some(libc::ENOENT) if link.as_ref().is_some_and(|m| m.is_symlink()) => {
            Some("a dangling symbolic link")
        }
        // Opening a Unix socket fails with ENXIO; say what it is.
        Some(libc::ENXIO) => link.map(|m| kind_of(m.file_type())),
        _ => None,
    };
    match kind {
        Some(kind) => Error::NotAFile {
            path: path.to_path_buf(),
            kind,
        },
        None => Error::io(path, e),
    }
}

fn kind_of(t: FileType) -> &'static str {
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

fn too_large(path: &Path, len: u64, max: u64, key: &str) -> Error {
    Error::TooLarge {
        path: path.to_path_buf(),
        reason: format!(
            "{} bytes, over the {} MiB limit for this kind of input (inputs.{key})",
            len,
            max / MIB
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn refused(path: &Path) -> String {
        let e = read(path, &InputLimits::default()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        text
    }

    #[test]
    fn a_regular_file_and_a_link_to_one_are_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.png");
        std::fs::write(&f, b"abc").unwrap();
        std::os::unix::fs::symlink(&f, d.path().join("b.png")).unwrap();
        let limits = InputLimits::default();
        assert_eq!(read(&f, &limits).unwrap(), b"abc");
        assert_eq!(read(&d.path().join("b.png"), &limits).unwrap(), b"abc");
        assert_eq!(head(&f, 2).unwrap(), b"ab");
    }

    #[test]
    fn special_files_are_named_and_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("pipe.png");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(refused(&fifo).contains("FIFO"));
        assert!(head(&fifo, 132).is_err());

        let zero = d.path().join("zero.png");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(refused(&zero).contains("character device"));

        let folder = d.path().join("folder.png");
        std::fs::create_dir(&folder).unwrap();
        assert!(refused(&folder).contains("a folder"));

        let dangling = d.path().join("gone.png");
        std::os::unix::fs::symlink(d.path().join("nowhere"), &dangling).unwrap();
        assert!(refused(&dangling).contains("dangling"));

        let looped = d.path().join("loop.png");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        assert!(refused(&looped).contains("loops"));

        let socket = d.path().join("sock.png");
        let _listener = UnixListener::bind(&socket).unwrap();
        assert!(refused(&socket).contains("socket"));
    }

    #[test]
    fn a_file_over_its_kinds_limit_is_refused_by_size() {
        let d = tempfile::tempdir().unwrap();
        let limits = InputLimits {
            max_image_mib: 1,
            max_dicom_mib: 2,
            ..InputLimits::default()
        };
        let big = vec![0u8; (MIB + 1) as usize];
        for name in ["a.png", "b.TIF"] {
            std::fs::write(d.path().join(name), &big).unwrap();
            let e = read(&d.path().join(name), &limits).unwrap_err().to_string();
            assert!(
                e.contains("1048577 bytes") && e.contains("inputs.max_image_mib"),
                "{e}"
            );
        }
        // The same bytes are within a DICOM object's limit.
        for name in ["c.dcm", "IM0001"] {
            std::fs::write(d.path().join(name), &big).unwrap();
            assert_eq!(
                read(&d.path().join(name), &limits).unwrap().len(),
                big.len()
            );
        }
    }
}
