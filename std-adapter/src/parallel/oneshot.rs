//! The one-shot calls ([`encrypt`](crate::encrypt), [`decrypt`](crate::decrypt),
//! [`decrypt_detailed`](crate::decrypt_detailed) and their `_into` forms) on several threads.
//!
//! Both directions cut the body into batches of consecutive frames, in message order, and
//! hand them out as the calling thread makes them: a batch goes out as soon as its frames
//! are issued (encryption: [`Encryptor::next_frame`]) or located (decryption:
//! [`Decryptor::next_frame`], which reads each frame header but decrypts nothing), so the
//! workers start on the first batch while the calling thread is still making the others.
//! Batches shrink towards the end of the message (about the bytes left over twice the
//! thread count, within [`MIN_BATCH`]..=[`MAX_BATCH`]), so the threads finish together.
//! Every thread, each with its own [`FrameCipher`], takes the next batch in order and seals
//! or opens it straight into its own part of the output.
//!
//! The frames go back to the engine in order ([`Encryptor::absorb_frame`],
//! [`Decryptor::absorb_frame`]). For the signed suites that is the message hash, the one
//! serial part: the calling thread runs it (on encryption over each sealed batch as soon as
//! it and the batches before it are done; on decryption over the ciphertext, which needs no
//! opening first) while the other threads do all the AES-GCM. For the unsigned suites it is
//! only an order check, and the calling thread, once every batch is out, takes batches like
//! any worker.
//!
//! Decryption releases nothing unless every check passed: on any error the output is wiped,
//! and the error is the one the sequential path reports: the first failing check in message
//! order (a bad tag in frame 3 before one in frame 7, any tag before a bad frame header
//! after it, before a bad footer, before trailing bytes).
//!
//! Messages under [`PARALLEL_MIN`] bytes stay on the calling thread: starting a thread costs
//! tens of microseconds, about what one core takes to seal 256 KiB with AES-GCM.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;

use esdk_core::body::{FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD};
use esdk_core::error::ApiMisuse;
use esdk_core::provider::{AeadKey, CryptoProvider};
use esdk_core::{
    CryptoMaterialsManager, Decrypted, Decryptor, Encryptor, Error, FrameCipher, FrameSlot,
    Located, Status,
};
use zeroize::Zeroize;

/// Plaintext (encryption) or message (decryption) bytes below which the one-shot calls run
/// on the calling thread alone, without even looking up the thread count. Starting and
/// joining a scoped worker costs tens of microseconds (measured here, on a loaded 2-core
/// machine: two threads lose to one by 35-45 µs on 64-256 KiB messages of 4 KiB frames),
/// about what one core takes to seal 256 KiB with aws-lc's AES-GCM: below that a second
/// thread cannot pay for itself, and the small messages (the 100-byte round trip) never pay
/// for a thread.
pub const PARALLEL_MIN: usize = 256 * 1024;

/// The most bytes of frames in a batch: large enough that handing a batch over (a channel
/// message, a lock) is nothing next to sealing it, even with 4 KiB frames; small enough that
/// the signature thread starts hashing soon.
const MAX_BATCH: usize = 1 << 20;

/// The fewest bytes of frames in a batch (unless a frame is larger): the last batches of a
/// message, about 15 µs of AES-GCM on one core.
const MIN_BATCH: usize = 128 * 1024;

/// The threads for a one-shot call on `bytes` bytes (the plaintext to encrypt, the message
/// to decrypt): 1 under [`PARALLEL_MIN`], else [`threads`](super::threads).
pub(crate) fn threads_for(cfg: &esdk_core::Config, bytes: usize) -> usize {
    if bytes < PARALLEL_MIN {
        1
    } else {
        super::threads(cfg)
    }
}

/// No batch failed (the value of [`Queue::failed`]).
const NONE: usize = usize::MAX;

/// How a message is cut into batches: [`Batching::DEFAULT`] ([`MIN_BATCH`],
/// [`MAX_BATCH`]); the tests take smaller ones, to have many batches in small messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    /// The fewest bytes of frames in a batch (unless one frame is larger).
    pub(crate) min: usize,
    /// The most bytes of frames in a batch (unless one frame is larger).
    pub(crate) max: usize,
    /// The threads.
    pub(crate) threads: usize,
}

impl Batching {
    /// The batches of the public calls on `threads` threads.
    pub(crate) const fn new(threads: usize) -> Self {
        Self {
            min: MIN_BATCH,
            max: MAX_BATCH,
            threads,
        }
    }

    /// The bytes of frames of the next batch when `left` bytes of frames remain: about
    /// `left / (2 * threads)`, within `min..=max`. Taking a fixed share of what is left
    /// (guided scheduling) gives large batches first and small ones at the end, so that no
    /// thread is left with a large batch when the others run out.
    fn bytes(&self, left: usize) -> usize {
        (left / self.threads.saturating_mul(2).max(1)).clamp(self.min, self.max.max(self.min))
    }
}

/// Splits `out` into its first `n` bytes and the rest (a `BufferTooSmall` with `required`
/// when it is shorter).
fn take_mut<'s>(out: &mut &'s mut [u8], n: usize, required: usize) -> Result<&'s mut [u8], Error> {
    let (head, tail) = std::mem::take(out)
        .split_at_mut_checked(n)
        .ok_or(Error::BufferTooSmall { required })?;
    *out = tail;
    Ok(head)
}

/// A batch of consecutive frames, numbered from 0 in message order.
trait Batch {
    fn index(&self) -> usize;
}

/// The batches of one call, handed out in order as the calling thread makes them; and the
/// first failed batch, after which nothing more is handed out.
struct Queue<J> {
    jobs: Mutex<mpsc::Receiver<J>>,
    /// The index of the first failed batch, [`NONE`] while none failed.
    failed: AtomicUsize,
}

impl<J: Batch> Queue<J> {
    /// A queue and the sender the calling thread gives the batches to.
    fn new() -> (mpsc::Sender<J>, Self) {
        let (give, jobs) = mpsc::channel();
        let queue = Self {
            jobs: Mutex::new(jobs),
            failed: AtomicUsize::new(NONE),
        };
        (give, queue)
    }

    /// The next batch, waiting while the calling thread is still making them; `None` once
    /// they are all taken, or when the next one comes after a failed one. A batch once taken
    /// runs to its end (or its first failing frame), so every batch before a failed one
    /// completes and the first failure in message order is always found.
    fn take(&self) -> Option<J> {
        // A poisoned lock means a worker panicked: the scope re-raises that panic.
        let job = self.jobs.lock().ok()?.recv().ok()?;
        (job.index() < self.failed.load(Ordering::Acquire)).then_some(job)
    }

    /// Marks batch `index` failed.
    fn fail(&self, index: usize) {
        self.failed.fetch_min(index, Ordering::AcqRel);
    }

    /// Whether some batch failed.
    fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed) != NONE
    }
}

/// A batch of frames to seal: their slots, their plaintext, and their place in the output.
struct SealJob<'s> {
    index: usize,
    slots: Vec<FrameSlot>,
    plaintext: &'s [u8],
    frames: &'s mut [u8],
}

impl Batch for SealJob<'_> {
    fn index(&self) -> usize {
        self.index
    }
}

/// A sealed batch (or its first failure) on its way back to the encryptor.
type Sealed<'s> = (usize, Vec<FrameSlot>, Result<&'s [u8], Error>);

/// Seals all of `plaintext` after the header into `out` on `threads` threads (the resolved
/// count, [`threads_for`]): the regular frames, the final frame and the footer; returns the
/// bytes written. Output identical to [`Encryptor::seal_body`], which it calls for one
/// thread or a single frame.
///
/// # Errors
/// As [`Encryptor::seal_body`]: the first failing frame in order, then the footer's.
pub(crate) fn seal_body<P: CryptoProvider>(
    enc: &mut Encryptor<'_, P>,
    plaintext: &[u8],
    out: &mut [u8],
    threads: usize,
) -> Result<usize, Error>
where
    P::Aead: Send,
{
    seal_body_in(enc, plaintext, out, &Batching::new(threads))
}

/// [`seal_body`] in the batches of `batching`.
pub(crate) fn seal_body_in<P: CryptoProvider>(
    enc: &mut Encryptor<'_, P>,
    plaintext: &[u8],
    out: &mut [u8],
    batching: &Batching,
) -> Result<usize, Error>
where
    P::Aead: Send,
{
    let threads = batching.threads;
    let f = (enc.frame_length() as usize).max(1);
    let regular = plaintext.len().saturating_sub(1) / f;
    if threads < 2 || regular == 0 {
        return enc.seal_body(plaintext, out);
    }
    let last = plaintext.len() - regular * f;
    // Regular frames all have one length, so each batch's place in the output is
    // arithmetic; the final frame ends the last batch. (`seal_to` checks every frame's
    // place against its slot.)
    let frame_len = f + REGULAR_FRAME_OVERHEAD;
    let body = regular * frame_len + last + FINAL_FRAME_OVERHEAD;
    let required = body + enc.footer_len();
    let mut rest = &mut *out;
    let mut frames_out = take_mut(&mut rest, body, required)?;
    let footer_out = take_mut(&mut rest, required - body, required)?;
    // The batches: (frames, plaintext, output).
    let n_frames = regular + 1;
    let mut batches = Vec::new();
    let mut pt = plaintext;
    let mut first = 0;
    while first < n_frames {
        let left = (n_frames - first) * frame_len;
        let count = (batching.bytes(left) / frame_len).clamp(1, n_frames - first);
        let (pt_len, len) = if first + count == n_frames {
            let r = count - 1;
            (r * f + last, r * frame_len + last + FINAL_FRAME_OVERHEAD)
        } else {
            (count * f, count * frame_len)
        };
        let (p, tail) = pt.split_at_checked(pt_len).ok_or(ApiMisuse::FrameSize)?;
        pt = tail;
        batches.push((count, p, take_mut(&mut frames_out, len, required)?));
        first += count;
    }
    let n_jobs = batches.len();
    // The signed suites hash on the calling thread; for the others it seals too.
    let signed = enc.suite().signature().is_some();
    let workers = (threads - 1).min(n_jobs - usize::from(!signed));
    let mut ciphers = (0..workers)
        .map(|_| enc.frame_cipher())
        .collect::<Result<Vec<_>, _>>()?;
    let own = if signed {
        None
    } else {
        Some(enc.frame_cipher()?)
    };

    let (give, queue) = Queue::new();
    let mut absorber = Absorber::new(n_jobs);
    thread::scope(|s| {
        let (done, sealed) = mpsc::channel();
        for cipher in ciphers.drain(..) {
            let (queue, done) = (&queue, done.clone());
            s.spawn(move || {
                while let Some(job) = queue.take() {
                    if done.send(seal_job(&cipher, job, queue)).is_err() {
                        return;
                    }
                }
            });
        }
        // Issue the slots, serially, a batch at a time, each batch out as soon as issued.
        let mut issue_error = None;
        let mut next = 0;
        for (index, (count, plaintext, frames)) in batches.into_iter().enumerate() {
            if queue.has_failed() {
                break;
            }
            let mut slots = Vec::with_capacity(count);
            let issued = (0..count).try_for_each(|_| {
                let is_final = next == regular;
                next += 1;
                slots.push(enc.next_frame(if is_final { last } else { f }, is_final)?);
                Ok::<_, Error>(())
            });
            if let Err(e) = issued {
                issue_error = Some((index, e));
                break;
            }
            let job = SealJob {
                index,
                slots,
                plaintext,
                frames,
            };
            // (The receiving end lives as long as this scope: sending cannot fail.)
            if give.send(job).is_err() {
                break;
            }
            for m in sealed.try_iter() {
                absorber.take(enc, m)?;
            }
        }
        drop(give);
        if let Some(cipher) = &own {
            // Seal alongside the workers, giving back what is ready in between.
            while let Some(job) = queue.take() {
                absorber.take(enc, seal_job(cipher, job, &queue))?;
                for m in sealed.try_iter() {
                    absorber.take(enc, m)?;
                }
            }
        }
        drop(done);
        // Ends when every worker is gone.
        for m in &sealed {
            if let Err(e) = absorber.take(enc, m) {
                queue.fail(0);
                return Err(e);
            }
        }
        absorber.finish(issue_error)
    })?;
    Ok(body + enc.write_footer(footer_out)?)
}

/// Seals one batch; marks a failure for the others.
fn seal_job<'s, K: AeadKey>(
    cipher: &FrameCipher<K>,
    job: SealJob<'s>,
    queue: &Queue<SealJob<'s>>,
) -> Sealed<'s> {
    let SealJob {
        index,
        slots,
        mut plaintext,
        frames,
    } = job;
    let mut rest = &mut *frames;
    let r = slots.iter().try_for_each(|slot| {
        let (p, tail) = plaintext
            .split_at_checked(slot.content_len())
            .ok_or(ApiMisuse::FrameSize)?;
        plaintext = tail;
        let frame = take_mut(&mut rest, slot.frame_len(), slot.frame_len())?;
        cipher.seal_to(slot, p, frame).map(drop)
    });
    if r.is_err() {
        queue.fail(index);
    }
    let frames: &'s [u8] = frames;
    (index, slots, r.map(|()| frames))
}

/// Gives the sealed batches back to the encryptor in order, as they arrive (the signed
/// suites hash them here); keeps the first failure in batch order.
struct Absorber<'s> {
    ready: Vec<Option<(Vec<FrameSlot>, &'s [u8])>>,
    next: usize,
    first_error: Option<(usize, Error)>,
}

impl<'s> Absorber<'s> {
    fn new(n_jobs: usize) -> Self {
        Self {
            ready: (0..n_jobs).map(|_| None).collect(),
            next: 0,
            first_error: None,
        }
    }

    /// Takes one batch's result and absorbs every batch now ready in order.
    fn take<P: CryptoProvider>(
        &mut self,
        enc: &mut Encryptor<'_, P>,
        (index, slots, r): Sealed<'s>,
    ) -> Result<(), Error> {
        match r {
            Ok(frames) => {
                if let Some(at) = self.ready.get_mut(index) {
                    *at = Some((slots, frames));
                }
            }
            Err(e) => {
                if self.first_error.is_none_or(|(i, _)| index < i) {
                    self.first_error = Some((index, e));
                }
            }
        }
        while let Some((slots, mut frames)) = self.ready.get_mut(self.next).and_then(Option::take) {
            for slot in &slots {
                let (frame, tail) = frames
                    .split_at_checked(slot.frame_len())
                    .ok_or(ApiMisuse::FrameOrder)?;
                frames = tail;
                enc.absorb_frame(slot, frame)?;
            }
            self.next += 1;
        }
        Ok(())
    }

    /// The outcome once every batch came back: the first failure in order (a sealing
    /// failure, or the slot that could not be issued), else every batch must have been
    /// absorbed.
    fn finish(self, issue_error: Option<(usize, Error)>) -> Result<(), Error> {
        let first = match (self.first_error, issue_error) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        match first {
            Some((_, e)) => Err(e),
            // A missing batch means a worker panicked, and the scope raises that panic.
            None if self.next == self.ready.len() => Ok(()),
            None => Err(ApiMisuse::FrameOrder.into()),
        }
    }
}

/// Decrypts the whole message `ciphertext` into `out` with `dec` (configured, e.g. with an
/// attempt observer) and a synchronous CMM, opening the frames on `threads` threads (the
/// resolved count, [`threads_for`]). Same contract and errors as
/// [`Decryptor::decrypt_all`], which it calls for one thread (or an `out` shorter than the
/// message, which the public calls never pass): nothing is released unless every check
/// passed; on error `out` is wiped.
///
/// # Errors
/// As [`Decryptor::decrypt_all`]: the first failed check in message order.
pub(crate) fn decrypt_all<'c, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    dec: Decryptor<'_, P>,
    cmm: &M,
    ciphertext: &'c [u8],
    out: &mut [u8],
    threads: usize,
) -> Result<Decrypted<'c>, Error>
where
    P::Aead: Send,
{
    decrypt_all_in(dec, cmm, ciphertext, out, &Batching::new(threads))
}

/// [`decrypt_all`] in the batches of `batching`.
pub(crate) fn decrypt_all_in<'c, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    mut dec: Decryptor<'_, P>,
    cmm: &M,
    ciphertext: &'c [u8],
    out: &mut [u8],
    batching: &Batching,
) -> Result<Decrypted<'c>, Error>
where
    P::Aead: Send,
{
    // The plaintext is shorter than the message, so with `out` at least that long the
    // batches' places can be taken from it as the frames are located.
    if batching.threads < 2 || out.len() < ciphertext.len() {
        return dec.decrypt_all(cmm, ciphertext, out);
    }
    let (header_len, header) = read_header(&mut dec, cmm, ciphertext, out)?;
    match open_body(&mut dec, ciphertext, header_len, out, batching) {
        Ok(plaintext_len) => Ok(Decrypted {
            plaintext_len,
            header,
            context_comparisons: dec.context_comparisons(),
        }),
        Err(e) => {
            out.zeroize();
            Err(e)
        }
    }
}

/// Runs the decryptor through the header (the CMM decrypts the data key); returns the
/// header's length and the header.
fn read_header<'c, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    dec: &mut Decryptor<'_, P>,
    cmm: &M,
    ciphertext: &'c [u8],
    out: &mut [u8],
) -> Result<(usize, esdk_core::header::Header<'c>), Error> {
    let truncated = Error::Truncated {
        offset: ciphertext.len(),
    };
    let header = match dec.process(ciphertext, out)?.status {
        Status::NeedDataKey => dec.header(ciphertext)?,
        Status::NeedInput { .. } => return Err(truncated),
        _ => return Err(ApiMisuse::WrongState.into()),
    };
    let p = dec.process_with(cmm, ciphertext, out)?;
    match p.status {
        Status::Header => Ok((p.consumed, header)),
        Status::NeedInput { .. } => Err(truncated),
        _ => Err(ApiMisuse::WrongState.into()),
    }
}

/// A batch of located frames to open: their slots (which say where each frame is in the
/// message) and their place in the plaintext.
struct OpenJob<'s> {
    index: usize,
    slots: Vec<FrameSlot>,
    plaintext: &'s mut [u8],
}

impl Batch for OpenJob<'_> {
    fn index(&self) -> usize {
        self.index
    }
}

/// The first failure of the opened batches: (batch, error).
type FirstError = Mutex<Option<(usize, Error)>>;

/// Locates the frames after the header (`at`: its length) and opens them on the threads
/// into `out`, hashes them and checks the footer on the calling thread; returns the
/// plaintext length. The error is the sequential path's: open failures first (they come
/// before any later frame's header and before the footer), then the locating error, then
/// the footer, then trailing bytes.
fn open_body<P: CryptoProvider>(
    dec: &mut Decryptor<'_, P>,
    ciphertext: &[u8],
    at: usize,
    out: &mut [u8],
    batching: &Batching,
) -> Result<usize, Error>
where
    P::Aead: Send,
{
    // The ciphers first: a locating error poisons the decryptor, and the frames before it
    // must still be opened (their errors come first). No more workers than there can be
    // batches.
    let signed = dec.suite().is_some_and(|s| s.signature().is_some());
    let batches = (ciphertext.len().saturating_sub(at))
        .div_ceil(batching.min.max(1))
        .max(1);
    let workers = (batching.threads - 1).min(batches - usize::from(!signed));
    let mut ciphers = (0..workers)
        .map(|_| dec.frame_cipher())
        .collect::<Result<Vec<_>, _>>()?;
    let own = if signed {
        None
    } else {
        Some(dec.frame_cipher()?)
    };
    let (give, queue) = Queue::new();
    let first_error = Mutex::new(None);
    let (end, total, located, closed) = thread::scope(|s| {
        for cipher in ciphers.drain(..) {
            let (queue, first_error) = (&queue, &first_error);
            s.spawn(move || open_batches(&cipher, ciphertext, queue, first_error));
        }
        let mut locator = Locator {
            dec,
            ciphertext,
            end: at,
            total: 0,
            index: 0,
            batching,
            signed,
            slots: Vec::new(),
        };
        let located = locator.run(out, &give, &queue);
        drop(give);
        // The message hash over the ciphertext, in order, while the workers open it; for
        // the unsigned suites the locator absorbed each frame as it went (an order check),
        // and the calling thread opens batches too.
        let closed = match located {
            Ok(()) => locator.close(&queue),
            Err(_) => Ok(()),
        };
        if let Some(cipher) = own {
            open_batches(&cipher, ciphertext, &queue, &first_error);
        }
        (locator.end, locator.total, located, closed)
    });
    let first_error = first_error.into_inner().ok().flatten();
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    located?;
    closed?;
    if end != ciphertext.len() {
        return Err(Error::TrailingBytes { offset: end });
    }
    Ok(total)
}

/// The calling thread's part of a parallel decryption: locating the frames batch by batch
/// and giving each batch out at once; then closing the message.
struct Locator<'d, 'p, 'c, P: CryptoProvider> {
    dec: &'d mut Decryptor<'p, P>,
    ciphertext: &'c [u8],
    /// Where the next unit starts (after the final one: the end of the message).
    end: usize,
    /// Plaintext bytes located.
    total: usize,
    /// The next batch's index.
    index: usize,
    batching: &'d Batching,
    signed: bool,
    /// Every located frame (signed suites: hashed once all are out).
    slots: Vec<FrameSlot>,
}

impl<'c, P: CryptoProvider> Locator<'_, '_, 'c, P> {
    /// Locates every frame, giving each batch to `give` as soon as it is complete; for the
    /// unsigned suites absorbs each frame as it is located and checks the (empty) footer.
    /// Stops early, with `Ok`, when a batch failed: its error is the one reported.
    fn run<'o>(
        &mut self,
        mut out: &'o mut [u8],
        give: &mpsc::Sender<OpenJob<'o>>,
        queue: &Queue<OpenJob<'o>>,
    ) -> Result<(), Error> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut content = 0;
        let mut target = self.batching.bytes(self.ciphertext.len() - self.end);
        let mut done = false;
        while !done {
            if queue.has_failed() {
                return Ok(());
            }
            let input = self.ciphertext.get(self.end..).unwrap_or_default();
            let located = match self.dec.next_frame(input) {
                Ok(Located::Frame(slot)) => Ok(slot),
                Ok(Located::NeedInput { .. }) => Err(Error::Truncated {
                    offset: self.ciphertext.len(),
                }),
                Err(e) => Err(e),
            };
            let slot = match located {
                Ok(slot) => slot,
                Err(e) => {
                    // The frames located before it are opened first: their errors come
                    // first.
                    if !batch.is_empty() {
                        let plaintext = take_mut(&mut out, content, self.total + content)?;
                        let job = OpenJob {
                            index: self.index,
                            slots: batch,
                            plaintext,
                        };
                        // (As below.)
                        let _ = give.send(job);
                    }
                    return Err(e);
                }
            };
            if !self.signed {
                self.dec
                    .absorb_frame(&slot, frame_of(self.ciphertext, &slot)?)?;
            }
            self.end += slot.unit_len();
            bytes += slot.frame_len();
            content += slot.content_len();
            batch.push(slot);
            done = slot.is_final();
            if bytes >= target || done {
                if self.signed {
                    self.slots.extend_from_slice(&batch);
                }
                // `out` holds at least the message (checked by `decrypt_all`).
                let plaintext = take_mut(&mut out, content, self.total + content)?;
                self.total += content;
                let job = OpenJob {
                    index: self.index,
                    slots: std::mem::take(&mut batch),
                    plaintext,
                };
                self.index += 1;
                // (The receiving end lives as long as the scope: sending cannot fail.)
                if give.send(job).is_err() {
                    return Ok(());
                }
                bytes = 0;
                content = 0;
                target = self.batching.bytes(self.ciphertext.len() - self.end);
            }
        }
        if !self.signed {
            self.dec.verify_footer(&[])?;
        }
        Ok(())
    }

    /// After every frame was located: for the signed suites absorbs (hashes) every frame in
    /// order and verifies the signature. Gives up early, with `Ok`, when a batch failed: its
    /// error is the one reported.
    fn close<J: Batch>(&mut self, queue: &Queue<J>) -> Result<(), Error> {
        if !self.signed {
            return Ok(());
        }
        for slot in &self.slots {
            if queue.has_failed() {
                return Ok(());
            }
            self.dec
                .absorb_frame(slot, frame_of(self.ciphertext, slot)?)?;
        }
        let Some(last) = self.slots.last() else {
            return Err(ApiMisuse::WrongState.into());
        };
        let from = last.offset() + last.frame_len();
        let footer =
            self.ciphertext
                .get(from..from + last.footer_len())
                .ok_or(Error::Truncated {
                    offset: self.ciphertext.len(),
                })?;
        self.dec.verify_footer(footer)
    }
}

/// Opens batches from `queue` until none is left or a batch failed; keeps the failure of
/// the earliest batch.
fn open_batches<K: AeadKey>(
    cipher: &FrameCipher<K>,
    ciphertext: &[u8],
    queue: &Queue<OpenJob<'_>>,
    first_error: &FirstError,
) {
    while let Some(job) = queue.take() {
        let mut rest = job.plaintext;
        let r = job.slots.iter().try_for_each(|slot| {
            let frame = frame_of(ciphertext, slot)?;
            let pt = take_mut(&mut rest, slot.content_len(), slot.content_len())?;
            cipher.open_to(slot, frame, pt).map(drop)
        });
        if let Err(e) = r {
            queue.fail(job.index);
            if let Ok(mut first) = first_error.lock()
                && first.is_none_or(|(i, _)| job.index < i)
            {
                *first = Some((job.index, e));
            }
        }
    }
}

/// The bytes of `slot`'s frame in the message.
fn frame_of<'c>(ciphertext: &'c [u8], slot: &FrameSlot) -> Result<&'c [u8], Error> {
    ciphertext
        .get(slot.offset()..slot.offset() + slot.frame_len())
        .ok_or(Error::Truncated {
            offset: ciphertext.len(),
        })
}

#[cfg(test)]
mod tests;
