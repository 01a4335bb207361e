//! The terminal for `top`: raw input (keys arrive one at a time, unechoed, Ctrl-C as a byte), the alternate screen
//! without a cursor, and its size; everything put back as it was when the view ends, however it ends (a key, a
//! signal, an error).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set by SIGINT, SIGTERM and SIGHUP while the view runs: it stops at its next wake-up and restores the terminal.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

const ENTER: &str = "\x1b[?1049h\x1b[?25l";
/// Shows the cursor and leaves the alternate screen: the shell's screen comes back as it was.
pub const LEAVE: &str = "\x1b[?25h\x1b[?1049l";
/// Cursor home: each frame is drawn over the last, each line cleared to its end, and the rest below it.
const HOME: &str = "\x1b[H";
const CLEAR_LINE_END: &str = "\x1b[K";
const CLEAR_BELOW: &str = "\x1b[J";

/// The terminal in `top`'s mode, until dropped.
pub struct Raw {
    saved: libc::termios,
    signals: [(libc::c_int, libc::sighandler_t); 3],
}

impl Raw {
    /// Standard input and output must be a terminal.
    pub fn enter() -> io::Result<Raw> {
        // SAFETY: isatty takes any descriptor.
        if unsafe { libc::isatty(libc::STDIN_FILENO) != 1 || libc::isatty(libc::STDOUT_FILENO) != 1 } {
            return Err(io::Error::other("top needs a terminal on standard input and output (or --once)"));
        }
        // SAFETY: termios is plain data, filled by tcgetattr before it is read.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a valid pointer.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        // No line editing, no echo, no signals from keys (Ctrl-C is read as a key); output processing stays, so
        // a newline still returns the carriage.
        raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
        raw.c_iflag &= !(libc::IXON | libc::ICRNL);
        raw.c_cc[libc::VMIN] = 0;
        raw.c_cc[libc::VTIME] = 0;
        STOP.store(false, Ordering::Relaxed);
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP].map(|s| (s, unsafe { libc::signal(s, handler) }));
        let guard = Raw { saved, signals };
        // SAFETY: a valid descriptor and a valid pointer.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out = io::stdout().lock();
        out.write_all(ENTER.as_bytes())?;
        out.flush()?;
        Ok(guard)
    }

    /// Columns and lines (80 × 24 when the terminal does not say).
    pub fn size(&self) -> (usize, usize) {
        // SAFETY: winsize is plain data; ioctl fills it or fails.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ on a valid descriptor with a valid pointer.
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_col > 0 && size.ws_row > 0 {
            (usize::from(size.ws_col), usize::from(size.ws_row))
        } else {
            (80, 24)
        }
    }

    /// Draws a frame over the last one.
    pub fn draw(&self, frame: &str) -> io::Result<()> {
        let mut text = String::with_capacity(frame.len() + 256);
        text.push_str(HOME);
        for line in frame.lines() {
            text.push_str(line);
            text.push_str(CLEAR_LINE_END);
            text.push('\n');
        }
        text.push_str(CLEAR_BELOW);
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// Waits up to `timeout` for a key that ends the view (q, Q, Ctrl-C, Ctrl-D) or a signal; true when
    /// one came. Other keys are read and ignored.
    pub fn wait_for_quit(&self, timeout: Duration) -> io::Result<bool> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if STOP.load(Ordering::Relaxed) {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut poll = libc::pollfd { fd: libc::STDIN_FILENO, events: libc::POLLIN, revents: 0 };
            // At most 100 ms at a time, so a signal is seen soon even where poll restarts after it.
            let wait_ms = libc::c_int::try_from(left.as_millis().min(100)).unwrap_or(100);
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, wait_ms) };
            if ready < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if ready == 0 {
                continue;
            }
            let mut keys = [0u8; 64];
            // SAFETY: reads into a buffer of its length.
            let read = unsafe { libc::read(libc::STDIN_FILENO, keys.as_mut_ptr().cast(), keys.len()) };
            if read == 0 && poll.revents & libc::POLLHUP != 0 {
                return Ok(true); // the terminal went away
            }
            let read = usize::try_from(read).unwrap_or(0);
            if keys[..read].iter().any(|k| matches!(k, b'q' | b'Q' | 0x03 | 0x04)) {
                return Ok(true);
            }
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(LEAVE.as_bytes());
        let _ = out.flush();
        // SAFETY: the settings read at enter, on the same descriptor; the handlers that were there before.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &self.saved);
            for (signal, previous) in self.signals {
                libc::signal(signal, previous);
            }
        }
    }
}
