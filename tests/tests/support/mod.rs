//! Pieces shared by several test files, each of which includes this folder with `mod support;`.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

pub(crate) mod otlp;
