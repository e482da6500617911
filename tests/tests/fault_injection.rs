//! Fault injection for every streaming adapter (issue #14): inner readers and writers that
//! fail with each `io::ErrorKind` (`Interrupted`, `WouldBlock`, `UnexpectedEof`, `Other`),
//! accept `Ok(0)`, or do short reads and writes, at every call index, once or for good.
//!
//! Properties, for unsigned and signed suites, one frame and several:
//! - after a retried error the plaintext (or message) is byte-exact: nothing lost,
//!   duplicated or reordered; `Interrupted` never reaches the caller;
//! - a permanent failure is reported, never `Ok(0)` / a successful finish;
//! - ESDK errors are sticky;
//! - a signed message's plaintext comes out only after everything was read and verified
//!   (default), or streams (opt-in), and `has_unverified_plaintext` says which;
//! - trailing bytes give `TrailingBytes` at the one-shot API's offset and release nothing
//!   of the final frame;
//! - `Ok(0)` from an inner writer is `WriteZero`.
//!
//! The embedded-io adapters are covered by `core/tests/eio_faults.rs`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::rc::Rc;

use esdk::kms::{AsyncKeyring, DecryptRequest, EncryptOutcome, EncryptRequest};
use esdk::stream::esdk_error;
use esdk_core::error::{Error, KeyringError, PolicyViolation};
use esdk_core::materials::DataKey;
use esdk_core::{AlgorithmSuite, Config, EncryptOptions};
use esdk_tests::forge::{FIXED_KEY, FixedKeyring};

const FRAME: usize = 64;
const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;

struct Msg {
    name: String,
    signed: bool,
    pt: Vec<u8>,
    ct: Vec<u8>,
    /// Plaintext in regular frames (may come out before the end when streaming).
    regular: usize,
}

fn message(suite: AlgorithmSuite, len: usize) -> Msg {
    let pt: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(FRAME as u32);
    let ct =
        esdk::encrypt(&Config::new(), &FixedKeyring, &opts, &[("a", "b")], &pt).expect("encrypt");
    let regular = if len == 0 {
        0
    } else {
        (len - 1) / FRAME * FRAME
    };
    let signed = suite.signature().is_some();
    Msg {
        name: format!("{} {len} B", if signed { "signed" } else { "unsigned" }),
        signed,
        pt,
        ct,
        regular,
    }
}

fn messages() -> Vec<Msg> {
    vec![
        message(UNSIGNED, 11),
        message(UNSIGNED, 3 * FRAME + 10),
        message(SIGNED, 11),
        message(SIGNED, 3 * FRAME + 10),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kind(io::ErrorKind),
    /// A 1-byte read or write.
    Short,
    /// A write that accepts nothing.
    Zero,
}

const KINDS: [io::ErrorKind; 4] = [
    io::ErrorKind::Interrupted,
    io::ErrorKind::WouldBlock,
    io::ErrorKind::UnexpectedEof,
    io::ErrorKind::Other,
];

fn reader_faults() -> Vec<Fault> {
    let mut v: Vec<Fault> = KINDS.iter().map(|k| Fault::Kind(*k)).collect();
    v.push(Fault::Short);
    v
}

fn writer_faults() -> Vec<Fault> {
    let mut v = reader_faults();
    v.push(Fault::Zero);
    v
}

/// The injection plan: `fault` at call `at` (and every later call when `permanent`); every
/// call moves at most `max` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    fault: Fault,
    at: usize,
    permanent: bool,
    max: usize,
}

impl Plan {
    /// What call number `i` does: `Some(fault)` or normal.
    fn fires(&self, i: usize) -> Option<Fault> {
        let hit = if self.permanent {
            i >= self.at
        } else {
            i == self.at
        };
        hit.then_some(self.fault)
    }
}

fn injected(kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, "injected fault")
}

struct FaultyReader<'a> {
    data: &'a [u8],
    pos: Rc<Cell<usize>>,
    calls: Rc<Cell<usize>>,
    plan: Plan,
}

impl<'a> FaultyReader<'a> {
    fn new(data: &'a [u8], plan: Plan) -> Self {
        Self {
            data,
            pos: Rc::default(),
            calls: Rc::default(),
            plan,
        }
    }
}

impl Read for FaultyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let i = self.calls.get();
        self.calls.set(i + 1);
        let mut max = self.plan.max;
        match self.plan.fires(i) {
            Some(Fault::Kind(k)) => return Err(injected(k)),
            Some(Fault::Short) => max = 1,
            Some(Fault::Zero) | None => {}
        }
        let pos = self.pos.get();
        let n = buf.len().min(max).min(self.data.len() - pos);
        buf[..n].copy_from_slice(&self.data[pos..pos + n]);
        self.pos.set(pos + n);
        Ok(n)
    }
}

#[derive(Clone, Debug)]
struct FaultyWriter {
    data: Rc<RefCell<Vec<u8>>>,
    calls: Rc<Cell<usize>>,
    plan: Plan,
}

impl FaultyWriter {
    fn new(plan: Plan) -> Self {
        Self {
            data: Rc::default(),
            calls: Rc::default(),
            plan,
        }
    }
    fn len(&self) -> usize {
        self.data.borrow().len()
    }
}

impl Write for FaultyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let i = self.calls.get();
        self.calls.set(i + 1);
        let mut max = self.plan.max;
        match self.plan.fires(i) {
            Some(Fault::Kind(k)) => return Err(injected(k)),
            Some(Fault::Short) => max = 1,
            Some(Fault::Zero) => return Ok(0),
            None => {}
        }
        let n = buf.len().min(max);
        self.data.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const NO_FAULT: Plan = Plan {
    fault: Fault::Short,
    at: usize::MAX,
    permanent: false,
    max: usize::MAX,
};

/// The kind the adapter must report for a fault.
fn reported_kind(f: Fault) -> Option<io::ErrorKind> {
    match f {
        Fault::Kind(io::ErrorKind::Interrupted) | Fault::Short => None,
        Fault::Kind(k) => Some(k),
        Fault::Zero => Some(io::ErrorKind::WriteZero),
    }
}

/// Bounded retries of I/O errors (a permanent fault must not make a test spin).
const RETRIES: usize = 4;

/// The outcome of driving an adapter to its end.
#[derive(Debug)]
enum End {
    Ok,
    Esdk(Error),
    /// A permanent I/O error, still reported after [`RETRIES`] retries.
    Io(io::ErrorKind),
}

/// The verdicts of one decrypting case on the intact message and on it with trailing bytes:
/// the intact one gives the plaintext (or, after a permanent I/O fault, a prefix of it); the
/// extended one gives the one-shot API's `TrailingBytes` (or the permanent fault) and releases
/// nothing of the final frame, and nothing at all of a signed message without the opt-in.
#[allow(clippy::too_many_arguments)]
fn check_intact_and_trailing(
    m: &Msg,
    what: &str,
    permanent: bool,
    opt_in: bool,
    one_shot_trailing: Error,
    (end, out): (End, Vec<u8>),
    (end_trailing, out_trailing): (End, Vec<u8>),
) {
    match end {
        End::Ok => assert_eq!(out, m.pt, "{what}"),
        End::Io(_) => {
            assert!(permanent, "{what}");
            assert_eq!(out, m.pt[..out.len()], "{what}");
        }
        End::Esdk(e) => panic!("{what}: {e}"),
    }
    let out = out_trailing;
    match end_trailing {
        End::Esdk(e) => assert_eq!(e, one_shot_trailing, "{what}"),
        End::Io(_) => assert!(permanent, "{what}"),
        End::Ok => panic!("{what}: trailing bytes accepted"),
    }
    assert!(out.len() <= m.regular, "{what}: final frame released");
    assert_eq!(out, m.pt[..out.len()], "{what}");
    if m.signed && !opt_in {
        assert!(out.is_empty(), "{what}");
    }
}

/// Reads `r` to its end with `size`-byte reads, retrying I/O errors; checks that ESDK
/// errors stick and that `Ok(0)` stays `Ok(0)`. Returns the outcome, the plaintext and
/// the I/O errors seen.
fn drive_reader(
    r: &mut impl Read,
    size: usize,
    on_data: &mut dyn FnMut(usize),
) -> (End, Vec<u8>, Vec<io::ErrorKind>) {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; size];
    let mut retries = 0;
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                assert_eq!(r.read(&mut buf).expect("read after the end"), 0);
                return (End::Ok, out, seen);
            }
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                on_data(out.len());
            }
            Err(e) => match esdk_error(&e) {
                Some(err) => {
                    for _ in 0..2 {
                        let again = r.read(&mut buf).expect_err("error must stick");
                        assert_eq!(esdk_error(&again), Some(err), "sticky error");
                    }
                    return (End::Esdk(err), out, seen);
                }
                None => {
                    seen.push(e.kind());
                    retries += 1;
                    if retries > RETRIES {
                        return (End::Io(e.kind()), out, seen);
                    }
                }
            },
        }
    }
}

struct Counts {
    reader: usize,
    writer: usize,
    encrypt: usize,
    asynch: usize,
}

fn check_io_errors(what: &str, plan: Plan, seen: &[io::ErrorKind], end: &End) {
    match reported_kind(plan.fault) {
        None => assert!(seen.is_empty(), "{what}: saw {seen:?}"),
        Some(k) => assert!(seen.iter().all(|s| *s == k), "{what}: saw {seen:?}"),
    }
    // A permanent failure that was reached must be reported, never look like an end.
    if let (true, false, Some(k)) = (plan.permanent, seen.is_empty(), reported_kind(plan.fault)) {
        assert!(matches!(end, End::Io(x) if *x == k), "{what}: {end:?}");
    }
}

fn reader_case(m: &Msg, data: &[u8], plan: Plan, size: usize, opt_in: bool) -> (End, Vec<u8>) {
    let cfg = Config::new();
    let inner = FaultyReader::new(data, plan);
    let pos = inner.pos.clone();
    let mut r =
        esdk::DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &FixedKeyring, &[], inner)
            .release_unverified_plaintext(opt_in);
    let what = format!("reader {} {plan:?} size {size} opt-in {opt_in}", m.name);
    let holding = m.signed && !opt_in;
    let total = data.len();
    let regular = m.regular;
    let mut unverified_seen = false;
    let (end, out, seen) = {
        let mut on_data = |released: usize| {
            if holding {
                assert!(
                    pos.get() >= total,
                    "{what}: released before the end was read"
                );
            } else if pos.get() < total.min(m.ct.len()) {
                assert!(released <= regular, "{what}: final frame before the end");
            }
        };
        let r2 = &mut r;
        let res = drive_reader(r2, size, &mut on_data);
        unverified_seen |= r.has_unverified_plaintext();
        res
    };
    check_io_errors(&what, plan, &seen, &end);
    if matches!(end, End::Ok) {
        assert!(
            !r.has_unverified_plaintext(),
            "{what}: unverified after Ok(0)"
        );
    }
    if holding {
        assert!(!unverified_seen, "{what}");
    }
    (end, out)
}

fn reader_matrix(counts: &mut Counts) {
    for m in messages() {
        // Enough calls to reach the end with short reads.
        let calls = m.ct.len() + 4;
        let mut trailing = m.ct.clone();
        trailing.extend_from_slice(&[0xEE; 3]);
        let one_shot_trailing = esdk::decrypt(&Config::new(), &FixedKeyring, &[], &trailing)
            .expect_err("trailing bytes")
            .core()
            .expect("a core error");
        let truncated = &m.ct[..m.ct.len() - 1];
        for fault in reader_faults() {
            for permanent in [false, true] {
                // `Interrupted` means "retry" (std's own loops retry it forever too).
                if permanent && is_interrupted(fault) {
                    continue;
                }
                for (max, sizes) in [
                    (usize::MAX, &[4096usize][..]),
                    (7, &[5][..]),
                    (64, &[32][..]),
                ] {
                    let top = calls / max.min(calls) + 3;
                    for at in 0..top {
                        let plan = Plan {
                            fault,
                            at,
                            permanent,
                            max,
                        };
                        for &size in sizes {
                            for opt_in in [false, true] {
                                let what = format!("{} {plan:?} {size} {opt_in}", m.name);
                                check_intact_and_trailing(
                                    &m,
                                    &what,
                                    permanent,
                                    opt_in,
                                    one_shot_trailing,
                                    reader_case(&m, &m.ct, plan, size, opt_in),
                                    reader_case(&m, &trailing, plan, size, opt_in),
                                );
                                // Truncation: sticky, nothing of the final frame.
                                let (end, out) = reader_case(&m, truncated, plan, size, opt_in);
                                match end {
                                    End::Esdk(e) => {
                                        assert!(matches!(e, Error::Truncated { .. }), "{what}: {e}")
                                    }
                                    End::Io(_) => assert!(permanent, "{what}"),
                                    End::Ok => panic!("{what}: truncated message accepted"),
                                }
                                assert!(out.len() <= m.regular, "{what}");
                                counts.reader += 3;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Feeds `ct` to a decrypting writer in `chunk`-byte writes with retries, then finishes.
fn writer_case(m: &Msg, ct: &[u8], plan: Plan, chunk: usize, opt_in: bool) -> (End, Vec<u8>) {
    let cfg = Config::new();
    let inner = FaultyWriter::new(plan);
    let probe = inner.clone();
    let mut w =
        esdk::DecryptingWriter::new(&cfg, &esdk::DEFAULT_PROVIDER, &FixedKeyring, &[], inner)
            .release_unverified_plaintext(opt_in);
    let what = format!("writer {} {plan:?} chunk {chunk} opt-in {opt_in}", m.name);
    let mut seen = Vec::new();
    let mut retries = 0;
    let mut at = 0;
    let mut end = None;
    while at < ct.len() {
        let stop = (at + chunk).min(ct.len());
        match w.write(&ct[at..stop]) {
            Ok(0) => panic!("{what}: Ok(0) for a non-empty write"),
            Ok(n) => at += n,
            Err(e) => match esdk_error(&e) {
                Some(err) => {
                    let again = w.write(b"x").expect_err("sticky");
                    assert_eq!(esdk_error(&again), Some(err), "{what}");
                    end = Some(End::Esdk(err));
                    break;
                }
                None => {
                    seen.push(e.kind());
                    retries += 1;
                    if retries > RETRIES {
                        end = Some(End::Io(e.kind()));
                        break;
                    }
                }
            },
        }
        if m.signed && !opt_in {
            assert_eq!(probe.len(), 0, "{what}: signed plaintext before finish");
        }
        assert!(
            probe.len() <= m.regular,
            "{what}: final frame before finish"
        );
    }
    let end = match end {
        Some(e) => e,
        None => loop {
            match w.try_finish() {
                Ok(()) => break End::Ok,
                Err(e) => match esdk_error(&e) {
                    Some(err) => {
                        assert!(w.try_finish().is_err(), "{what}: sticky");
                        break End::Esdk(err);
                    }
                    None => {
                        seen.push(e.kind());
                        retries += 1;
                        if retries > RETRIES {
                            break End::Io(e.kind());
                        }
                    }
                },
            }
        },
    };
    check_io_errors(&what, plan, &seen, &end);
    if matches!(end, End::Ok) {
        assert!(!w.has_unverified_plaintext(), "{what}");
    }
    let out = probe.data.borrow().clone();
    (end, out)
}

fn writer_matrix(counts: &mut Counts) {
    for m in messages() {
        let mut trailing = m.ct.clone();
        trailing.extend_from_slice(&[0xEE; 3]);
        let one_shot_trailing = esdk::decrypt(&Config::new(), &FixedKeyring, &[], &trailing)
            .expect_err("trailing bytes")
            .core()
            .expect("a core error");
        for fault in writer_faults() {
            for permanent in [false, true] {
                // `Interrupted` means "retry" (std's own loops retry it forever too).
                if permanent && is_interrupted(fault) {
                    continue;
                }
                for (max, chunk) in [(usize::MAX, 100_000), (5, 9), (usize::MAX, 1)] {
                    // Calls to the inner writer: about one per frame (per 5 bytes when short).
                    let top = if max == 5 {
                        m.pt.len() / 5 + 4
                    } else {
                        m.pt.len() / FRAME + 4
                    };
                    for at in 0..top {
                        let plan = Plan {
                            fault,
                            at,
                            permanent,
                            max,
                        };
                        for opt_in in [false, true] {
                            let what = format!("{} {plan:?} {chunk} {opt_in}", m.name);
                            check_intact_and_trailing(
                                &m,
                                &what,
                                permanent,
                                opt_in,
                                one_shot_trailing,
                                writer_case(&m, &m.ct, plan, chunk, opt_in),
                                writer_case(&m, &trailing, plan, chunk, opt_in),
                            );
                            counts.writer += 2;
                        }
                    }
                }
            }
        }
    }
}

fn encrypt_matrix(counts: &mut Counts) {
    let cfg = Config::new();
    for suite in [UNSIGNED, SIGNED] {
        for len in [11usize, 3 * FRAME + 10, 4 * FRAME] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(FRAME as u32);
            for fault in writer_faults() {
                for permanent in [false, true] {
                    // `Interrupted` means "retry" (std's own loops retry it forever too).
                    if permanent && is_interrupted(fault) {
                        continue;
                    }
                    for (max, chunk) in [(usize::MAX, 1000), (5, 9), (usize::MAX, 1)] {
                        for at in 0..40 {
                            let plan = Plan {
                                fault,
                                at,
                                permanent,
                                max,
                            };
                            let what = format!("encrypt {suite:?} {len} {plan:?} {chunk}");
                            let inner = FaultyWriter::new(plan);
                            let probe = inner.clone();
                            counts.encrypt += 1;
                            let mut w = match esdk::EncryptingWriter::new(
                                &cfg,
                                &esdk::DEFAULT_PROVIDER,
                                &FixedKeyring,
                                &opts,
                                &[("a", "b")],
                                inner,
                            ) {
                                Ok(w) => w,
                                Err(e) => {
                                    // Only the header write can fail here, with the fault.
                                    assert_eq!(Some(e.kind()), reported_kind(fault), "{what}");
                                    continue;
                                }
                            };
                            let mut seen = Vec::new();
                            let mut at_pt = 0;
                            let mut gave_up = false;
                            while at_pt < pt.len() && !gave_up {
                                let stop = (at_pt + chunk).min(pt.len());
                                match w.write(&pt[at_pt..stop]) {
                                    Ok(0) => panic!("{what}: Ok(0)"),
                                    Ok(n) => at_pt += n,
                                    Err(e) => {
                                        assert!(esdk_error(&e).is_none(), "{what}: {e}");
                                        seen.push(e.kind());
                                        gave_up = seen.len() > RETRIES;
                                    }
                                }
                            }
                            let end = if gave_up {
                                End::Io(*seen.last().expect("an error"))
                            } else {
                                loop {
                                    match w.try_finish() {
                                        Ok(()) => break End::Ok,
                                        Err(e) => {
                                            assert!(esdk_error(&e).is_none(), "{what}: {e}");
                                            seen.push(e.kind());
                                            if seen.len() > RETRIES {
                                                break End::Io(e.kind());
                                            }
                                        }
                                    }
                                }
                            };
                            check_io_errors(&what, plan, &seen, &end);
                            let msg = probe.data.borrow().clone();
                            match end {
                                End::Ok => {
                                    assert_eq!(w.bytes_written(), msg.len() as u64, "{what}");
                                    let d = esdk::decrypt(&cfg, &FixedKeyring, &[], &msg)
                                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                                    assert_eq!(d.plaintext, pt, "{what}");
                                }
                                _ => assert!(permanent, "{what}: {end:?}"),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An async keyring that supplies [`FIXED_KEY`] (written out as `async_trait` expands it).
struct FixedAsync;

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl AsyncKeyring for FixedAsync {
    fn on_encrypt<'l0, 'l1, 'l2, 'at>(
        &'l0 self,
        _request: &'l1 EncryptRequest<'l2>,
    ) -> BoxFut<'at, Result<EncryptOutcome, esdk::kms::Error>>
    where
        'l0: 'at,
        'l1: 'at,
        'l2: 'at,
        Self: 'at,
    {
        Box::pin(async {
            Err(esdk::kms::Error::Core(
                KeyringError::EncryptNotSupported.into(),
            ))
        })
    }

    fn on_decrypt<'l0, 'l1, 'l2, 'at>(
        &'l0 self,
        request: &'l1 DecryptRequest<'l2>,
    ) -> BoxFut<'at, Result<DataKey, esdk::kms::Error>>
    where
        'l0: 'at,
        'l1: 'at,
        'l2: 'at,
        Self: 'at,
    {
        let n = request.suite.key_len();
        Box::pin(
            async move { DataKey::from_slice(&FIXED_KEY[..n]).map_err(esdk::kms::Error::Core) },
        )
    }

    fn description(&self) -> String {
        "fixed test keyring".into()
    }
}

/// Polls a future that never waits to completion.
fn ready<T>(f: impl Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..1000 {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the future did not complete");
}

fn async_matrix(counts: &mut Counts) {
    let cfg = Config::new();
    for m in messages() {
        for fault in reader_faults() {
            for max in [usize::MAX, 3] {
                for at in 0..(if max == 3 { 90 } else { 6 }) {
                    let plan = Plan {
                        fault,
                        at,
                        permanent: false,
                        max,
                    };
                    let what = format!("async {} {plan:?}", m.name);
                    let mut inner = FaultyReader::new(&m.ct, plan);
                    counts.asynch += 1;
                    let header = match esdk::kms::asynch::read_header(&cfg, &mut inner) {
                        Ok(h) => h,
                        Err(esdk::kms::Error::Io(e)) => {
                            assert_eq!(Some(e.kind()), reported_kind(fault), "{what}");
                            continue;
                        }
                        Err(e) => panic!("{what}: {e}"),
                    };
                    // Exactly the header, nothing past it.
                    assert_eq!(inner.pos.get(), header.len(), "{what}");
                    assert_eq!(&m.ct[..header.len()], &header[..], "{what}");
                    let prepared = ready(esdk::kms::asynch::prepare_decrypt(
                        &cfg,
                        &FixedAsync,
                        &[],
                        &header,
                    ))
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(prepared.header_len(), header.len());
                    let mut r = prepared.decrypting_reader(inner);
                    let (end, out, _) = drive_reader(&mut r, 4096, &mut |_| {});
                    assert!(matches!(end, End::Ok), "{what}: {end:?}");
                    assert_eq!(out, m.pt, "{what}");
                }
            }
        }
    }
    // A header truncated anywhere is `Truncated` at the bytes received.
    let m = message(SIGNED, 11);
    let h = esdk::kms::asynch::read_header(&cfg, &mut &m.ct[..]).expect("header");
    for cut in 0..h.len() {
        let mut src = &m.ct[..cut];
        match esdk::kms::asynch::read_header(&cfg, &mut src) {
            Err(esdk::kms::Error::Core(Error::Truncated { offset })) => assert_eq!(offset, cut),
            other => panic!("cut {cut}: {other:?}"),
        }
        counts.asynch += 1;
    }
}

#[test]
fn every_adapter_under_faults() {
    let mut c = Counts {
        reader: 0,
        writer: 0,
        encrypt: 0,
        asynch: 0,
    };
    reader_matrix(&mut c);
    writer_matrix(&mut c);
    encrypt_matrix(&mut c);
    async_matrix(&mut c);
    let total = c.reader + c.writer + c.encrypt + c.asynch;
    println!(
        "fault injection: {total} cases passed (reader {}, writer {}, encrypting writer {}, async {})",
        c.reader, c.writer, c.encrypt, c.asynch
    );
    assert!(c.reader > 1000 && c.writer > 1000 && c.encrypt > 300 && c.asynch > 200);
}

/// Issue #14 (a): `WouldBlock` once at the end of a one-frame message: the final frame must
/// still come out, exactly once, after the retry.
#[test]
fn would_block_at_the_end_does_not_lose_the_final_frame() {
    let cfg = Config::new();
    for suite in [UNSIGNED, SIGNED] {
        let opts = EncryptOptions::new().with_suite(suite);
        let ct = esdk::encrypt(&cfg, &FixedKeyring, &opts, &[], b"hello world").expect("encrypt");
        // Call 0 reads the whole message (one 64 KiB read); call 1 is the end probe.
        let plan = Plan {
            fault: Fault::Kind(io::ErrorKind::WouldBlock),
            at: 1,
            permanent: false,
            max: usize::MAX,
        };
        let mut r = esdk::DecryptingReader::new(
            &cfg,
            &esdk::DEFAULT_PROVIDER,
            &FixedKeyring,
            &[],
            FaultyReader::new(&ct, plan),
        );
        let mut buf = [0u8; 64];
        let e = r.read(&mut buf).expect_err("the probe's WouldBlock");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let n = r.read(&mut buf).expect("retry");
        assert_eq!(&buf[..n], b"hello world", "{suite:?}");
        assert_eq!(r.read(&mut buf).expect("end"), 0);
        println!("would-block at the end: {suite:?} ok");
    }
}

/// Issue #14 (b): a required encryption context (header scratch) and small reads.
#[test]
fn required_context_with_small_reads() {
    let k = esdk::raw::RawAesKeyring::new("ns", "k", &[4u8; 32]).expect("keyring");
    let keys = ["req"];
    let cmm = esdk::RequiredEncryptionContextCmm::new(&k, &keys);
    let cfg = Config::new();
    let pt: Vec<u8> = (0..10_000u32).map(|i| (i * 3) as u8).collect();
    let ec = [("req", "value"), ("kept", "x")];
    let reproduced = [("req", "value")];
    let mut runs = 0;
    for suite in [UNSIGNED, SIGNED] {
        let opts = EncryptOptions::new().with_suite(suite);
        let ct = esdk::encrypt(&cfg, &cmm, &opts, &ec, &pt).expect("encrypt");
        let mut r =
            esdk::DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &cmm, &reproduced, &ct[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read_to_end");
        assert_eq!(out, pt, "{suite:?} read_to_end");
        for size in [1usize, 32, 4095, 4096, 5000] {
            let mut r = esdk::DecryptingReader::new(
                &cfg,
                &esdk::DEFAULT_PROVIDER,
                &cmm,
                &reproduced,
                &ct[..],
            )
            .release_unverified_plaintext(true);
            let (end, out, _) = drive_reader(&mut r, size, &mut |_| {});
            assert!(matches!(end, End::Ok), "{suite:?} {size}: {end:?}");
            assert_eq!(out, pt, "{suite:?} {size}");
            let mut w = esdk::DecryptingWriter::new(
                &cfg,
                &esdk::DEFAULT_PROVIDER,
                &cmm,
                &reproduced,
                Vec::new(),
            );
            for c in ct.chunks(size) {
                w.write_all(c).expect("write");
            }
            assert_eq!(w.finish().expect("finish"), pt, "{suite:?} {size} writer");
            runs += 2;
        }
    }
    println!("required context, small reads: {runs} runs passed");
}

fn signed_multi_frame() -> Msg {
    message(SIGNED, 5 * FRAME + 10)
}

#[test]
fn signed_buffer_limit_refuses_beyond_it_and_names_the_remedies() {
    let m = signed_multi_frame();
    let cfg = Config::new();
    let want = Error::Policy(PolicyViolation::SignedBufferLimit { limit: 100 });
    let text = want.to_string();
    for remedy in [
        "with_signed_buffer_limit",
        "release_unverified_plaintext",
        "--stream-unverified",
        "unsigned_only",
        "--decrypt-unsigned",
        "100",
    ] {
        assert!(text.contains(remedy), "{remedy} missing from: {text}");
    }
    // Reader: refused, nothing released; at exactly the regular frames' size: fine.
    let mut r =
        esdk::DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &FixedKeyring, &[], &m.ct[..])
            .with_signed_buffer_limit(100);
    let (end, out, _) = drive_reader(&mut r, 4096, &mut |_| {});
    assert!(matches!(end, End::Esdk(e) if e == want), "{end:?}");
    assert!(out.is_empty());
    let mut r =
        esdk::DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &FixedKeyring, &[], &m.ct[..])
            .with_signed_buffer_limit(m.regular);
    let (end, out, _) = drive_reader(&mut r, 4096, &mut |_| {});
    assert!(matches!(end, End::Ok), "{end:?}");
    assert_eq!(out, m.pt);
    // The opt-in streams whatever the limit.
    let mut r =
        esdk::DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &FixedKeyring, &[], &m.ct[..])
            .with_signed_buffer_limit(0)
            .release_unverified_plaintext(true);
    let (end, out, _) = drive_reader(&mut r, 4096, &mut |_| {});
    assert!(matches!(end, End::Ok), "{end:?}");
    assert_eq!(out, m.pt);
    // Writer: the same.
    let mut w = esdk::DecryptingWriter::new(
        &cfg,
        &esdk::DEFAULT_PROVIDER,
        &FixedKeyring,
        &[],
        Vec::new(),
    )
    .with_signed_buffer_limit(100);
    let e = w.write_all(&m.ct).expect_err("limit");
    assert_eq!(esdk_error(&e), Some(want));
    let e = w.finish().expect_err("sticky");
    assert_eq!(esdk_error(&e), Some(want));
    let mut w = esdk::DecryptingWriter::new(
        &cfg,
        &esdk::DEFAULT_PROVIDER,
        &FixedKeyring,
        &[],
        Vec::new(),
    )
    .with_signed_buffer_limit(m.regular);
    w.write_all(&m.ct).expect("write");
    assert_eq!(w.finish().expect("finish"), m.pt);
    // Unsigned messages are not held: a zero limit does not matter.
    let u = message(UNSIGNED, 5 * FRAME + 10);
    let mut r =
        esdk::DecryptingReader::new(&cfg, &esdk::DEFAULT_PROVIDER, &FixedKeyring, &[], &u.ct[..])
            .with_signed_buffer_limit(0);
    let (end, out, _) = drive_reader(&mut r, 4096, &mut |_| {});
    assert!(matches!(end, End::Ok), "{end:?}");
    assert_eq!(out, u.pt);
    println!("signed buffer limit: 6 checks passed");
}

/// Default: nothing of a signed message before `Done`, even when the last frame or the
/// signature fails; opt-in: the regular frames stream, flagged unverified.
#[test]
fn signed_plaintext_is_held_until_verified_unless_opted_in() {
    let m = signed_multi_frame();
    let cfg = Config::new();
    let len = m.ct.len();
    // Flip a byte of the final frame's ciphertext, and of the signature.
    let final_frame_ct = len - 103 - 16 - 1; // inside the 10-byte final content or its tag
    let mut cases = 0;
    for (name, at) in [("final frame", final_frame_ct), ("signature", len - 1)] {
        let mut bad = m.ct.clone();
        bad[at] ^= 0x01;
        let one_shot = esdk::decrypt(&cfg, &FixedKeyring, &[], &bad)
            .expect_err("tampered")
            .core()
            .expect("a core error");
        for size in [1usize, 7, 64, 4096] {
            let mut r = esdk::DecryptingReader::new(
                &cfg,
                &esdk::DEFAULT_PROVIDER,
                &FixedKeyring,
                &[],
                &bad[..],
            );
            let (end, out, _) = drive_reader(&mut r, size, &mut |_| {});
            assert!(
                matches!(end, End::Esdk(e) if e == one_shot),
                "{name} {size}: {end:?}"
            );
            assert!(out.is_empty(), "{name} {size}: released {} B", out.len());
            assert!(!r.has_unverified_plaintext());
            let inner = FaultyWriter::new(NO_FAULT);
            let probe = inner.clone();
            let mut w = esdk::DecryptingWriter::new(
                &cfg,
                &esdk::DEFAULT_PROVIDER,
                &FixedKeyring,
                &[],
                inner,
            );
            let mut err = None;
            for c in bad.chunks(size) {
                if let Err(e) = w.write_all(c) {
                    err = Some(e);
                    break;
                }
            }
            let e = match err {
                Some(e) => e,
                None => w.try_finish().expect_err("tampered"),
            };
            assert_eq!(esdk_error(&e), Some(one_shot), "{name} {size}");
            assert!(w.finish().is_err(), "sticky");
            assert_eq!(probe.len(), 0, "{name} {size}: writer released plaintext");
            // Opt-in: the regular frames come out before the error, flagged unverified.
            let mut r = esdk::DecryptingReader::new(
                &cfg,
                &esdk::DEFAULT_PROVIDER,
                &FixedKeyring,
                &[],
                &bad[..],
            )
            .release_unverified_plaintext(true);
            let (end, out, _) = drive_reader(&mut r, size, &mut |_| {});
            assert!(matches!(end, End::Esdk(_)), "{name} {size}: {end:?}");
            assert_eq!(out, m.pt[..m.regular], "{name} {size}");
            assert!(r.has_unverified_plaintext(), "{name} {size}");
            cases += 3;
        }
    }
    // Writer, default: nothing reaches the inner writer before finish; opt-in: it streams.
    for opt_in in [false, true] {
        let inner = FaultyWriter::new(NO_FAULT);
        let probe = inner.clone();
        let mut w =
            esdk::DecryptingWriter::new(&cfg, &esdk::DEFAULT_PROVIDER, &FixedKeyring, &[], inner)
                .release_unverified_plaintext(opt_in);
        w.write_all(&m.ct).expect("write");
        let before = probe.len();
        assert!(!w.has_unverified_plaintext(), "verified by now");
        if opt_in {
            assert_eq!(before, m.regular);
        } else {
            assert_eq!(before, 0);
        }
        w.finish().expect("finish");
        assert_eq!(*probe.data.borrow(), m.pt);
        cases += 1;
    }
    println!("signed hold / opt-in: {cases} cases passed");
}

fn is_interrupted(f: Fault) -> bool {
    matches!(f, Fault::Kind(k) if k == INTERRUPTED)
}
const INTERRUPTED: io::ErrorKind = io::ErrorKind::Interrupted;
