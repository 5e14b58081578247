//! Progress of a streamed call: a spinner on a terminal, plain lines anywhere else (pipes,
//! files, tests), so no escape code ever lands in a log.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shows each progress event of one call.
pub(super) struct Progress<'a> {
    spinner: Option<ProgressBar>,
    err: &'a mut dyn Write,
    events: u64,
}

impl std::fmt::Debug for Progress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("spinner", &self.spinner.is_some())
            .field("events", &self.events)
            .finish()
    }
}

impl<'a> Progress<'a> {
    /// A spinner when stderr is a terminal; otherwise one line per event on `err`.
    pub(super) fn new(err: &'a mut dyn Write) -> Self {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}") {
                spinner.set_style(style);
            }
            spinner.set_message("connecting");
            spinner.enable_steady_tick(Duration::from_millis(100));
            spinner
        });
        Self {
            spinner,
            err,
            events: 0,
        }
    }

    /// One CloudEvent of the run, as JSON.
    pub(super) fn event(&mut self, json: &str) {
        self.events += 1;
        let line = describe(json);
        match &self.spinner {
            Some(spinner) => spinner.set_message(format!("[{}] {line}", self.events)),
            None => {
                let _ = writeln!(self.err, "progress: {line}");
            }
        }
    }

    /// Clears the spinner.
    pub(super) fn finish(self) {
        if let Some(spinner) = self.spinner {
            spinner.finish_and_clear();
        }
    }
}

/// `provider.request fake-model (attempt 1)` from an event's type and a few data fields.
fn describe(json: &str) -> String {
    let Ok(event) = serde_json::from_str::<serde_json::Value>(json) else {
        return "an event that is not JSON".into();
    };
    let data = &event["data"];
    let mut line = event["type"].as_str().unwrap_or("event").to_owned();
    for key in ["agent_id", "provider", "from_provider", "to_provider"] {
        if let Some(value) = data[key].as_str() {
            line.push_str(&format!(" {key}={value}"));
        }
    }
    if let Some(attempt) = data["attempt"].as_u64() {
        line.push_str(&format!(" attempt={attempt}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_described_by_type_and_a_few_fields() {
        let json = r#"{"type": "provider.request", "data": {"provider": "fake", "attempt": 2}}"#;
        assert_eq!(describe(json), "provider.request provider=fake attempt=2");
        assert_eq!(describe("{oops"), "an event that is not JSON");
    }
}
