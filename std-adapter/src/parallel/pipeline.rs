//! The parallel streaming pipeline of one message, built only on the core's frame API
//! ([`Encryptor::next_frame`] / [`Decryptor::next_frame`], [`FrameCipher`], `absorb_frame`,
//! the footer calls): the core stays the only place the format is read or written.
//!
//! Four roles, in a [`std::thread::scope`]:
//!
//! - the **calling thread** reads the input into batch buffers (or, for a regular file on
//!   encryption, only plans which bytes each batch covers), and writes the finished batches
//!   in message order;
//! - the **engine** thread owns the [`Encryptor`] / [`Decryptor`]: it issues (encrypt) or
//!   locates (decrypt) the frames of each batch in order, hashes them in order for the
//!   signed suites (`absorb_frame`: on decryption the ciphertext, before it is opened in
//!   place), closes the message (footer), and hands finished batches back in order;
//! - **workers**, each with its own [`FrameCipher`], seal or open whole batches (about
//!   [`BATCH`] bytes, so small frames do not pay per-frame synchronisation); on encryption of
//!   a regular file they also read their batch's plaintext with positional reads, so the
//!   kernel's copy runs in parallel too.
//!
//! Every channel is unbounded; memory is bounded by the batch buffers, which the calling
//! thread owns and allocates up to a fixed count (threads + 3): it reads only into a free
//! buffer, and buffers come back when their batch was written. No thread ever blocks on a
//! send, so a failure anywhere (a worker's frame, the engine's check, the reader, the
//! writer) ends the pipeline without deadlock: the calling thread stops the engine, the
//! engine's end closes the workers' queue.
//!
//! Errors keep message order: an error is recorded at its place in the sequence of
//! batches (a frame's tag inside its batch, the engine's checks after the frames it located,
//! the signature after the final frame), and the calling thread reports the first one it
//! reaches, after writing what the sequential path would have written before it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::sync::{Mutex, mpsc};

use esdk_core::error::{Error, PolicyViolation};
use esdk_core::{CryptoProvider, Decryptor, Encryptor, FrameCipher, FrameSlot, Located};
use zeroize::Zeroize;

use crate::stream::{io_error, write_zero};

/// Target plaintext bytes of one batch: 1 MiB, or one frame when frames are longer.
pub(crate) const BATCH: usize = 1 << 20;

/// Bytes a regular frame adds to its content (header and tag).
const REGULAR_OVERHEAD: usize = esdk_core::body::REGULAR_FRAME_OVERHEAD;

/// Batch buffers in use at once besides one per worker: one being read, one being written,
/// one held back (encryption of a stream: the last full batch waits to learn whether it is
/// the last).
const SPARE_BATCHES: usize = 3;

/// Frames per batch for frames of `frame_len` content bytes.
pub(crate) fn frames_per_batch(frame_len: usize) -> usize {
    (BATCH / frame_len.max(1)).max(1)
}

/// An error when a worker thread panicked (the scope then re-raises the panic).
fn worker_panicked() -> io::Error {
    io::Error::other("a worker thread of the parallel pipeline panicked")
}

/// Reads into `buf` until it is full or the reader ends; returns the bytes read.
/// `Interrupted` is retried.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k.min(buf.len() - n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes all of `slices` with vectored writes (no staging copy); `Interrupted` is retried,
/// a writer accepting nothing is `WriteZero`.
fn write_all_vectored(w: &mut impl Write, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => return Err(write_zero("the output")),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf`; `Interrupted` is retried, a writer accepting nothing is
/// `WriteZero`.
pub(crate) fn write_all(w: &mut impl Write, buf: &[u8]) -> io::Result<()> {
    let mut pos = 0;
    while pos < buf.len() {
        match w.write(&buf[pos..]) {
            Ok(0) => return Err(write_zero("the output")),
            Ok(n) => pos += n.min(buf.len() - pos),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The shared job queue of the workers.
struct Queue<T>(Mutex<mpsc::Receiver<T>>);

impl<T> Queue<T> {
    /// The next job, or `None` once the engine is gone.
    fn next(&self) -> Option<T> {
        let rx = self.0.lock().ok()?;
        rx.recv().ok()
    }
}

/// Tells the engine when its worker thread unwinds, so nobody waits for the batch it held.
struct PanicAlarm<T: From<Panicked>>(mpsc::Sender<T>);

/// What a [`PanicAlarm`] sends.
struct Panicked;

impl<T: From<Panicked>> Drop for PanicAlarm<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(T::from(Panicked));
        }
    }
}

/// A worker: takes batches from `queue`, works on each, sends it back to the engine as
/// `done(batch)`, until the engine is gone.
fn work_loop<B, M: From<Panicked>>(
    queue: &Queue<B>,
    back: &mpsc::Sender<M>,
    work: impl Fn(&mut B),
    done: fn(B) -> M,
) {
    let _alarm = PanicAlarm(back.clone());
    while let Some(mut b) = queue.next() {
        work(&mut b);
        if back.send(done(b)).is_err() {
            return;
        }
    }
}

/// Where a parallel encryption reads its plaintext.
pub(crate) enum Source<'f, R> {
    /// Read in order by the calling thread.
    Reader(R),
    /// `len` bytes of a regular file from byte `at`, read by the workers with positional
    /// reads.
    #[cfg_attr(not(unix), allow(dead_code))]
    File { file: &'f File, at: u64, len: u64 },
    /// Plaintext in memory (such as a memory-mapped file): the workers seal straight from
    /// it, with no copy.
    Bytes(&'f [u8]),
}

/// Where the workers of an encryption find a batch's plaintext.
#[derive(Clone, Copy)]
enum Input<'f> {
    /// In the batch's own buffer (read by the calling thread).
    Buffer,
    /// In a file, at the batch's offset: read into the batch's buffer first.
    File(&'f File),
    /// In memory, at the batch's offset.
    Bytes(&'f [u8]),
}

/// One batch of an encryption: plaintext in, sealed frames out.
struct EncBatch {
    idx: u64,
    /// The plaintext: `plain[..plain_len]`, frame after frame.
    plain: Vec<u8>,
    plain_len: usize,
    /// The batch ends the message (its last frame is the final frame).
    last: bool,
    /// A file or in-memory batch: its `plain_len` bytes are at this offset of the input.
    at: Option<u64>,
    slots: Vec<FrameSlot>,
    /// The sealed frames (and the footer after the final frame): `out[..out_len]`.
    out: Vec<u8>,
    out_len: usize,
    err: Option<io::Error>,
}

impl Drop for EncBatch {
    fn drop(&mut self) {
        self.plain.zeroize();
    }
}

enum EncMsg {
    /// From the calling thread: a batch to issue frames for.
    Issue(EncBatch),
    /// From a worker: a sealed batch (or its error in `err`).
    Sealed(EncBatch),
    /// From the calling thread: stop now.
    Stop,
    Panicked,
}

impl From<Panicked> for EncMsg {
    fn from(_: Panicked) -> Self {
        EncMsg::Panicked
    }
}

enum Out<B> {
    /// The next batch in message order.
    Batch(B),
    /// The pipeline failed here: nothing more comes.
    Failed(io::Error),
}

/// Encrypts the body of the message whose header `enc` wrote (and the caller already wrote
/// to `writer`): plaintext from `source`, frames sealed on `threads` workers; returns the
/// body length written.
pub(crate) fn encrypt_body<'e, P, R, W>(
    enc: &mut Encryptor<'e, P>,
    threads: usize,
    source: Source<'_, R>,
    writer: &mut W,
    progress: &mut dyn FnMut(u64),
) -> io::Result<u64>
where
    P: CryptoProvider + Sync,
    P::Aead: Send,
    R: Read,
    W: Write,
    Encryptor<'e, P>: Send,
{
    let f = enc.frame_length() as usize;
    let k = frames_per_batch(f);
    let plain_cap = k * f;
    let out_cap = k * (f + REGULAR_OVERHEAD) + 8 + enc.footer_len();
    let threads = threads.max(1);
    let ciphers = (0..threads)
        .map(|_| enc.frame_cipher())
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error)?;
    let input = match &source {
        Source::File { file, .. } => Input::File(file),
        Source::Bytes(bytes) => Input::Bytes(bytes),
        Source::Reader(_) => Input::Buffer,
    };
    let max_batches = threads + SPARE_BATCHES;
    let (jobs, jobs_rx) = mpsc::channel::<EncBatch>();
    let queue = Queue(Mutex::new(jobs_rx));
    let queue = &queue;
    std::thread::scope(|s| {
        let (to_engine, engine_rx) = mpsc::channel::<EncMsg>();
        let (to_caller, caller_rx) = mpsc::channel::<Out<EncBatch>>();
        for cipher in ciphers {
            let back = to_engine.clone();
            let seal = move |b: &mut EncBatch| {
                if b.err.is_none()
                    && let Err(e) = seal_batch(&cipher, f, input, b)
                {
                    b.err = Some(e);
                }
            };
            s.spawn(move || work_loop(queue, &back, seal, EncMsg::Sealed));
        }
        s.spawn(move || enc_engine(enc, f, engine_rx, jobs, to_caller));
        let _stop = StopEngine(&to_engine, || EncMsg::Stop);
        let mut c = EncCaller {
            writer,
            progress,
            to_engine: &to_engine,
            free: Vec::new(),
            in_flight: 0,
            idx: 0,
            written: 0,
        };
        enc_caller(
            source,
            &mut c,
            &caller_rx,
            (plain_cap, out_cap, max_batches),
        )
    })
}

/// Seals the frames of `b` (reading its plaintext from the file first for a file batch).
fn seal_batch<K: esdk_core::provider::AeadKey>(
    cipher: &FrameCipher<K>,
    f: usize,
    input: Input<'_>,
    b: &mut EncBatch,
) -> io::Result<()> {
    let at = b.at.unwrap_or(0);
    let plain: &[u8] = match input {
        Input::Buffer => &b.plain[..b.plain_len],
        Input::File(file) => {
            read_exact_at(file, &mut b.plain[..b.plain_len], at)?;
            &b.plain[..b.plain_len]
        }
        Input::Bytes(bytes) => {
            // `at` and `plain_len` were planned within the input's length.
            let outside = || {
                io::Error::other(format!(
                    "batch of {} bytes at {at} planned outside the {}-byte input",
                    b.plain_len,
                    bytes.len()
                ))
            };
            let at = usize::try_from(at).map_err(|_| outside())?;
            bytes.get(at..at + b.plain_len).ok_or_else(outside)?
        }
    };
    let mut o = 0;
    for (i, slot) in b.slots.iter().enumerate() {
        let pt = &plain[i * f..i * f + slot.content_len()];
        o += cipher
            .seal_to(slot, pt, &mut b.out[o..])
            .map_err(io_error)?;
    }
    b.out_len = o;
    Ok(())
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, at).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the input file became shorter while it was encrypted",
            )
        } else {
            e
        }
    })
}

#[cfg(not(unix))]
fn read_exact_at(_file: &File, _buf: &mut [u8], _at: u64) -> io::Result<()> {
    Err(io::Error::other("positional reads need a unix platform"))
}

/// The engine of an encryption: issues the frames of each batch in order, collects the
/// sealed batches, absorbs them in order (the signature hash), writes the footer after
/// the final frame, and passes the batches on in order.
fn enc_engine<P: CryptoProvider>(
    enc: &mut Encryptor<'_, P>,
    f: usize,
    rx: mpsc::Receiver<EncMsg>,
    jobs: mpsc::Sender<EncBatch>,
    to_caller: mpsc::Sender<Out<EncBatch>>,
) {
    let mut next = 0u64;
    let mut ready: BTreeMap<u64, EncBatch> = BTreeMap::new();
    for msg in rx {
        match msg {
            EncMsg::Issue(mut b) => {
                if let Err(e) = issue(enc, f, &mut b) {
                    b.err = Some(io_error(e));
                }
                if jobs.send(b).is_err() {
                    return;
                }
            }
            EncMsg::Sealed(b) => {
                ready.insert(b.idx, b);
                while let Some(mut b) = ready.remove(&next) {
                    next += 1;
                    if let Err(e) = finish_batch(enc, &mut b) {
                        let _ = to_caller.send(Out::Failed(e));
                        return;
                    }
                    let last = b.last;
                    if to_caller.send(Out::Batch(b)).is_err() || last {
                        return;
                    }
                }
            }
            EncMsg::Panicked => {
                let _ = to_caller.send(Out::Failed(worker_panicked()));
                return;
            }
            EncMsg::Stop => return,
        }
    }
}

/// Issues the slots of `b`'s frames.
fn issue<P: CryptoProvider>(
    enc: &mut Encryptor<'_, P>,
    f: usize,
    b: &mut EncBatch,
) -> Result<(), Error> {
    b.slots.clear();
    let frames = if b.last {
        b.plain_len.div_ceil(f).max(1)
    } else {
        b.plain_len / f
    };
    for i in 0..frames {
        let last = b.last && i + 1 == frames;
        let len = if last { b.plain_len - i * f } else { f };
        b.slots.push(enc.next_frame(len, last)?);
    }
    Ok(())
}

/// In order: the sealed frames of `b` go to the engine; after the final one, the footer.
fn finish_batch<P: CryptoProvider>(enc: &mut Encryptor<'_, P>, b: &mut EncBatch) -> io::Result<()> {
    if let Some(e) = b.err.take() {
        return Err(e);
    }
    let mut o = 0;
    for slot in &b.slots {
        let n = slot.frame_len();
        enc.absorb_frame(slot, &b.out[o..o + n]).map_err(io_error)?;
        o += n;
    }
    if b.last {
        let n = enc.write_footer(&mut b.out[o..]).map_err(io_error)?;
        b.out_len = o + n;
    }
    Ok(())
}

/// The calling thread of an encryption: reads (or plans) batches, writes sealed ones.
struct EncCaller<'c, W: Write> {
    writer: &'c mut W,
    progress: &'c mut dyn FnMut(u64),
    to_engine: &'c mpsc::Sender<EncMsg>,
    free: Vec<EncBatch>,
    in_flight: usize,
    idx: u64,
    written: u64,
}

impl<W: Write> EncCaller<'_, W> {
    /// Hands `b` to the engine as the next batch.
    fn send(&mut self, mut b: EncBatch, last: bool) -> io::Result<()> {
        b.idx = self.idx;
        b.last = last;
        self.idx += 1;
        self.in_flight += 1;
        self.to_engine
            .send(EncMsg::Issue(b))
            .map_err(|_| pipeline_gone())
    }

    /// Writes the next sealed batch; `Ok(true)` after the last one.
    fn handle(&mut self, m: Out<EncBatch>) -> io::Result<bool> {
        match m {
            Out::Batch(b) => {
                write_all(self.writer, &b.out[..b.out_len])?;
                self.written += b.out_len as u64;
                (self.progress)(b.plain_len as u64);
                self.in_flight -= 1;
                let last = b.last;
                self.free.push(b);
                Ok(last)
            }
            Out::Failed(e) => Err(e),
        }
    }
}

fn pipeline_gone() -> io::Error {
    io::Error::other("the parallel pipeline stopped unexpectedly")
}

/// Runs the calling thread's part of an encryption.
fn enc_caller<R: Read, W: Write>(
    source: Source<'_, R>,
    c: &mut EncCaller<'_, W>,
    rx: &mpsc::Receiver<Out<EncBatch>>,
    (plain_cap, out_cap, max_batches): (usize, usize, usize),
) -> io::Result<u64> {
    let mut allocated = 0usize;
    let mut input_done = false;
    // Stream input: the last full batch, held until the next read tells whether it is the
    // last one (the final frame may be full).
    let mut held: Option<EncBatch> = None;
    // Files and bytes are planned, not read, here: the workers take each batch's range.
    let (mut reader, file_plan, plain_cap_alloc) = match source {
        Source::Reader(r) => (Some(r), None, plain_cap),
        Source::File { at, len, .. } => (None, Some((at, len)), plain_cap),
        Source::Bytes(bytes) => (None, Some((0, bytes.len() as u64)), 0),
    };
    let mut planned = 0u64;
    loop {
        // Write what is ready first: buffers come back sooner.
        while let Ok(m) = rx.try_recv() {
            if c.handle(m)? {
                return Ok(c.written);
            }
        }
        let room = !c.free.is_empty() || allocated < max_batches;
        if !input_done && room {
            let mut b = c.free.pop().unwrap_or_else(|| {
                allocated += 1;
                EncBatch {
                    idx: 0,
                    plain: vec![0u8; plain_cap_alloc],
                    plain_len: 0,
                    last: false,
                    at: None,
                    slots: Vec::new(),
                    out: vec![0u8; out_cap],
                    out_len: 0,
                    err: None,
                }
            });
            b.err = None;
            b.at = None;
            if let Some((start, len)) = file_plan {
                let take = (plain_cap as u64).min(len - planned);
                b.at = Some(start + planned);
                b.plain_len = take as usize;
                planned += take;
                input_done = planned == len;
                c.send(b, input_done)?;
                continue;
            }
            let Some(r) = reader.as_mut() else {
                return Err(pipeline_gone());
            };
            let n = fill(r, &mut b.plain)?;
            b.plain_len = n;
            if n == plain_cap {
                if let Some(h) = held.take() {
                    c.send(h, false)?;
                }
                held = Some(b);
            } else {
                // The end of the input: a short (or empty) batch is the last one, unless it
                // is empty and a full batch waits.
                input_done = true;
                match held.take() {
                    Some(h) if n == 0 => {
                        c.free.push(b);
                        c.send(h, true)?;
                    }
                    Some(h) => {
                        c.send(h, false)?;
                        c.send(b, true)?;
                    }
                    None => c.send(b, true)?,
                }
            }
            continue;
        }
        match rx.recv() {
            Ok(m) => {
                if c.handle(m)? {
                    return Ok(c.written);
                }
            }
            Err(_) => return Err(pipeline_gone()),
        }
    }
}

/// Sends the stop message to the engine when dropped (also when the calling thread
/// unwinds), so the scope never waits for an engine that waits for work.
struct StopEngine<'s, T>(&'s mpsc::Sender<T>, fn() -> T);

impl<T> Drop for StopEngine<'_, T> {
    fn drop(&mut self) {
        let _ = self.0.send((self.1)());
    }
}

/// Release rules of a decryption (as the sequential streams').
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release {
    /// Release a signed message's regular frames before its signature verified.
    pub(crate) unverified: bool,
    /// Otherwise hold at most this much plaintext of a signed message.
    pub(crate) limit: usize,
}

/// One batch of a decryption: received bytes, located frames opened in place.
struct DecBatch {
    idx: u64,
    buf: Vec<u8>,
    len: usize,
    /// The input ended after these bytes.
    eof: bool,
    /// A batch the engine made of one frame that straddled two read batches (not one of
    /// the calling thread's buffers).
    extra: bool,
    /// The located units: where each starts in `buf`, and its slot.
    units: Vec<(usize, FrameSlot)>,
    /// How many of `units` were opened (all, unless `err` names the one that failed).
    opened: usize,
    /// The first error after the opened frames, in message order.
    err: Option<io::Error>,
    /// The end of the message is confirmed here: verified, nothing after it.
    confirmed: bool,
}

impl Drop for DecBatch {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl DecBatch {
    fn new(cap: usize, extra: bool) -> Self {
        Self {
            idx: 0,
            buf: vec![0u8; cap],
            len: 0,
            eof: false,
            extra,
            units: Vec::new(),
            opened: 0,
            err: None,
            confirmed: false,
        }
    }

    /// The plaintext of unit `j` (opened).
    fn content(&self, j: usize) -> &[u8] {
        let (at, slot) = &self.units[j];
        let r = slot.content_range();
        &self.buf[at + r.start..at + r.end]
    }
}

enum DecMsg {
    /// From the calling thread: received bytes, in order.
    Raw(DecBatch),
    /// From a worker: an opened batch.
    Opened(DecBatch),
    Stop,
    Panicked,
}

impl From<Panicked> for DecMsg {
    fn from(_: Panicked) -> Self {
        DecMsg::Panicked
    }
}

/// Decrypts the body of a framed message whose header `dec` processed: `head` holds the
/// bytes already read after the header, then `reader` the rest; the plaintext goes to
/// `writer` under the release rules. Frames of `frame_len` content bytes. Returns the
/// plaintext length written.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decrypt_body<'e, P, R, W>(
    dec: &mut Decryptor<'e, P>,
    frame_len: usize,
    threads: usize,
    head: &[u8],
    reader: &mut R,
    writer: &mut W,
    release: Release,
    progress: &mut dyn FnMut(u64),
) -> io::Result<u64>
where
    P: CryptoProvider + Sync,
    P::Aead: Send,
    R: Read,
    W: Write,
    Decryptor<'e, P>: Send,
{
    let signed = dec.suite().is_some_and(|s| s.signature().is_some());
    let holding = signed && !release.unverified;
    let unit = frame_len + REGULAR_OVERHEAD;
    let want = frames_per_batch(frame_len) * unit;
    let threads = threads.max(1);
    let ciphers = (0..threads)
        .map(|_| dec.frame_cipher())
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error)?;
    let max_batches = threads + SPARE_BATCHES;
    let (jobs, jobs_rx) = mpsc::channel::<DecBatch>();
    let queue = Queue(Mutex::new(jobs_rx));
    let queue = &queue;
    std::thread::scope(|s| {
        let (to_engine, engine_rx) = mpsc::channel::<DecMsg>();
        let (to_caller, caller_rx) = mpsc::channel::<Out<DecBatch>>();
        for cipher in ciphers {
            let back = to_engine.clone();
            let open = move |b: &mut DecBatch| {
                for j in 0..b.units.len() {
                    let (at, slot) = b.units[j];
                    let frame = &mut b.buf[at..at + slot.frame_len()];
                    if let Err(e) = cipher.open_in_place(&slot, frame) {
                        // Earlier in message order than anything the engine recorded.
                        b.err = Some(io_error(e));
                        break;
                    }
                    b.opened = j + 1;
                }
            };
            s.spawn(move || work_loop(queue, &back, open, DecMsg::Opened));
        }
        s.spawn(move || Locator::new(dec).run(engine_rx, jobs, to_caller));
        let _stop = StopEngine(&to_engine, || DecMsg::Stop);
        dec_caller(
            head,
            reader,
            writer,
            progress,
            &to_engine,
            &caller_rx,
            DecPlan {
                unit,
                want,
                max_batches,
                holding,
                limit: release.limit,
            },
        )
    })
}

/// The engine of a decryption: locates the frames of the received bytes in order (and
/// hashes them, for the signed suites, before they are opened in place), verifies the
/// footer, checks the end, and passes the opened batches on in order.
struct Locator<'d, 'a, P: CryptoProvider> {
    dec: &'d mut Decryptor<'a, P>,
    /// A partial unit carried over from the previous batch.
    carry: Vec<u8>,
    /// Input length the decryptor asked for to locate the carried unit.
    need: usize,
    final_done: bool,
    failed: bool,
    /// Sequence numbers of the batches passed on (the engine's order).
    next_out: u64,
}

impl<'d, 'a, P: CryptoProvider> Locator<'d, 'a, P> {
    fn new(dec: &'d mut Decryptor<'a, P>) -> Self {
        Self {
            dec,
            carry: Vec::new(),
            need: 0,
            final_done: false,
            failed: false,
            next_out: 0,
        }
    }

    fn run(
        mut self,
        rx: mpsc::Receiver<DecMsg>,
        jobs: mpsc::Sender<DecBatch>,
        to_caller: mpsc::Sender<Out<DecBatch>>,
    ) {
        let mut next = 0u64;
        let mut ready: BTreeMap<u64, DecBatch> = BTreeMap::new();
        let pass = |b: DecBatch, ready: &mut BTreeMap<u64, DecBatch>| -> bool {
            if b.units.is_empty() {
                ready.insert(b.idx, b);
                true
            } else {
                jobs.send(b).is_ok()
            }
        };
        for msg in rx {
            match msg {
                DecMsg::Raw(b) => {
                    for b in self.locate(b) {
                        if !pass(b, &mut ready) {
                            return;
                        }
                    }
                }
                DecMsg::Opened(b) => {
                    ready.insert(b.idx, b);
                }
                DecMsg::Panicked => {
                    let _ = to_caller.send(Out::Failed(worker_panicked()));
                    return;
                }
                DecMsg::Stop => return,
            }
            while let Some(b) = ready.remove(&next) {
                next += 1;
                if to_caller.send(Out::Batch(b)).is_err() {
                    return;
                }
            }
        }
    }

    fn number(&mut self, b: &mut DecBatch) {
        b.idx = self.next_out;
        self.next_out += 1;
    }

    /// Locates the units of `b` (after completing a carried one, passed on first as a
    /// batch of its own); returns the batches to pass on, in order.
    fn locate(&mut self, mut b: DecBatch) -> Vec<DecBatch> {
        b.units.clear();
        b.opened = 0;
        b.err = None;
        b.confirmed = false;
        let mut out = Vec::with_capacity(2);
        if self.failed {
            self.number(&mut b);
            out.push(b);
            return out;
        }
        let mut pos = 0;
        if self.final_done {
            self.end_check(&mut b, pos);
            self.number(&mut b);
            out.push(b);
            return out;
        }
        // Complete the carried unit with the front of `b`, up to what the decryptor asks.
        while !self.carry.is_empty() && pos < b.len {
            let take = self.need.saturating_sub(self.carry.len()).min(b.len - pos);
            self.carry.extend_from_slice(&b.buf[pos..pos + take]);
            pos += take;
            match self.dec.next_frame(&self.carry) {
                Ok(Located::Frame(slot)) => {
                    let mut c = DecBatch::new(0, true);
                    c.buf = std::mem::take(&mut self.carry);
                    c.len = c.buf.len();
                    if let Err(e) = self.took(&c.buf, 0, &slot) {
                        c.err = Some(e);
                        self.failed = true;
                    }
                    c.units.push((0, slot));
                    self.number(&mut c);
                    out.push(c);
                }
                Ok(Located::NeedInput { min }) => self.need = min,
                Err(e) => {
                    b.err = Some(io_error(e));
                    self.failed = true;
                }
            }
            if self.failed {
                self.number(&mut b);
                out.push(b);
                return out;
            }
        }
        while !self.final_done && pos < b.len && self.carry.is_empty() {
            match self.dec.next_frame(&b.buf[pos..b.len]) {
                Ok(Located::Frame(slot)) => {
                    let r = self.took(&b.buf, pos, &slot);
                    b.units.push((pos, slot));
                    pos += slot.unit_len();
                    if let Err(e) = r {
                        b.err = Some(e);
                        self.failed = true;
                        break;
                    }
                }
                Ok(Located::NeedInput { min }) => {
                    self.carry.extend_from_slice(&b.buf[pos..b.len]);
                    self.need = min;
                    pos = b.len;
                }
                Err(e) => {
                    b.err = Some(io_error(e));
                    self.failed = true;
                    break;
                }
            }
        }
        if !self.failed {
            if self.final_done {
                self.end_check(&mut b, pos);
            } else if b.eof {
                let offset = self.dec.offset() + self.carry.len();
                b.err = Some(io_error(Error::Truncated { offset }));
                self.failed = true;
            }
        }
        self.number(&mut b);
        out.push(b);
        out
    }

    /// A unit was located at `buf[at..]`: hash it (signed suites) and, after the final
    /// frame, verify the footer.
    fn took(&mut self, buf: &[u8], at: usize, slot: &FrameSlot) -> io::Result<()> {
        // The order check of every suite, and the hash of the signed ones, over the
        // ciphertext: before a worker opens the frame in place.
        let frame = &buf[at..at + slot.frame_len()];
        self.dec.absorb_frame(slot, frame).map_err(io_error)?;
        if slot.is_final() {
            self.final_done = true;
            let footer = &buf[at + slot.frame_len()..at + slot.unit_len()];
            self.dec.verify_footer(footer).map_err(io_error)?;
        }
        Ok(())
    }

    /// After the final unit: bytes after it in `b` (from `pos`) are trailing bytes; the end
    /// of the input confirms the end of the message.
    fn end_check(&mut self, b: &mut DecBatch, pos: usize) {
        if pos < b.len {
            let offset = self.dec.offset();
            b.err = Some(io_error(Error::TrailingBytes { offset }));
            self.failed = true;
        } else if b.eof {
            b.confirmed = true;
        }
    }
}

/// Sizes and release rules of a decryption's calling thread.
struct DecPlan {
    /// Bytes of a regular unit (frame), and of a batch read (a multiple of it).
    unit: usize,
    want: usize,
    max_batches: usize,
    holding: bool,
    limit: usize,
}

/// The calling thread of a decryption: reads batches (aligned on regular frames), writes
/// the opened frames in order under the release rules.
fn dec_caller<R: Read, W: Write>(
    head: &[u8],
    reader: &mut R,
    writer: &mut W,
    progress: &mut dyn FnMut(u64),
    to_engine: &mpsc::Sender<DecMsg>,
    rx: &mpsc::Receiver<Out<DecBatch>>,
    plan: DecPlan,
) -> io::Result<u64> {
    let gone = pipeline_gone;
    let mut free: Vec<DecBatch> = Vec::new();
    let mut in_flight = 0usize;
    let mut idx = 0u64;
    let mut eof = false;
    let mut first = true;
    let mut st = Releaser {
        writer,
        holding: plan.holding,
        limit: plan.limit,
        held: Vec::new(),
        held_bytes: 0,
        final_batch: None,
        written: 0,
    };
    loop {
        while let Ok(m) = rx.try_recv() {
            if st.handle(m, &mut free, &mut in_flight)? {
                return Ok(st.written);
            }
        }
        if !eof && (in_flight < plan.max_batches) {
            // The first batch starts with the bytes read with the header, and ends on a
            // regular frame boundary like every later one.
            let cap = if first {
                plan.want.max(head.len().div_ceil(plan.unit) * plan.unit)
            } else {
                plan.want
            };
            let mut b = free.pop().unwrap_or_else(|| DecBatch::new(cap, false));
            if b.buf.len() < cap {
                b.buf.resize(cap, 0);
            }
            let mut n = 0;
            if first {
                b.buf[..head.len()].copy_from_slice(head);
                n = head.len();
                first = false;
            }
            let got = fill(reader, &mut b.buf[n..cap])?;
            progress(got as u64);
            b.len = n + got;
            b.eof = n + got < cap;
            eof = b.eof;
            b.idx = idx;
            idx += 1;
            in_flight += 1;
            to_engine.send(DecMsg::Raw(b)).map_err(|_| gone())?;
            continue;
        }
        match rx.recv() {
            Ok(m) => {
                if st.handle(m, &mut free, &mut in_flight)? {
                    return Ok(st.written);
                }
            }
            Err(_) => return Err(gone()),
        }
    }
}

/// The release rules of the calling thread of a decryption.
struct Releaser<'w, W: Write> {
    writer: &'w mut W,
    holding: bool,
    limit: usize,
    /// Batches of a signed message held until its signature verifies.
    held: Vec<DecBatch>,
    held_bytes: usize,
    /// The batch with the final frame, held until the end is confirmed.
    final_batch: Option<DecBatch>,
    written: u64,
}

impl<W: Write> Releaser<'_, W> {
    /// Writes the regular frames `from..to` of `b`.
    fn write_frames(&mut self, b: &DecBatch, from: usize, to: usize) -> io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = (from..to)
            .map(|j| b.content(j))
            .filter(|c| !c.is_empty())
            .map(IoSlice::new)
            .collect();
        let n: usize = slices.iter().map(|s| s.len()).sum();
        write_all_vectored(self.writer, &mut slices)?;
        self.written += n as u64;
        Ok(())
    }

    /// Takes the next batch in order; `Ok(true)` once the message is complete and written.
    fn handle(
        &mut self,
        m: Out<DecBatch>,
        free: &mut Vec<DecBatch>,
        in_flight: &mut usize,
    ) -> io::Result<bool> {
        let b = match m {
            Out::Batch(b) => b,
            Out::Failed(e) => return Err(e),
        };
        if !b.extra {
            *in_flight -= 1;
        }
        // The regular frames that opened, in order; the final frame waits.
        let regular = b.units[..b.opened]
            .iter()
            .take_while(|(_, s)| !s.is_final())
            .count();
        let has_final = regular < b.opened;
        if self.holding {
            for j in 0..regular {
                self.held_bytes += b.units[j].1.content_len();
                if self.held_bytes > self.limit {
                    let limit = self.limit as u64;
                    return Err(io_error(
                        PolicyViolation::SignedBufferLimit { limit }.into(),
                    ));
                }
            }
        } else {
            self.write_frames(&b, 0, regular)?;
        }
        let mut b = b;
        if let Some(e) = b.err.take() {
            return Err(e);
        }
        let confirmed = b.confirmed;
        if has_final {
            self.final_batch = Some(b);
        } else if self.holding && regular > 0 {
            self.held.push(b);
        } else if !b.extra {
            free.push(b);
        }
        if !confirmed {
            return Ok(false);
        }
        // The end is confirmed: everything held goes out, the final frame last.
        for h in std::mem::take(&mut self.held) {
            let n = h.opened;
            self.write_frames(&h, 0, n)?;
        }
        if let Some(f) = self.final_batch.take() {
            if self.holding {
                let regular = f.opened - 1;
                self.write_frames(&f, 0, regular)?;
            }
            let last = f.opened - 1;
            self.write_frames(&f, last, f.opened)?;
        }
        self.writer.flush()?;
        Ok(true)
    }
}
