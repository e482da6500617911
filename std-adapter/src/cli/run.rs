//! Encrypting and decrypting one job: streaming in bounded memory through
//! [`EncryptingWriter`] / [`DecryptingReader`], into a temporary file renamed into place only
//! on success.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use esdk::caching::{BoundedWriter, CachingCmm};
use esdk::core::error::KeyringError;
use esdk::core::header::ParseLimits;
use esdk::stream::esdk_error;
use esdk::{
    Config, CryptoMaterialsManager, DecryptingReader, EncryptOptions, EncryptingWriter, Error,
    MultiKeyring,
};
use tempfile::NamedTempFile;

use super::Mode;
use super::error::{CliError, esdk_message, quote};
use super::meta::HeaderInfo;
use super::paths::{Input, Job, Output};
use super::progress::Progress;

/// Plaintext is read (encrypt) or written (decrypt) in chunks of this size.
const CHUNK: usize = 1 << 20;
/// Output buffering.
const OUT_BUFFER: usize = 1 << 20;
/// Header peeking reads this much at a time.
const PEEK: usize = 64 * 1024;
/// Decrypt reads use a buffer of the frame length (so frames decrypt straight into it), at
/// least [`CHUNK`] and at most this.
const MAX_READ_BUFFER: usize = 64 << 20;

/// Everything the jobs share.
pub(crate) struct Ctx<'a> {
    /// Encrypt or decrypt.
    pub mode: Mode,
    /// Client configuration.
    pub cfg: Config,
    /// Encryption options (encrypt).
    pub opts: EncryptOptions,
    /// The keyrings.
    pub keyring: &'a MultiKeyring<'a>,
    /// `--caching`: the caching CMM over `keyring`, used instead of it.
    pub cache: Option<&'a CachingCmm<&'a MultiKeyring<'a>>>,
    /// `--encryption-context`: on decrypt, `None` values mean "key must be present".
    pub context: Vec<(String, Option<String>)>,
    /// One description per keyring, in multi-keyring order (generator first).
    pub key_labels: Vec<String>,
    /// `--no-overwrite`: never replace an output that appeared meanwhile.
    pub no_overwrite: bool,
}

/// The outcome of one job.
#[derive(Debug)]
pub(crate) struct Done {
    /// The message header.
    pub header: HeaderInfo,
    /// Bytes read.
    pub input_bytes: u64,
    /// Bytes written.
    pub output_bytes: u64,
}

/// An input stream.
enum Source {
    Stdin(io::StdinLock<'static>),
    File(File),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Stdin(s) => s.read(buf),
            Source::File(f) => f.read(buf),
        }
    }
}

fn open_input(input: &Input) -> Result<Source, CliError> {
    match input {
        Input::Stdin => Ok(Source::Stdin(io::stdin().lock())),
        Input::File(p) => File::open(p)
            .map(Source::File)
            .map_err(|e| CliError::io_path("opening", p, &e)),
    }
}

/// Reads, retrying on `Interrupted`.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// An output stream: stdout, or a temporary file in the destination's directory.
enum Sink {
    Stdout(BufWriter<io::StdoutLock<'static>>),
    File {
        tmp: BufWriter<NamedTempFile>,
        dest: PathBuf,
        no_clobber: bool,
    },
}

impl Sink {
    fn open(output: &Output, no_clobber: bool) -> Result<Self, CliError> {
        match output {
            Output::Stdout => Ok(Sink::Stdout(BufWriter::with_capacity(
                OUT_BUFFER,
                io::stdout().lock(),
            ))),
            Output::File(dest) => {
                let dir = match dest.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                fs::create_dir_all(&dir)
                    .map_err(|e| CliError::io_path("creating directory", &dir, &e))?;
                let name = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let tmp = tempfile::Builder::new()
                    .prefix(&format!(".{name}."))
                    .suffix(".esdk-tmp")
                    .tempfile_in(&dir)
                    .map_err(|e| CliError::io_path("creating a temporary file in", &dir, &e))?;
                Ok(Sink::File {
                    tmp: BufWriter::with_capacity(OUT_BUFFER, tmp),
                    dest: dest.clone(),
                    no_clobber,
                })
            }
        }
    }

    fn display(&self) -> String {
        match self {
            Sink::Stdout(_) => "<stdout>".to_owned(),
            Sink::File { dest, .. } => quote(dest),
        }
    }

    /// Flushes and, for a file, renames the temporary file into place.
    fn commit(self) -> Result<(), CliError> {
        match self {
            Sink::Stdout(mut w) => w
                .flush()
                .map_err(|e| CliError::io("writing", "<stdout>", &e)),
            Sink::File {
                tmp,
                dest,
                no_clobber,
            } => {
                let tmp = tmp
                    .into_inner()
                    .map_err(|e| CliError::io_path("writing", &dest, e.error()))?;
                let r = if no_clobber {
                    tmp.persist_noclobber(&dest)
                } else {
                    tmp.persist(&dest)
                };
                r.map(drop)
                    .map_err(|e| CliError::io_path("renaming the output into", &dest, &e.error))
            }
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.write_all(buf),
            Sink::File { tmp, .. } => tmp.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File { tmp, .. } => tmp.flush(),
        }
    }
}

/// Passes writes through and keeps the message header (the first bytes written) for the
/// metadata.
struct Tap<W> {
    inner: W,
    head: Vec<u8>,
    header: Option<HeaderInfo>,
    capturing: bool,
    written: u64,
}

impl<W: Write> Tap<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            head: Vec::new(),
            header: None,
            capturing: true,
            written: 0,
        }
    }
}

impl<W: Write> Write for Tap<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_all(buf)?;
        self.written += buf.len() as u64;
        if self.capturing {
            self.head.extend_from_slice(buf);
            match HeaderInfo::parse(&self.head, ParseLimits::default()) {
                Ok(None) => {}
                Ok(Some(h)) => {
                    self.header = Some(h);
                    self.capturing = false;
                    self.head = Vec::new();
                }
                Err(_) => self.capturing = false,
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

impl Ctx<'_> {
    /// Runs one job.
    ///
    /// # Errors
    /// A message naming the file and the failed check.
    pub fn run(&self, job: &Job, progress: &mut Progress) -> Result<Done, CliError> {
        // A KMS failure detail left by an earlier file is not this file's.
        let _ = super::kms::take_detail();
        match self.mode {
            Mode::Encrypt => self.encrypt(job, progress),
            Mode::Decrypt => self.decrypt(job, progress),
        }
    }

    /// The message for an error of the ESDK stream, or `None` for a plain I/O error.
    fn esdk_failure(&self, verb: &str, input: &Input, e: &io::Error) -> Option<CliError> {
        let err = esdk_error(e)?;
        let mut msg = format!("{verb} {}: {}", show(input), esdk_message(&err));
        if let (Error::Keyring(_), Some(detail)) = (err, super::kms::take_detail()) {
            msg.push_str(" (");
            msg.push_str(&detail);
            msg.push(')');
        }
        if let Error::Keyring(KeyringError::NoDataKeyDecrypted(_)) = err {
            msg.push_str(" [keyrings: ");
            msg.push_str(
                &self
                    .key_labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("#{i} = {l}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            msg.push(']');
        }
        Some(CliError::crypto(msg))
    }

    fn encrypt(&self, job: &Job, progress: &mut Progress) -> Result<Done, CliError> {
        let mut src = open_input(&job.input)?;
        let sink = Sink::open(&job.output, self.no_overwrite)?;
        let out_name = sink.display();
        let ec: Vec<(&str, &str)> = self
            .context
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or_default()))
            .collect();
        let write_err = |e: io::Error| {
            self.esdk_failure("encrypting", &job.input, &e)
                .unwrap_or_else(|| CliError::io("writing", &out_name, &e))
        };
        let mut w = match self.cache {
            // The cache needs the plaintext length (an entry encrypts a bounded number of
            // bytes); stdin's is unknown, so it goes around the cache.
            Some(cache) => EncWriter::Cached(
                cache
                    .encrypting_writer(
                        &self.cfg,
                        &self.opts,
                        &ec,
                        input_len(&job.input),
                        Tap::new(sink),
                    )
                    .map_err(write_err)?,
            ),
            None => EncWriter::Plain(
                EncryptingWriter::new(
                    &self.cfg,
                    &esdk::DEFAULT_PROVIDER,
                    self.keyring,
                    &self.opts,
                    &ec,
                    Tap::new(sink),
                )
                .map_err(write_err)?,
            ),
        };
        let mut buf = vec![0u8; CHUNK];
        let mut read = 0u64;
        loop {
            let n = read_some(&mut src, &mut buf)
                .map_err(|e| CliError::io("reading", &show(&job.input), &e))?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n]).map_err(write_err)?;
            read += n as u64;
            progress.inc(n as u64);
        }
        let tap = w.finish().map_err(write_err)?;
        let header = tap.header.ok_or_else(|| {
            CliError::crypto(format!(
                "encrypting {}: the header written could not be read back",
                show(&job.input)
            ))
        })?;
        let written = tap.written;
        tap.inner.commit()?;
        Ok(Done {
            header,
            input_bytes: read,
            output_bytes: written,
        })
    }

    fn decrypt(&self, job: &Job, progress: &mut Progress) -> Result<Done, CliError> {
        let mut src = open_input(&job.input)?;
        let read_err = |e: io::Error| CliError::io("reading", &show(&job.input), &e);
        // Read the header first: the encryption context is checked before any output exists.
        let limits = ParseLimits {
            max_edks: self.cfg.max_encrypted_data_keys,
            max_header_len: self.cfg.max_header_len,
        };
        let mut head = Vec::with_capacity(PEEK);
        let header = loop {
            match HeaderInfo::parse(&head, limits) {
                Ok(Some(h)) => break Some(h),
                Ok(None) => {}
                // The decryptor reports it, with its offset.
                Err(_) => break None,
            }
            let old = head.len();
            head.resize(old + PEEK, 0);
            let n = read_some(&mut src, &mut head[old..]).map_err(read_err)?;
            head.truncate(old + n);
            if n == 0 {
                break None;
            }
        };
        if let Some(h) = &header {
            self.check_context(h, &job.input)?;
        }
        let reproduced: Vec<(&str, &str)> = self
            .context
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?)))
            .collect();
        let count = Rc::new(Cell::new(0u64));
        let counted = Counting {
            inner: io::Cursor::new(head).chain(src),
            count: Rc::clone(&count),
        };
        let cmm: &dyn CryptoMaterialsManager = match self.cache {
            Some(c) => c,
            None => self.keyring,
        };
        let mut reader = DecryptingReader::new(
            &self.cfg,
            &esdk::DEFAULT_PROVIDER,
            cmm,
            &reproduced,
            counted,
        );
        let mut sink = Sink::open(&job.output, self.no_overwrite)?;
        let frame = header.as_ref().map_or(0, |h| h.frame_length as usize);
        let mut buf = vec![0u8; frame.clamp(CHUNK, MAX_READ_BUFFER)];
        let (mut written, mut reported) = (0u64, 0u64);
        loop {
            let n = match read_some(&mut reader, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let mut err = self
                        .esdk_failure("decrypting", &job.input, &e)
                        .unwrap_or_else(|| read_err(e));
                    if matches!(sink, Sink::Stdout(_)) && written > 0 {
                        err.message.push_str(
                            " (the plaintext already written to stdout is unverified: discard it)",
                        );
                    }
                    return Err(err);
                }
            };
            if n == 0 {
                break;
            }
            sink.write_all(&buf[..n])
                .map_err(|e| CliError::io("writing", &sink.display(), &e))?;
            written += n as u64;
            let now = count.get();
            progress.inc(now - reported);
            reported = now;
        }
        let header = match header {
            Some(h) => h,
            // The decryptor accepted what the peek could not parse: should not happen.
            None => {
                return Err(CliError::crypto(format!(
                    "decrypting {}: the header could not be read",
                    show(&job.input)
                )));
            }
        };
        sink.commit()?;
        Ok(Done {
            header,
            input_bytes: count.get(),
            output_bytes: written,
        })
    }

    /// Checks `--encryption-context` on decrypt against the message's stored context.
    fn check_context(&self, h: &HeaderInfo, input: &Input) -> Result<(), CliError> {
        for (k, v) in &self.context {
            match (h.context_value(k), v) {
                (None, _) => {
                    return Err(CliError::crypto(format!(
                        "decrypting {}: refused by policy: encryption context key '{k}' is not \
                         in the message",
                        show(input)
                    )));
                }
                (Some(stored), Some(want)) if stored != want => {
                    return Err(CliError::crypto(format!(
                        "decrypting {}: refused by policy: encryption context key '{k}' is \
                         '{stored}' in the message, not '{want}'",
                        show(input)
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// An input as named in messages.
fn show(input: &Input) -> String {
    match input {
        Input::Stdin => "<stdin>".to_owned(),
        Input::File(p) => quote(p),
    }
}

/// The total input size, when every input is a file.
pub(crate) fn total_input(jobs: &[Job]) -> Option<u64> {
    jobs.iter()
        .map(|j| match &j.input {
            Input::Stdin => None,
            Input::File(p) => Some(file_len(p)),
        })
        .sum()
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The plaintext length of an input when it is known (a regular file).
fn input_len(input: &Input) -> Option<u64> {
    match input {
        Input::Stdin => None,
        Input::File(p) => fs::metadata(p)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len()),
    }
}

/// The encrypting stream, through the cache or not.
enum EncWriter<'a, W: Write> {
    Plain(EncryptingWriter<'a, W, esdk::DefaultProvider>),
    Cached(BoundedWriter<'a, W>),
}

impl<W: Write> EncWriter<'_, W> {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            EncWriter::Plain(w) => w.write_all(data),
            EncWriter::Cached(w) => w.write_all(data),
        }
    }

    fn finish(self) -> io::Result<W> {
        match self {
            EncWriter::Plain(w) => w.finish(),
            EncWriter::Cached(w) => w.finish(),
        }
    }
}
