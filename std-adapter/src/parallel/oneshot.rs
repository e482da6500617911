//! The one-shot calls ([`encrypt`](crate::encrypt), [`decrypt`](crate::decrypt),
//! [`decrypt_detailed`](crate::decrypt_detailed)) on several threads.
//!
//! Encryption: the calling thread issues the frames' slots from the [`Encryptor`] (serial:
//! sequence numbers, the final frame, the declared length) a batch of about [`MAX_BATCH`]
//! bytes at a time, and workers, each with its own [`FrameCipher`], seal the batches as
//! they come straight into disjoint parts of the output (regular frames all have the same
//! length, so where each frame goes is arithmetic). The batches go back to the encryptor
//! in order: for the signed suites the calling thread hashes each batch as soon as it and
//! the batches before it are sealed, so SHA-384 runs on its own thread while AES-GCM runs
//! on the others; for the unsigned suites the calling thread seals too.
//!
//! Decryption: after the header, the calling thread locates every frame with
//! [`Decryptor::next_frame`] (cheap: no decryption), then workers open the frames from the
//! ciphertext into the output (`open_to`, not in place) while the calling thread hashes the
//! same ciphertext for the signature and checks the footer. Nothing is returned unless every
//! check passed; on any error the output is wiped and the error is the one the sequential
//! path reports: the first failing check in message order (a bad tag in frame 3 before one
//! in frame 7, any tag before a bad footer, before trailing bytes).
//!
//! Messages under [`PARALLEL_MIN`] bytes stay on the calling thread: starting a thread costs
//! tens of microseconds, about what one core takes to seal 256 KiB with AES-GCM.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::vec::IntoIter;

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
pub(crate) const PARALLEL_MIN: usize = 256 * 1024;

/// The most bytes of frames a worker takes at a time: large enough that taking a batch
/// (one lock) is nothing next to sealing it, even with 4 KiB frames; small enough that the
/// signature thread starts hashing soon and the threads finish together.
const MAX_BATCH: usize = 1 << 20;

/// The fewest bytes of frames in a batch (unless a frame is larger).
const MIN_BATCH: usize = 64 * 1024;

/// The threads for a one-shot call on `bytes` bytes (the plaintext to encrypt, the message
/// to decrypt): 1 under [`PARALLEL_MIN`], else [`threads`](super::threads).
pub(crate) fn threads_for(cfg: &esdk_core::Config, bytes: usize) -> usize {
    if bytes < PARALLEL_MIN {
        1
    } else {
        super::threads(cfg)
    }
}

/// No job failed (the value of the `failed` marks).
const NONE: usize = usize::MAX;

/// Bytes of frames per batch for `total` bytes on `threads` threads: about four batches
/// per thread, within [`MIN_BATCH`]..=[`MAX_BATCH`].
fn batch_bytes(total: usize, threads: usize) -> usize {
    (total / threads.saturating_mul(4).max(1)).clamp(MIN_BATCH, MAX_BATCH)
}

/// A batch of frames to seal: their slots, their plaintext, and their place in the output.
struct SealJob<'s> {
    index: usize,
    slots: Vec<FrameSlot>,
    plaintext: &'s [u8],
    frames: &'s mut [u8],
}

/// A sealed batch (or its first failure) on its way back to the encryptor.
type Sealed<'s> = (usize, Vec<FrameSlot>, Result<&'s [u8], Error>);

/// A batch of frames to open: their slots (which say where each frame is in the message)
/// and their place in the plaintext.
struct OpenJob<'s> {
    index: usize,
    slots: &'s [FrameSlot],
    plaintext: &'s mut [u8],
}

/// Something a worker takes from the queue, in order.
trait Job {
    fn index(&self) -> usize;
}

impl Job for OpenJob<'_> {
    fn index(&self) -> usize {
        self.index
    }
}

/// The next job, unless the queue is empty or an earlier job failed. Jobs are taken in
/// order, and a job once taken runs to its end (or its first failing frame), so every job
/// before a failed one completes and the first failure in message order is always found.
fn next_job<J: Job>(queue: &Mutex<IntoIter<J>>, failed: &AtomicUsize) -> Option<J> {
    // A poisoned lock means a worker panicked: the scope re-raises that panic.
    let job = queue.lock().ok()?.next()?;
    (job.index() < failed.load(Ordering::Acquire)).then_some(job)
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

/// Seals all of `plaintext` after the header into `out` on `threads` threads (the resolved
/// count, [`threads_for`]): the regular frames, the final frame and the footer; returns the
/// bytes written. Output identical to [`Encryptor::seal_body`], which it calls for one
/// thread or a single frame.
///
/// The calling thread issues the slots batch by batch and hands each batch to the workers
/// at once, so the sealing starts with the first batch rather than after the last slot.
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
    let per_job = (batch_bytes(plaintext.len(), threads) / f).max(1);
    let n_frames = regular + 1;
    let n_jobs = n_frames.div_ceil(per_job);
    let mut places = Vec::with_capacity(n_jobs);
    let mut pt = plaintext;
    for index in 0..n_jobs {
        let first = index * per_job;
        let count = per_job.min(n_frames - first);
        let (pt_len, len) = if first + count == n_frames {
            let r = count - 1;
            (r * f + last, r * frame_len + last + FINAL_FRAME_OVERHEAD)
        } else {
            (count * f, count * frame_len)
        };
        let (p, tail) = pt.split_at_checked(pt_len).ok_or(ApiMisuse::FrameSize)?;
        pt = tail;
        places.push((count, p, take_mut(&mut frames_out, len, required)?));
    }
    // The signed suites hash on the calling thread; the others seal there too.
    let signed = enc.suite().signature().is_some();
    let workers = if signed {
        (threads - 1).min(n_jobs)
    } else {
        (threads - 1).min(n_jobs - 1)
    };
    let mut ciphers = (0..workers)
        .map(|_| enc.frame_cipher())
        .collect::<Result<Vec<_>, _>>()?;
    let own = if signed {
        None
    } else {
        Some(enc.frame_cipher()?)
    };

    let failed = AtomicUsize::new(NONE);
    let (give, jobs) = mpsc::channel::<SealJob<'_>>();
    let jobs = Mutex::new(jobs);
    let mut absorber = Absorber::new(n_jobs);
    thread::scope(|s| {
        let (done, sealed) = mpsc::channel();
        for cipher in ciphers.drain(..) {
            let (jobs, failed, done) = (&jobs, &failed, done.clone());
            s.spawn(move || seal_worker(&cipher, jobs, failed, &done));
        }
        // Issue the slots, serially, a batch at a time.
        let mut issue_error = None;
        for (index, (count, plaintext, frames)) in places.into_iter().enumerate() {
            if failed.load(Ordering::Relaxed) != NONE {
                break;
            }
            let slots = (0..count)
                .map(|i| {
                    let is_final = index * per_job + i == regular;
                    enc.next_frame(if is_final { last } else { f }, is_final)
                })
                .collect::<Result<Vec<_>, _>>();
            match slots {
                Ok(slots) => {
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
                }
                Err(e) => {
                    issue_error = Some((index, e));
                    break;
                }
            }
        }
        drop(give);
        if let Some(cipher) = &own {
            // Seal alongside the workers, giving back what is ready in between.
            while let Some(job) = take_job(&jobs, &failed) {
                absorber.take(enc, seal_job(cipher, job, &failed))?;
                for m in sealed.try_iter() {
                    absorber.take(enc, m)?;
                }
            }
        }
        drop(done);
        // Ends when every worker is gone.
        for m in &sealed {
            if let Err(e) = absorber.take(enc, m) {
                failed.store(0, Ordering::Release);
                return Err(e);
            }
        }
        absorber.finish(issue_error)
    })?;
    Ok(body + enc.write_footer(footer_out)?)
}

/// The next batch to seal, unless none is left or an earlier one failed (see
/// [`next_job`]); blocks while the calling thread is still issuing.
fn take_job<'s>(
    jobs: &Mutex<mpsc::Receiver<SealJob<'s>>>,
    failed: &AtomicUsize,
) -> Option<SealJob<'s>> {
    // A poisoned lock means a worker panicked: the scope re-raises that panic.
    let job = jobs.lock().ok()?.recv().ok()?;
    (job.index < failed.load(Ordering::Acquire)).then_some(job)
}

/// Seals one batch; marks a failure for the others.
fn seal_job<'s, K: AeadKey>(
    cipher: &FrameCipher<K>,
    job: SealJob<'s>,
    failed: &AtomicUsize,
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
        failed.fetch_min(index, Ordering::AcqRel);
    }
    let frames: &'s [u8] = frames;
    (index, slots, r.map(|()| frames))
}

/// Seals batches until none is left or a batch failed; sends each result back.
fn seal_worker<'s, K: AeadKey>(
    cipher: &FrameCipher<K>,
    jobs: &Mutex<mpsc::Receiver<SealJob<'s>>>,
    failed: &AtomicUsize,
    done: &mpsc::Sender<Sealed<'s>>,
) {
    while let Some(job) = take_job(jobs, failed) {
        if done.send(seal_job(cipher, job, failed)).is_err() {
            return;
        }
    }
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
/// [`Decryptor::decrypt_all`], which it calls for one thread: nothing is released unless
/// every check passed; on error `out` is wiped.
///
/// # Errors
/// As [`Decryptor::decrypt_all`]: the first failed check in message order.
pub(crate) fn decrypt_all<'c, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    mut dec: Decryptor<'_, P>,
    cmm: &M,
    ciphertext: &'c [u8],
    out: &mut [u8],
    threads: usize,
) -> Result<Decrypted<'c>, Error>
where
    P::Aead: Send,
{
    if threads < 2 {
        return dec.decrypt_all(cmm, ciphertext, out);
    }
    let (header_len, header) = read_header(&mut dec, cmm, ciphertext, out)?;
    match open_body(&mut dec, ciphertext, header_len, out, threads) {
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

/// Locates the frames after the header (`at`: its length), opens them on the workers into
/// `out`, hashes them and checks the footer on the calling thread; returns the plaintext
/// length. The error is the sequential path's: open failures first (they come before any
/// later frame's header and before the footer), then the locating error, then the footer,
/// then trailing bytes.
fn open_body<P: CryptoProvider>(
    dec: &mut Decryptor<'_, P>,
    ciphertext: &[u8],
    at: usize,
    out: &mut [u8],
    threads: usize,
) -> Result<usize, Error>
where
    P::Aead: Send,
{
    // The ciphers first: a locating error poisons the decryptor, and the frames before it
    // must still be opened (their errors come first). No more than there can be frames (a
    // frame takes at least 33 bytes).
    let signed = dec.suite().is_some_and(|s| s.signature().is_some());
    let most = threads.min(ciphertext.len() / 33 + 1);
    let mut ciphers = (0..most)
        .map(|_| dec.frame_cipher())
        .collect::<Result<Vec<_>, _>>()?;
    let mut slots = Vec::new();
    let mut end = at;
    let located = loop {
        let input = ciphertext.get(end..).unwrap_or_default();
        match dec.next_frame(input) {
            Ok(Located::Frame(slot)) => {
                end += slot.unit_len();
                slots.push(slot);
                if slot.is_final() {
                    break Ok(());
                }
            }
            Ok(Located::NeedInput { .. }) => {
                break Err(Error::Truncated {
                    offset: ciphertext.len(),
                });
            }
            Err(e) => break Err(e),
        }
    };

    let total: usize = slots.iter().map(FrameSlot::content_len).sum();
    let mut rest = out
        .get_mut(..total)
        .ok_or(Error::BufferTooSmall { required: total })?;
    let batch = batch_bytes(end - at, threads);
    let mut jobs = Vec::new();
    let mut group = &slots[..];
    while !group.is_empty() {
        // At least one frame, then up to the batch size.
        let mut n = 0;
        let mut bytes = 0;
        for s in group {
            if n > 0 && bytes + s.frame_len() > batch {
                break;
            }
            n += 1;
            bytes += s.frame_len();
        }
        let (head, tail) = group.split_at(n);
        let len = head.iter().map(FrameSlot::content_len).sum();
        jobs.push(OpenJob {
            index: jobs.len(),
            slots: head,
            plaintext: take_mut(&mut rest, len, total)?,
        });
        group = tail;
    }
    let n_jobs = jobs.len();
    let workers = if signed {
        (threads - 1).min(n_jobs)
    } else {
        (threads - 1).min(n_jobs.saturating_sub(1))
    };
    ciphers.truncate(workers + usize::from(!signed));

    let queue = Mutex::new(jobs.into_iter());
    let failed = AtomicUsize::new(NONE);
    let first_error = Mutex::new(None);
    let closed = thread::scope(|s| {
        let mut ciphers = ciphers.into_iter();
        let own = if signed { None } else { ciphers.next() };
        for cipher in ciphers {
            let (queue, failed, first_error) = (&queue, &failed, &first_error);
            s.spawn(move || open_worker(&cipher, ciphertext, queue, failed, first_error));
        }
        // The message hash over the ciphertext, in order, while the workers open it (for
        // the unsigned suites only the order and the end are checked: then the calling
        // thread opens frames too).
        let closed = match located {
            Ok(()) => close(dec, ciphertext, &slots, &failed),
            Err(_) => Ok(()),
        };
        if let Some(cipher) = own {
            open_worker(&cipher, ciphertext, &queue, &failed, &first_error);
        }
        closed
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

/// Opens batches from `queue` until it is empty or a batch failed; keeps the failure of the
/// earliest batch.
fn open_worker<K: AeadKey>(
    cipher: &FrameCipher<K>,
    ciphertext: &[u8],
    queue: &Mutex<IntoIter<OpenJob<'_>>>,
    failed: &AtomicUsize,
    first_error: &Mutex<Option<(usize, Error)>>,
) {
    while let Some(job) = next_job(queue, failed) {
        let mut rest = job.plaintext;
        let r = job.slots.iter().try_for_each(|slot| {
            let frame = frame_of(ciphertext, slot)?;
            let pt = take_mut(&mut rest, slot.content_len(), slot.content_len())?;
            cipher.open_to(slot, frame, pt).map(drop)
        });
        if let Err(e) = r {
            failed.fetch_min(job.index, Ordering::AcqRel);
            if let Ok(mut first) = first_error.lock() {
                if first.is_none_or(|(i, _)| job.index < i) {
                    *first = Some((job.index, e));
                }
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

/// Absorbs every located frame in order and checks the footer (the signature of the signed
/// suites). Gives up early, with `Ok`, when a worker failed: its error is the one reported.
fn close<P: CryptoProvider>(
    dec: &mut Decryptor<'_, P>,
    ciphertext: &[u8],
    slots: &[FrameSlot],
    failed: &AtomicUsize,
) -> Result<(), Error> {
    for slot in slots {
        if failed.load(Ordering::Relaxed) != NONE {
            return Ok(());
        }
        dec.absorb_frame(slot, frame_of(ciphertext, slot)?)?;
    }
    let Some(last) = slots.last() else {
        return Err(ApiMisuse::WrongState.into());
    };
    let from = last.offset() + last.frame_len();
    let footer = ciphertext
        .get(from..from + last.footer_len())
        .ok_or(Error::Truncated {
            offset: ciphertext.len(),
        })?;
    dec.verify_footer(footer)
}

#[cfg(test)]
mod tests;
