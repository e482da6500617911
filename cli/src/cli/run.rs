//! Encrypting and decrypting one job: streaming in bounded memory through
//! [`EncryptingWriter::encrypt_from`] / [`DecryptingReader::decrypt_to`] (frames sealed and
//! opened on `--threads` threads; a regular input file memory-mapped on encrypt, see
//! [`super::mapped`]): into a temporary file renamed into place only on success for a regular
//! output file; in place for stdout and outputs that are not regular files (devices, FIFOs,
//! sockets, `/dev/stdout`, `/dev/fd/N`), which are never replaced.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use esdk::caching::CachingCmm;
use esdk::core::Error;
use esdk::core::error::{KeyringError, PolicyViolation};
use esdk::core::header::{self, ParseLimits, ParseProgress, Parsed};
use esdk::stream::esdk_error;
use esdk::{
    Config, CryptoMaterialsManager, DecryptingReader, EncryptOptions, EncryptingWriter,
    MultiKeyring, Plaintext,
};
use tempfile::NamedTempFile;

use super::Mode;
use super::error::{CliError, esdk_message, quote};
use super::mapped::{self, Mapped};
use super::meta::HeaderInfo;
use super::paths::{Input, Job, Output};
use super::progress::Progress;
use super::range;

/// Output buffering.
const OUT_BUFFER: usize = 1 << 20;
/// Header peeking reads at least this much before its first parse; each later piece is
/// twice the previous one, up to [`MAX_PEEK`].
const PEEK: usize = 64 * 1024;
/// The largest piece header peeking reads between two parses.
const MAX_PEEK: usize = 16 << 20;

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
    /// The KMS keyrings behind their front end: without `--caching`, tried first on
    /// decrypt and used alone on encrypt when there is no other key.
    #[cfg_attr(not(feature = "kms"), allow(dead_code))]
    pub kms: Option<&'a super::kms::Front>,
    /// The keyrings that are not KMS keyrings (generator first), if any.
    pub others: Option<&'a MultiKeyring<'a>>,
    /// One description per keyring of `others`.
    pub other_labels: Vec<String>,
    /// `--encryption-context`: on decrypt, `None` values mean "key must be present".
    pub context: Vec<(String, Option<String>)>,
    /// One description per keyring, in multi-keyring order (generator first).
    pub key_labels: Vec<String>,
    /// `--no-overwrite`: never replace an output that appeared meanwhile.
    pub no_overwrite: bool,
    /// Map regular input files into memory (unless `--no-mmap`).
    pub mmap: bool,
    /// Decrypt: what reaches a non-regular output of a signed message before its signature
    /// verifies.
    pub signed: SignedRelease,
    /// aws-encryption-cli's `--decode`: the input is base64 (whitespace ignored).
    pub decode_input: bool,
    /// aws-encryption-cli's `--encode`: the output is written in base64.
    pub encode_output: bool,
}

/// Decrypt of a signed message to stdout or another non-regular output (regular files get
/// the plaintext only after everything verified, through a temporary file, so they stream);
/// and `--range`, whose signed messages are unverified output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedRelease {
    /// `--stream-unverified`: write regular frames as they verify, before the signature.
    pub stream_unverified: bool,
    /// `--signed-buffer-limit`: otherwise hold at most this much plaintext until it verifies.
    pub buffer_limit: usize,
    /// `--range`: the job is [`Ctx::decrypt_range`].
    pub range: Option<range::Request>,
}

impl Default for SignedRelease {
    fn default() -> Self {
        Self {
            stream_unverified: false,
            buffer_limit: esdk::stream::DEFAULT_SIGNED_BUFFER_LIMIT,
            range: None,
        }
    }
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
    Mapped(Mapped),
    /// `--decode`: base64 text decoded on the way (its decoded length is unknown).
    Decoded(Box<dyn Read>),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Stdin(s) => s.read(buf),
            Source::File(f) => f.read(buf),
            Source::Mapped(m) => m.read(buf),
            Source::Decoded(d) => d.read(buf),
        }
    }
}

/// Drops ASCII whitespace (line breaks of wrapped base64) from what it reads.
struct NoWhitespace<R>(R);

impl<R: Read> Read for NoWhitespace<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.0.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut kept = 0;
            for i in 0..n {
                if !buf[i].is_ascii_whitespace() {
                    buf[kept] = buf[i];
                    kept += 1;
                }
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

/// `--decode`: the input, base64-decoded (standard alphabet, padded, whitespace ignored).
fn decoded(src: Source) -> Source {
    use base64::engine::general_purpose::STANDARD;
    Source::Decoded(Box::new(base64::read::DecoderReader::new(
        NoWhitespace(src),
        &STANDARD,
    )))
}

/// An output, base64-encoded on the way with `--encode`.
enum Out {
    Plain(Sink),
    Base64(Box<base64::write::EncoderWriter<'static, base64::engine::GeneralPurpose, Sink>>),
}

impl Out {
    fn open(
        output: &Output,
        no_clobber: bool,
        encode: bool,
    ) -> Result<(Self, String, bool), CliError> {
        let sink = Sink::open(output, no_clobber)?;
        let (name, live) = (sink.display(), sink.is_live());
        let out = if encode {
            Out::Base64(Box::new(base64::write::EncoderWriter::new(
                sink,
                &base64::engine::general_purpose::STANDARD,
            )))
        } else {
            Out::Plain(sink)
        };
        Ok((out, name, live))
    }

    /// Ends the base64 text (its last group and padding) and commits the sink.
    fn commit(self, name: &str) -> Result<(), CliError> {
        match self {
            Out::Plain(s) => s.commit(),
            Out::Base64(mut w) => w
                .finish()
                .map_err(|e| CliError::io("writing", name, &e))?
                .commit(),
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::Plain(s) => s.write(buf),
            Out::Base64(w) => w.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Out::Plain(s) => s.write_vectored(bufs),
            Out::Base64(w) => w.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Plain(s) => s.flush(),
            Out::Base64(w) => w.flush(),
        }
    }
}

/// Opens an input: a regular file of [`mapped::MIN_LEN`] bytes or more is mapped into
/// memory when `mmap` says so (and read if mapping fails): encryption seals straight from
/// the mapping.
fn open_input(input: &Input, mmap: bool) -> Result<Source, CliError> {
    match input {
        Input::Stdin => Ok(Source::Stdin(io::stdin().lock())),
        Input::File(p) => {
            let f = File::open(p).map_err(|e| CliError::io_path("opening", p, &e))?;
            if mmap
                && let Ok(meta) = f.metadata()
                && meta.is_file()
                && meta.len() >= mapped::MIN_LEN
                && let Some(m) = Mapped::new(&f, meta.len())
            {
                return Ok(Source::Mapped(m));
            }
            Ok(Source::File(f))
        }
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

/// An output stream: stdout; an existing file that is not a regular file (a device, a FIFO,
/// a socket, `/dev/stdout`, `/proc/self/fd/N`), written in place; or a temporary file in a
/// regular destination's directory, renamed over it on success.
enum Sink {
    Stdout(BufWriter<io::StdoutLock<'static>>),
    InPlace {
        w: BufWriter<File>,
        dest: PathBuf,
    },
    File {
        tmp: BufWriter<NamedTempFile>,
        dest: PathBuf,
        no_clobber: bool,
    },
}

/// How an output path is written.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// The path is this process's standard output (`/dev/stdout`, `/dev/fd/1`,
    /// `/proc/self/fd/1`, or stdout's device or FIFO by name): written through the inherited
    /// descriptor, which keeps its offset and append mode.
    Stdout,
    /// An existing file that is not a regular file (device, FIFO, socket), or a regular file
    /// reached through a descriptor link (`/dev/fd/N`, `/proc/<pid>/fd/N`): opened for
    /// writing in place, never created, truncated or replaced (`append` for a regular file
    /// behind a descriptor link, which the shell opened for us).
    InPlace { append: bool },
    /// A regular file or a new path: a temporary file beside `rename_to`, renamed over it
    /// only on success (`rename_to` is the file a symbolic link points at, so the link stays).
    Regular { rename_to: PathBuf },
}

/// Whether `path`, or the target of a symbolic link on its way, names an open descriptor
/// (`/dev/fd/N`, `/proc/<pid>/fd/N`, and so `/dev/stdout` and bash's `>(...)`).
fn through_descriptor_link(path: &Path) -> bool {
    let mut p = path.to_path_buf();
    // Bounded like the kernel's own link following.
    for _ in 0..40 {
        if p.starts_with("/proc") || p.starts_with("/dev/fd") {
            return true;
        }
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {}
            _ => return false,
        }
        let Ok(next) = fs::read_link(&p) else {
            return false;
        };
        p = match p.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    false
}

/// Whether `meta` is the file this process's standard output is.
#[cfg(unix)]
fn is_stdout(meta: &fs::Metadata) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let out = io::stdout();
    let Ok(fd) = out.as_fd().try_clone_to_owned() else {
        return false;
    };
    File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
}

#[cfg(not(unix))]
fn is_stdout(_meta: &fs::Metadata) -> bool {
    false
}

/// Decides how `dest` is written, following symbolic links (`metadata`): a path that does
/// not exist is a new regular file.
fn target(dest: &Path) -> Result<Target, CliError> {
    let Ok(meta) = fs::metadata(dest) else {
        // Not there (or not reachable: a parent that is a file, no permission): a new
        // regular file, whose creation reports what is wrong with its directory.
        return Ok(Target::Regular {
            rename_to: dest.to_path_buf(),
        });
    };
    let via_fd = through_descriptor_link(dest);
    if (via_fd || !meta.is_file()) && is_stdout(&meta) {
        return Ok(Target::Stdout);
    }
    if !meta.is_file() {
        return Ok(Target::InPlace { append: false });
    }
    if via_fd {
        return Ok(Target::InPlace { append: true });
    }
    let is_link = fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink());
    let rename_to = if is_link {
        fs::canonicalize(dest).map_err(|e| CliError::io_path("resolving", dest, &e))?
    } else {
        dest.to_path_buf()
    };
    Ok(Target::Regular { rename_to })
}

impl Sink {
    fn stdout() -> Self {
        Sink::Stdout(BufWriter::with_capacity(OUT_BUFFER, io::stdout().lock()))
    }

    fn open(output: &Output, no_clobber: bool) -> Result<Self, CliError> {
        let dest = match output {
            Output::Stdout => return Ok(Self::stdout()),
            Output::File(dest) => dest,
        };
        let rename_to = match target(dest)? {
            Target::Stdout => return Ok(Self::stdout()),
            Target::InPlace { append } => {
                // No create, no truncate: a device or FIFO is written as it is.
                let f = fs::OpenOptions::new()
                    .write(!append)
                    .append(append)
                    .open(dest)
                    .map_err(|e| CliError::io_path("opening", dest, &e))?;
                return Ok(Sink::InPlace {
                    w: BufWriter::with_capacity(OUT_BUFFER, f),
                    dest: dest.clone(),
                });
            }
            Target::Regular { rename_to } => rename_to,
        };
        let dir = match rename_to.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| CliError::io_path("creating directory", &dir, &e))?;
        let name = rename_to
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
            dest: rename_to,
            no_clobber,
        })
    }

    fn display(&self) -> String {
        match self {
            Sink::Stdout(_) => "<stdout>".to_owned(),
            Sink::InPlace { dest, .. } | Sink::File { dest, .. } => quote(dest),
        }
    }

    /// Whether what is written reaches the destination before [`commit`](Self::commit).
    fn is_live(&self) -> bool {
        !matches!(self, Sink::File { .. })
    }

    /// Flushes and, for a regular file, renames the temporary file into place.
    fn commit(self) -> Result<(), CliError> {
        match self {
            Sink::Stdout(mut w) => w
                .flush()
                .map_err(|e| CliError::io("writing", "<stdout>", &e)),
            Sink::InPlace { mut w, dest } => w
                .flush()
                .map_err(|e| CliError::io_path("writing", &dest, &e)),
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
            Sink::InPlace { w, .. } => w.write(buf),
            Sink::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.write_all(buf),
            Sink::InPlace { w, .. } => w.write_all(buf),
            Sink::File { tmp, .. } => tmp.write_all(buf),
        }
    }

    /// Passed on: a decrypted batch's frames go out in one vectored write (straight to the
    /// file when they fill the buffer), not one buffered copy per frame.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write_vectored(bufs),
            Sink::InPlace { w, .. } => w.write_vectored(bufs),
            // The temporary file's own `write_vectored` writes one slice at a time: the
            // file under it takes them all.
            Sink::File { tmp, .. } => {
                let total: usize = bufs.iter().map(|b| b.len()).sum();
                if total >= tmp.capacity() {
                    tmp.flush()?;
                    tmp.get_mut().as_file_mut().write_vectored(bufs)
                } else {
                    tmp.write_vectored(bufs)
                }
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::InPlace { w, .. } => w.flush(),
            Sink::File { tmp, .. } => tmp.flush(),
        }
    }
}

/// What [`peek_header`] read and found.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // the work counters are checked by the tests
struct Peek {
    /// Every byte read (the header and maybe some of the body), to be read again.
    head: Vec<u8>,
    /// The header, or `None` when the bytes are not a valid header (the decryptor then
    /// reports why, with the offset) or end inside it.
    header: Option<HeaderInfo>,
    /// How many times the header parser ran.
    parses: usize,
    /// The bytes handed to the parser, summed over its runs: a bound on its work that
    /// [`peek_header`] keeps within a constant times the bytes read.
    parsed_bytes: usize,
    /// The bytes of read buffer prepared (zero-filled) for the reads, summed: linear in the
    /// bytes read however small the reads are.
    prepared_bytes: usize,
}

/// Reads the header at the start of `src`, in pieces that at least double the bytes read
/// (or reach the parser's next need) between two parses, so that the parser runs
/// O(log n) times and is handed O(n) bytes in all for an n-byte header, whatever sizes the
/// reads return. The parse resumes where the last one stopped (`parse_from`), so the
/// encryption context and each EDK are checked once.
fn peek_header(src: &mut impl Read, limits: ParseLimits) -> io::Result<Peek> {
    let mut head: Vec<u8> = Vec::new();
    let mut progress = ParseProgress::default();
    let (mut parses, mut parsed_bytes, mut prepared_bytes) = (0usize, 0usize, 0usize);
    let mut piece = PEEK;
    let mut eof = false;
    loop {
        let mut need = head.len().saturating_add(piece);
        if !head.is_empty() || eof {
            parses += 1;
            parsed_bytes += head.len();
            match header::parse_from(&head, limits, &mut progress) {
                Ok(Parsed::Complete(h)) => {
                    let header = Some(HeaderInfo::new(&h));
                    return Ok(Peek {
                        head,
                        header,
                        parses,
                        parsed_bytes,
                        prepared_bytes,
                    });
                }
                Ok(Parsed::Need(n)) if !eof => need = need.max(n),
                // Truncated inside the header, or not a header: the decryptor says which.
                Ok(Parsed::Need(_)) | Err(_) => {
                    return Ok(Peek {
                        head,
                        header: None,
                        parses,
                        parsed_bytes,
                        prepared_bytes,
                    });
                }
            }
            piece = (piece * 2).min(MAX_PEEK);
        }
        if let Some(max) = limits.max_header_len {
            // Past the limit the parser refuses; no need to read further ahead than that.
            need = need.min(max.saturating_add(1).max(head.len() + 1));
        }
        // Zero-filled once per round (the rounds grow geometrically), then read into: a
        // source that hands out a byte at a time costs one pass over the header, not one
        // zero-fill of the rest of the round per read.
        let mut filled = head.len();
        if filled < need {
            head.resize(need, 0);
            prepared_bytes += need - filled;
            while filled < need {
                let n = read_some(src, &mut head[filled..])?;
                if n == 0 {
                    eof = true;
                    break;
                }
                filled += n;
            }
            head.truncate(filled);
        }
    }
}

/// Passes writes through and keeps the message header (the first bytes written) for the
/// metadata.
struct Tap<W> {
    inner: W,
    head: Vec<u8>,
    header: Option<HeaderInfo>,
    progress: ParseProgress,
    capturing: bool,
    written: u64,
}

impl<W: Write> Tap<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            head: Vec::new(),
            header: None,
            progress: ParseProgress::default(),
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
            // Resumed where the last write's parse stopped: linear in the header's length.
            match header::parse_from(&self.head, ParseLimits::default(), &mut self.progress) {
                Ok(Parsed::Need(_)) => {}
                Ok(Parsed::Complete(h)) => {
                    self.header = Some(HeaderInfo::new(&h));
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

/// Passes reads or writes through `&Marked` and records whether one failed and how many
/// bytes moved.
struct Marked<T> {
    inner: std::cell::RefCell<T>,
    failed: Cell<bool>,
    moved: Cell<u64>,
}

impl<T> Marked<T> {
    fn new(inner: T) -> Self {
        Self {
            inner: std::cell::RefCell::new(inner),
            failed: Cell::new(false),
            moved: Cell::new(0),
        }
    }

    fn record(&self, r: io::Result<usize>) -> io::Result<usize> {
        match &r {
            Ok(n) => self.moved.set(self.moved.get() + *n as u64),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.failed.set(true),
        }
        r
    }
}

impl<R: Read> Read for &Marked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.borrow_mut().read(buf);
        self.record(r)
    }
}

impl<W: Write> Write for &Marked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.borrow_mut().write(buf);
        self.record(r)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let r = self.inner.borrow_mut().write_vectored(bufs);
        self.record(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.borrow_mut().flush();
        self.record(r.map(|()| 0)).map(|_| ())
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
        match self.mode {
            Mode::Encrypt => self.encrypt(job, progress),
            Mode::Decrypt => self.decrypt(job, progress),
        }
    }

    /// The message for an error of the KMS front end: I/O errors of the output are I/O
    /// failures, everything else names the input and the failed check with the KMS detail.
    #[cfg(feature = "kms")]
    fn front_failure(&self, verb: &str, input: &Input, output: &str, e: esdk::Error) -> CliError {
        match e {
            esdk::Error::Io(e) => CliError::io("writing", output, &e),
            other => CliError::crypto(format!("{verb} {}: {other}", show(input))),
        }
    }

    /// The message for an error of the ESDK stream, or `None` for a plain I/O error. `labels`
    /// describe the keyrings of the multi-keyring used; `kms` is the KMS keyrings' failure
    /// when they were tried first.
    fn esdk_failure(
        &self,
        verb: &str,
        input: &Input,
        e: &io::Error,
        labels: &[String],
        kms: Option<&esdk::Error>,
    ) -> Option<CliError> {
        let err = esdk_error(e)?;
        let mut msg = format!("{verb} {}: {}", show(input), esdk_message(&err));
        if let Error::Keyring(KeyringError::NoDataKeyDecrypted(_)) = err {
            msg.push_str(" [keyrings: ");
            msg.push_str(
                &labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("#{i} = {l}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            msg.push(']');
            if let Some(kms) = kms {
                msg.push_str(&format!(" (and the AWS KMS keys: {kms})"));
            }
        }
        Some(CliError::crypto(msg))
    }

    fn encrypt(&self, job: &Job, progress: &mut Progress) -> Result<Done, CliError> {
        let mut src = open_input(&job.input, self.mmap && !self.decode_input)?;
        if self.decode_input {
            src = decoded(src);
        }
        let (sink, out_name, _) = Out::open(&job.output, self.no_overwrite, self.encode_output)?;
        let ec: Vec<(&str, &str)> = self
            .context
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or_default()))
            .collect();
        let write_err = |e: io::Error| {
            self.esdk_failure("encrypting", &job.input, &e, &self.key_labels, None)
                .unwrap_or_else(|| CliError::io("writing", &out_name, &e))
        };
        // A regular file declares its length: the cache counts it (an entry encrypts a
        // bounded number of bytes) and the encryptor refuses more; stdin's is unknown, so it
        // goes around the cache.
        let opts = match (&src, input_len(&job.input)) {
            (Source::Mapped(m), _) => self.opts.with_plaintext_len(m.rest().len() as u64),
            (Source::Decoded(_), _) => self.opts,
            (_, Some(n)) => self.opts.with_plaintext_len(n),
            (_, None) => self.opts,
        };
        // KMS keys alone (and no cache): the KMS front end gets the materials, so a failure
        // keeps the KMS detail (key, region, error code).
        #[cfg(feature = "kms")]
        let prepared = match (self.kms, self.cache, self.others) {
            (Some(front), None, None) => Some(
                front
                    .prepare_encrypt(&self.cfg, &opts, &ec)
                    .map_err(|e| self.front_failure("encrypting", &job.input, &out_name, e))?,
            ),
            _ => None,
        };
        #[cfg(not(feature = "kms"))]
        let prepared: Option<std::convert::Infallible> = None;
        let cmm: &dyn CryptoMaterialsManager = match self.cache {
            Some(c) => c,
            None => self.keyring,
        };
        let w = match &prepared {
            #[cfg(feature = "kms")]
            Some(p) => p
                .encrypting_writer(Tap::new(sink))
                .map_err(|e| self.front_failure("encrypting", &job.input, &out_name, e))?,
            #[cfg(not(feature = "kms"))]
            Some(never) => match *never {},
            None => EncryptingWriter::new(
                &self.cfg,
                &esdk::DEFAULT_PROVIDER,
                cmm,
                &opts,
                &ec,
                Tap::new(sink),
            )
            .map_err(write_err)?,
        };
        // A regular file is read by the workers with positional reads, straight into the
        // buffers its frames are sealed from; anything else in order.
        let read = Cell::new(0u64);
        let mut count = |n: u64| {
            read.set(read.get() + n);
            progress.inc(n);
        };
        let tap = match &mut src {
            Source::Mapped(m) => {
                let m = &*m;
                let mut count = |n: u64| {
                    count(n);
                    m.consumed(read.get() as usize);
                };
                w.encrypt_from(
                    Plaintext::<io::Empty>::Bytes(m.rest()),
                    self.cfg.threads,
                    &mut count,
                )
            }
            Source::File(f) if opts.plaintext_len.is_some() => w.encrypt_from(
                Plaintext::<io::Empty>::File(f),
                self.cfg.threads,
                &mut count,
            ),
            src => {
                let marked = Marked::new(src);
                let r = w.encrypt_from(Plaintext::Reader(&marked), self.cfg.threads, &mut count);
                if let (Err(e), true) = (&r, marked.failed.get()) {
                    return Err(CliError::io("reading", &show(&job.input), e));
                }
                r
            }
        }
        .map_err(write_err)?;
        let read = read.get();
        let header = tap.header.ok_or_else(|| {
            CliError::crypto(format!(
                "encrypting {}: the header written could not be read back",
                show(&job.input)
            ))
        })?;
        let written = tap.written;
        tap.inner.commit(&out_name)?;
        Ok(Done {
            header,
            input_bytes: read,
            output_bytes: written,
        })
    }

    fn decrypt(&self, job: &Job, progress: &mut Progress) -> Result<Done, CliError> {
        if let Some(want) = self.signed.range {
            return self.decrypt_range(job, want, progress);
        }
        // A message is read, not mapped: its bytes are copied into private buffers before
        // anything parses them either way, and the kernel's copy costs less than faulting
        // the pages in and copying them (measured: 80 against 89 ms of CPU for 256 MiB).
        let mut src = open_input(&job.input, false)?;
        if self.decode_input {
            src = decoded(src);
        }
        let read_err = |e: io::Error| CliError::io("reading", &show(&job.input), &e);
        // Read the header first: the encryption context is checked before any output exists.
        let limits = ParseLimits {
            max_edks: self.cfg.max_encrypted_data_keys,
            max_header_len: self.cfg.max_header_len,
        };
        let Peek { head, header, .. } = peek_header(&mut src, limits).map_err(read_err)?;
        if let Some(h) = &header {
            self.check_context(h, &job.input)?;
        }
        let reproduced = self.reproduced();
        // The KMS keys first, through their front end (unless the cache answers): a failure
        // keeps the KMS detail; the other keys are tried after it.
        #[cfg_attr(not(feature = "kms"), allow(unused_mut))]
        let mut kms_failure = None;
        #[cfg(feature = "kms")]
        let prepared = match (self.kms, self.cache, &header) {
            (Some(front), None, Some(_)) => {
                match front.prepare_decrypt(&self.cfg, &reproduced, &head) {
                    Ok(p) => Some(p),
                    Err(e) if self.others.is_none() => {
                        return Err(self.front_failure("decrypting", &job.input, "", e));
                    }
                    Err(e) => {
                        kms_failure = Some(e);
                        None
                    }
                }
            }
            _ => None,
        };
        #[cfg(not(feature = "kms"))]
        let prepared: Option<std::convert::Infallible> = None;
        let (cmm, labels): (&dyn CryptoMaterialsManager, &[String]) =
            match (self.cache, &prepared, &kms_failure, self.others) {
                (Some(c), ..) => (c, &self.key_labels),
                (None, Some(_), ..) => (self.keyring, &[]),
                (None, None, Some(_), Some(others)) => (others, &self.other_labels),
                _ => (self.keyring, &self.key_labels),
            };
        let count = Rc::new(Cell::new(0u64));
        let (mut sink, sink_name, live) =
            Out::open(&job.output, self.no_overwrite, self.encode_output)?;
        // A regular file is renamed into place only after everything verified, so it may
        // receive unverified frames; a live output gets them only when asked.
        let reader = match prepared {
            // The header is authenticated already: the reader goes on after it.
            #[cfg(feature = "kms")]
            Some(p) => {
                let n = p.header_len().min(head.len());
                count.set(n as u64);
                let counted = Counting {
                    inner: io::Cursor::new(head[n..].to_vec()).chain(src),
                    count: Rc::clone(&count),
                };
                p.decrypting_reader(counted)
            }
            #[cfg(not(feature = "kms"))]
            Some(never) => match never {},
            None => {
                let counted = Counting {
                    inner: io::Cursor::new(head).chain(src),
                    count: Rc::clone(&count),
                };
                DecryptingReader::new(
                    &self.cfg,
                    &esdk::DEFAULT_PROVIDER,
                    cmm,
                    &reproduced,
                    counted,
                )
            }
        };
        let reader = reader
            .release_unverified_plaintext(self.signed.stream_unverified || !live)
            .with_signed_buffer_limit(self.signed.buffer_limit);
        // The sink records its own failures and what it took, so that an error is told
        // apart from the reader's and the unverified-plaintext warning is exact.
        let marked = Marked::new(&mut sink);
        let mut reported = 0u64;
        let mut tick = |_| {
            let now = count.get();
            progress.inc(now - reported);
            reported = now;
        };
        // A small message stays on this thread (its length is known here, not to the
        // reader), as the library's one-shot calls and known-length encryptions do.
        let threads = match input_len(&job.input) {
            Some(n) if n < esdk::PARALLEL_MIN as u64 => 1,
            _ => self.cfg.threads,
        };
        if let Err(e) = reader.decrypt_to(&marked, threads, &mut tick) {
            if marked.failed.get() {
                return Err(CliError::io("writing", &sink_name, &e));
            }
            let mut err = self
                .esdk_failure("decrypting", &job.input, &e, labels, kms_failure.as_ref())
                .unwrap_or_else(|| read_err(e));
            if live && marked.moved.get() > 0 {
                err.message.push_str(&format!(
                    " (the plaintext already written to {sink_name} is unverified: discard it)"
                ));
            }
            return Err(err);
        }
        let written = marked.moved.get();
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
        sink.commit(&sink_name)?;
        Ok(Done {
            header,
            input_bytes: count.get(),
            output_bytes: written,
        })
    }

    /// The `--encryption-context` pairs with a value: the reproduced context.
    fn reproduced(&self) -> Vec<(&str, &str)> {
        self.context
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?)))
            .collect()
    }

    /// `decrypt --range`: the header peeked and the context checked as for a whole
    /// decrypt, then [`esdk::RangeReader`] over the seekable input (the keyring runs once;
    /// the final frame is verified before any output exists) writes the range to the output
    /// through the same [`Sink`]. The keyrings run as one multi-keyring (or the cache): the
    /// KMS front end's detail is not collected here.
    fn decrypt_range(
        &self,
        job: &Job,
        want: range::Request,
        progress: &mut Progress,
    ) -> Result<Done, CliError> {
        let mut src = range::open_seekable(&job.input)?;
        let read_err = |e: io::Error| CliError::io("reading", &show(&job.input), &e);
        let limits = ParseLimits {
            max_edks: self.cfg.max_encrypted_data_keys,
            max_header_len: self.cfg.max_header_len,
        };
        let header = peek_header(&mut src, limits).map_err(read_err)?.header;
        if let Some(h) = &header {
            self.check_context(h, &job.input)?;
        }
        let reproduced = self.reproduced();
        let cmm: &dyn CryptoMaterialsManager = match self.cache {
            Some(c) => c,
            None => self.keyring,
        };
        let fail = |e: esdk::Error| self.range_failure(&job.input, e);
        let opts = esdk::RangeOptions {
            unverified_signed: want.unverified_signed,
        };
        let mut r = esdk::RangeReader::new(&self.cfg, cmm, &reproduced, src, opts).map_err(fail)?;
        let Some(header) = header else {
            // The decryptor accepted what the peek could not parse: should not happen.
            return Err(CliError::crypto(format!(
                "decrypting {}: the header could not be read",
                show(&job.input)
            )));
        };
        let span = want
            .range
            .resolve(r.plaintext_len())
            .map_err(|e| CliError::usage(format!("decrypting {}: {e}", show(&job.input))))?;
        if header.suite.signature().is_some() && !want.quiet {
            progress.println(&format!(
                "esdk: warning: {}: the range of a signed message is unverified output \
                 (--range-unverified-signed): its signature was not checked",
                show(&job.input)
            ));
        }
        let mut sink = Sink::open(&job.output, self.no_overwrite)?;
        let sink_name = sink.display();
        r.seek(io::SeekFrom::Start(span.start)).map_err(read_err)?;
        let mut buf = zeroize::Zeroizing::new(vec![0u8; OUT_BUFFER.min(64 << 10)]);
        let mut left = span.end - span.start;
        while left > 0 {
            let room = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = r.read_plaintext(&mut buf[..room]).map_err(fail)?;
            if n == 0 {
                return Err(read_err(io::ErrorKind::UnexpectedEof.into()));
            }
            sink.write_all(&buf[..n])
                .map_err(|e| CliError::io("writing", &sink_name, &e))?;
            left -= n as u64;
        }
        // The metadata's message_bytes: the message's length (not the few frames read).
        let message_len = r.map().message_len();
        progress.inc(message_len);
        sink.commit()?;
        Ok(Done {
            header,
            input_bytes: message_len,
            output_bytes: span.end - span.start,
        })
    }

    /// The message for a failure of `decrypt --range`: I/O errors name the frame being
    /// read; a refused signed message says how to opt in.
    fn range_failure(&self, input: &Input, e: esdk::Error) -> CliError {
        let core = match e {
            esdk::Error::Core(core) => core,
            esdk::Error::Io(e) => return CliError::io("reading", &show(input), &e),
            esdk::Error::FrameRead { ref source, .. } => {
                let mut err = CliError::io("reading", &show(input), source);
                err.message = format!("reading {}: {e}", show(input));
                return err;
            }
            other => return CliError::crypto(format!("decrypting {}: {other}", show(input))),
        };
        let io = esdk::stream::io_error(core);
        let mut err = self
            .esdk_failure("decrypting", input, &io, &self.key_labels, None)
            .unwrap_or_else(|| CliError::crypto(format!("decrypting {}: {core}", show(input))));
        match core {
            Error::Policy(PolicyViolation::RandomAccessSigned) => err.message.push_str(
                " (its signature covers the whole message: decrypt all of it, or accept \
                 unverified output with --range-unverified-signed)",
            ),
            Error::Policy(PolicyViolation::RandomAccessNonFramed) => err
                .message
                .push_str(" (a non-framed message is one unit: decrypt all of it without --range)"),
            _ => {}
        }
        err
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

#[cfg(test)]
mod tests {
    use super::*;
    use esdk_tests::forge::crowded_header;

    /// [`crowded_header`] (`pairs` context pairs, `edks` EDKs of provider `other`), then
    /// `body` bytes; and the header's length.
    fn big_header(pairs: usize, edks: usize, body: usize) -> (Vec<u8>, usize) {
        let mut h = crowded_header(pairs, edks);
        let len = h.len();
        h.resize(len + body, 0);
        (h, len)
    }

    /// Gives at most `step` bytes per read, like a pipe fed by small writes.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
        reads: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = buf.len().min(self.step).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn the_header_peek_does_linear_work_whatever_the_read_sizes() {
        let mut cases = 0;
        for (pairs, edks, step) in [
            (0, 1, 1),
            (3000, 1, 7),
            (0, 20_000, 1),
            (2000, 20_000, 100),
            (2000, 20_000, 1 << 20),
        ] {
            let (msg, header_len) = big_header(pairs, edks, 10);
            let mut src = Trickle {
                data: msg.clone(),
                at: 0,
                step,
                reads: 0,
            };
            let peek = peek_header(&mut src, ParseLimits::default()).expect("read");
            let h = peek.header.expect("the header parses");
            assert_eq!((h.header_len, h.edks.len()), (header_len, edks));
            assert_eq!(h.encryption_context.len(), pairs);
            // Nothing read is lost: the bytes are handed on to the decryptor.
            assert_eq!(peek.head[..], msg[..peek.head.len()]);
            // The work bound: parses grow the input geometrically.
            let doublings = (header_len / PEEK + 1).ilog2() as usize + 2;
            assert!(
                peek.parses <= doublings,
                "{} parses for a {header_len}-byte header (bound {doublings})",
                peek.parses
            );
            assert!(
                peek.parsed_bytes <= 4 * header_len + 2 * PEEK,
                "{} bytes parsed for a {header_len}-byte header",
                peek.parsed_bytes
            );
            assert!(
                peek.prepared_bytes <= 4 * header_len + 4 * PEEK,
                "{} bytes of read buffer prepared for a {header_len}-byte header",
                peek.prepared_bytes
            );
            println!(
                "header {header_len} B ({pairs} pairs, {edks} EDKs), reads of {step} B: {} \
                 reads, {} parses, {} bytes parsed, {} prepared",
                src.reads, peek.parses, peek.parsed_bytes, peek.prepared_bytes
            );
            cases += 1;
        }
        println!("{cases} header peeks checked");
    }

    #[test]
    fn the_header_peek_stops_at_bad_or_truncated_headers_and_limits() {
        let (msg, header_len) = big_header(10, 3, 0);
        let peek = |bytes: &[u8], limits| {
            let mut src = Trickle {
                data: bytes.to_vec(),
                at: 0,
                step: 3,
                reads: 0,
            };
            peek_header(&mut src, limits).expect("read")
        };
        // Truncated: everything read is kept for the decryptor, which reports it.
        let p = peek(&msg[..header_len - 1], ParseLimits::default());
        assert!(p.header.is_none());
        assert_eq!(p.head.len(), header_len - 1);
        // Not a header.
        assert!(
            peek(b"hello world", ParseLimits::default())
                .header
                .is_none()
        );
        // Over a header limit: no more than the limit (plus one byte) is read.
        let (big, _) = big_header(0, 5000, 0);
        let limits = ParseLimits {
            max_edks: None,
            max_header_len: Some(1000),
        };
        let p = peek(&big, limits);
        assert!(p.header.is_none());
        assert!(p.head.len() <= 1001, "read {} bytes", p.head.len());
        let p = peek(&msg, ParseLimits::default());
        assert_eq!(p.header.map(|h| h.header_len), Some(header_len));
    }
}
