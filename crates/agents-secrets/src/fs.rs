//! Reading secret files safely.
//!
//! A key file readable by every user of the machine has already leaked to each of them; loading
//! it anyway would hide that. So a secret file must carry no group or other permission bits
//! (`0600` or `0400`), checked on the opened file, not on the path, so the file cannot be swapped
//! between the check and the read. The size is bounded, so a mistaken reference to a log or to
//! `/dev/zero` fails instead of filling memory. Only regular files are opened, checked on the
//! path before opening: opening a FIFO waits for a writer, forever, and would hold a thread.
//! Stores read from async code through [`read_file_async`], on the blocking pool, so a slow disk
//! or network mount never stalls an executor thread.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use crate::{Backend, SecretError, SecretRef};

/// [`read_file`] on tokio's blocking pool.
#[cfg(any(feature = "env", feature = "aws-kms"))]
pub(crate) async fn read_file_async(
    reference: &SecretRef,
    backend: Backend,
    path: &Path,
    privacy: Privacy,
) -> Result<Vec<u8>, SecretError> {
    let owned = reference.clone();
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_file(&owned, backend, &path, privacy))
        .await
        .unwrap_or_else(|e| {
            Err(SecretError::rejected(
                reference,
                backend,
                format!("reading the file did not complete: {e}"),
            ))
        })
}

/// The largest secret file read: keys, tokens and certificates are far smaller.
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Whether a file must be private to its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Privacy {
    /// Refuse files with any group or other permission bit.
    OwnerOnly,
    /// Any mode (the content is not secret by itself, e.g. a KMS ciphertext).
    Any,
}

/// Reads `path`, refusing non-regular files, files over [`MAX_FILE_BYTES`], and, with
/// [`Privacy::OwnerOnly`], files other users may read or write.
pub(crate) fn read_file(
    reference: &dyn std::fmt::Display,
    backend: Backend,
    path: &Path,
    privacy: Privacy,
) -> Result<Vec<u8>, SecretError> {
    let shown = path.display();
    let io_error = |e: std::io::Error| match e.kind() {
        ErrorKind::NotFound => {
            SecretError::not_found(reference, backend, format!("no file {shown}"))
        }
        ErrorKind::PermissionDenied => SecretError::permission_denied(
            reference,
            backend,
            format!("this process may not read {shown}"),
        ),
        _ => SecretError::rejected(reference, backend, format!("reading {shown}: {e}")),
    };
    let not_regular = || {
        SecretError::rejected(
            reference,
            backend,
            format!("{shown} is not a regular file (a directory, FIFO, socket or device)"),
        )
    };
    // Checked before opening: opening a FIFO blocks until something writes to it.
    if !std::fs::metadata(path).map_err(io_error)?.is_file() {
        return Err(not_regular());
    }
    let mut file = File::open(path).map_err(io_error)?;
    // And again on the opened file, which is what is read (and whose mode counts).
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(not_regular());
    }
    if privacy == Privacy::OwnerOnly {
        check_private(reference, backend, path, &metadata)?;
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(reference, backend, path));
    }
    let mut content = Vec::new();
    file.by_ref()
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut content)
        .map_err(io_error)?;
    if content.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(reference, backend, path));
    }
    Ok(content)
}

fn too_large(reference: &dyn std::fmt::Display, backend: Backend, path: &Path) -> SecretError {
    SecretError::rejected(
        reference,
        backend,
        format!(
            "{} is larger than {MAX_FILE_BYTES} bytes; is this the right file?",
            path.display()
        ),
    )
}

#[cfg(unix)]
fn check_private(
    reference: &dyn std::fmt::Display,
    backend: Backend,
    path: &Path,
    metadata: &std::fs::Metadata,
) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::insecure(
            reference,
            backend,
            format!(
                "{} has mode {mode:04o}, so other users can read or replace it; run `chmod 600 {}` (Kubernetes: defaultMode 0400)",
                path.display(),
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Other platforms have no mode bits to check; their ACLs are the operator's to set.
#[cfg(not(unix))]
fn check_private(
    _: &dyn std::fmt::Display,
    _: Backend,
    _: &Path,
    _: &std::fs::Metadata,
) -> Result<(), SecretError> {
    Ok(())
}

/// Drops one trailing line ending: `echo key > file` writes one, and it is never part of a key.
pub(crate) fn trim_line_ending(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Decodes a file's bytes as UTF-8, naming the reference, never the content.
pub(crate) fn utf8(
    reference: &SecretRef,
    backend: Backend,
    bytes: Vec<u8>,
) -> Result<String, SecretError> {
    String::from_utf8(bytes)
        .map_err(|_| SecretError::invalid_value(reference, backend, "the content is not UTF-8"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::SecretErrorKind;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, content: &[u8], mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn kind(path: &Path, privacy: Privacy) -> SecretErrorKind {
        read_file(&"file:/x", Backend::File, path, privacy)
            .unwrap_err()
            .kind()
    }

    #[test]
    fn modes_sizes_and_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let ok = write(dir.path(), "ok", b"secret-bytes\n", 0o600);
        assert_eq!(
            read_file(&"file:/x", Backend::File, &ok, Privacy::OwnerOnly).unwrap(),
            b"secret-bytes\n"
        );
        let ro = write(dir.path(), "ro", b"secret-bytes", 0o400);
        assert!(read_file(&"r", Backend::File, &ro, Privacy::OwnerOnly).is_ok());
        for mode in [0o644, 0o640, 0o604, 0o620, 0o660] {
            let open = write(dir.path(), "open", b"secret-bytes", mode);
            assert_eq!(kind(&open, Privacy::OwnerOnly), SecretErrorKind::Insecure);
            assert!(read_file(&"r", Backend::File, &open, Privacy::Any).is_ok());
        }
        let e = read_file(
            &"file:/x",
            Backend::File,
            &dir.path().join("open"),
            Privacy::OwnerOnly,
        )
        .unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert_eq!(
            kind(&dir.path().join("absent"), Privacy::OwnerOnly),
            SecretErrorKind::NotFound
        );
        assert_eq!(kind(dir.path(), Privacy::Any), SecretErrorKind::Rejected);
        let big = write(
            dir.path(),
            "big",
            &vec![b'a'; MAX_FILE_BYTES as usize + 1],
            0o600,
        );
        assert_eq!(kind(&big, Privacy::OwnerOnly), SecretErrorKind::Rejected);
        assert_eq!(
            kind(Path::new("/dev/zero"), Privacy::Any),
            SecretErrorKind::Rejected
        );
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // On a thread of its own, so a regression fails the assertion instead of hanging.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(read_file(&"file:/x", Backend::File, &path, Privacy::Any));
        });
        let result = rx.recv_timeout(std::time::Duration::from_secs(30));
        if result.is_err() {
            // Unblock the reader before failing.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        }
        let e = result.expect("reading a FIFO did not return").unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Rejected);
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn unreadable_file_is_permission_denied() {
        let dir = tempfile::tempdir().unwrap();
        let locked = write(dir.path(), "locked", b"secret-bytes", 0o000);
        // Root reads anything; the check only means something for other users.
        if std::fs::read(&locked).is_err() {
            assert_eq!(
                kind(&locked, Privacy::OwnerOnly),
                SecretErrorKind::PermissionDenied
            );
        }
    }

    #[test]
    fn line_endings_and_utf8() {
        assert_eq!(trim_line_ending("key\n".into()), "key");
        assert_eq!(trim_line_ending("key\r\n".into()), "key");
        assert_eq!(trim_line_ending("key\n\n".into()), "key\n");
        assert_eq!(trim_line_ending("key".into()), "key");
        let r: SecretRef = "file:/x".parse().unwrap();
        assert_eq!(
            utf8(&r, Backend::File, vec![0xff, 0xfe])
                .unwrap_err()
                .kind(),
            SecretErrorKind::InvalidValue
        );
    }
}
