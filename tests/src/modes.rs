//! Decryption of one message in every mode the project offers, for verdict comparison:
//! one-shot, incremental fed 1 byte at a time, incremental fed random-sized slices (seeded),
//! std `Read`, std `Write`, tokio `AsyncRead` and the core's `embedded-io-async` reader,
//! under either crypto provider ([`Provider`]).
//!
//! Every mode records what actually reached the caller before an error (one-shot: what the
//! API left in the output buffer; incremental: what `process` reported written; `Read`: what
//! `read` returned (std and tokio); `Write`: what the decryptor passed on to its inner writer, kept by a
//! recording writer even when the decryptor later fails), so [`check_release`] can hold
//! each of them to the release bound.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use esdk_core::error::Error;
use esdk_core::header::{self, ParseLimits, Parsed};
use esdk_core::{Config, CryptoMaterialsManager, CryptoProvider, Decryptor, Status};

/// The crypto provider a decryption runs under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Provider {
    /// The pure-Rust, `no_std` provider of the core (`esdk::RUSTCRYPTO_PROVIDER`): the one
    /// firmware ships.
    RustCrypto,
    /// The aws-lc provider (`esdk::DEFAULT_PROVIDER`), the std adapter's default.
    #[default]
    AwsLc,
}

impl Provider {
    /// Both providers.
    pub const BOTH: [Provider; 2] = [Provider::RustCrypto, Provider::AwsLc];

    /// The name used on command lines and in reports (`rustcrypto`, `aws-lc`).
    pub fn name(self) -> &'static str {
        match self {
            Provider::RustCrypto => "rustcrypto",
            Provider::AwsLc => "aws-lc",
        }
    }

    /// Parses [`Provider::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Provider::BOTH.into_iter().find(|p| p.name() == s)
    }
}

/// A decrypt mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `esdk_core::decrypt`.
    OneShot,
    /// `Decryptor` fed one byte at a time.
    OneByte,
    /// `Decryptor` fed random-sized slices from a seeded generator.
    RandomSlices(u64),
    /// `esdk::DecryptingReader`, read with random-sized buffers.
    StdRead(u64),
    /// `esdk::DecryptingWriter`, written with random-sized chunks.
    StdWrite(u64),
    /// `esdk::tokio_io::AsyncDecryptingReader`, read with random-sized buffers from an inner
    /// reader that hands out random-sized pieces and returns `Pending` every other poll.
    TokioRead(u64),
    /// `esdk_core::eio_async::DecryptingReader` through fixed buffers as long as the message
    /// (its input buffer must hold the header and one whole frame: a step that needs more
    /// than the whole input, `BufferTooSmall`, is the input ending early, `Truncated` at its
    /// end), read like [`Mode::TokioRead`].
    EioAsyncRead(u64),
}

impl Mode {
    /// The seven modes, seeded with `seed`.
    pub fn all(seed: u64) -> [Mode; 7] {
        [
            Mode::OneShot,
            Mode::OneByte,
            Mode::RandomSlices(seed),
            Mode::StdRead(seed),
            Mode::StdWrite(seed),
            Mode::TokioRead(seed),
            Mode::EioAsyncRead(seed),
        ]
    }
}

/// A small seeded generator (xorshift64*), for split sizes only.
#[derive(Debug, Clone)]
pub struct SplitRng(u64);

impl SplitRng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    /// A size in `1..=max`.
    pub fn size(&mut self, max: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        1 + (r % max as u64) as usize
    }
}

/// The outcome of one decryption: the plaintext, or the error with the plaintext that
/// reached the caller before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Decrypted and verified.
    Ok(Vec<u8>),
    /// Failed; `released` is what the mode had handed to the caller before the error.
    Err {
        /// The error.
        error: Error,
        /// Plaintext that reached the caller (see the module doc for each mode).
        released: Vec<u8>,
    },
}

/// What a failed decryption may have released: at most the plaintext of the regular frames
/// that precede the first changed (or missing) byte, as a prefix of the true plaintext.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseBound<'a> {
    /// Plaintext bytes of the intact regular frames before the damage
    /// ([`crate::layout::Layout::intact_plaintext`]): never a final frame, so never the final
    /// frame of a signed message, and nothing of a non-framed body.
    pub intact: usize,
    /// The true plaintext of the untampered message, where it is known. Where it is not (a
    /// truncated vector with no reference), released bytes of intact frames are authentic
    /// by construction and only the length is bounded.
    pub plaintext: Option<&'a [u8]>,
}

/// Checks what a failed decryption in `mode` released against `bound`: one-shot releases
/// nothing; the other modes release a prefix of the true plaintext made of intact regular
/// frames only.
///
/// # Errors
/// A description of the violation.
pub fn check_release(mode: Mode, released: &[u8], bound: &ReleaseBound<'_>) -> Result<(), String> {
    if mode == Mode::OneShot && !released.is_empty() {
        return Err(format!(
            "one-shot left {} bytes of output behind on error",
            released.len()
        ));
    }
    if released.len() > bound.intact {
        return Err(format!(
            "{mode:?} released {} bytes; only {} bytes of intact regular frames precede the \
             damage",
            released.len(),
            bound.intact
        ));
    }
    if let Some(pt) = bound.plaintext
        && !pt.starts_with(released)
    {
        let first = released
            .iter()
            .zip(pt)
            .position(|(a, b)| a != b)
            .unwrap_or(pt.len());
        return Err(format!(
            "{mode:?} released {} bytes that are not a prefix of the plaintext (first \
             difference at byte {first})",
            released.len()
        ));
    }
    Ok(())
}

/// Feeds `ct` to a `Decryptor` in slices whose sizes `next` chooses, and drives its
/// materials step itself (as an async front end does): at `NeedDataKey` it takes the
/// decryptor's materials to the CMM and hands the data key back.
fn incremental<P: CryptoProvider>(
    cfg: &Config,
    p: &P,
    cmm: &dyn CryptoMaterialsManager,
    reproduced: &[(&str, &str)],
    ct: &[u8],
    mut next: impl FnMut() -> usize,
) -> Outcome {
    let mut dec = Decryptor::new(cfg, p, reproduced);
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0usize;
    let mut need = 1usize;
    let mut out = vec![0u8; ct.len().max(16)];
    let mut released = Vec::new();
    loop {
        if buf.len() < need {
            if fed == ct.len() {
                // The input ended where the decryptor still needed bytes: the message is
                // truncated at its end, as the one-shot decrypt reports it.
                let error = Error::Truncated { offset: ct.len() };
                return Outcome::Err { error, released };
            }
            let n = next().min(ct.len() - fed);
            buf.extend_from_slice(&ct[fed..fed + n]);
            fed += n;
            continue;
        }
        match dec.process(&buf, &mut out) {
            Ok(p) => {
                buf.drain(..p.consumed);
                released.extend_from_slice(&out[..p.written]);
                match p.status {
                    Status::NeedInput { min } => need = min,
                    Status::NeedDataKey => {
                        let key = dec.decryption_materials(&buf, &mut out).and_then(|mut m| {
                            let edks = m.encrypted_data_keys();
                            cmm.decrypt_materials(&mut m, edks)?;
                            m.into_data_key()
                        });
                        if let Err(error) = key.and_then(|k| dec.set_data_key(k)) {
                            return Outcome::Err { error, released };
                        }
                    }
                    Status::Done => {
                        if !buf.is_empty() || fed < ct.len() {
                            let error = Error::TrailingBytes {
                                offset: dec.offset(),
                            };
                            return Outcome::Err { error, released };
                        }
                        return Outcome::Ok(released);
                    }
                    _ => need = 1,
                }
            }
            Err(error) => return Outcome::Err { error, released },
        }
    }
}

/// A reader that hands out at most a random number of bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    rng: SplitRng,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rng.size(70_000).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The tokio mode's inner reader: random-sized pieces, `Pending` every other poll (it wakes
/// itself first).
struct AsyncTrickle<'a> {
    data: &'a [u8],
    rng: SplitRng,
    pend: bool,
}

impl tokio::io::AsyncRead for AsyncTrickle<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        this.pend = !this.pend;
        if this.pend {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = this
            .rng
            .size(70_000)
            .min(buf.remaining())
            .min(this.data.len());
        buf.put_slice(&this.data[..n]);
        this.data = &this.data[n..];
        Poll::Ready(Ok(()))
    }
}

/// The embedded-io-async mode's inner reader: random-sized pieces, `Pending` once before
/// each.
struct EioTrickle<'a> {
    data: &'a [u8],
    rng: SplitRng,
}

impl embedded_io::ErrorType for EioTrickle<'_> {
    type Error = core::convert::Infallible;
}

impl embedded_io_async::Read for EioTrickle<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        YieldOnce(false).await;
        let n = self.rng.size(70_000).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// `Pending` once (waking itself), then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Polls `f` to completion with a waker that does nothing (the mode's reader wakes itself).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The inner writer of the `Write` mode: keeps everything the decryptor passed on, where the
/// caller can still see it after the decryptor failed.
#[derive(Clone, Default)]
struct Recorder(Rc<RefCell<Vec<u8>>>);

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn io_err(e: std::io::Error) -> Error {
    esdk::stream::esdk_error(&e)
        .unwrap_or(Error::ApiMisuse(esdk_core::error::ApiMisuse::WrongState))
}

fn io_outcome(e: std::io::Error, released: Vec<u8>) -> Outcome {
    Outcome::Err {
        error: io_err(e),
        released,
    }
}

/// Reads with `read` into buffers of random sizes up to 70 000 bytes until it returns 0 or
/// an error; what it returned before is what reached the caller.
fn read_all(mut rng: SplitRng, mut read: impl FnMut(&mut [u8]) -> Result<usize, Error>) -> Outcome {
    let mut released = Vec::new();
    let mut buf = vec![0u8; 70_000];
    loop {
        let n = rng.size(buf.len());
        match read(&mut buf[..n]) {
            Ok(0) => return Outcome::Ok(released),
            Ok(k) => released.extend_from_slice(&buf[..k]),
            Err(error) => return Outcome::Err { error, released },
        }
    }
}

/// Length of the prefix of the one-shot output buffer that the header step uses as scratch
/// for the full encryption context in canonical form, when the reproduced context adds pairs
/// not stored in the message or the stored context is not sorted (see `Decryptor`): public
/// header bytes and the caller's own context, left there on error (see the report of issue
/// #8), not plaintext, so not a release.
fn one_shot_scratch(ct: &[u8], reproduced: &[(&str, &str)]) -> usize {
    let Ok(Parsed::Complete(h)) = header::parse(ct, ParseLimits::default()) else {
        return 0;
    };
    let stored = h.encryption_context;
    let extras: usize = reproduced
        .iter()
        .filter(|(k, _)| stored.get(k).is_none())
        .map(|(k, v)| 4 + k.len() + v.len())
        .sum();
    if extras == 0 && stored.is_canonical() {
        0
    } else {
        2 + stored.as_bytes().len().saturating_sub(2) + extras
    }
}

/// Decrypts `ct` in `mode` under the default provider (aws-lc).
pub fn decrypt_in_mode(
    mode: Mode,
    cfg: &Config,
    cmm: &dyn CryptoMaterialsManager,
    reproduced: &[(&str, &str)],
    ct: &[u8],
) -> Outcome {
    decrypt_with(Provider::AwsLc, mode, cfg, cmm, reproduced, ct)
}

/// Decrypts `ct` in `mode` under `provider`.
pub fn decrypt_with(
    provider: Provider,
    mode: Mode,
    cfg: &Config,
    cmm: &dyn CryptoMaterialsManager,
    reproduced: &[(&str, &str)],
    ct: &[u8],
) -> Outcome {
    match provider {
        Provider::RustCrypto => run(&esdk::RUSTCRYPTO_PROVIDER, mode, cfg, cmm, reproduced, ct),
        Provider::AwsLc => run(&esdk::DEFAULT_PROVIDER, mode, cfg, cmm, reproduced, ct),
    }
}

fn run<P: CryptoProvider>(
    p: &P,
    mode: Mode,
    cfg: &Config,
    cmm: &dyn CryptoMaterialsManager,
    reproduced: &[(&str, &str)],
    ct: &[u8],
) -> Outcome {
    match mode {
        Mode::OneShot => {
            let mut out = vec![0u8; ct.len()];
            match esdk_core::decrypt(cfg, p, cmm, reproduced, ct, &mut out) {
                Ok(d) => {
                    out.truncate(d.plaintext_len);
                    Outcome::Ok(out)
                }
                Err(error) => {
                    // What the API left behind: the buffer up to its last non-zero byte
                    // (it started all zero), past the header scratch.
                    let scratch = one_shot_scratch(ct, reproduced).min(out.len());
                    let end = out.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                    let released = out[scratch..end.max(scratch)].to_vec();
                    Outcome::Err { error, released }
                }
            }
        }
        Mode::OneByte => incremental(cfg, p, cmm, reproduced, ct, || 1),
        Mode::RandomSlices(seed) => {
            let mut rng = SplitRng::new(seed);
            incremental(cfg, p, cmm, reproduced, ct, move || rng.size(300))
        }
        Mode::StdRead(seed) => {
            let rng = SplitRng::new(seed ^ 0x5555);
            let src = Trickle {
                data: ct,
                rng: SplitRng::new(seed),
            };
            let mut r = esdk::DecryptingReader::new(cfg, p, cmm, reproduced, src);
            read_all(rng, |b| r.read(b).map_err(io_err))
        }
        Mode::TokioRead(seed) => {
            use tokio::io::AsyncReadExt;
            let rng = SplitRng::new(seed ^ 0x3333);
            let src = AsyncTrickle {
                data: ct,
                rng: SplitRng::new(seed ^ 0x7777),
                pend: false,
            };
            let mut r = esdk::tokio_io::AsyncDecryptingReader::new(cfg, p, cmm, reproduced, src);
            read_all(rng, |b| block_on(r.read(b)).map_err(io_err))
        }
        Mode::EioAsyncRead(seed) => {
            use embedded_io_async::Read as _;
            use esdk_core::eio::StreamError;
            let rng = SplitRng::new(seed ^ 0x1111);
            let src = EioTrickle {
                data: ct,
                rng: SplitRng::new(seed ^ 0x2222),
            };
            let extras: usize = reproduced.iter().map(|(k, v)| 4 + k.len() + v.len()).sum();
            let mut inbuf = vec![0u8; ct.len() + 1];
            let mut outbuf = vec![0u8; ct.len() + extras + 2];
            let mut r = esdk_core::eio_async::DecryptingReader::new(
                cfg,
                p,
                cmm,
                reproduced,
                src,
                &mut inbuf,
                &mut outbuf,
            );
            read_all(rng, |b| match block_on(r.read(b)) {
                Ok(k) => Ok(k),
                Err(StreamError::Esdk(Error::BufferTooSmall { required }))
                    if required > ct.len() =>
                {
                    Err(Error::Truncated { offset: ct.len() })
                }
                Err(StreamError::Esdk(error)) => Err(error),
                Err(_) => Err(Error::ApiMisuse(esdk_core::error::ApiMisuse::WrongState)),
            })
        }
        Mode::StdWrite(seed) => {
            let mut rng = SplitRng::new(seed ^ 0xAAAA);
            let sink = Recorder::default();
            let mut w = esdk::DecryptingWriter::new(cfg, p, cmm, reproduced, sink.clone());
            let recorded = || sink.0.borrow().clone();
            let mut at = 0;
            while at < ct.len() {
                let n = rng.size(5000).min(ct.len() - at);
                if let Err(e) = w.write_all(&ct[at..at + n]) {
                    drop(w);
                    return io_outcome(e, recorded());
                }
                at += n;
            }
            match w.finish() {
                Ok(_) => Outcome::Ok(recorded()),
                Err(e) => io_outcome(e, recorded()),
            }
        }
    }
}
