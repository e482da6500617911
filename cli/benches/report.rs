//! The performance report of `scripts/bench.sh`: one run, one screen, on this machine.
//!
//! `cargo bench -p esdk-cli --bench report` prints, for 1 and N threads (N = the available
//! parallelism):
//! - the raw AES-256-GCM and SHA-384 speed of each provider (the pure-Rust
//!   `RustCrypto::new(esdk::OsRng)` and aws-lc, the default), one core;
//! - in memory: encrypt and decrypt of 0x0478 and 0x0578 at 4 KiB, 64 KiB and 1 MiB frames
//!   through the std one-shot `esdk::encrypt_into` / `esdk::decrypt_into` into buffers kept across
//!   calls (aws-lc, `Config::with_threads`),
//!   each as a ratio to aws-lc's single-core raw AES-GCM (0x0478: in-place seal with the same
//!   chunking, 4 KiB chunks for 4 KiB frames and 1 MiB otherwise) or SHA-384 (0x0578), next to
//!   the core one-shot API in the caller's buffers (one thread: the engine alone);
//! - the whole `esdk` process on a 256 MiB file (in `/dev/shm` when it exists) at 4 KiB and
//!   1 MiB frames, 0x0478 (and 0x0578 at 1 MiB), encrypt and decrypt to `/dev/null`, with
//!   `--threads 1` and `--threads N` (when the tool has the option), next to the official Python
//!   ESDK (`shared/peers/pyesdk_peer.py`) at the same frame size; each side decrypts the other's
//!   message, and the plaintexts are checked;
//! - the 100-byte latencies: the whole `esdk encrypt` (and `decrypt`) process of a 100-byte
//!   file, and the in-process round trip (`esdk::encrypt` + `esdk::decrypt`);
//! - the goals of issue #16, each with the figures it compares and PASS or MISS.
//!
//! Timing: single-thread in-process figures are the benchmark thread's CPU time
//! (`clock_gettime`), so other work on a shared machine does not count against them;
//! multi-threaded figures and every process figure are wall time (a thread's CPU time would
//! leave out the workers). The operations a goal compares run interleaved, round by round, so
//! a noisy machine affects both sides; the load average is printed at the start and the end.
//! The C ESDK is not part of this report (CI machines have none): it is measured by hand.
//!
//! Environment: `ESDK_BENCH_MIB` (in-memory size, default 64), `ESDK_BENCH_CLI_MIB` (CLI
//! file size, default 256; 0 leaves the whole-process part out), `ESDK_PEER_PYTHON` (a python
//! with aws-encryption-sdk; default: `scripts/python-peer.sh`), `ESDK_TEST_PYESDK_PEER`
//! (the peer script), `ESDK_BENCH_ESDK` (the `esdk` binary the whole-process part runs;
//! default: the one built with this report).

use std::ffi::OsString;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use esdk::core::provider::{AeadKey, MessageHasher, RandomSource};
use esdk::core::rustcrypto::RustCrypto;
use esdk::core::suite::SignatureAlg;
use esdk::core::{AlgorithmSuite, Config, CryptoProvider, EncryptOptions, encrypted_len};
use esdk::raw::RawAesKeyring;

/// Timed rounds of the in-memory operations (after one warm-up round); the best counts.
const RUNS: usize = 5;
const MB: f64 = 1e6;
const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
const SUITES: [AlgorithmSuite; 2] = [UNSIGNED, SIGNED];
const FRAMES: [(usize, &str); 3] = [(4096, "4 KiB"), (64 << 10, "64 KiB"), (1 << 20, "1 MiB")];
/// Index of 1 MiB in [`FRAMES`].
const F1M: usize = 2;

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`), if available.
fn thread_cpu() -> Option<Duration> {
    cpu_time::ThreadTime::try_now()
        .ok()
        .map(|t| t.as_duration())
}

/// The best wall time and the best thread CPU time of an operation.
#[derive(Debug, Clone, Copy)]
struct Best {
    wall: Duration,
    cpu: Option<Duration>,
}

impl Best {
    const NONE: Self = Self {
        wall: Duration::MAX,
        cpu: None,
    };

    /// The thread's CPU time where the platform reports it, wall time otherwise: for work
    /// done on the calling thread alone.
    fn one_thread(&self) -> Duration {
        self.cpu.unwrap_or(self.wall)
    }

    fn add(&mut self, wall: Duration, cpu: Option<Duration>) {
        self.wall = self.wall.min(wall);
        self.cpu = match (self.cpu, cpu) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Times one call of `f`: wall time and the calling thread's CPU time.
fn time_once(f: &mut dyn FnMut()) -> (Duration, Option<Duration>) {
    let (t, c) = (Instant::now(), thread_cpu());
    f();
    let wall = t.elapsed();
    let cpu = match (c, thread_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    (wall, cpu)
}

/// One operation to time, run once per call.
type Op<'a> = Box<dyn FnMut() + 'a>;

/// Runs every operation once per round, a warm-up round and then [`RUNS`] rounds, and
/// returns the best times of each. Interleaving the operations makes the figures compared in
/// a goal see the same conditions on a shared machine.
fn round_robin(ops: &mut [Op<'_>]) -> Vec<Best> {
    let mut best = vec![Best::NONE; ops.len()];
    for round in 0..=RUNS {
        for (b, op) in best.iter_mut().zip(ops.iter_mut()) {
            let (wall, cpu) = time_once(op.as_mut());
            if round > 0 {
                b.add(wall, cpu);
            }
        }
    }
    best
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-9) / MB
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The threads compared: 1 and the available parallelism (once when that is 1).
fn thread_counts() -> Vec<usize> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n > 1 { vec![1, n] } else { vec![1] }
}

fn iv(i: usize) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[8..].copy_from_slice(&(i as u32).to_be_bytes());
    iv
}

/// Where the raw figures of one provider are in the list of operations.
struct RawSlots {
    seal_1m: usize,
    seal_4k: usize,
    seal_to: usize,
    open_to: usize,
    open_ip: usize,
    restore: usize,
    sha384: usize,
}

/// Raw single-core figures of one provider, MB/s by the thread's CPU time.
struct Raw {
    /// In-place seal, 1 MiB chunks: the anchor of 0x0478 at 64 KiB and 1 MiB frames.
    seal_1m: f64,
    /// In-place seal, 4 KiB chunks: the anchor of 0x0478 at 4 KiB frames.
    seal_4k: f64,
    seal_to_1m: f64,
    open_to_1m: f64,
    /// Open in place, 1 MiB chunks (the time of restoring the ciphertext subtracted).
    open_1m: f64,
    /// The anchor of 0x0578.
    sha384: f64,
}

impl Raw {
    /// The anchor of `suite` at frame index `f`.
    fn anchor(&self, suite: usize, f: usize) -> f64 {
        match (suite, f) {
            (1, _) => self.sha384,
            (_, 0) => self.seal_4k,
            _ => self.seal_1m,
        }
    }
}

/// Appends the raw AES-GCM and SHA-384 operations of provider `p` to `ops`.
fn raw_ops<'a, P: CryptoProvider>(p: &'a P, pt: &'a [u8], ops: &mut Vec<Op<'a>>) -> RawSlots {
    let mut seed = [0u8; 32];
    p.fill_random(&mut seed).expect("rng"); // seeds a DRBG, once per process
    let mut push = |op: Op<'a>| {
        ops.push(op);
        ops.len() - 1
    };
    let seal_1m = push(seal_in_place_op(p, pt, 1 << 20));
    let seal_4k = push(seal_in_place_op(p, pt, 4096));
    // Out of place, as the message engine calls the provider per frame.
    let chunk = 1 << 20;
    let key = p.aead_key(&[7u8; 32]).expect("aead key");
    let mut dst = vec![0u8; pt.len()];
    let seal_to = push(Box::new(move || {
        for (i, (s, o)) in pt.chunks(chunk).zip(dst.chunks_mut(chunk)).enumerate() {
            black_box(key.seal_to(&iv(i), &[0u8; 48], s, o).expect("seal"));
        }
    }));
    let key = p.aead_key(&[7u8; 32]).expect("aead key");
    let mut ct = pt.to_vec();
    let tags: Vec<[u8; 16]> = ct
        .chunks_mut(chunk)
        .enumerate()
        .map(|(i, c)| key.seal_in_place(&iv(i), &[0u8; 48], c).expect("seal"))
        .collect();
    let (ip_ct, ip_tags, r_ct) = (ct.clone(), tags.clone(), ct.clone());
    let mut back = vec![0u8; pt.len()];
    let open_all = move |key: &P::Aead, back: &mut [u8]| {
        for (i, (c, o)) in ct.chunks(chunk).zip(back.chunks_mut(chunk)).enumerate() {
            key.open_to(&iv(i), &[0u8; 48], c, &tags[i], o)
                .expect("open");
        }
    };
    // Checked once, outside the timed runs.
    open_all(&key, &mut back);
    assert!(back[..] == *pt, "raw AES-GCM round trip");
    // In place: each chunk's ciphertext is restored before it is opened (an opened buffer
    // holds plaintext); the restore alone is timed too and subtracted in `raw_figures`.
    let ip_key = p.aead_key(&[7u8; 32]).expect("aead key");
    let mut ip_buf = vec![0u8; chunk];
    let open_ip = push(Box::new(move || {
        for (i, c) in ip_ct.chunks(chunk).enumerate() {
            let b = &mut ip_buf[..c.len()];
            b.copy_from_slice(c);
            ip_key
                .open_in_place(&iv(i), &[0u8; 48], b, &ip_tags[i])
                .expect("open");
            black_box(&b[0]);
        }
    }));
    let mut r_buf = vec![0u8; chunk];
    let restore = push(Box::new(move || {
        for c in r_ct.chunks(chunk) {
            r_buf[..c.len()].copy_from_slice(c);
            black_box(&r_buf[0]);
        }
    }));
    let open_to = push(Box::new(move || open_all(&key, &mut back)));
    let sha384 = push(sha384_op(p, pt));
    RawSlots {
        seal_1m,
        seal_4k,
        seal_to,
        open_to,
        open_ip,
        restore,
        sha384,
    }
}

/// Raw AES-256-GCM in-place seal of `pt` in `chunk`-byte pieces.
fn seal_in_place_op<'a, P: CryptoProvider>(p: &'a P, pt: &[u8], chunk: usize) -> Op<'a> {
    let key = p.aead_key(&[7u8; 32]).expect("aead key");
    let mut buf = pt.to_vec();
    Box::new(move || {
        for (i, c) in buf.chunks_mut(chunk).enumerate() {
            black_box(key.seal_in_place(&iv(i), &[0u8; 48], c).expect("seal"));
        }
    })
}

/// SHA-384 of `pt` with the provider's message hasher.
fn sha384_op<'a, P: CryptoProvider>(p: &'a P, pt: &'a [u8]) -> Op<'a> {
    Box::new(move || {
        let mut h = p.hasher(SignatureAlg::EcdsaP384Sha384).expect("hasher");
        h.update(pt);
        let mut out = [0u8; 64];
        black_box(h.finalize_into(&mut out));
    })
}

fn raw_figures(s: &RawSlots, best: &[Best], len: usize) -> Raw {
    let m = |i: usize| mbps(len, best[i].one_thread());
    Raw {
        seal_1m: m(s.seal_1m),
        seal_4k: m(s.seal_4k),
        seal_to_1m: m(s.seal_to),
        open_to_1m: m(s.open_to),
        open_1m: mbps(
            len,
            best[s.open_ip]
                .one_thread()
                .saturating_sub(best[s.restore].one_thread())
                .max(Duration::from_nanos(1)),
        ),
        sha384: m(s.sha384),
    }
}

/// Where the ESDK figures are in the list of operations: `[suite][frame]` -> (encrypt,
/// decrypt), for the core API (one thread) and the std one-shot per thread count.
struct EsdkSlots {
    core: [[(usize, usize); 3]; 2],
    std: Vec<[[(usize, usize); 3]; 2]>,
    /// The 100-byte round trip, (unsigned, signed).
    small: (usize, usize),
}

/// The 100-byte round trips per timed call: (unsigned, signed).
const SMALL_N: (u32, u32) = (2000, 100);

/// The encryption context of every message.
const EC: [(&str, &str); 1] = [("purpose", "bench")];

/// The messages the in-memory decrypt operations read, `[suite * 3 + frame]`: the core
/// one-shot encrypt of `pt` (aws-lc).
fn messages(pt: &[u8], kr: &RawAesKeyring<'_>, cfg: &Config) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for suite in SUITES {
        for (frame, _) in FRAMES {
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(frame as u32);
            let len = encrypted_len(cfg, &opts, kr, &EC, pt.len()).expect("length");
            let mut ct = vec![0u8; len];
            let mut ec = EC;
            let n = esdk::core::encrypt(
                cfg,
                &esdk::DEFAULT_PROVIDER,
                kr,
                &opts,
                &mut ec,
                pt,
                &mut ct,
            )
            .expect("encrypt");
            ct.truncate(n);
            out.push(ct);
        }
    }
    out
}

/// Appends the ESDK operations (aws-lc, the std front end's provider) to `ops`; `cts` are
/// the [`messages`].
fn esdk_ops<'a>(
    pt: &'a [u8],
    kr: &'a RawAesKeyring<'a>,
    cfgs: &'a [Config],
    cts: &'a [Vec<u8>],
    ops: &mut Vec<Op<'a>>,
) -> EsdkSlots {
    let p = &esdk::DEFAULT_PROVIDER;
    let core_cfg = &cfgs[0];
    let mut push = |op: Op<'a>| {
        ops.push(op);
        ops.len() - 1
    };
    let mut core = [[(0, 0); 3]; 2];
    let mut std = vec![[[(0, 0); 3]; 2]; cfgs.len()];
    for (s, suite) in SUITES.into_iter().enumerate() {
        for (f, (frame, _)) in FRAMES.into_iter().enumerate() {
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(frame as u32);
            let ct = &cts[s * FRAMES.len() + f][..];
            // The core one-shot API in the caller's buffers.
            let mut scratch = vec![0u8; ct.len()];
            let enc = push(Box::new(move || {
                let mut ec = EC;
                let n = esdk::core::encrypt(core_cfg, p, kr, &opts, &mut ec, pt, &mut scratch)
                    .expect("encrypt");
                black_box(n);
            }));
            let mut out = vec![0u8; ct.len() + 64];
            // Checked once, outside the timed runs.
            let d = esdk::core::decrypt(core_cfg, p, kr, &[], ct, &mut out).expect("decrypt");
            assert!(out[..d.plaintext_len] == *pt, "core round trip");
            let dec = push(Box::new(move || {
                let d = esdk::core::decrypt(core_cfg, p, kr, &[], ct, &mut out).expect("decrypt");
                black_box(d.plaintext_len);
            }));
            core[s][f] = (enc, dec);
            // The std one-shot API, one message decrypted by every thread count.
            for (t, cfg) in cfgs.iter().enumerate() {
                // Checked once, outside the timed runs: each thread count's message
                // decrypts, and decrypts the common message, to the plaintext.
                let own = esdk::encrypt(cfg, kr, &opts, &EC, pt).expect("encrypt");
                for m in [&own[..], ct] {
                    let d = esdk::decrypt(cfg, kr, &[], m).expect("decrypt");
                    assert!(
                        d.plaintext[..] == *pt,
                        "std round trip, {} threads",
                        cfg.threads
                    );
                }
                // Into buffers kept across calls (`encrypt_into` / `decrypt_into`): a fresh
                // 64 MiB `Vec` per call costs more than the AES-GCM (its zero-fill and page
                // faults: the "fresh 64 MiB Vec" row), which would hide the engine.
                let mut msg_buf = own.clone();
                let enc = push(Box::new(move || {
                    esdk::encrypt_into(cfg, kr, &opts, &EC, pt, &mut msg_buf).expect("encrypt");
                    black_box(msg_buf.len());
                }));
                let mut pt_buf = pt.to_vec();
                let dec = push(Box::new(move || {
                    black_box(esdk::decrypt_into(cfg, kr, &[], ct, &mut pt_buf).expect("decrypt"));
                }));
                std[t][s][f] = (enc, dec);
            }
        }
    }
    // What a caller gets by default: `Config::new()`.
    let small = |suite: AlgorithmSuite, n: u32| -> Op<'a> {
        let opts = EncryptOptions::new().with_suite(suite);
        let cfg = Config::new();
        let msg = [0x5au8; 100];
        Box::new(move || {
            for _ in 0..n {
                let ct = esdk::encrypt(&cfg, kr, &opts, &EC, &msg).expect("encrypt");
                let d = esdk::decrypt(&cfg, kr, &[], &ct).expect("decrypt");
                black_box(d.plaintext.len());
            }
        })
    };
    let small = (
        push(small(UNSIGNED, SMALL_N.0)),
        push(small(SIGNED, SMALL_N.1)),
    );
    EsdkSlots { core, std, small }
}

/// In-memory ESDK figures, MB/s: `[suite][frame]` -> (encrypt, decrypt).
type Grid = [[(f64, f64); 3]; 2];

struct Esdk {
    /// The core API, one thread, by the thread's CPU time.
    core: Grid,
    /// The std one-shot per thread count: one thread by the thread's CPU time, more by wall.
    std: Vec<Grid>,
    /// (unsigned, signed) round trip in µs, by wall (the goals) and by the thread's CPU time.
    small: (f64, f64),
    small_cpu: (f64, f64),
}

fn esdk_figures(s: &EsdkSlots, best: &[Best], len: usize, threads: &[usize]) -> Esdk {
    let grid = |slots: &[[(usize, usize); 3]; 2], multi: bool| {
        let m = |i: usize| {
            let b = &best[i];
            mbps(len, if multi { b.wall } else { b.one_thread() })
        };
        let mut g = [[(0.0, 0.0); 3]; 2];
        for (row, slot_row) in g.iter_mut().zip(slots.iter()) {
            for (cell, &(e, d)) in row.iter_mut().zip(slot_row.iter()) {
                *cell = (m(e), m(d));
            }
        }
        g
    };
    let us = |i: usize, n: u32| best[i].wall.as_secs_f64() * 1e6 / f64::from(n);
    let us_cpu = |i: usize, n: u32| best[i].one_thread().as_secs_f64() * 1e6 / f64::from(n);
    Esdk {
        core: grid(&s.core, false),
        std: s
            .std
            .iter()
            .zip(threads)
            .map(|(slots, &t)| grid(slots, t > 1))
            .collect(),
        small: (us(s.small.0, SMALL_N.0), us(s.small.1, SMALL_N.1)),
        small_cpu: (us_cpu(s.small.0, SMALL_N.0), us_cpu(s.small.1, SMALL_N.1)),
    }
}

/// The Python interpreter with the official ESDK.
fn python(root: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ESDK_PEER_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("bash")
        .arg(root.join("scripts/python-peer.sh"))
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "python-peer.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Wall time and user + system CPU time of a process.
#[derive(Debug, Clone, Copy)]
struct Proc {
    wall: Duration,
    cpu: Option<Duration>,
}

impl Proc {
    const NONE: Self = Self {
        wall: Duration::MAX,
        cpu: None,
    };
}

/// A command of a comparison: program, arguments, and whether its standard output goes to
/// `/dev/null` (it writes the message or plaintext there with `-o -`).
#[derive(Clone)]
struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    stdout_null: bool,
}

impl Cmd {
    /// Runs the command to its successful end through `/usr/bin/time` (for its CPU time)
    /// when that exists, in `dir`.
    fn timed(&self, dir: &Path) -> Proc {
        let gnu_time = Path::new("/usr/bin/time");
        let report = dir.join("time.out");
        let mut cmd = if gnu_time.is_file() {
            let mut c = Command::new(gnu_time);
            c.arg("-f").arg("%U %S").arg("-o").arg(&report);
            c.arg(&self.program);
            c
        } else {
            Command::new(&self.program)
        };
        cmd.current_dir(dir).args(&self.args);
        let t = Instant::now();
        self.run(&mut cmd);
        let wall = t.elapsed();
        let cpu = fs::read_to_string(&report).ok().and_then(|s| {
            let v: Vec<f64> = s
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 2).then(|| Duration::from_secs_f64(v[0] + v[1]))
        });
        let _ = fs::remove_file(&report);
        Proc { wall, cpu }
    }

    /// Runs the command directly (no CPU time): wall time alone.
    fn wall(&self, dir: &Path) -> Duration {
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(dir).args(&self.args);
        let t = Instant::now();
        self.run(&mut cmd);
        t.elapsed()
    }

    fn run(&self, cmd: &mut Command) {
        let stdout = if self.stdout_null {
            Stdio::from(fs::File::create("/dev/null").expect("/dev/null"))
        } else {
            Stdio::null()
        };
        let out = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .expect("spawn");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

/// How the `esdk` tool is run and compared.
struct Cli<'a> {
    dir: &'a Path,
    esdk: PathBuf,
    python: Option<PathBuf>,
    peer: PathBuf,
    key_hex: String,
    /// Where `--threads` goes: after the subcommand (`esdk encrypt --help` and `esdk decrypt
    /// --help` list it), before it (only `esdk --help` does), or nowhere (the tool has no such
    /// option: the report then says n/a).
    threads_at: Option<ThreadsAt>,
}

/// Where the `esdk` tool takes `--threads`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ThreadsAt {
    BeforeMode,
    AfterMode,
}

impl Cli<'_> {
    /// `esdk MODE` with the shared key from `input` to `output` (`-` = `/dev/null`), with
    /// `--threads t` when `threads` is `Some(t)` and the tool has the option.
    fn ours(
        &self,
        mode: &str,
        extra: &[&str],
        threads: Option<usize>,
        input: &str,
        output: &str,
    ) -> Cmd {
        let flag = threads.map(|t| os(&["--threads", &t.to_string()]));
        let mut args = Vec::new();
        if self.threads_at == Some(ThreadsAt::BeforeMode) {
            args.extend(flag.iter().flatten().cloned());
        }
        args.extend(os(&[
            mode,
            "--raw-aes-key",
            "k.bin",
            "--key-namespace",
            "peer-ns",
            "--key-name",
            "peer-key",
            "-q",
            "-i",
            input,
            "-o",
            output,
        ]));
        args.extend(os(extra));
        if self.threads_at == Some(ThreadsAt::AfterMode) {
            args.extend(flag.into_iter().flatten());
        }
        Cmd {
            program: self.esdk.clone(),
            args,
            stdout_null: output == "-",
        }
    }

    /// The Python ESDK peer in `mode` from `input` to `output`.
    fn theirs(&self, mode: &str, extra: &[&str], input: &str, output: &str) -> Option<Cmd> {
        let mut args = vec![self.peer.clone().into_os_string()];
        args.extend(os(&[
            mode,
            "-i",
            input,
            "-o",
            output,
            "--aes-key",
            &self.key_hex,
        ]));
        args.extend(os(extra));
        Some(Cmd {
            program: self.python.clone()?,
            args,
            stdout_null: false,
        })
    }
}

/// One whole-process comparison: a suite at a frame size.
struct CliCase {
    suite: &'static str,
    frame: usize,
    frame_name: &'static str,
    /// Python runs (its first writes the file the other side decrypts).
    py_runs: usize,
}

const CLI_CASES: [CliCase; 3] = [
    CliCase {
        suite: "0x0478",
        frame: 4096,
        frame_name: "4 KiB",
        py_runs: 1,
    },
    CliCase {
        suite: "0x0478",
        frame: 1 << 20,
        frame_name: "1 MiB",
        py_runs: 2,
    },
    CliCase {
        suite: "0x0578",
        frame: 1 << 20,
        frame_name: "1 MiB",
        py_runs: 1,
    },
];

/// Rounds of our CLI commands per case (after an untimed run that writes the message the
/// Python ESDK decrypts); the best by wall counts.
const CLI_RUNS: usize = 3;

/// The figures of one case: per thread setting (encrypt, decrypt), then Python's.
struct CliResult {
    ours: Vec<(Proc, Proc)>,
    python: Option<(Proc, Proc)>,
    /// aws-lc raw AES-GCM in-place seal (1 MiB chunks) and SHA-384 of 64 MiB, single core,
    /// timed in the same rounds: MB/s.
    raw_seal_1m: f64,
    sha384: f64,
}

struct CliFigures {
    mib: usize,
    dir_kind: &'static str,
    /// `Some(n)` per column when `--threads n` is passed; `None`: the tool has no such option.
    threads: Vec<Option<usize>>,
    cases: Vec<CliResult>,
    py_startup: Option<Proc>,
    /// Whole `esdk encrypt` of a 100-byte file, best wall: (0x0578 default, 0x0478), then
    /// `esdk decrypt` of the 0x0578 message.
    small: (Duration, Duration, Duration),
}

/// Runs of the 100-byte process commands; the best by wall counts.
const SMALL_RUNS: usize = 20;

/// The whole-process part: our CLI against the Python ESDK, and the 100-byte processes.
fn cli_report(mib: usize, threads: &[usize]) -> CliFigures {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shm = Path::new("/dev/shm");
    let (dir, dir_kind) = if shm.is_dir() {
        (
            tempfile::Builder::new()
                .prefix("esdk-bench")
                .tempdir_in(shm)
                .expect("tempdir"),
            "/dev/shm",
        )
    } else {
        (tempfile::TempDir::new().expect("tempdir"), "a temp dir")
    };
    let d = dir.path();
    let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(29) ^ 0x3c).collect();
    fs::write(d.join("k.bin"), &key).expect("key");
    let peer = std::env::var_os("ESDK_TEST_PYESDK_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/peers/pyesdk_peer.py"));
    let python = if peer.is_file() {
        python(&root)
    } else {
        eprintln!("no Python peer at {}", peer.display());
        None
    };
    let esdk_bin = std::env::var_os("ESDK_BENCH_ESDK")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_esdk")), PathBuf::from);
    let lists_threads = |args: &[&str]| {
        let help = Command::new(&esdk_bin)
            .args(args)
            .output()
            .expect("esdk --help");
        String::from_utf8_lossy(&help.stdout).contains("--threads")
    };
    let threads_at =
        if lists_threads(&["encrypt", "--help"]) && lists_threads(&["decrypt", "--help"]) {
            Some(ThreadsAt::AfterMode)
        } else if lists_threads(&["--help"]) {
            Some(ThreadsAt::BeforeMode)
        } else {
            None
        };
    let cli = Cli {
        dir: d,
        esdk: esdk_bin,
        python,
        peer,
        key_hex: key.iter().map(|b| format!("{b:02x}")).collect(),
        threads_at,
    };
    let columns: Vec<Option<usize>> = if threads_at.is_some() {
        threads.iter().map(|&t| Some(t)).collect()
    } else {
        vec![None]
    };

    // The 100-byte processes first, on a quiet page cache.
    fs::write(d.join("small"), [0x5au8; 100]).expect("small file");
    let enc_default = cli.ours("encrypt", &[], None, "small", "-");
    let enc_0478 = cli.ours("encrypt", &["--suite", "0x0478"], None, "small", "-");
    run_ok(&cli.ours("encrypt", &[], None, "small", "small.ct"), d);
    let dec_default = cli.ours("decrypt", &[], None, "small.ct", "-");
    let mut small = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..SMALL_RUNS {
        small.0 = small.0.min(enc_default.wall(d));
        small.1 = small.1.min(enc_0478.wall(d));
        small.2 = small.2.min(dec_default.wall(d));
    }

    let size = mib << 20;
    let mut pt = vec![0u8; size];
    esdk::OsRng.fill_random(&mut pt[..1 << 20]).expect("rng");
    for i in 1..mib {
        pt.copy_within(..1 << 20, i << 20);
        pt[i << 20] ^= i as u8;
    }
    fs::write(d.join("pt"), &pt).expect("plaintext");
    // The single-core anchors, timed in the same rounds as the processes.
    let anchor_pt: Vec<u8> = pt[..size.min(64 << 20)].to_vec();
    let p = &esdk::DEFAULT_PROVIDER;
    let mut anchors: [Op<'_>; 2] = [
        seal_in_place_op(p, &anchor_pt, 1 << 20),
        sha384_op(p, &anchor_pt),
    ];
    let cases = CLI_CASES
        .iter()
        .map(|case| cli_case(&cli, case, &columns, &pt, &mut anchors, anchor_pt.len()))
        .collect();
    let py_startup = cli.python.as_ref().map(|py| {
        Cmd {
            program: py.clone(),
            args: os(&["-c", "import aws_encryption_sdk"]),
            stdout_null: false,
        }
        .timed(d)
    });
    CliFigures {
        mib,
        dir_kind,
        threads: columns,
        cases,
        py_startup,
        small,
    }
}

fn run_ok(cmd: &Cmd, dir: &Path) {
    let mut c = Command::new(&cmd.program);
    c.current_dir(dir).args(&cmd.args);
    cmd.run(&mut c);
}

/// Checks that `file` in `dir` holds `pt`, then removes it.
fn check_plaintext(dir: &Path, file: &str, pt: &[u8], who: &str) {
    let path = dir.join(file);
    assert!(
        fs::read(&path).expect("read") == pt,
        "{who} decrypted the other side's message wrongly"
    );
    let _ = fs::remove_file(path);
}

/// One case: [`CLI_RUNS`] rounds of our encrypt and decrypt per thread setting, the Python
/// ESDK's in the first `case.py_runs` rounds, and the anchors in every round.
fn cli_case(
    cli: &Cli<'_>,
    case: &CliCase,
    columns: &[Option<usize>],
    pt: &[u8],
    anchors: &mut [Op<'_>; 2],
    anchor_len: usize,
) -> CliResult {
    let d = cli.dir;
    let frame = case.frame.to_string();
    let enc_extra = ["--suite", case.suite, "--frame-length", &frame];
    let signed = case.suite == "0x0578";
    // Our message, for the Python ESDK to decrypt (untimed; warms the page cache).
    let last = *columns.last().expect("a column");
    run_ok(&cli.ours("encrypt", &enc_extra, last, "pt", "ours.ct"), d);
    // A signed message's plaintext goes to /dev/null as it verifies frame by frame.
    let dec_base: &[&str] = if signed {
        &["--stream-unverified"]
    } else {
        &[]
    };
    let ops: Vec<(Cmd, Cmd)> = columns
        .iter()
        .map(|&t| {
            (
                cli.ours("encrypt", &enc_extra, t, "pt", "-"),
                cli.ours("decrypt", dec_base, t, "py.ct", "-"),
            )
        })
        .collect();
    let py = |out_enc: &str, out_dec: &str| {
        Some((
            cli.theirs("encrypt", &enc_extra, "pt", out_enc)?,
            cli.theirs("decrypt", &[], "ours.ct", out_dec)?,
        ))
    };
    // The Python ESDK's first run writes the files checked and decrypted by the other side,
    // its later runs /dev/null.
    let (py_first, py_later) = (py("py.ct", "py.out"), py("/dev/null", "/dev/null"));
    let mut ours = vec![(Proc::NONE, Proc::NONE); columns.len()];
    let mut python = py_first.as_ref().map(|_| (Proc::NONE, Proc::NONE));
    let mut anchor_best = [Best::NONE; 2];
    let best = |b: &mut Proc, p: Proc| {
        if p.wall < b.wall {
            *b = p;
        }
    };
    for round in 0..CLI_RUNS.max(case.py_runs) {
        for (b, a) in anchor_best.iter_mut().zip(anchors.iter_mut()) {
            let (wall, cpu) = time_once(a.as_mut());
            b.add(wall, cpu);
        }
        let py_cmds = match round {
            0 => py_first.as_ref(),
            r if r < case.py_runs => py_later.as_ref(),
            _ => None,
        };
        if round < CLI_RUNS {
            for (b, (e, _)) in ours.iter_mut().zip(&ops) {
                best(&mut b.0, e.timed(d));
            }
        }
        if let (Some((e, _)), Some(b)) = (py_cmds, python.as_mut()) {
            best(&mut b.0, e.timed(d));
        }
        if round == 0 && python.is_none() {
            // No Python ESDK: our decrypt reads our own message.
            fs::copy(d.join("ours.ct"), d.join("py.ct")).expect("copy");
        }
        if round < CLI_RUNS {
            for (b, (_, dc)) in ours.iter_mut().zip(&ops) {
                best(&mut b.1, dc.timed(d));
            }
        }
        if let (Some((_, dc)), Some(b)) = (py_cmds, python.as_mut()) {
            best(&mut b.1, dc.timed(d));
        }
    }
    // Each side decrypted the other's message: check both plaintexts (ours untimed, to a
    // file).
    run_ok(&cli.ours("decrypt", &[], None, "py.ct", "ours.out"), d);
    check_plaintext(d, "ours.out", pt, "esdk");
    if python.is_some() {
        check_plaintext(d, "py.out", pt, "the Python ESDK");
    }
    for f in ["ours.ct", "py.ct"] {
        let _ = fs::remove_file(d.join(f));
    }
    CliResult {
        ours,
        python,
        raw_seal_1m: mbps(anchor_len, anchor_best[0].one_thread()),
        sha384: mbps(anchor_len, anchor_best[1].one_thread()),
    }
}

/// The 1-, 5- and 15-minute load averages.
fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn main() {
    let mib = env_usize("ESDK_BENCH_MIB", 64);
    let cli_mib = env_usize("ESDK_BENCH_CLI_MIB", 256);
    let size = mib << 20;
    let threads = thread_counts();
    let n = *threads.last().expect("a thread count");
    let pt: Vec<u8> = (0..size).map(|i| (i * 131 + 17) as u8).collect();
    let thread_timing = if thread_cpu().is_some() {
        "the benchmark thread's CPU time"
    } else {
        "wall time (no thread CPU clock here)"
    };
    println!(
        "esdk performance report: {mib} MiB in memory, best of {RUNS} interleaved rounds; \
         1 thread and raw primitives by {thread_timing}, {n} threads by wall time; \
         MB/s = 10^6 bytes/s of plaintext. The C ESDK is not part of this report (none on CI): \
         it is compared by hand."
    );
    println!(
        "threads: 1 and {n} (available parallelism); load average at start: {}",
        load()
    );
    let key = [9u8; 32];
    let kr = RawAesKeyring::new("bench", "key", &key).expect("keyring");
    let rustcrypto = RustCrypto::new(esdk::OsRng);
    let aws_lc = esdk::DEFAULT_PROVIDER;
    let cfgs: Vec<Config> = threads
        .iter()
        .map(|&t| Config::new().with_threads(t))
        .collect();
    let cts = messages(&pt, &kr, &cfgs[0]);
    let mut ops: Vec<Op<'_>> = Vec::new();
    let rc_slots = raw_ops(&rustcrypto, &pt, &mut ops);
    let al_slots = raw_ops(&aws_lc, &pt, &mut ops);
    let es_slots = esdk_ops(&pt, &kr, &cfgs, &cts, &mut ops);
    // What the std one-shot pays before any cryptography: a fresh output Vec of the
    // message's size, zero-filled (above glibc's largest mmap threshold, 32 MiB, every call
    // maps new pages and faults them in).
    ops.push(Box::new(|| {
        // As `esdk::encrypt` grows its output: `resize` writes the zeros (`vec![0; n]`
        // would map zero pages lazily and time nothing).
        #[allow(clippy::slow_vector_initialization)]
        let v = {
            let mut v: Vec<u8> = Vec::with_capacity(size);
            v.resize(size, 0);
            v
        };
        black_box(&v);
    }));
    let fresh_vec = ops.len() - 1;
    let best = round_robin(&mut ops);
    drop(ops);
    let rc = raw_figures(&rc_slots, &best, size);
    let al = raw_figures(&al_slots, &best, size);
    let es = esdk_figures(&es_slots, &best, size, &threads);

    println!();
    println!(
        "{:<44} {:>10} {:>12} {:>8}",
        "primitive, one core, MB/s", "aws-lc", "rustcrypto", "ratio"
    );
    let row =
        |name: &str, a: f64, r: f64| println!("{name:<44} {a:>10.0} {r:>12.0} {:>7.2}x", a / r);
    row(
        "raw AES-256-GCM seal in place, 1 MiB chunks",
        al.seal_1m,
        rc.seal_1m,
    );
    row(
        "raw AES-256-GCM seal in place, 4 KiB chunks",
        al.seal_4k,
        rc.seal_4k,
    );
    row(
        "raw AES-256-GCM seal_to (out of place) 1 MiB",
        al.seal_to_1m,
        rc.seal_to_1m,
    );
    row(
        "raw AES-256-GCM open_to (out of place) 1 MiB",
        al.open_to_1m,
        rc.open_to_1m,
    );
    row(
        "raw AES-256-GCM open in place 1 MiB",
        al.open_1m,
        rc.open_1m,
    );
    row("SHA-384", al.sha384, rc.sha384);
    println!(
        "{:<44} {:>10.0}   (provider-independent: the std one-shot's output allocation)",
        format!("fresh {mib} MiB Vec, resize(n, 0)"),
        mbps(size, best[fresh_vec].one_thread())
    );

    println!();
    println!(
        "in memory, aws-lc, MB/s (x anchor: 0x0478 / raw AES-GCM seal in place with the same chunking, \
         0x0578 / SHA-384, both aws-lc one core)"
    );
    let mut head = format!("{:<13} | {:<29}", "", "core API, 1 thread (CPU)");
    let mut sub = format!(
        "{:<6} {:>6} | {:>14} {:>14}",
        "suite", "frame", "enc", "dec"
    );
    for &t in &threads {
        let name = if t > 1 {
            format!("esdk::*_into, {t} threads (wall)")
        } else {
            "esdk::*_into, 1 thread (CPU)".to_owned()
        };
        head += &format!(" | {name:<29}");
        sub += &format!(" | {:>14} {:>14}", "enc", "dec");
    }
    println!("{head}");
    println!("{sub}");
    let cell = |v: f64, anchor: f64| format!("{v:>6.0} ({:>4.2}x)", v / anchor);
    for (s, suite) in SUITES.into_iter().enumerate() {
        for (f, (_, name)) in FRAMES.into_iter().enumerate() {
            let a = al.anchor(s, f);
            let pair = |g: &Grid| {
                let (e, d) = g[s][f];
                format!("{} {}", cell(e, a), cell(d, a))
            };
            let mut line = format!("{:<6} {name:>6} | {}", format!("{suite}"), pair(&es.core));
            for g in &es.std {
                line += &format!(" | {}", pair(g));
            }
            println!("{line}");
        }
    }
    println!();
    println!(
        "100-byte round trip in process (esdk::encrypt + esdk::decrypt, Config::new()), µs by \
         wall (CPU time of the thread): 0x0478 {:.1} ({:.1}), 0x0578 {:.1} ({:.1})",
        es.small.0, es.small_cpu.0, es.small.1, es.small_cpu.1
    );

    let cli = (cli_mib > 0).then(|| cli_report(cli_mib, &threads));
    if let Some(c) = &cli {
        print_cli(c);
    }

    println!();
    println!("load average at end: {}", load());
    println!("goals (issue #16):");
    let g = |ok: bool, text: String| println!("  {} {text}", verdict(ok));
    let multi = es.std.last().expect("a thread count");
    for (f, want) in [(F1M, 1.6), (0, 1.4)] {
        let (e, d) = multi[0][f];
        let a = al.anchor(0, f);
        g(
            e.min(d) >= want * a,
            format!(
                "in memory, {n} threads, 0x0478 @{} >= {want} x raw AES-GCM one core ({a:.0} MB/s): \
                 enc {e:.0} = {:.2}x, dec {d:.0} = {:.2}x",
                FRAMES[f].1,
                e / a,
                d / a
            ),
        );
    }
    let (e, d) = multi[1][F1M];
    g(
        e.min(d) >= 0.95 * al.sha384,
        format!(
            "in memory, {n} threads, 0x0578 @1 MiB >= 0.95 x SHA-384 one core ({:.0} MB/s): \
             enc {e:.0} = {:.2}x, dec {d:.0} = {:.2}x",
            al.sha384,
            e / al.sha384,
            d / al.sha384
        ),
    );
    match &cli {
        Some(c) => cli_goals(c, &g),
        None => println!("  (whole-process goals: not measured, ESDK_BENCH_CLI_MIB=0)"),
    }
    g(
        es.small.0 <= 10.0,
        format!(
            "in-process 100-byte round trip unsigned (0x0478) <= 10 µs: {:.1} µs",
            es.small.0
        ),
    );
    g(
        es.small.1 <= 600.0,
        format!(
            "in-process 100-byte round trip signed (0x0578) <= 600 µs: {:.1} µs",
            es.small.1
        ),
    );
}

/// A column's name: the `--threads` passed, or none.
fn column_name(t: Option<usize>) -> String {
    t.map_or("no --threads (n/a)".to_owned(), |t| {
        format!("--threads {t}")
    })
}

fn print_cli(c: &CliFigures) {
    let bytes = c.mib << 20;
    let secs = |d: Duration| d.as_secs_f64();
    let fig = |p: &Proc| {
        format!(
            "{:>7.3}s {:>6} {:>5.0}",
            secs(p.wall),
            p.cpu.map_or("?".to_owned(), |d| format!("{:.2}s", secs(d))),
            mbps(bytes, p.wall)
        )
    };
    println!();
    println!(
        "whole `esdk` process, {} MiB file in {}, output `-o -` to /dev/null (0x0578 decrypt: \
         --stream-unverified); esdk best of {CLI_RUNS} rounds by wall, interleaved with the \
         Python ESDK (its first run writes the file the other side decrypts, later runs \
         /dev/null); each side decrypts the other's message, both plaintexts checked",
        c.mib, c.dir_kind
    );
    if c.threads == [None] {
        println!(
            "  (`esdk` has no --threads option on this build: its default is measured; \
             --threads N n/a)"
        );
    }
    let mut head = format!("{:<26}", "wall, CPU (user+sys), MB/s");
    for &t in &c.threads {
        head += &format!(" | {:^22}", column_name(t));
    }
    head += &format!(" | {:^22} | {:>8}", "Python ESDK", "x Python");
    println!("{head}");
    for (case, r) in CLI_CASES.iter().zip(&c.cases) {
        for (op, i) in [("encrypt", 0), ("decrypt", 1)] {
            let pick = |p: &(Proc, Proc)| if i == 0 { p.0 } else { p.1 };
            let mut line = format!(
                "{:<26}",
                format!("{} {:>5} {op}", case.suite, case.frame_name)
            );
            for p in &r.ours {
                line += &format!(" | {}", fig(&pick(p)));
            }
            match &r.python {
                Some(p) => {
                    let last = pick(r.ours.last().expect("a column"));
                    line += &format!(
                        " | {} | {:>7.1}x",
                        fig(&pick(p)),
                        secs(pick(p).wall) / secs(last.wall)
                    );
                }
                None => line += &format!(" | {:^22} | {:>8}", "n/a", "n/a"),
            }
            println!("{line}");
        }
    }
    let anchors: Vec<String> = c
        .cases
        .iter()
        .map(|r| format!("{:.0}/{:.0}", r.raw_seal_1m, r.sha384))
        .collect();
    println!(
        "  anchors timed in the same rounds, aws-lc one core, raw AES-GCM seal 1 MiB / SHA-384 MB/s: {}",
        anchors.join(", ")
    );
    match &c.py_startup {
        Some(p) => println!(
            "  (Python interpreter start + `import aws_encryption_sdk` alone: {:.2} s wall, {} s CPU)",
            secs(p.wall),
            p.cpu.map_or("?".to_owned(), |d| format!("{:.2}", secs(d)))
        ),
        None => println!("  (no Python ESDK: see the message above; Python columns n/a)"),
    }
    println!();
    println!(
        "100-byte file, whole process, best of {SMALL_RUNS} by wall, default threads, `-o -` to \
         /dev/null: esdk encrypt 0x0578 (default) {:.1} ms, 0x0478 {:.1} ms; esdk decrypt 0x0578 {:.1} ms",
        secs(c.small.0) * 1e3,
        secs(c.small.1) * 1e3,
        secs(c.small.2) * 1e3
    );
}

fn cli_goals(c: &CliFigures, g: &dyn Fn(bool, String)) {
    let secs = |d: Duration| d.as_secs_f64();
    let bytes = c.mib << 20;
    let col = column_name(*c.threads.last().expect("a column"));
    let unsigned = &c.cases[1];
    let (e, d) = *unsigned.ours.last().expect("a column");
    let (me, md) = (mbps(bytes, e.wall), mbps(bytes, d.wall));
    let a = unsigned.raw_seal_1m;
    g(
        me.min(md) >= a,
        format!(
            "whole process, {col}, 0x0478 @1 MiB >= 1.0 x raw AES-GCM one core ({a:.0} MB/s): \
             encrypt {me:.0} = {:.2}x, decrypt {md:.0} = {:.2}x",
            me / a,
            md / a
        ),
    );
    match &unsigned.python {
        Some((pe, pd)) => {
            let (re, rd) = (secs(pe.wall) / secs(e.wall), secs(pd.wall) / secs(d.wall));
            g(
                re.min(rd) >= 10.0,
                format!(
                    "whole process, {col}, 0x0478 @1 MiB >= 10 x the Python ESDK (wall): \
                     encrypt {re:.1}x, decrypt {rd:.1}x"
                ),
            );
        }
        None => g(
            false,
            "whole process 0x0478 @1 MiB >= 10 x the Python ESDK: not measured, no Python ESDK"
                .to_owned(),
        ),
    }
    let signed = &c.cases[2];
    let (e, d) = *signed.ours.last().expect("a column");
    let (me, md) = (mbps(bytes, e.wall), mbps(bytes, d.wall));
    let h = signed.sha384;
    g(
        me.min(md) >= 0.95 * h,
        format!(
            "whole process, {col}, 0x0578 @1 MiB >= 0.95 x SHA-384 one core ({h:.0} MB/s): \
             encrypt {me:.0} = {:.2}x, decrypt {md:.0} = {:.2}x",
            me / h,
            md / h
        ),
    );
    let worst = c.small.0.max(c.small.1);
    g(
        worst <= Duration::from_millis(5),
        format!(
            "`esdk encrypt` of 100 bytes <= 5 ms wall: 0x0578 {:.1} ms, 0x0478 {:.1} ms",
            secs(c.small.0) * 1e3,
            secs(c.small.1) * 1e3
        ),
    );
}
