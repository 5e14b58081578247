use secrecy::SecretString;

use crate::fs::{Privacy, read_file_async, trim_line_ending, utf8};
use crate::reference::Target;
use crate::store::{admit, sealed};
use crate::{Backend, SecretError, SecretRef, SecretStore, StoreHealth};

/// Serves `file:/path` references: the file's UTF-8 content without one trailing line ending.
///
/// The file must be private to its owner (mode `0600` or `0400`): one that other users can read
/// is refused with [`SecretError::Insecure`]. Files over 64 KiB are refused too.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct FileStore;

impl FileStore {
    /// The store.
    pub fn new() -> Self {
        Self
    }
}

impl sealed::Sealed for FileStore {}

#[async_trait::async_trait]
impl SecretStore for FileStore {
    async fn get(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        let Target::File(path) = reference.target() else {
            return Err(SecretError::unsupported(
                reference,
                "the file store serves only `file:` references",
            ));
        };
        // On the blocking pool: a slow or hung mount must not hold an executor thread.
        let bytes = read_file_async(reference, Backend::File, path, Privacy::OwnerOnly).await?;
        let text = trim_line_ending(utf8(reference, Backend::File, bytes)?);
        admit(reference, Backend::File, text)
    }

    async fn health(&self) -> StoreHealth {
        StoreHealth::Healthy
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::SecretErrorKind;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn reads_private_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "file-store-value-1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = SecretRef::parse(&format!("file:{}", path.display())).unwrap();
        let value = FileStore::new().get(&r).await.unwrap();
        assert_eq!(value.expose_secret(), "file-store-value-1");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = FileStore::new().get(&r).await.unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Insecure);
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        std::fs::write(&path, [0xffu8, 0xfe, 0xfd, 0xfc]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            FileStore::new().get(&r).await.unwrap_err().kind(),
            SecretErrorKind::InvalidValue
        );
        let r: SecretRef = "env:HOME".parse().unwrap();
        assert_eq!(
            FileStore::new().get(&r).await.unwrap_err().kind(),
            SecretErrorKind::Unsupported
        );
        assert_eq!(FileStore::new().health().await, StoreHealth::Healthy);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fifo_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let r = SecretRef::parse(&format!("file:{}", fifo.display())).unwrap();
        let task = tokio::spawn(async move { FileStore::new().get(&r).await });
        let result = tokio::time::timeout(std::time::Duration::from_secs(30), task).await;
        if result.is_err() {
            // Unblock the reader before failing.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        }
        let e = result
            .expect("reading a FIFO did not return")
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Rejected);
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
