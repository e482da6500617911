//! Decryption: the incremental, sans-I/O [`Decryptor`] and the one-shot [`decrypt`]
//! (spec `client-apis/decrypt.md`).

use zeroize::Zeroize;

use crate::body::{self, BodyKind};
use crate::config::Config;
use crate::encryption_context::{self, ContextView, PUBLIC_KEY_CONTEXT_KEY};
use crate::error::{ApiMisuse, Error, KeyringError, Malformed, PolicyViolation};
use crate::frames::{Absorbed, FrameCipher, FrameSlot, KeyBytes, Located};
use crate::header::{self, ContentType, Header, ParseLimits, Parsed};
use crate::kdf;
use crate::keyring::CryptoMaterialsManager;
use crate::materials::{DataKey, DecryptionMaterials};
use crate::provider::CryptoProvider;
use crate::random_access::{Layout, RandomAccessOptions};
use crate::signature::Verifier;
use crate::suite::AlgorithmSuite;

/// What the last [`Decryptor::process`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes consumed: drop them before the next call.
    pub consumed: usize,
    /// Plaintext bytes written at the start of `out`.
    pub written: usize,
    /// Where the decryptor stands.
    pub status: Status,
}

/// State reported by [`Decryptor::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The input must hold at least `min` bytes (counted from its start) for the next step.
    NeedInput {
        /// Minimum input length for the next step.
        min: usize,
    },
    /// The header is complete and its policies passed; the decryptor waits for the data
    /// key. Nothing was consumed: keep the input. Get the materials with
    /// [`Decryptor::decryption_materials`], have a keyring (sync or async) decrypt one EDK,
    /// give the key to [`Decryptor::set_data_key`] and call `process` again with the same
    /// input. ([`Decryptor::process_with`] does all of it with a synchronous CMM and never
    /// returns this status.)
    NeedDataKey,
    /// The header was authenticated with the data key; `consumed` is its length.
    Header,
    /// `written` bytes of plaintext of a regular frame were released.
    Plaintext {
        /// `false` for regular frames of a signed message: their tag verified, but the
        /// signature over the whole message is checked only at the end. Treat such
        /// plaintext as unverified until [`Status::Done`], and discard it if an error comes.
        verified: bool,
    },
    /// The message is complete and fully verified (signature included); `written` bytes of
    /// plaintext of the final frame (or non-framed body) were released with this status.
    /// Any further input is not part of the message.
    Done,
}

struct Body<P: CryptoProvider> {
    suite: AlgorithmSuite,
    cipher: FrameCipher<P::Aead>,
    /// The message key, for more ciphers ([`Decryptor::frame_cipher`]).
    key: KeyBytes,
    framed: bool,
    frame_len: u32,
    /// Length of the header, for [`Decryptor::random_access`].
    header_len: usize,
    /// The sequence number of the next unit to locate.
    next_seq: u32,
    /// The final unit was located; `footer_len`: the footer bytes after it.
    final_located: bool,
    footer_len: usize,
    /// The frames given back for the message hash.
    absorbed: Absorbed,
    verifier: Option<Verifier<P>>,
}

enum State<P: CryptoProvider> {
    /// Reading the header (what the earlier calls already checked is in `header_progress`).
    Header,
    /// The header is complete and its policies passed; the contexts are not checked yet.
    NeedKey,
    /// The contexts were checked and the materials handed out; waiting for the data key.
    /// `extras`: the reproduced context adds pairs the message does not store.
    AwaitKey {
        suite: AlgorithmSuite,
        extras: bool,
    },
    /// The data key arrived; the next `process` authenticates the header with it.
    KeyReady {
        key: DataKey,
        extras: bool,
    },
    Body(Body<P>),
    Done(AlgorithmSuite),
    Failed(Error),
}

/// Incremental decryption, one unit (header, frame, final frame with footer) per call,
/// from caller input slices into caller output slices, with no heap.
///
/// Contract:
/// - pass the unconsumed input at each call, starting at the message's first byte; drop
///   [`Progress::consumed`] bytes from its front before the next call (the header step
///   remembers what it already checked of the bytes it was given, so that a header fed in
///   small pieces costs linear time: the bytes must not change between calls);
/// - [`Status::NeedInput`] means more input is needed; when there is no more, the message
///   is truncated;
/// - [`Status::NeedDataKey`] means the header is complete and waits for its data key: get
///   it through [`decryption_materials`](Self::decryption_materials) and
///   [`set_data_key`](Self::set_data_key), or let [`process_with`](Self::process_with) do it
///   with a synchronous CMM;
/// - `out` must hold the step's plaintext (at most the frame length); a smaller one gives
///   [`Error::BufferTooSmall`] and the call had no effect. The materials step
///   ([`decryption_materials`](Self::decryption_materials)) also uses `out` as scratch for the full encryption context in canonical form when the reproduced
///   context adds pairs not stored in the message, or the stored context is not sorted:
///   it then needs that context's serialized length, which `BufferTooSmall { required }`
///   reports (there is no heap to put it elsewhere). The context checks (duplicate keys in
///   an unsorted stored context or in the reproduced one, the match of the two) sort u16
///   indexes in `out` (2 bytes per pair, never more than that length) in O(n log n) key
///   comparisons ([`Decryptor::context_comparisons`]); with a smaller `out` they take a
///   bounded path without scratch (at most a few million comparisons for 64 KiB contexts).
///   The checks run once per message unless `BufferTooSmall` asks for a retry;
/// - after any other error the decryptor is poisoned and returns that error again;
/// - plaintext is released only after its frame's tag verified; for signed suites the final
///   frame (and a non-framed body) only after the signature verified as well.
pub struct Decryptor<'a, P: CryptoProvider> {
    cfg: &'a Config,
    provider: &'a P,
    reproduced: &'a [(&'a str, &'a str)],
    state: State<P>,
    offset: usize,
    observer: Option<&'a mut (dyn FnMut(crate::error::Attempt) + Send)>,
    /// What the header parse already checked (kept after the header, so that the one-shot
    /// [`decrypt`] can return the header without checking it again).
    header_progress: header::ParseProgress,
    /// Key comparisons of the encryption-context checks.
    work: u64,
}

impl<P: CryptoProvider> core::fmt::Debug for Decryptor<'_, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match &self.state {
            State::Header => "header",
            State::NeedKey | State::AwaitKey { .. } => "waiting for the data key",
            State::KeyReady { .. } => "data key ready",
            State::Body(_) => "body",
            State::Done(_) => "done",
            State::Failed(_) => "failed",
        };
        f.debug_struct("Decryptor")
            .field("state", &state)
            .field("offset", &self.offset)
            .field("context_comparisons", &self.context_comparisons())
            .finish()
    }
}

impl<'a, P: CryptoProvider> Decryptor<'a, P> {
    /// A decryptor for one message. `reproduced_context` is the encryption context the
    /// caller expects: pairs stored in the message must match it, and pairs the message
    /// does not store (required encryption context) are authenticated from it.
    pub fn new(
        cfg: &'a Config,
        provider: &'a P,
        reproduced_context: &'a [(&'a str, &'a str)],
    ) -> Self {
        Self {
            cfg,
            provider,
            reproduced: reproduced_context,
            state: State::Header,
            offset: 0,
            observer: None,
            header_progress: header::ParseProgress::deferring(),
            work: 0,
        }
    }

    /// Key comparisons made so far by the checks of the encryption contexts (the stored
    /// one's duplicate-key check when it arrived unsorted, the reproduced one's duplicate-key
    /// check and its match against the stored one, the sort of the full context), beyond the
    /// linear parse. O(n log n) in the pair counts when `out` can lend the scratch the header
    /// step asks for; deterministic, for tests and benchmarks of hostile headers.
    pub fn context_comparisons(&self) -> u64 {
        self.work + self.header_progress.context_comparisons()
    }

    /// Calls `observer` with every failed attempt of a keyring on an EDK, in order, with no
    /// bound (the error's own record keeps the first
    /// [`Attempts::CAPACITY`](crate::error::Attempts::CAPACITY)). Lets a std caller list
    /// them all. The materials [`decryption_materials`](Self::decryption_materials) hands
    /// out report to it.
    pub fn with_attempt_observer(
        mut self,
        observer: &'a mut (dyn FnMut(crate::error::Attempt) + Send),
    ) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The message's suite, once the header is processed.
    pub fn suite(&self) -> Option<AlgorithmSuite> {
        match &self.state {
            State::Body(b) => Some(b.suite),
            State::Done(s) => Some(*s),
            _ => None,
        }
    }

    /// The frame length of a framed message (plaintext bytes per regular frame), once the
    /// header is authenticated and while the body is processed; `None` before, after, and
    /// for a non-framed message.
    pub fn frame_length(&self) -> Option<u32> {
        match &self.state {
            State::Body(b) if b.framed => Some(b.frame_len),
            _ => None,
        }
    }

    /// Whether the decryptor waits for the data key ([`Status::NeedDataKey`]).
    pub fn needs_data_key(&self) -> bool {
        matches!(self.state, State::NeedKey | State::AwaitKey { .. })
    }

    /// Total input bytes consumed so far.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether the message is complete.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// Runs the next step on `input` (the unconsumed bytes) and writes any plaintext to
    /// `out`.
    ///
    /// # Errors
    /// The first check that failed, with the message offset or frame number;
    /// [`Error::BufferTooSmall`] (retry with a larger `out`).
    pub fn process(&mut self, input: &[u8], out: &mut [u8]) -> Result<Progress, Error> {
        let r = match &mut self.state {
            State::Failed(e) => return Err(*e),
            State::Done(_) => {
                return Ok(Progress {
                    consumed: 0,
                    written: 0,
                    status: Status::Done,
                });
            }
            State::Header => self.header_step(input),
            State::NeedKey | State::AwaitKey { .. } => Ok(Progress {
                consumed: 0,
                written: 0,
                status: Status::NeedDataKey,
            }),
            State::KeyReady { .. } => {
                let r = self.open_step(input, out);
                // The header step moved the message key between its frames (a move does not
                // wipe its source): wiped here, before later steps build values over those
                // stack bytes — a state written later (`Done`) would copy them into the
                // decryptor's memory, where no drop wipes them.
                crate::materials::scrub_stack();
                r
            }
            State::Body(_) => self.body_step(input, out),
        };
        match r {
            Ok(mut p) => {
                if let Status::NeedInput { min } = &mut p.status {
                    // Always ask for more than was given, so a caller that feeds exactly
                    // `min` bytes makes progress.
                    *min = (*min).max(input.len() + 1);
                }
                self.offset += p.consumed;
                Ok(p)
            }
            Err(e @ Error::BufferTooSmall { .. }) => Err(e),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    /// [`process`](Self::process), with a synchronous CMM to get the data key when the
    /// header needs it (today's one-call path: never returns [`Status::NeedDataKey`]).
    ///
    /// # Errors
    /// As [`process`](Self::process), and the CMM's error.
    pub fn process_with<M: CryptoMaterialsManager + ?Sized>(
        &mut self,
        cmm: &M,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<Progress, Error> {
        let p = self.process(input, out)?;
        if p.status != Status::NeedDataKey {
            return Ok(p);
        }
        let key = self.data_key_from(cmm, input, out)?;
        crate::materials::scrub_stack();
        match key {
            Ok(key) => self.set_data_key(key)?,
            Err(e) => return self.fail(e),
        }
        self.process(input, out)
    }

    /// The CMM's (the keyrings') part: the materials handed out, the data key back. Never
    /// inlined: the keyrings' temporaries (key unwrapping) stay out of the frame that holds
    /// the decryptor (firmware stacks). `Err` from the materials step itself is `Ok(Err)`.
    #[inline(never)]
    fn data_key_from<M: CryptoMaterialsManager + ?Sized>(
        &mut self,
        cmm: &M,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<Result<DataKey, Error>, Error> {
        let mut m = self.decryption_materials(input, out)?;
        let edks = m.encrypted_data_keys();
        Ok(cmm
            .decrypt_materials(&mut m, edks)
            .and_then(|()| m.into_data_key()))
    }

    fn fail<T>(&mut self, e: Error) -> Result<T, Error> {
        if !matches!(e, Error::BufferTooSmall { .. }) {
            self.state = State::Failed(e);
        }
        Err(e)
    }

    fn limits(&self) -> ParseLimits {
        ParseLimits {
            max_edks: self.cfg.max_encrypted_data_keys,
            max_header_len: self.cfg.max_header_len,
        }
    }

    /// The header in `input` again, after an earlier call found it complete: the parse
    /// resumes from its record, so nothing is checked twice.
    fn parsed_header<'i>(&mut self, input: &'i [u8]) -> Result<Header<'i>, Error> {
        let limits = self.limits();
        match header::parse_from(input, limits, &mut self.header_progress)? {
            Parsed::Complete(h) => Ok(h),
            // The caller dropped or changed the header bytes it was asked to keep.
            Parsed::Need(_) => Err(ApiMisuse::WrongState.into()),
        }
    }

    // Not inlined: each step's locals (the header, the body state it builds, the frame's
    // buffers) get their own frame instead of all living at once in `process`'s, which
    // with them inlined was about 9 KB on a Cortex-M4 (scripts/firmware.sh measures it).
    #[inline(never)]
    fn header_step(&mut self, input: &[u8]) -> Result<Progress, Error> {
        // Resumes where the previous call stopped: linear time however small the pieces.
        // The duplicate-key check of a context received unsorted is left to
        // `decryption_materials`, which has `out` as scratch for it.
        let limits = self.limits();
        let h = match header::parse_from(input, limits, &mut self.header_progress)? {
            Parsed::Need(min) => {
                return Ok(Progress {
                    consumed: 0,
                    written: 0,
                    status: Status::NeedInput { min },
                });
            }
            Parsed::Complete(h) => h,
        };
        check_policies(self.cfg, &h)?;
        self.state = State::NeedKey;
        Ok(Progress {
            consumed: 0,
            written: 0,
            status: Status::NeedDataKey,
        })
    }

    /// In state [`Status::NeedDataKey`]: checks the encryption contexts (the stored keys
    /// unique, the reproduced context without duplicate keys and matching the stored pairs)
    /// and returns the materials a keyring decrypts an EDK with: suite, full encryption
    /// context (stored plus the reproduced pairs the message does not store, in canonical
    /// form), the EDKs, the reproduced context. `input` is the same unconsumed input that
    /// returned `NeedDataKey`; `out` is scratch for the full context when it must be
    /// assembled (see the type's contract), and is free again once the materials are
    /// dropped.
    ///
    /// # Errors
    /// [`ApiMisuse::WrongState`] when not waiting for a key; context errors (the decryptor
    /// is then poisoned); [`Error::BufferTooSmall`] with the scratch needed.
    pub fn decryption_materials<'x>(
        &'x mut self,
        input: &'x [u8],
        out: &'x mut [u8],
    ) -> Result<DecryptionMaterials<'x>, Error> {
        match self.state {
            State::NeedKey | State::AwaitKey { .. } => {}
            State::Failed(e) => return Err(e),
            _ => return Err(ApiMisuse::WrongState.into()),
        }
        let r = self.parsed_header(input).and_then(|h| {
            let check_stored = self.header_progress.unique_pending();
            let (extras, ec_bytes) = self.contexts(&h, check_stored, out)?;
            Ok((h, extras, ec_bytes))
        });
        let (h, extras, ec_bytes) = match r {
            Ok(x) => x,
            Err(e) => return self.fail(e),
        };
        let full = match ContextView::parse(ec_bytes).map_err(encryption_context::context_err) {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        self.header_progress.mark_unique();
        self.state = State::AwaitKey {
            suite: h.suite,
            extras: extras.count > 0,
        };
        Ok(DecryptionMaterials {
            suite: h.suite,
            ec: full,
            edks: h.edks,
            reproduced: self.reproduced,
            data_key: None,
            attempts: Default::default(),
            keyring_index: 0,
            observer: match &mut self.observer {
                Some(o) => Some(&mut **o),
                None => None,
            },
        })
    }

    /// Gives the decryptor the data key a keyring decrypted from the materials of
    /// [`decryption_materials`](Self::decryption_materials); the next
    /// [`process`](Self::process) authenticates the header with it.
    ///
    /// # Errors
    /// [`ApiMisuse::NotWaitingForDataKey`] unless the materials were handed out and no key
    /// was set yet; [`KeyringError::DataKeyLength`] for a key of the wrong length (the
    /// decryptor is then poisoned).
    pub fn set_data_key(&mut self, key: DataKey) -> Result<(), Error> {
        let State::AwaitKey { suite, extras } = self.state else {
            return match self.state {
                State::Failed(e) => Err(e),
                _ => Err(ApiMisuse::NotWaitingForDataKey.into()),
            };
        };
        if key.as_bytes().len() != suite.key_len() {
            return self.fail(KeyringError::DataKeyLength.into());
        }
        self.state = State::KeyReady { key, extras };
        Ok(())
    }

    /// The parsed header, from [`Status::NeedDataKey`] until the header step consumed it:
    /// `input` is the same unconsumed input that returned `NeedDataKey`. The parse resumes
    /// from the decryptor's record, so nothing is checked again (a front end that awaits its
    /// keyring takes the stored encryption context from here, without a second parse).
    ///
    /// # Errors
    /// [`ApiMisuse::WrongState`] before the header is complete, after it was consumed, or
    /// when `input` is not the header the decryptor parsed.
    pub fn header<'i>(&mut self, input: &'i [u8]) -> Result<Header<'i>, Error> {
        match self.state {
            State::NeedKey | State::AwaitKey { .. } | State::KeyReady { .. } => {}
            State::Failed(e) => return Err(e),
            _ => return Err(ApiMisuse::WrongState.into()),
        }
        self.parsed_header(input)
    }

    #[inline(never)]
    fn open_step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Progress, Error> {
        let h = self.parsed_header(input)?;
        let State::KeyReady { key, extras } = &self.state else {
            return Err(ApiMisuse::WrongState.into());
        };
        let (key, extras) = (key.clone(), *extras);
        self.open_header(&h, &key, extras, out)?;
        Ok(Progress {
            consumed: h.bytes.len(),
            written: 0,
            status: Status::Header,
        })
    }

    /// Checks the stored and reproduced contexts (see [`encryption_context::reconcile_indexed`]) and returns
    /// what the reproduced one adds with the full context in canonical form: the stored
    /// bytes when they are canonical and nothing is added, else written into `scratch`.
    /// With `scratch` of [`encryption_context::reconcile_scratch`] bytes this costs O(n log n) comparisons;
    /// with less the checks take the bounded path, and when the full context must be written
    /// `BufferTooSmall` asks for its length (an unsorted stored context is always rewritten,
    /// so a too-small `scratch` is refused at once, with an upper bound).
    fn contexts<'s>(
        &mut self,
        h: &Header<'s>,
        check_stored: bool,
        scratch: &'s mut [u8],
    ) -> Result<(encryption_context::Extras, &'s [u8]), Error> {
        let stored = h.encryption_context;
        let reproduced = self.reproduced;
        let at = h.encryption_context_offset;
        let need = encryption_context::reconcile_scratch(&stored, reproduced.len());
        if !stored.is_canonical() && !stored.is_empty() {
            let bound = reproduced
                .iter()
                .fold(stored.as_bytes().len(), |n, (k, v)| {
                    n.saturating_add(4 + k.len() + v.len())
                });
            if scratch.len() < need.max(stored.as_bytes().len()) {
                return Err(Error::BufferTooSmall {
                    required: need.max(bound),
                });
            }
        }
        let indexed = scratch.len() >= need;
        let extras = if indexed {
            encryption_context::reconcile_indexed(
                &stored,
                check_stored,
                at,
                reproduced,
                scratch,
                &mut self.work,
            )?
        } else {
            encryption_context::reconcile_bounded(
                &stored,
                check_stored,
                at,
                reproduced,
                &mut self.work,
            )?
        };
        if extras.count == 0 && stored.is_canonical() {
            return Ok((extras, stored.as_bytes()));
        }
        let total = encryption_context::full_len(&stored, extras);
        if scratch.len() < total.max(need) {
            return Err(Error::BufferTooSmall {
                required: total.max(need),
            });
        }
        if !indexed {
            // Not reached (the full context is at least as long as the index), but cheap
            // to make sure the ids are in place.
            encryption_context::reconcile_indexed(
                &stored,
                false,
                at,
                reproduced,
                scratch,
                &mut self.work,
            )?;
        }
        let n =
            encryption_context::write_full(&stored, reproduced, extras, scratch, &mut self.work)?;
        Ok((extras, &scratch[..n]))
    }

    /// Authenticates the header with the data key: derives the message key, checks the
    /// commitment and the header tag (whose AAD ends with the reproduced pairs the message
    /// does not store, when `has_extras`: their ids are sorted into `scratch` again).
    /// The body state goes straight into `self.state` (about 1.5 KB with the cipher's key
    /// schedule and the signature's hash: handed back by value it cost a copy in the
    /// caller's frame too); on error the state is left as it was.
    #[inline(never)]
    fn open_header(
        &mut self,
        h: &Header<'_>,
        data_key: &DataKey,
        has_extras: bool,
        scratch: &mut [u8],
    ) -> Result<(), Error> {
        let suite = h.suite;
        let cfg = self.cfg;
        let stored = h.encryption_context;
        let reproduced = self.reproduced;
        let extra_ids: &[u8] = if has_extras {
            let need = encryption_context::reconcile_scratch(&stored, reproduced.len());
            if scratch.len() < need {
                return Err(Error::BufferTooSmall { required: need });
            }
            let e = encryption_context::reconcile_indexed(
                &stored,
                false,
                h.encryption_context_offset,
                reproduced,
                scratch,
                &mut self.work,
            )?;
            &scratch[..e.count * encryption_context::INDEX_ENTRY_LEN]
        } else {
            &[]
        };
        let extras = extra_ids.chunks_exact(2).map(|id| {
            let (k, v) = reproduced[usize::from(u16::from_be_bytes([id[0], id[1]]))];
            (k.as_bytes(), v.as_bytes())
        });

        let provider = self.provider;
        let mid = h.message_id;
        let state = &mut self.state;
        let mut install = |key: P::Aead, key_bytes: KeyBytes| {
            *state = State::Body(Body {
                suite,
                cipher: FrameCipher::new(key, mid),
                key: key_bytes,
                framed: h.content_type == ContentType::Framed,
                frame_len: h.frame_length,
                header_len: h.bytes.len(),
                next_seq: 1,
                final_located: false,
                footer_len: 0,
                absorbed: Absorbed::new(),
                verifier: None,
            });
        };
        kdf::header_key(
            provider,
            h,
            data_key.as_bytes(),
            extras,
            cfg.net_v4_0_0_retry,
            &mut install,
        )?;
        if let (Some(alg), Some(text)) = (suite.signature(), stored.get(PUBLIC_KEY_CONTEXT_KEY)) {
            match Verifier::new(provider, alg, text, h.bytes) {
                Ok(v) => {
                    if let State::Body(b) = &mut self.state {
                        b.verifier = Some(v);
                    }
                }
                Err(e) => {
                    // Back to where the call found it.
                    self.state = State::KeyReady {
                        key: data_key.clone(),
                        extras: has_extras,
                    };
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Locates the next unit at the start of `input` (frame header checks, the footer of a
    /// signed message's final frame) without consuming it: `Ok(Err(min))` when the input
    /// must hold `min` bytes.
    fn locate_unit(&self, input: &[u8]) -> Result<Result<FrameSlot, usize>, Error> {
        let b = self.body_ref()?;
        if b.final_located {
            return Err(ApiMisuse::WrongState.into());
        }
        let expect = body::Expect {
            framed: b.framed,
            frame_len: b.frame_len,
            next_seq: b.next_seq,
            max_body: self.cfg.max_body_len,
            base: self.offset,
        };
        let u = match body::locate(input, &expect)? {
            Ok(u) => u,
            Err(min) => return Ok(Err(min)),
        };
        // The footer follows the final unit of a signed message.
        let footer = match (&b.verifier, u.kind != BodyKind::Regular) {
            (Some(v), true) => match v.footer_end(input, u.end, self.offset)? {
                Ok(end) => end - u.end,
                Err(min) => return Ok(Err(min)),
            },
            _ => 0,
        };
        Ok(Ok(FrameSlot {
            kind: u.kind,
            seq: u.seq,
            len: u.len,
            footer,
            offset: self.offset,
        }))
    }

    fn body_ref(&self) -> Result<&Body<P>, Error> {
        match &self.state {
            State::Body(b) => Ok(b),
            State::Failed(e) => Err(*e),
            _ => Err(ApiMisuse::WrongState.into()),
        }
    }

    fn body_mut(&mut self) -> Result<&mut Body<P>, Error> {
        match &mut self.state {
            State::Body(b) => Ok(b),
            State::Failed(e) => Err(*e),
            _ => Err(ApiMisuse::WrongState.into()),
        }
    }

    /// Takes the located `slot` as the next unit: the next one must follow it.
    fn commit_unit(&mut self, slot: &FrameSlot) -> Result<(), Error> {
        let offset = self.offset;
        let b = self.body_mut()?;
        if slot.is_final() {
            b.final_located = true;
            b.footer_len = slot.footer;
        } else {
            b.next_seq = b.next_seq.checked_add(1).ok_or(Error::Malformed {
                offset,
                kind: Malformed::TooManyFrames,
            })?;
        }
        Ok(())
    }

    /// After the header ([`Status::Header`]): locates the next body unit at the start of
    /// `input` and checks its frame header (sequence number, lengths, the body-size limit)
    /// without decrypting it: the building block of front ends that open frames on worker
    /// threads. A located frame is consumed ([`FrameSlot::unit_len`] bytes: the frame and,
    /// after a signed message's final frame, the footer). Open it with a [`FrameCipher`]
    /// ([`frame_cipher`](Self::frame_cipher)), give its bytes as received to
    /// [`absorb_frame`](Self::absorb_frame) in order, and after the final frame call
    /// [`verify_footer`](Self::verify_footer).
    ///
    /// The release rules stay the caller's: a frame's plaintext only after its tag verified
    /// (the `open_*` calls); a signed message's final frame (or non-framed body) only after
    /// [`verify_footer`](Self::verify_footer) succeeded, and its other frames are unverified
    /// until then.
    ///
    /// # Errors
    /// As [`process`](Self::process) for a frame header; [`ApiMisuse::WrongState`] before the
    /// header or after the final frame.
    pub fn next_frame(&mut self, input: &[u8]) -> Result<Located, Error> {
        let r = match self.locate_unit(input) {
            Ok(Ok(slot)) => self.commit_unit(&slot).map(|()| Located::Frame(slot)),
            Ok(Err(min)) => Ok(Located::NeedInput {
                min: min.max(input.len() + 1),
            }),
            Err(e) => Err(e),
        };
        let r = r.or_else(|e| self.fail(e));
        if let Ok(Located::Frame(s)) = &r {
            self.offset += s.unit_len();
        }
        r
    }

    /// After the header ([`Status::Header`], at any point of the body): the frame layout of
    /// the message from its total length `message_len` (a seekable source's length), the
    /// start of random access to it ([`crate::random_access`]): read the final frame
    /// ([`Layout::final_frame`]) and verify it ([`Layout::verify_final`]) to get the
    /// [`RandomAccess`](crate::random_access::RandomAccess) that opens any frame. Does not
    /// change the decryptor.
    ///
    /// # Errors
    /// [`PolicyViolation::RandomAccessNonFramed`];
    /// [`PolicyViolation::RandomAccessSigned`] for a signed suite without the opt-in
    /// ([`RandomAccessOptions::unverified_signed`]); [`Malformed::MessageLength`] when no
    /// frame layout of this header has that length, [`Malformed::Footer`] when the opt-in's
    /// tail holds no footer; [`ApiMisuse::WrongState`] before the header was authenticated
    /// or after the message.
    pub fn random_access(
        &self,
        message_len: u64,
        opts: RandomAccessOptions<'_>,
    ) -> Result<Layout<P::Aead>, Error> {
        let b = self.body_ref()?;
        let cipher = b.key.cipher(self.provider, b.cipher.message_id())?;
        let frame_len = b.framed.then_some(b.frame_len);
        Layout::new(cipher, b.suite, frame_len, b.header_len, message_len, opts)
    }

    /// This message's own cipher, for the in-place one-shot ([`crate::in_place`]).
    pub(crate) fn cipher(&self) -> Result<&FrameCipher<P::Aead>, Error> {
        Ok(&self.body_ref()?.cipher)
    }

    /// A new [`FrameCipher`] of this message's key, for a worker thread.
    ///
    /// # Errors
    /// [`ApiMisuse::WrongState`] before the header was authenticated or after the message;
    /// provider failures.
    pub fn frame_cipher(&self) -> Result<FrameCipher<P::Aead>, Error> {
        let b = self.body_ref()?;
        b.key.cipher(self.provider, b.cipher.message_id())
    }

    /// Gives a located frame's bytes, as received, back to the engine in order: the signed
    /// suites hash them for the signature. Every located frame must come back exactly once,
    /// in sequence order (before or after it is opened, but before it is opened in place:
    /// the hash is over the ciphertext).
    ///
    /// # Errors
    /// [`ApiMisuse::FrameOrder`] for a frame out of order or of another length than its
    /// slot's frame (nothing is absorbed).
    pub fn absorb_frame(&mut self, slot: &FrameSlot, frame: &[u8]) -> Result<(), Error> {
        let b = self.body_mut()?;
        b.absorbed.take(slot, frame.len())?;
        if let Some(v) = b.verifier.as_mut() {
            v.update(frame);
        }
        Ok(())
    }

    /// Closes the message after its final frame was absorbed: verifies the signature in
    /// `footer` (the final slot's [`FrameSlot::footer_len`] bytes after its frame; empty for
    /// unsigned suites). Then [`is_done`](Self::is_done).
    ///
    /// # Errors
    /// [`AuthFailure::Signature`](crate::error::AuthFailure::Signature) (poisons); [`ApiMisuse::WrongState`] before the final frame
    /// was absorbed; [`ApiMisuse::FrameOrder`] for a footer of another length than located.
    #[inline(never)]
    pub fn verify_footer(&mut self, footer: &[u8]) -> Result<(), Error> {
        let provider = self.provider;
        let b = self.body_mut()?;
        if !b.absorbed.done {
            return Err(ApiMisuse::WrongState.into());
        }
        if footer.len() != b.footer_len {
            return Err(ApiMisuse::FrameOrder.into());
        }
        let suite = b.suite;
        let r = match b.verifier.take() {
            // `footer_end` checked the length field when the unit was located.
            Some(v) => v.verify(provider, &[], &footer[2..]),
            None => Ok(()),
        };
        r.or_else(|e| self.fail(e))?;
        self.state = State::Done(suite);
        Ok(())
    }

    #[inline(never)]
    fn body_step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Progress, Error> {
        let slot = match self.locate_unit(input)? {
            Ok(s) => s,
            Err(min) => {
                return Ok(Progress {
                    consumed: 0,
                    written: 0,
                    status: Status::NeedInput { min },
                });
            }
        };
        if out.len() < slot.len {
            return Err(Error::BufferTooSmall { required: slot.len });
        }
        self.commit_unit(&slot)?;
        // `locate_unit` checked `input` holds the unit (frame and footer).
        let frame = &input[..slot.frame_len()];
        let pt = &mut out[..slot.len];
        self.body_ref()?.cipher.open_to(&slot, frame, pt)?;
        self.absorb_frame(&slot, frame)?;
        let status = if slot.is_final() {
            if let Err(e) = self.verify_footer(&input[slot.frame_len()..slot.unit_len()]) {
                pt.zeroize();
                return Err(e);
            }
            Status::Done
        } else {
            Status::Plaintext {
                verified: self.body_ref()?.verifier.is_none(),
            }
        };
        Ok(Progress {
            consumed: slot.unit_len(),
            written: slot.len,
            status,
        })
    }
}

/// The result of a one-shot [`decrypt`].
#[derive(Debug, Clone, Copy)]
pub struct Decrypted<'a> {
    /// Length of the plaintext written at the start of `out`.
    pub plaintext_len: usize,
    /// The message header (suite, stored encryption context, EDKs, frame length).
    pub header: Header<'a>,
    /// Key comparisons of the encryption-context checks
    /// ([`Decryptor::context_comparisons`]).
    pub context_comparisons: u64,
}

/// Decrypts a whole message into `out` and returns the plaintext length and the header.
///
/// Nothing is released unless every check passed, signature included: on error `out` is
/// zeroed up to what had been written. `out` of `ciphertext.len()` bytes suffices, except
/// when `reproduced_context` adds pairs that the message does not store: the full context
/// is assembled in `out` (see [`Decryptor`]), and [`Error::BufferTooSmall`] then reports
/// the size needed.
///
/// # Errors
/// The first failed check ([`Error::Truncated`] and [`Error::TrailingBytes`] included).
// Never inlined: the decryptor's state lives in this frame, not in the caller's (firmware
// stacks: an image that encrypts and decrypts then never holds both states at once).
#[inline(never)]
pub fn decrypt<'c, P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    provider: &P,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    ciphertext: &'c [u8],
    out: &mut [u8],
) -> Result<Decrypted<'c>, Error> {
    Decryptor::new(cfg, provider, reproduced_context).decrypt_all(cmm, ciphertext, out)
}

impl<P: CryptoProvider> Decryptor<'_, P> {
    /// Decrypts the whole message `ciphertext` with a synchronous CMM: the loop of the
    /// one-shot [`decrypt`], for callers that configured the decryptor first (an attempt
    /// observer). Same contract as [`decrypt`].
    ///
    /// # Errors
    /// As [`decrypt`].
    pub fn decrypt_all<'c, M: CryptoMaterialsManager + ?Sized>(
        mut self,
        cmm: &M,
        ciphertext: &'c [u8],
        out: &mut [u8],
    ) -> Result<Decrypted<'c>, Error> {
        let mut pos = 0usize;
        let mut written = 0usize;
        let r = loop {
            let p = match self.process_with(cmm, &ciphertext[pos..], &mut out[written..]) {
                Ok(p) => p,
                Err(Error::BufferTooSmall { required }) => {
                    break Err(Error::BufferTooSmall {
                        required: written + required,
                    });
                }
                Err(e) => break Err(e),
            };
            pos += p.consumed;
            written += p.written;
            match p.status {
                Status::NeedInput { .. } => {
                    break Err(Error::Truncated {
                        offset: ciphertext.len(),
                    });
                }
                Status::Done => {
                    break if pos != ciphertext.len() {
                        Err(Error::TrailingBytes { offset: pos })
                    } else {
                        Ok(())
                    };
                }
                _ => {}
            }
        };
        if let Err(e) = r {
            out[..written].zeroize();
            return Err(e);
        }
        // The decryptor's record of what it checked: the header is not checked again.
        let mut progress = self.header_progress;
        let context_comparisons = self.context_comparisons();
        let header = match header::parse_from(ciphertext, ParseLimits::default(), &mut progress)? {
            Parsed::Complete(h) => h,
            Parsed::Need(_) => {
                return Err(Error::Truncated {
                    offset: ciphertext.len(),
                });
            }
        };
        Ok(Decrypted {
            plaintext_len: written,
            header,
            context_comparisons,
        })
    }
}

/// The policies a header must pass before any key is asked for: the commitment policy, the
/// unsigned-only mode, the body-size limit, and the public key present exactly for signing
/// suites.
fn check_policies(cfg: &Config, h: &Header<'_>) -> Result<(), Error> {
    let suite = h.suite;
    cfg.commitment_policy.check_decrypt(suite)?;
    if cfg.unsigned_only && suite.signature().is_some() {
        return Err(PolicyViolation::SignedMessageRejected.into());
    }
    if let Some(max) = cfg.max_body_len
        && h.content_type == ContentType::Framed
        && u64::from(h.frame_length) > max
    {
        return Err(PolicyViolation::BodyTooLarge { max }.into());
    }
    match (
        suite.signature(),
        h.encryption_context.get(PUBLIC_KEY_CONTEXT_KEY),
    ) {
        (Some(_), None) => Err(PolicyViolation::MissingPublicKey.into()),
        (None, Some(_)) => Err(PolicyViolation::UnexpectedPublicKey.into()),
        _ => Ok(()),
    }
}
