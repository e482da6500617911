//! The progress bar: drawn on stderr only when stderr is a terminal, not `--quiet`, and the
//! work has run for a moment (short jobs never flash a bar).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Work shorter than this shows no bar.
const SHOW_AFTER: Duration = Duration::from_millis(400);
/// Bytes between two updates of the bar (keeps the per-frame cost at nothing).
const STEP: u64 = 1 << 20;

/// Progress over all jobs, in input bytes.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    shown: bool,
    pending: u64,
}

impl Progress {
    /// A bar for `total` input bytes (`None` = unknown, e.g. stdin), or nothing when
    /// `enabled` is false or stderr is not a terminal.
    pub fn new(enabled: bool, total: Option<u64>) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = match total {
                Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::hidden()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
            };
            let template = if total.is_some() {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
            } else {
                "{msg} {spinner} {bytes} {binary_bytes_per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self {
            bar,
            start: Instant::now(),
            shown: false,
            pending: 0,
        }
    }

    /// Names the file being processed.
    pub fn set_file(&self, name: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(name.to_owned());
        }
    }

    /// Counts `n` more input bytes.
    pub fn inc(&mut self, n: u64) {
        let Some(bar) = &self.bar else { return };
        self.pending += n;
        if self.pending < STEP {
            return;
        }
        bar.inc(self.pending);
        self.pending = 0;
        if !self.shown && self.start.elapsed() >= SHOW_AFTER {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }

    /// Prints a line on stderr without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) if self.shown => bar.suspend(|| eprintln!("{line}")),
            _ => eprintln!("{line}"),
        }
    }

    /// Runs `f` (a prompt on the terminal) with the bar hidden.
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(bar) if self.shown => bar.suspend(f),
            _ => f(),
        }
    }

    /// Removes the bar.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
