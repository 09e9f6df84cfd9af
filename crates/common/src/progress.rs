//! Progress reporting for long work: a bar with rate and ETA on a terminal, plain periodic lines
//! otherwise (CI logs, pipes).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// A progress reporter over a known number of steps.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    done: u64,
    unit: &'static str,
    started: Instant,
    last_line: Instant,
    quiet: bool,
}

impl Progress {
    /// Start reporting `total` steps of `unit` (e.g. "img", "step") under `label`.
    pub fn new(label: impl Into<String>, total: u64, unit: &'static str) -> Self {
        let label = label.into();
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template =
                format!("{{msg:>12}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}}");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.clone());
            Some(bar)
        } else {
            None
        };
        let now = Instant::now();
        Self {
            bar,
            label,
            total,
            done: 0,
            unit,
            started: now,
            last_line: now,
            quiet: false,
        }
    }

    /// A reporter that prints nothing (library use, tests).
    pub fn hidden(total: u64) -> Self {
        let mut p = Self::new("", total, "");
        if let Some(bar) = p.bar.take() {
            bar.finish_and_clear();
        }
        p.quiet = true;
        p
    }

    /// Advance by `n` steps.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if !self.quiet && self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    /// Show a short message next to the bar (e.g. the current loss).
    pub fn set_message(&mut self, msg: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} {}", self.label, msg.into()));
        }
    }

    /// Steps per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// One plain-text status line: label, count, rate and ETA.
    pub fn line(&self) -> String {
        let rate = self.rate();
        let left = self.total.saturating_sub(self.done) as f64;
        let eta = if rate > 0.0 {
            left / rate
        } else {
            f64::INFINITY
        };
        format!(
            "{} {}/{} {} ({:.1} {}/s, ETA {:.0}s)",
            self.label, self.done, self.total, self.unit, rate, self.unit, eta
        )
    }

    /// Finish: clear the bar and print a final line with the total rate.
    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!(
                "{} done: {} {} in {:.1}s ({:.1} {}/s)",
                self.label,
                self.done,
                self.unit,
                self.started.elapsed().as_secs_f64(),
                self.rate(),
                self.unit
            );
        }
    }
}
