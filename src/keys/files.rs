//! Private key files: `<keys dir>/<kid>.pem`, PKCS#8 PEM, mode 0600 (SPEC §7).
//!
//! Security invariants:
//! - a file name comes only from a `kid` in the base64url alphabet, so it cannot leave the
//!   keys directory (no `/`, no `..`);
//! - a key file is never visible with a mode other than 0600, nor half-written: it is written to
//!   a fresh temporary file (created with `O_EXCL` and mode 0600 at open), fsynced, renamed into
//!   place, and the directory is fsynced so the rename survives a crash;
//! - a key file that group or others may access is refused when read.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Whether this process has warned about a group- or other-accessible keys directory.
static DIR_MODE_WARNED: AtomicBool = AtomicBool::new(false);

/// Longest accepted kid; a SHA-256 thumbprint is 43 characters.
const MAX_KID_LEN: usize = 128;
/// Largest key file read; a 2048-bit RSA PKCS#8 PEM is about 1.7 KiB.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Writes `pem` to `<dir>/<kid>.pem` atomically and durably, with mode 0600. Creates `dir` with
/// mode 0700 if it is missing. Returns the path written.
pub fn write_private_key(dir: &Path, kid: &str, pem: &str) -> io::Result<PathBuf> {
    check_kid(kid)?;
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let dir_mode = fs::metadata(dir)?.permissions().mode();
    // Once per process: a first start writes four keys (two per family) into the same directory.
    if dir_mode & 0o077 != 0 && !DIR_MODE_WARNED.swap(true, Ordering::Relaxed) {
        log::warn!("keys directory {} has mode {:o}; chmod 700 it", dir.display(), dir_mode & 0o777);
    }
    let path = key_path(dir, kid);
    let (tmp_path, mut tmp) = create_temp(dir, kid)?;
    let written =
        tmp.write_all(pem.as_bytes()).and_then(|()| tmp.sync_all()).and_then(|()| fs::rename(&tmp_path, &path));
    drop(tmp);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp_path);
        return Err(e);
    }
    sync_dir(dir)?;
    Ok(path)
}

/// Reads `<dir>/<kid>.pem`. Refuses a file whose mode lets group or others access it.
pub fn read_private_key(dir: &Path, kid: &str) -> io::Result<String> {
    check_kid(kid)?;
    let path = key_path(dir, kid);
    let file = File::open(&path)?;
    // Checked on the open file, so the mode seen is the mode of the file read.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "private key file {} has mode {mode:o}, so group or others may read it; \
                 refusing to use it. Run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        ));
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{} is too large for a key", path.display())));
    }
    let mut pem = String::new();
    file.take(MAX_KEY_FILE_BYTES).read_to_string(&mut pem)?;
    Ok(pem)
}

/// Removes `<dir>/<kid>.pem` if it exists, durably.
pub fn remove_private_key(dir: &Path, kid: &str) -> io::Result<()> {
    check_kid(kid)?;
    match fs::remove_file(key_path(dir, kid)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn key_path(dir: &Path, kid: &str) -> PathBuf {
    dir.join(format!("{kid}.pem"))
}

/// A kid is a file name only if it is non-empty, short, and base64url characters only.
fn check_kid(kid: &str) -> io::Result<()> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        let shown: String = kid.chars().take(MAX_KID_LEN).collect();
        Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid key id {shown:?}: base64url characters only")))
    }
}

/// Creates a new temporary file next to the target, exclusively (`O_EXCL`, so an existing file or
/// symlink is never followed or reused) and with mode 0600 from the start.
fn create_temp(dir: &Path, kid: &str) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempts = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{kid}.pem.tmp-{}-{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("jobtoken-keys-{name}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    const KID: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn written_key_has_mode_0600_in_a_0700_dir_and_reads_back() {
        let tmp = TempDir::new("write");
        let dir = tmp.0.join("keys");
        let path = write_private_key(&dir, KID, PEM).unwrap();
        assert_eq!(path, dir.join(format!("{KID}.pem")));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(read_private_key(&dir, KID).unwrap(), PEM);
    }

    #[test]
    fn no_temporary_file_is_left_behind() {
        let tmp = TempDir::new("leftover");
        write_private_key(&tmp.0, KID, PEM).unwrap();
        write_private_key(&tmp.0, "other", PEM).unwrap();
        let mut names: Vec<String> =
            fs::read_dir(&tmp.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, vec![format!("{KID}.pem"), "other.pem".to_owned()]);
    }

    #[test]
    fn rewriting_a_key_replaces_it() {
        let tmp = TempDir::new("rewrite");
        write_private_key(&tmp.0, KID, "old").unwrap();
        write_private_key(&tmp.0, KID, PEM).unwrap();
        assert_eq!(read_private_key(&tmp.0, KID).unwrap(), PEM);
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        let tmp = TempDir::new("mode");
        let path = write_private_key(&tmp.0, KID, PEM).unwrap();
        for loose in [0o644, 0o640, 0o604, 0o660, 0o700] {
            fs::set_permissions(&path, fs::Permissions::from_mode(loose)).unwrap();
            let result = read_private_key(&tmp.0, KID);
            if loose & 0o077 == 0 {
                assert!(result.is_ok(), "{loose:o}");
            } else {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
                assert!(err.to_string().contains("chmod 600"), "{err}");
            }
        }
    }

    #[test]
    fn a_kid_that_is_not_base64url_is_refused() {
        let tmp = TempDir::new("kid");
        let long = "a".repeat(129);
        for kid in ["../x", "..", "a/b", "/etc/passwd", "", "a.b", "a b", "a\0b", "é", long.as_str()] {
            let err = write_private_key(&tmp.0, kid, PEM).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{kid:?}");
            assert_eq!(read_private_key(&tmp.0, kid).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{kid:?}");
            assert_eq!(remove_private_key(&tmp.0, kid).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert!(!tmp.0.join("..").join("x.pem").exists());
    }

    #[test]
    fn removing_a_key_deletes_the_file_and_is_idempotent() {
        let tmp = TempDir::new("remove");
        let path = write_private_key(&tmp.0, KID, PEM).unwrap();
        remove_private_key(&tmp.0, KID).unwrap();
        assert!(!path.exists());
        remove_private_key(&tmp.0, KID).unwrap();
        assert_eq!(read_private_key(&tmp.0, KID).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_real_key_round_trips_through_its_file() {
        use crate::keys::material::{test_key, Alg};
        use crate::keys::KeyPair;
        let tmp = TempDir::new("real");
        for alg in Alg::ALL {
            let key = test_key(alg);
            write_private_key(&tmp.0, key.kid(), &key.to_pkcs8_pem()).unwrap();
            let loaded = KeyPair::from_pkcs8_pem(alg, &read_private_key(&tmp.0, key.kid()).unwrap()).unwrap();
            assert_eq!(loaded.kid(), key.kid());
        }
    }
}
