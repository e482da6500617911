//! Random access to a framed message in a seekable source: [`RangeReader`], a decrypting
//! reader that implements [`Read`] and [`Seek`] over the plaintext, and [`decrypt_range`],
//! one range through it. The header, the final frame and the frames that are read, nothing
//! else (the core's [`esdk_core::random_access`] does the layout and the checks).

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;

use esdk_core::provider::{AeadKey, CryptoProvider};
use esdk_core::random_access::{RandomAccess, RandomAccessOptions, SIGNED_TAIL_LEN};
use esdk_core::{Config, CryptoMaterialsManager, Decryptor, Status};
use zeroize::{Zeroize, Zeroizing};

use crate::{DEFAULT_PROVIDER, DefaultProvider, Error};

/// How [`RangeReader`] and [`decrypt_range`] treat signed messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeOptions {
    /// Decrypt ranges of **signed** messages too, as **unverified output**: the signature
    /// covers the whole message and is not checked, and anyone who can decrypt the message
    /// (every reader holds its data key) could have written its frames. Off by default:
    /// signed messages are refused
    /// ([`PolicyViolation::RandomAccessSigned`](esdk_core::error::PolicyViolation::RandomAccessSigned)).
    pub unverified_signed: bool,
}

/// A decrypting reader over a framed message in a seekable source: [`Read`] and [`Seek`]
/// over the message's **plaintext**, reading only the frames that hold what is read.
///
/// Opening it ([`new`](Self::new)) reads the header (the keyring or CMM runs once, as for
/// any decrypt) and then the **final frame**, verified where the source's length puts it:
/// a truncated or extended message is refused before any plaintext comes out, even one
/// that is only ever read at its start. Every frame read afterwards is opened on its own
/// with its sequence number, IV and tag checked. The source is the whole message: from its
/// start to the end that `seek(SeekFrom::End(0))` finds.
///
/// This is the seekable decrypting reader: [`DecryptingReader`](crate::DecryptingReader)
/// reads a message once from start to end (any `Read`, signed messages verified, bytes
/// after the message refused); this one needs `Read + Seek` and a framed message, and
/// reads in any order.
///
/// - **Positions** are plaintext offsets. [`SeekFrom::End`] is relative to the plaintext
///   length ([`plaintext_len`](Self::plaintext_len)). Seeking past the end is allowed, as
///   for files: reads there return `Ok(0)`. A seek before 0 is an `InvalidInput` error.
/// - **Memory**: one buffer of one frame (capacity the largest frame, allocated once),
///   opened in place; the frame that was opened last stays there, so reads inside it read
///   no more input. It is wiped when another frame replaces it, on an error, and on drop.
/// - **Errors**: an I/O error of the source (or a source that ends early) while reading
///   frame N is [`Error::FrameRead`] with N and the frame's offset; a frame that fails its
///   checks is the core's error naming the frame
///   ([`AuthFailure::FrameTag`](esdk_core::error::AuthFailure::FrameTag),
///   [`Malformed::FrameSequence`](esdk_core::error::Malformed::FrameSequence), ...). Errors
///   are not sticky: each frame stands on its own, so a failed read can be retried (after a
///   transient I/O error) and other frames still read; the plaintext read before an error
///   is as trustworthy as its own frames.
///   Through `Read`, errors are `io::Error`s that [`Error::from`] turns back into these.
///
/// What is verified, and what is not (frames never read, a signed message's signature):
/// [`esdk_core::random_access`]. Non-framed messages are refused; signed ones unless
/// [`RangeOptions::unverified_signed`].
///
/// ```
/// use std::io::{Cursor, Read, Seek, SeekFrom};
/// use esdk::{AlgorithmSuite, Config, EncryptOptions, RangeOptions, RangeReader, raw::RawAesKeyring};
/// let keyring = RawAesKeyring::new("ns", "key", &[7u8; 32])?;
/// let cfg = Config::new();
/// let opts = EncryptOptions::new()
///     .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey) // unsigned
///     .with_frame_length(4096);
/// let pt: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
/// let msg = esdk::encrypt(&cfg, &keyring, &opts, &[], &pt)?;
///
/// let mut r = RangeReader::new(&cfg, &keyring, &[], Cursor::new(msg), RangeOptions::default())?;
/// let mut tail = [0u8; 10];
/// r.seek(SeekFrom::End(-10))?;
/// r.read_exact(&mut tail)?; // reads the final frame only (verified when opening)
/// assert_eq!(&tail, &pt[pt.len() - 10..]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "SeekableDecryptingReader")]
pub struct RangeReader<R: Read + Seek, K: AeadKey = <DefaultProvider as CryptoProvider>::Aead> {
    src: R,
    ra: RandomAccess<K>,
    /// The plaintext position.
    pos: u64,
    /// The frame opened in `buf` (0: none).
    loaded: u32,
    /// One frame: its bytes as read, opened in place; `content` is its plaintext. Wiped on
    /// drop (its whole capacity).
    buf: Zeroizing<Vec<u8>>,
    content: Range<usize>,
}

impl<R: Read + Seek, K: AeadKey> std::fmt::Debug for RangeReader<R, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeReader")
            .field("map", self.ra.map())
            .field("pos", &self.pos)
            .field("loaded", &self.loaded)
            .finish()
    }
}

impl<R: Read + Seek> RangeReader<R> {
    /// Opens the framed message in `src` (the whole source) with the default provider:
    /// reads its header (`cmm` decrypts the data key; `reproduced_context` as in
    /// [`Decryptor::new`]) and verifies its final frame. Positioned at plaintext offset 0.
    ///
    /// # Errors
    /// [`Error::Io`] from reading the header (an incomplete header is
    /// [`esdk_core::Error::Truncated`]); everything a decrypt reports for the header (the
    /// keyring, the commitment, the policy); the core's random access errors
    /// ([`Decryptor::random_access`], [`Layout::verify_final`](esdk_core::random_access::Layout::verify_final)):
    /// non-framed or signed (without the opt-in) messages, a message whose length or final
    /// frame is wrong (truncated, extended); [`Error::FrameRead`] for the final frame.
    pub fn new<M: CryptoMaterialsManager + ?Sized>(
        cfg: &Config,
        cmm: &M,
        reproduced_context: &[(&str, &str)],
        src: R,
        opts: RangeOptions,
    ) -> Result<Self, Error> {
        Self::with_provider(cfg, &DEFAULT_PROVIDER, cmm, reproduced_context, src, opts)
    }
}

impl<R: Read + Seek, K: AeadKey> RangeReader<R, K> {
    /// As [`new`](RangeReader::new), with `provider` (whose key type is `K`).
    ///
    /// # Errors
    /// As [`new`](RangeReader::new).
    pub fn with_provider<P: CryptoProvider<Aead = K>, M: CryptoMaterialsManager + ?Sized>(
        cfg: &Config,
        provider: &P,
        cmm: &M,
        reproduced_context: &[(&str, &str)],
        mut src: R,
        opts: RangeOptions,
    ) -> Result<Self, Error> {
        let message_len = src.seek(SeekFrom::End(0))?;
        src.seek(SeekFrom::Start(0))?;
        let mut d = Decryptor::new(cfg, provider, reproduced_context);
        read_header(&mut d, cmm, &mut src)?;
        let mut tail = Vec::new();
        let ra_opts = if opts.unverified_signed && d.suite().and_then(|s| s.signature()).is_some() {
            let n = (SIGNED_TAIL_LEN as u64).min(message_len);
            src.seek(SeekFrom::Start(message_len - n))?;
            src.by_ref().take(n).read_to_end(&mut tail)?;
            RandomAccessOptions::new().unverified_signed(&tail)
        } else {
            RandomAccessOptions::new()
        };
        let layout = d.random_access(message_len, ra_opts)?;
        let map = *layout.map();
        let len = |r: Range<u64>| usize::try_from(r.end - r.start).unwrap_or(usize::MAX);
        // The largest frame: the first one (regular, or the only one) or the final one.
        let final_range = layout.final_frame();
        let first = map.frame_range(1).map_or(0, len);
        let mut buf = Zeroizing::new(Vec::with_capacity(first.max(len(final_range.clone()))));
        let seq = map.frame_count();
        fill(&mut src, seq, final_range, &mut buf)?;
        let ra = match layout.verify_final(&mut buf) {
            Ok(ra) => ra,
            Err(e) => {
                buf.zeroize();
                return Err(e.into());
            }
        };
        let content = map.final_slot().content_range();
        Ok(Self {
            src,
            ra,
            pos: 0,
            loaded: seq,
            buf,
            content,
        })
    }

    /// Length of the message's plaintext.
    pub fn plaintext_len(&self) -> u64 {
        self.ra.map().plaintext_len()
    }

    /// Where the frames are ([`esdk_core::random_access::FrameMap`]).
    pub fn map(&self) -> &esdk_core::random_access::FrameMap {
        self.ra.map()
    }

    /// The plaintext position (what `stream_position` returns, without a `&mut`).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The source.
    pub fn into_inner(self) -> R {
        self.src
    }

    /// Reads plaintext at the position into `out`, as [`Read::read`] with the ESDK error:
    /// `Ok(0)` at or past the end (or for an empty `out`), else up to the end of the frame
    /// that holds the position.
    ///
    /// # Errors
    /// As the type's docs: [`Error::FrameRead`] or the core's frame errors.
    pub fn read_plaintext(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        if out.is_empty() || self.pos >= self.plaintext_len() {
            return Ok(0);
        }
        let f = u64::from(self.ra.map().frame_len());
        // In range: the position is below the plaintext length, so the frame exists.
        let seq = (self.pos / f) as u32 + 1;
        if self.loaded != seq {
            self.load(seq)?;
        }
        let within = (self.pos - u64::from(seq - 1) * f) as usize;
        let have = &self.buf[self.content.start + within..self.content.end];
        let n = have.len().min(out.len());
        out[..n].copy_from_slice(&have[..n]);
        self.pos += n as u64;
        Ok(n)
    }

    /// Reads frame `seq` into the buffer and opens it there.
    fn load(&mut self, seq: u32) -> Result<(), Error> {
        self.loaded = 0;
        // Wiped where it stands (its length kept): `fill` resizes it to the next frame
        // without writing the zeros a second time.
        self.buf.as_mut_slice().zeroize();
        let r = self.ra.map().frame_range(seq)?;
        fill(&mut self.src, seq, r, &mut self.buf)?;
        match self.ra.open_frame_in_place(seq, &mut self.buf) {
            Ok(content) => {
                self.content = content;
                self.loaded = seq;
                Ok(())
            }
            Err(e) => {
                self.buf.zeroize();
                Err(e.into())
            }
        }
    }
}

impl<R: Read + Seek, K: AeadKey> Read for RangeReader<R, K> {
    /// Plaintext from the position, up to the end of the frame that holds it; `Ok(0)` at or
    /// past the end. Errors carry the ESDK error ([`Error::from`] gives it back).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_plaintext(buf).map_err(io::Error::from)
    }
}

impl<R: Read + Seek, K: AeadKey> Seek for RangeReader<R, K> {
    /// Moves the plaintext position; no I/O (the frame is read by the next read).
    /// [`SeekFrom::End`] is relative to the plaintext length. Past the end is allowed;
    /// before 0 (or past `u64::MAX`) is an `InvalidInput` error and the position stays.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.plaintext_len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let p = new.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{to:?} from plaintext position {} (of {}) is before its start",
                    self.pos,
                    self.plaintext_len()
                ),
            )
        })?;
        self.pos = p;
        Ok(p)
    }
}

/// Decrypts the plaintext bytes `range` of the framed message in `src` (the whole source,
/// from its start to its end, is the message), through a [`RangeReader`]: reads the header
/// (the keyring decrypts the data key as usual), the final frame, which proves the message
/// is neither truncated nor extended, and the frames that hold the range; memory is one
/// frame plus the range.
///
/// The range is as trustworthy as the header, the final frame and its own frames, all
/// verified; frames outside it are not read (see [`esdk_core::random_access`]). Non-framed
/// messages are refused, and signed ones unless `opts` opts into unverified output. On an
/// error, the plaintext decrypted so far is wiped.
///
/// # Errors
/// As [`RangeReader::new`] and its reads (errors name the frame: [`Error::FrameRead`],
/// [`AuthFailure::FrameTag`](esdk_core::error::AuthFailure::FrameTag), ...);
/// [`esdk_core::Error::RangeOutOfBounds`] for a reversed range or one past the plaintext.
pub fn decrypt_range<R: Read + Seek, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    src: &mut R,
    range: Range<u64>,
    opts: RangeOptions,
) -> Result<Vec<u8>, Error> {
    let mut r = RangeReader::new(cfg, cmm, reproduced_context, src, opts)?;
    // Checks the bounds; the reader then reads the same frames.
    r.map().frames_for(range.clone())?;
    let n = usize::try_from(range.end - range.start).map_err(|_| {
        esdk_core::Error::RangeOutOfBounds {
            start: range.start,
            end: range.end,
            plaintext_len: r.plaintext_len(),
        }
    })?;
    let mut out = Zeroizing::new(vec![0u8; n]);
    r.pos = range.start;
    let mut done = 0;
    while done < n {
        match r.read_plaintext(&mut out[done..])? {
            // Within the plaintext (checked above): a frame always gives bytes.
            0 => {
                return Err(esdk_core::Error::from(esdk_core::error::ApiMisuse::WrongState).into());
            }
            got => done += got,
        }
    }
    Ok(std::mem::take(&mut *out))
}

/// Runs `d` over the header at the start of `src`, read as the decryptor asks (bounded by
/// its header-size limit), until the header is authenticated.
fn read_header<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    d: &mut Decryptor<'_, P>,
    cmm: &M,
    src: &mut impl Read,
) -> Result<(), Error> {
    let mut input = Vec::new();
    let mut scratch = vec![0u8; 4096];
    loop {
        let p = match d.process_with(cmm, &input, &mut scratch) {
            Err(esdk_core::Error::BufferTooSmall { required }) => {
                scratch.resize(required, 0);
                continue;
            }
            r => r?,
        };
        match p.status {
            Status::Header => return Ok(()),
            Status::NeedInput { min } => {
                let more = (min - input.len()) as u64;
                src.by_ref().take(more).read_to_end(&mut input)?;
                if input.len() < min {
                    let offset = input.len();
                    return Err(esdk_core::Error::Truncated { offset }.into());
                }
            }
            _ => {
                return Err(esdk_core::Error::from(esdk_core::error::ApiMisuse::WrongState).into());
            }
        }
    }
}

/// Reads the message bytes `r` of frame `seq` from `src` into `buf` (resized to them);
/// failures are [`Error::FrameRead`].
fn fill<R: Read + Seek>(
    src: &mut R,
    seq: u32,
    r: Range<u64>,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    let at = |source| Error::FrameRead {
        sequence: seq,
        offset: r.start,
        source,
    };
    let n = usize::try_from(r.end - r.start).map_err(|_| {
        at(io::Error::new(
            io::ErrorKind::OutOfMemory,
            "the frame does not fit in memory",
        ))
    })?;
    // A smaller frame truncates a wiped (or new) buffer: nothing readable is left behind.
    buf.resize(n, 0);
    src.seek(SeekFrom::Start(r.start)).map_err(at)?;
    src.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            at(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the source ends inside the frame (it is shorter than when the reader was opened)",
            ))
        } else {
            at(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use esdk_core::error::PolicyViolation;
    use esdk_core::{AlgorithmSuite, EncryptOptions};

    use super::*;
    use crate::raw::RawAesKeyring;

    #[test]
    fn ranges_match_the_whole_decrypt() {
        let k = RawAesKeyring::new("ra", "k", &[5u8; 32]).unwrap();
        let pt: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        ] {
            let cfg = esdk_test_support::config_for(suite);
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(512);
            let msg = crate::encrypt(&cfg, &k, &opts, &[("a", "b")], &pt).unwrap();
            assert_eq!(crate::decrypt(&cfg, &k, &[], &msg).unwrap().plaintext, pt);
            let signed = suite.signature().is_some();
            let ropts = RangeOptions {
                unverified_signed: signed,
            };
            for r in [0..0, 0..1, 511..513, 0..5000, 4999..5000, 1000..4000] {
                let got =
                    decrypt_range(&cfg, &k, &[], &mut Cursor::new(&msg), r.clone(), ropts).unwrap();
                assert_eq!(got, &pt[r.start as usize..r.end as usize], "{suite} {r:?}");
            }
            if signed {
                let e = decrypt_range(
                    &cfg,
                    &k,
                    &[],
                    &mut Cursor::new(&msg),
                    0..1,
                    RangeOptions::default(),
                );
                assert!(matches!(
                    e,
                    Err(Error::Core(esdk_core::Error::Policy(
                        PolicyViolation::RandomAccessSigned
                    )))
                ));
            } else {
                // Truncated: refused even for a range at the start.
                let cut = &msg[..msg.len() - 1];
                assert!(decrypt_range(&cfg, &k, &[], &mut Cursor::new(cut), 0..1, ropts).is_err());
                let e = decrypt_range(&cfg, &k, &[], &mut Cursor::new(&msg), 10..5001, ropts);
                assert!(matches!(
                    e,
                    Err(Error::Core(esdk_core::Error::RangeOutOfBounds { .. }))
                ));
            }
        }
    }
}
