//! The one-shot calls ([`encrypt`](crate::encrypt), [`decrypt`](crate::decrypt),
//! [`decrypt_detailed`](crate::decrypt_detailed)) on several threads.
//!
//! Encryption: the calling thread issues every frame's slot from the
//! [`Encryptor`] (serial: sequence numbers, the final frame, the declared length), then
//! workers, each with its own [`FrameCipher`], seal batches of about [`MAX_BATCH`] bytes of
//! frames straight into disjoint parts of the output (regular frames all have the same
//! length, so where each frame goes is arithmetic). The batches go back to the encryptor in
//! order: for the signed suites the calling thread hashes each batch as soon as it and the
//! batches before it are sealed, so SHA-384 runs on its own thread while AES-GCM runs on
//! the others; for the unsigned suites the calling thread seals too.
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
//! tens of microseconds, the time AES-GCM takes for a few hundred KiB.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::vec::IntoIter;

use esdk_core::error::ApiMisuse;
use esdk_core::provider::{AeadKey, CryptoProvider};
use esdk_core::{
    CryptoMaterialsManager, Decrypted, Decryptor, Encryptor, Error, FrameCipher, FrameSlot,
    Located, Status,
};
use zeroize::Zeroize;

/// Plaintext (encryption) or message (decryption) bytes below which the one-shot calls run
/// on the calling thread alone. Measured on a 2-core machine with aws-lc (0x0478, 1 MiB
/// and 4 KiB frames): two threads break even with one at about 192 KiB, and pay off from
/// about 256 KiB.
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
    slots: &'s [FrameSlot],
    plaintext: &'s [u8],
    frames: &'s mut [u8],
}

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

impl Job for SealJob<'_> {
    fn index(&self) -> usize {
        self.index
    }
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
    // The slots, serially: the engine numbers the frames and holds the declared length.
    let mut slots = Vec::with_capacity(regular + 1);
    for _ in 0..regular {
        slots.push(enc.next_frame(f, false)?);
    }
    slots.push(enc.next_frame(plaintext.len() - regular * f, true)?);
    let body: usize = slots.iter().map(FrameSlot::frame_len).sum();
    let required = body + enc.footer_len();
    let mut rest = &mut *out;
    let mut frames_out = take_mut(&mut rest, body, required)?;
    let footer_out = take_mut(&mut rest, required - body, required)?;

    let per_job = (batch_bytes(plaintext.len(), threads) / f).max(1);
    let mut jobs = Vec::with_capacity(slots.len().div_ceil(per_job));
    let mut pt = plaintext;
    for (index, group) in slots.chunks(per_job).enumerate() {
        let pt_len = group.iter().map(FrameSlot::content_len).sum();
        let (p, tail) = pt.split_at_checked(pt_len).ok_or(ApiMisuse::FrameSize)?;
        pt = tail;
        let len = group.iter().map(FrameSlot::frame_len).sum();
        jobs.push(SealJob {
            index,
            slots: group,
            plaintext: p,
            frames: take_mut(&mut frames_out, len, required)?,
        });
    }
    let n_jobs = jobs.len();
    // The signed suites hash on the calling thread; the others seal there too.
    let signed = enc.suite().signature().is_some();
    let workers = if signed {
        (threads - 1).min(n_jobs)
    } else {
        (threads - 1).min(n_jobs - 1)
    };
    let ciphers = (0..workers + usize::from(!signed))
        .map(|_| enc.frame_cipher())
        .collect::<Result<Vec<_>, _>>()?;

    let queue = Mutex::new(jobs.into_iter());
    let failed = AtomicUsize::new(NONE);
    thread::scope(|s| {
        let (done, sealed) = mpsc::channel();
        let mut ciphers = ciphers.into_iter();
        let own = if signed { None } else { ciphers.next() };
        for cipher in ciphers {
            let (queue, failed, done) = (&queue, &failed, done.clone());
            s.spawn(move || seal_worker(&cipher, queue, failed, &done));
        }
        if let Some(cipher) = own {
            seal_worker(&cipher, &queue, &failed, &done);
        }
        drop(done);
        let r = absorb_in_order(enc, &slots, per_job, n_jobs, &sealed);
        if r.is_err() {
            // Stop the workers: nothing they seal now is wanted.
            failed.store(0, Ordering::Release);
        }
        r
    })?;
    Ok(body + enc.write_footer(footer_out)?)
}

/// Seals batches from `queue` until it is empty or a batch failed; sends each result.
fn seal_worker<'s, K: AeadKey>(
    cipher: &FrameCipher<K>,
    queue: &Mutex<IntoIter<SealJob<'s>>>,
    failed: &AtomicUsize,
    done: &mpsc::Sender<(usize, Result<&'s [u8], Error>)>,
) {
    while let Some(job) = next_job(queue, failed) {
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
        if done.send((index, r.map(|()| frames))).is_err() {
            return;
        }
    }
}

/// Gives the sealed batches back to the encryptor in order, as they arrive (the signed
/// suites hash them here); the first error in batch order wins.
fn absorb_in_order<P: CryptoProvider>(
    enc: &mut Encryptor<'_, P>,
    slots: &[FrameSlot],
    per_job: usize,
    n_jobs: usize,
    sealed: &mpsc::Receiver<(usize, Result<&[u8], Error>)>,
) -> Result<(), Error> {
    let mut ready: Vec<Option<&[u8]>> = vec![None; n_jobs];
    let mut next = 0;
    let mut first_error: Option<(usize, Error)> = None;
    // Ends when every worker is gone (all senders dropped).
    for (index, r) in sealed {
        match r {
            Ok(frames) => {
                if let Some(at) = ready.get_mut(index) {
                    *at = Some(frames);
                }
            }
            Err(e) => {
                if first_error.is_none_or(|(i, _)| index < i) {
                    first_error = Some((index, e));
                }
            }
        }
        while let Some(mut frames) = ready.get_mut(next).and_then(Option::take) {
            let from = next * per_job;
            let group = slots
                .get(from..slots.len().min(from + per_job))
                .unwrap_or_default();
            for slot in group {
                let (frame, tail) = frames
                    .split_at_checked(slot.frame_len())
                    .ok_or(ApiMisuse::FrameOrder)?;
                frames = tail;
                enc.absorb_frame(slot, frame)?;
            }
            next += 1;
        }
    }
    match first_error {
        Some((_, e)) => Err(e),
        // Every batch sealed and absorbed (a missing one means a worker panicked, and the
        // scope raises that panic).
        None if next == n_jobs => Ok(()),
        None => Err(ApiMisuse::FrameOrder.into()),
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
        if let Some(cipher) = own {
            open_worker(&cipher, ciphertext, &queue, &failed, &first_error);
        }
        // The message hash over the ciphertext, in order, while the workers open it.
        match located {
            Ok(()) => close(dec, ciphertext, &slots, &failed),
            Err(_) => Ok(()),
        }
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
