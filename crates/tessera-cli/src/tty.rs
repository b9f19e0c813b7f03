//! What the CLI shows a person at a terminal: colours and a spinner on stderr. Without a
//! terminal (pipes, CI) or with `NO_COLOR` set, nothing but plain text is written.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Whether stderr is a terminal that may get colours and animation.
pub fn fancy() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var_os("CI").is_none()
}

/// `error` in red on a terminal, plain otherwise.
pub fn error_label() -> &'static str {
    if fancy() {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    }
}

/// A spinner on stderr while `work` runs (only on a terminal).
pub fn with_spinner<T>(message: &str, work: impl FnOnce() -> T) -> T {
    if !fancy() {
        return work();
    }
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let text = message.to_owned();
    let spinner = std::thread::spawn(move || {
        const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let mut i = 0;
        // Short calls finish before the spinner would flicker into view.
        std::thread::sleep(Duration::from_millis(150));
        while !flag.load(Ordering::Relaxed) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[36m{}\x1b[0m {text}", FRAMES[i % FRAMES.len()]);
            let _ = err.flush();
            drop(err);
            i += 1;
            std::thread::sleep(Duration::from_millis(80));
        }
        if i > 0 {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    });
    let out = work();
    done.store(true, Ordering::Relaxed);
    let _ = spinner.join();
    out
}
