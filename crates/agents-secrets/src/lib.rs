//! # agents-secrets
//!
//! Secret stores for the `agents` runtime: one `SecretStore` trait over environment variables,
//! files, Vault (KV v2) and AWS KMS, with caching, and every loaded value registered with the
//! [`agents_core::Redactor`] so it can never be printed.
//!
//! This release holds no code yet: the stores land with the secrets issue. The crate exists so
//! the workspace layout and its dependency rules hold from the start.
//!
//! MSRV: Rust 1.95.
