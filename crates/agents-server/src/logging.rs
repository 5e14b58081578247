//! Logs, with every line passed through the redactor before it is written.
//!
//! [`RedactingStderr`] is the writer of every log layer; `serve` installs its subscriber in
//! [`crate::telemetry`], [`init`] is the plain text one for other programs and commands.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber: `RUST_LOG` filtering (default `info`), redacted stderr.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr)
        .try_init();
}

/// Writes to stderr through [`agents_core::redact`].
#[derive(Debug, Clone, Copy)]
pub struct RedactingStderr;

/// One log record's writer: buffers the record, redacts it whole on drop.
#[derive(Debug, Default)]
pub struct RedactingWriter {
    buffer: Vec<u8>,
}

impl Write for RedactingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let _ = std::io::stderr().write_all(agents_core::redact(&text).as_bytes());
    }
}

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::default()
    }
}
