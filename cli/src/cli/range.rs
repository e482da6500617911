//! `esdk decrypt --range`: the plaintext bytes asked for ([`ByteRange`], the forms of HTTP's
//! `Range: bytes=`), read from a seekable input through [`esdk::RangeReader`], which reads
//! the header, the final frame and the frames of the range only. The job itself (header
//! peek, context check, output) is [`Ctx::decrypt_range`](super::run::Ctx).

use std::fmt;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::ops::Range;
use std::str::FromStr;

use super::error::{CliError, quote};
use super::paths::Input;

/// A plaintext byte range as `--range` takes it: offsets in the plaintext, both ends
/// inclusive, as in HTTP `Range: bytes=` (an optional `bytes=` prefix is accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// `START-END`: bytes START to END, END included.
    Closed {
        /// The first byte.
        start: u64,
        /// The last byte.
        end: u64,
    },
    /// `START-`: from byte START to the end.
    From(u64),
    /// `-LEN`: the last LEN bytes.
    Suffix(u64),
}

/// `decrypt --range` as asked on the command line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    /// `--range`.
    pub range: ByteRange,
    /// `--range-unverified-signed`: ranges of signed messages too, unverified.
    pub unverified_signed: bool,
    /// `--quiet`: no warning when a signed message's range is written.
    pub quiet: bool,
}

/// A byte offset or length: decimal digits only (no sign, no spaces).
fn number(s: &str, what: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number of bytes"));
    }
    s.parse()
        .map_err(|_| format!("{what} {s} is too large (at most {})", u64::MAX))
}

impl FromStr for ByteRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let spec = s.strip_prefix("bytes=").unwrap_or(s);
        let Some((a, b)) = spec.split_once('-') else {
            return Err(format!(
                "{s:?} is not a range: START-END (both inclusive), START- or -LEN"
            ));
        };
        match (a.is_empty(), b.is_empty()) {
            (true, true) => {
                Err("a range needs START, END or LEN: START-END, START- or -LEN".into())
            }
            (true, false) => match number(b, "LEN")? {
                0 => Err("-0 selects no bytes: LEN must be at least 1".into()),
                n => Ok(ByteRange::Suffix(n)),
            },
            (false, true) => Ok(ByteRange::From(number(a, "START")?)),
            (false, false) => {
                let (start, end) = (number(a, "START")?, number(b, "END")?);
                if end < start {
                    return Err(format!(
                        "END {end} is before START {start} (both are inclusive offsets)"
                    ));
                }
                Ok(ByteRange::Closed { start, end })
            }
        }
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByteRange::Closed { start, end } => write!(f, "{start}-{end}"),
            ByteRange::From(start) => write!(f, "{start}-"),
            ByteRange::Suffix(n) => write!(f, "-{n}"),
        }
    }
}

impl ByteRange {
    /// The half-open plaintext range for a plaintext of `len` bytes, as HTTP resolves it:
    /// END past the last byte is clipped to it, LEN past the start gives the whole
    /// plaintext; START at or past the end selects nothing and is an error that says the
    /// plaintext length.
    pub fn resolve(self, len: u64) -> Result<Range<u64>, String> {
        let start = match self {
            ByteRange::Suffix(n) => return Ok(len.saturating_sub(n)..len),
            ByteRange::Closed { start, .. } | ByteRange::From(start) => start,
        };
        if start >= len {
            let bytes = match len {
                0 => "the plaintext is empty".to_owned(),
                n => format!("the plaintext has {n} bytes: 0-{}", n - 1),
            };
            return Err(format!(
                "--range {self}: byte {start} is past the end ({bytes})"
            ));
        }
        let end = match self {
            ByteRange::Closed { end, .. } => end.saturating_add(1).min(len),
            _ => len,
        };
        Ok(start..end)
    }
}

/// Opens `input` for `--range`: a file that can seek (a regular file or a block device),
/// or stdin when it is one (`< FILE`); a pipe, a FIFO, a terminal or a socket is refused:
/// a range is read by seeking to its frames.
pub(crate) fn open_seekable(input: &Input) -> Result<File, CliError> {
    let (mut file, name) = match input {
        Input::File(p) => (
            File::open(p).map_err(|e| CliError::io_path("opening", p, &e))?,
            quote(p),
        ),
        Input::Stdin => (stdin_file()?, "<stdin>".to_owned()),
    };
    let seekable = file
        .seek(SeekFrom::End(0))
        .and_then(|_| file.seek(SeekFrom::Start(0)));
    if let Err(e) = seekable {
        let hint = match input {
            Input::Stdin => {
                "give the message with --input FILE or redirect stdin from a file (< FILE)"
            }
            Input::File(_) => "give a regular file",
        };
        return Err(CliError::usage(format!(
            "--range reads the frames of the range by seeking, and {name} cannot seek ({e}): \
             {hint}, or decrypt the whole message without --range"
        )));
    }
    Ok(file)
}

/// Stdin as a file of its own (a duplicate of descriptor 0), to seek in.
#[cfg(unix)]
fn stdin_file() -> Result<File, CliError> {
    use std::os::fd::AsFd;
    io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| CliError::io("opening", "<stdin>", &e))
}

/// Stdin cannot be used as a file here.
#[cfg(not(unix))]
fn stdin_file() -> Result<File, CliError> {
    Err(CliError::usage(
        "--range cannot seek in stdin on this platform: give the message with --input FILE",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_resolves_like_http() {
        let r = |s: &str| s.parse::<ByteRange>();
        assert_eq!(r("0-0"), Ok(ByteRange::Closed { start: 0, end: 0 }));
        assert_eq!(r("bytes=5-9"), Ok(ByteRange::Closed { start: 5, end: 9 }));
        assert_eq!(r("7-"), Ok(ByteRange::From(7)));
        assert_eq!(r("-4096"), Ok(ByteRange::Suffix(4096)));
        for bad in [
            "", "-", "5", "a-b", "+1-2", "1-+2", " 1-2", "9-5", "-0", "1-2-3", "0x1-2",
        ] {
            assert!(r(bad).is_err(), "{bad:?} parsed");
        }
        assert!(
            r("18446744073709551616-")
                .unwrap_err()
                .contains("too large")
        );
        let max = format!("0-{}", u64::MAX);
        assert_eq!(r(&max).unwrap().resolve(10), Ok(0..10));
        assert_eq!(r("2-4").unwrap().resolve(10), Ok(2..5));
        assert_eq!(r("2-40").unwrap().resolve(10), Ok(2..10));
        assert_eq!(r("9-").unwrap().resolve(10), Ok(9..10));
        assert_eq!(r("-3").unwrap().resolve(10), Ok(7..10));
        assert_eq!(r("-30").unwrap().resolve(10), Ok(0..10));
        assert_eq!(r("-30").unwrap().resolve(0), Ok(0..0));
        let e = r("10-").unwrap().resolve(10).unwrap_err();
        assert!(
            e.contains("byte 10 is past the end (the plaintext has 10 bytes: 0-9)"),
            "{e}"
        );
        let e = r("0-5").unwrap().resolve(0).unwrap_err();
        assert!(e.contains("the plaintext is empty"), "{e}");
        for s in ["3-4", "3-", "-3"] {
            assert_eq!(r(s).unwrap().to_string(), s);
        }
    }
}
