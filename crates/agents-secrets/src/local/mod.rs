//! Secrets the machine itself holds: environment variables and files.
//!
//! The simplest deployments (a container with an injected variable, a Kubernetes secret
//! mounted as a file) need no secret service at all; these stores serve them with the same
//! guarantees as the remote ones. Their failure modes are local and immediate: an unset
//! variable or an absent file is `NotFound`, a file other users can read is refused as
//! `Insecure` rather than trusted.

mod env;
mod file;

pub use env::EnvStore;
pub use file::FileStore;
