//! Module loading (`C_Initialize` once per process), token lookup by label, login, the
//! session pool, and key lookup.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;

use esdk_core::error::{Pkcs11ObjectClass, Pkcs11Operation};

use crate::error::{Pkcs11Error, is_removal, is_session_fatal, is_session_lost, rv_of};

/// Locks a mutex, ignoring poisoning: the guarded data (idle sessions, counters) stays
/// consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `Pkcs11` context per module path, initialized once and never finalized: PKCS#11
/// allows a single `C_Initialize` per process, and several tokens or keyrings on the same
/// module share it.
fn registry() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Loads and initializes the PKCS#11 module at `path`, or returns the context already
/// loaded for it in this process.
///
/// `C_Initialize` runs once per module per process (with `CKF_OS_LOCKING_OK`); a
/// `CKR_CRYPTOKI_ALREADY_INITIALIZED` (another component of the process initialized the
/// module first) is accepted. The module is never finalized. Use the returned context for
/// work the keyrings do not do (creating objects, listing slots) instead of initializing the
/// module a second time.
///
/// # Errors
/// [`Pkcs11Error::ModuleNotFound`], [`Pkcs11Error::ModuleLoad`], [`Pkcs11Error::Initialize`].
pub fn load_module(path: impl AsRef<Path>) -> Result<Pkcs11, Pkcs11Error> {
    let path = path.as_ref();
    if !path.exists() {
        return Err(Pkcs11Error::ModuleNotFound {
            path: path.to_path_buf(),
        });
    }
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut modules = lock(registry());
    if let Some(ctx) = modules.get(&key) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|source| Pkcs11Error::ModuleLoad {
        path: path.to_path_buf(),
        source,
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(source) => {
            return Err(Pkcs11Error::Initialize {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    modules.insert(key, ctx.clone());
    Ok(ctx)
}

/// How to reach a token: module, token label, PIN and the session pool's size.
///
/// `Debug` never shows the PIN; the PIN is held in a zeroizing secret.
pub struct TokenConfig {
    module: PathBuf,
    label: String,
    pin: Option<AuthPin>,
    max_sessions: usize,
}

impl TokenConfig {
    /// The default upper bound on open sessions per [`Token`].
    pub const DEFAULT_MAX_SESSIONS: usize = 32;

    /// A configuration for the token labelled `label` on the PKCS#11 module (shared library)
    /// at `module`, without a PIN. Tokens are found by label, not slot id: some modules
    /// (SoftHSM2) renumber slots.
    pub fn new(module: impl Into<PathBuf>, label: impl Into<String>) -> Self {
        Self {
            module: module.into(),
            label: label.into(),
            pin: None,
            max_sessions: Self::DEFAULT_MAX_SESSIONS,
        }
    }

    /// Logs in as the normal user with `pin`. The PIN is kept (zeroized on drop) to log in
    /// again if the token drops the login; it never appears in `Debug` output or errors.
    pub fn with_pin(mut self, pin: impl Into<String>) -> Self {
        self.pin = Some(AuthPin::from(pin.into()));
        self
    }

    /// At most `n` (at least 1) sessions open at once; callers beyond wait for a free one.
    pub fn with_max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n.max(1);
        self
    }

    /// The module path.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("module", &self.module)
            .field("label", &self.label)
            .field("pin", &self.pin.as_ref().map(|_| "<redacted>"))
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

/// Which key object a keyring uses: the object with this `CKA_LABEL` or this `CKA_ID` (and
/// the class the keyring needs).
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeySelector {
    /// The object's `CKA_LABEL`.
    Label(String),
    /// The object's `CKA_ID`.
    Id(Vec<u8>),
}

impl KeySelector {
    /// Select by `CKA_LABEL`.
    pub fn label(label: impl Into<String>) -> Self {
        KeySelector::Label(label.into())
    }

    /// Select by `CKA_ID`.
    pub fn id(id: impl Into<Vec<u8>>) -> Self {
        KeySelector::Id(id.into())
    }

    fn attribute(&self) -> Attribute {
        match self {
            KeySelector::Label(l) => Attribute::Label(l.as_bytes().to_vec()),
            KeySelector::Id(i) => Attribute::Id(i.clone()),
        }
    }
}

impl fmt::Display for KeySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySelector::Label(l) => write!(f, "label {l:?}"),
            KeySelector::Id(id) => {
                f.write_str("id 0x")?;
                id.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

impl fmt::Debug for KeySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An open PKCS#11 token: the shared module context, the slot found by label, the login and
/// a pool of sessions. Cheap to clone (an `Arc`); `Send + Sync`.
///
/// A cryptoki `Session` is `Send` but not `Sync`, so a session is never used by two threads
/// at once: each operation checks one out of the pool (opening a new one while fewer than
/// the configured maximum are open, waiting otherwise) and returns it afterwards. One more
/// session stays open for the token's lifetime to hold the login (PKCS#11 logs the
/// application out when its last session on a token closes).
#[derive(Clone)]
pub struct Token {
    inner: Arc<TokenInner>,
}

struct TokenInner {
    ctx: Pkcs11,
    module: PathBuf,
    /// The slot holding the token; changes when a recovery finds the token (by label) in
    /// another slot (SoftHSM2 renumbers a token initialized anew).
    slot: Mutex<Slot>,
    /// Bumped by every recovery: sessions and key handles of an older generation are not
    /// used again.
    generation: AtomicU64,
    /// One recovery at a time; the others wait and reuse its result.
    recovering: Mutex<()>,
    label: String,
    pin: Option<AuthPin>,
    max_sessions: usize,
    pool: Mutex<PoolState>,
    freed: Condvar,
    /// Keeps the login alive: PKCS#11 logs the application out when its last session on the
    /// token closes, and pool sessions come and go.
    anchor: Mutex<Option<Session>>,
}

struct PoolState {
    idle: Vec<Session>,
    open: usize,
    /// Threads waiting for a session: only then is `freed` notified (a notification is a
    /// system call even with nobody waiting).
    waiting: usize,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.inner.pool);
        f.debug_struct("Token")
            .field("module", &self.inner.module)
            .field("label", &self.inner.label)
            .field("slot", &self.inner.slot().id())
            .field("pin_configured", &self.inner.pin.is_some())
            .field("open_sessions", &st.open)
            .field("max_sessions", &self.inner.max_sessions)
            .finish()
    }
}

/// Finds the slot holding the initialized token labelled `label` (trailing blanks are
/// ignored: PKCS#11 pads labels with them).
fn find_slot(ctx: &Pkcs11, label: &str) -> Result<(Slot, TokenInfo), Pkcs11Error> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| Pkcs11Error::cryptoki(Pkcs11Operation::GetSlotList, e))?;
    let mut available = Vec::new();
    for slot in slots {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        if !info.token_initialized() {
            continue;
        }
        let found = info.label().trim_end();
        if found == label.trim_end() {
            return Ok((slot, info));
        }
        available.push(found.to_owned());
    }
    Err(Pkcs11Error::TokenNotFound {
        label: label.to_owned(),
        available,
    })
}

/// Whether `f` holds cryptoki's "already logged in" answer.
fn already_logged_in(e: &CkError) -> bool {
    matches!(rv_of(e), Some(RvError::UserAlreadyLoggedIn))
}

impl Token {
    /// Loads the module (once per process, see [`load_module`]), finds the initialized token
    /// labelled as configured, opens a session and logs in with the configured PIN.
    ///
    /// If the application is already logged in to this token (another `Token` on it), the
    /// login is shared and the PIN is not checked again: PKCS#11 login state belongs to the
    /// application, not the session.
    ///
    /// # Errors
    /// [`Pkcs11Error::ModuleNotFound`], [`Pkcs11Error::ModuleLoad`],
    /// [`Pkcs11Error::Initialize`], [`Pkcs11Error::TokenNotFound`],
    /// [`Pkcs11Error::PinRequired`], [`Pkcs11Error::PinIncorrect`],
    /// [`Pkcs11Error::PinLocked`], or [`Pkcs11Error::Cryptoki`] for other failures.
    pub fn open(config: TokenConfig) -> Result<Token, Pkcs11Error> {
        let ctx = load_module(&config.module)?;
        let (slot, info) = find_slot(&ctx, &config.label)?;
        if info.login_required() && config.pin.is_none() && !info.protected_authentication_path() {
            return Err(Pkcs11Error::PinRequired {
                label: config.label,
            });
        }
        let inner = TokenInner {
            ctx,
            module: config.module,
            slot: Mutex::new(slot),
            generation: AtomicU64::new(0),
            recovering: Mutex::new(()),
            label: config.label,
            pin: config.pin,
            max_sessions: config.max_sessions,
            pool: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
            anchor: Mutex::new(None),
        };
        let anchor = inner.open_session()?;
        *lock(&inner.anchor) = Some(anchor);
        Ok(Token {
            inner: Arc::new(inner),
        })
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The id of the slot holding the token (found at [`Token::open`]).
    /// A recovery may find the token in another slot, see [`Token::generation`].
    pub fn slot_id(&self) -> u64 {
        self.inner.slot().id()
    }

    /// How many times the token was recovered (sessions reopened, the token looked up again
    /// by label and the login restored) since it was opened.
    pub fn generation(&self) -> u64 {
        self.inner.generation()
    }

    /// The shared module context.
    pub fn context(&self) -> &Pkcs11 {
        &self.inner.ctx
    }

    /// Whether the token is still in its slot (`C_GetSlotInfo` / `C_GetTokenInfo` answer and
    /// the label is unchanged). A cheap health check for servers.
    pub fn is_present(&self) -> bool {
        !self.inner.token_gone()
    }

    /// Sessions open right now in the pool (idle or in use), not counting the one that
    /// holds the login.
    pub fn open_sessions(&self) -> usize {
        lock(&self.inner.pool).open
    }

    /// Fills `out` from the token's random number generator (`C_GenerateRandom`).
    ///
    /// # Errors
    /// [`Pkcs11Error::TokenRemoved`] or [`Pkcs11Error::Cryptoki`].
    pub fn generate_random(&self, out: &mut [u8]) -> Result<(), Pkcs11Error> {
        self.run(|s| {
            s.generate_random_slice(out)
                .map_err(|e| (Pkcs11Operation::GenerateRandom, e))
        })
    }

    /// Runs `f` with a pooled read-only session of this token (logged in if a PIN is
    /// configured). An escape hatch for work the keyrings do not do. `f` must leave no
    /// operation active and must not close or log out the session.
    ///
    /// # Errors
    /// [`Pkcs11Error::TokenRemoved`] or [`Pkcs11Error::Cryptoki`] when no session can be
    /// opened.
    pub fn with_session<R>(&self, f: impl FnOnce(&Session) -> R) -> Result<R, Pkcs11Error> {
        self.lease(|s| f(s.session()))
    }

    /// Runs `f` with a new read-write session (closed afterwards), e.g. to create or destroy
    /// objects.
    ///
    /// # Errors
    /// [`Pkcs11Error::TokenRemoved`] or [`Pkcs11Error::Cryptoki`] when no session can be
    /// opened.
    pub fn with_rw_session<R>(&self, f: impl FnOnce(&Session) -> R) -> Result<R, Pkcs11Error> {
        let s = self
            .inner
            .ctx
            .open_rw_session(self.inner.slot())
            .map_err(|e| self.inner.error(Pkcs11Operation::OpenSession, e))?;
        self.inner.ensure_login(&s)?;
        Ok(f(&s))
    }

    /// Runs `op` on a pooled session; a session that failed with a session-level error is
    /// closed instead of returned to the pool. The error's operation name is kept.
    pub(crate) fn run<R>(
        &self,
        op: impl FnOnce(&Session) -> Result<R, (Pkcs11Operation, CkError)>,
    ) -> Result<R, Pkcs11Error> {
        self.lease(|s| {
            op(s.session()).map_err(|(what, e)| {
                s.note(&e);
                self.inner.error(what, e)
            })
        })?
    }

    /// Lends a pooled session to `f` (opening one if none is idle and fewer than the maximum
    /// are open, waiting otherwise) and takes it back afterwards.
    pub(crate) fn lease<R>(&self, f: impl FnOnce(&mut Lease<'_>) -> R) -> Result<R, Pkcs11Error> {
        self.lease_once(f).map(|(r, _)| r)
    }

    /// [`Self::lease`] for keyring operations on a token that may lose its sessions, its
    /// login or the token itself: `CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`,
    /// `CKR_USER_NOT_LOGGED_IN` (another part of the process called `C_CloseAllSessions` or
    /// `C_Logout`, the HSM restarted), `CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT` and
    /// the like (the token was pulled out and put back, or initialized anew, perhaps in
    /// another slot). When `f` reports such a failure ([`Lease::note`]), the token is
    /// recovered once: the pooled sessions are dropped, the token is looked up again by
    /// label, a session is opened and the PIN given once more; then `f` runs once more on a
    /// fresh session and its result is returned whatever it is: no loop.
    ///
    /// # Errors
    /// As [`Self::lease`]; [`Pkcs11Error::RecoveryFailed`] when the recovery itself fails
    /// (the token is not found again, the PIN was changed meanwhile, ...), naming what was
    /// tried and why it failed.
    pub(crate) fn lease_retry<R>(
        &self,
        mut f: impl FnMut(&mut Lease<'_>) -> R,
    ) -> Result<R, Pkcs11Error> {
        let generation = self.inner.generation();
        let lost = match self.lease_once(&mut f) {
            Ok((r, None)) => return Ok(r),
            Ok((_, Some(lost))) => lost,
            // No session could be opened: the token is not in its slot (any more).
            Err(e) if e.is_token_removed() => Lost {
                generation,
                rv: e.rv(),
            },
            Err(e) => return Err(e),
        };
        self.inner
            .recover(lost.generation)
            .map_err(|cause| Pkcs11Error::RecoveryFailed {
                label: self.inner.label.clone(),
                lost: lost.rv,
                cause: Box::new(cause),
            })?;
        self.lease_once(&mut f).map(|(r, _)| r)
    }

    /// One lease; also says whether `f` found the session, the login or the token lost.
    fn lease_once<R>(
        &self,
        f: impl FnOnce(&mut Lease<'_>) -> R,
    ) -> Result<(R, Option<Lost>), Pkcs11Error> {
        let (session, generation) = self.inner.take()?;
        let mut count = OpenCount {
            token: &self.inner,
            armed: true,
        };
        let mut lease = Lease {
            session: &session,
            token: &self.inner,
            generation,
            keep: true,
            lost: None,
            login_expected: self.inner.pin.is_some(),
        };
        let r = f(&mut lease);
        let (keep, lost) = (lease.keep, lease.lost);
        count.armed = false;
        self.inner.give_back(session, generation, keep);
        Ok((
            r,
            lost.map(|rv| Lost {
                generation,
                rv: Some(rv),
            }),
        ))
    }

    /// Maps a cryptoki error, recognizing a removed token.
    pub(crate) fn error(&self, operation: Pkcs11Operation, e: CkError) -> Pkcs11Error {
        self.inner.error(operation, e)
    }

    /// Finds the single object of `class` matching `key`.
    pub(crate) fn find_key(
        &self,
        session: &Session,
        key: &KeySelector,
        class: KeyClass,
    ) -> Result<Option<ObjectHandle>, Pkcs11Error> {
        let found = session
            .find_objects(&[Attribute::Class(class.cko()), key.attribute()])
            .map_err(|e| self.error(Pkcs11Operation::FindObjects, e))?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.first().copied()),
            count => Err(Pkcs11Error::KeyAmbiguous {
                key: key.clone(),
                class: class.name(),
                count,
            }),
        }
    }

    /// Whether the token offers `mech` (an empty or failing mechanism list counts as
    /// "offered": some modules do not list everything; the first use tells).
    pub(crate) fn has_mechanism(&self, mech: MechanismType) -> bool {
        match self.inner.ctx.get_mechanism_list(self.inner.slot()) {
            Ok(list) if !list.is_empty() => list.contains(&mech),
            _ => true,
        }
    }
}

/// The class of a key object a keyring looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyClass {
    /// `CKO_SECRET_KEY`.
    Secret,
    /// `CKO_PUBLIC_KEY`.
    Public,
    /// `CKO_PRIVATE_KEY`.
    Private,
}

impl KeyClass {
    fn cko(self) -> ObjectClass {
        match self {
            KeyClass::Secret => ObjectClass::SECRET_KEY,
            KeyClass::Public => ObjectClass::PUBLIC_KEY,
            KeyClass::Private => ObjectClass::PRIVATE_KEY,
        }
    }

    /// The class as errors name it.
    pub(crate) fn name(self) -> Pkcs11ObjectClass {
        match self {
            KeyClass::Secret => Pkcs11ObjectClass::SecretKey,
            KeyClass::Public => Pkcs11ObjectClass::PublicKey,
            KeyClass::Private => Pkcs11ObjectClass::PrivateKey,
        }
    }
}

/// Reads boolean attributes of `key`; an attribute the token does not return counts as
/// false.
pub(crate) fn bool_attrs(
    token: &Token,
    session: &Session,
    key: ObjectHandle,
    types: &[AttributeType],
) -> Result<Vec<bool>, Pkcs11Error> {
    let attrs = session
        .get_attributes(key, types)
        .map_err(|e| token.error(Pkcs11Operation::GetAttributeValue, e))?;
    Ok(types
        .iter()
        .map(|t| {
            attrs.iter().any(|a| match (t, a) {
                (AttributeType::Encrypt, Attribute::Encrypt(b))
                | (AttributeType::Decrypt, Attribute::Decrypt(b))
                | (AttributeType::Wrap, Attribute::Wrap(b))
                | (AttributeType::Unwrap, Attribute::Unwrap(b))
                | (AttributeType::Derive, Attribute::Derive(b)) => *b,
                _ => false,
            })
        })
        .collect())
}

impl TokenInner {
    fn error(&self, operation: Pkcs11Operation, e: CkError) -> Pkcs11Error {
        if is_removal(&e) || self.token_gone() {
            return Pkcs11Error::TokenRemoved {
                label: self.label.clone(),
                rv: rv_of(&e).unwrap_or(RvError::TokenNotPresent),
            };
        }
        Pkcs11Error::cryptoki(operation, e)
    }

    /// Asks the slot whether the token is still there (after a session-level error).
    fn token_gone(&self) -> bool {
        let slot = self.slot();
        match self.ctx.get_slot_info(slot) {
            Ok(info) => {
                !info.token_present()
                    || self
                        .ctx
                        .get_token_info(slot)
                        .map(|t| t.label().trim_end() != self.label.trim_end())
                        .unwrap_or(true)
            }
            Err(_) => true,
        }
    }

    fn open_session(&self) -> Result<Session, Pkcs11Error> {
        let s = self
            .ctx
            .open_ro_session(self.slot())
            .map_err(|e| self.error(Pkcs11Operation::OpenSession, e))?;
        self.ensure_login(&s)?;
        Ok(s)
    }

    /// Logs in through `s` unless the application is logged in already.
    fn ensure_login(&self, s: &Session) -> Result<(), Pkcs11Error> {
        let state = s
            .get_session_info()
            .map_err(|e| self.error(Pkcs11Operation::GetSessionInfo, e))?
            .session_state();
        if matches!(state, SessionState::RoUser | SessionState::RwUser) {
            return Ok(());
        }
        let r = match &self.pin {
            Some(pin) => s.login(UserType::User, Some(pin)),
            None => return Ok(()),
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) if already_logged_in(&e) => Ok(()),
            Err(e) => Err(match rv_of(&e) {
                Some(rv @ (RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange)) => {
                    Pkcs11Error::PinIncorrect {
                        label: self.label.clone(),
                        rv,
                    }
                }
                Some(rv @ (RvError::PinLocked | RvError::PinExpired)) => Pkcs11Error::PinLocked {
                    label: self.label.clone(),
                    rv,
                },
                _ => self.error(Pkcs11Operation::Login, e),
            }),
        }
    }

    fn slot(&self) -> Slot {
        *lock(&self.slot)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Takes an idle session, or opens one while fewer than the maximum are open, or waits.
    /// Also returns the generation the session belongs to.
    fn take(&self) -> Result<(Session, u64), Pkcs11Error> {
        let mut st = lock(&self.pool);
        loop {
            // Read under the pool lock: a recovery bumps it while holding the lock.
            let generation = self.generation();
            if let Some(session) = st.idle.pop() {
                return Ok((session, generation));
            }
            if st.open < self.max_sessions {
                st.open += 1;
                drop(st);
                return self
                    .open_session()
                    .map(|s| (s, generation))
                    .inspect_err(|_| self.forget_one());
            }
            st.waiting += 1;
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
            st.waiting -= 1;
        }
    }

    /// Returns a session to the pool, or closes it (when asked to, or when it belongs to
    /// a generation before the last recovery).
    fn give_back(&self, session: Session, generation: u64, keep: bool) {
        let mut st = lock(&self.pool);
        if keep && generation == self.generation() {
            st.idle.push(session);
            let wake = st.waiting > 0;
            drop(st);
            if wake {
                self.freed.notify_one();
            }
        } else {
            drop(st);
            drop(session);
            self.forget_one();
        }
    }

    /// After a lost session, login or token, seen on a session of generation `seen`:
    /// unless another thread recovered since, closes every idle session (after
    /// `C_CloseAllSessions` they are all dead, and a live one is merely reopened later)
    /// and retires the ones in use, looks the token up again by label (in its slot, or in
    /// any slot if it is no longer there), and replaces the login session with a fresh one,
    /// logging in again if the application is no longer logged in.
    fn recover(&self, seen: u64) -> Result<(), Pkcs11Error> {
        let _one = lock(&self.recovering);
        if self.generation() != seen {
            return Ok(()); // another thread recovered meanwhile
        }
        let idle = {
            let mut st = lock(&self.pool);
            self.generation.fetch_add(1, Ordering::AcqRel);
            let idle = std::mem::take(&mut st.idle);
            st.open = st.open.saturating_sub(idle.len());
            idle
        };
        drop(idle);
        self.freed.notify_all();
        let old = lock(&self.anchor).take();
        drop(old);
        if self.token_gone() {
            let (slot, _) = find_slot(&self.ctx, &self.label).map_err(|e| match e {
                Pkcs11Error::TokenNotFound { .. } => Pkcs11Error::TokenRemoved {
                    label: self.label.clone(),
                    rv: RvError::TokenNotPresent,
                },
                e => e,
            })?;
            *lock(&self.slot) = slot;
        }
        let fresh = self.open_session()?;
        *lock(&self.anchor) = Some(fresh);
        Ok(())
    }

    /// Counts one open session less and wakes a waiter.
    fn forget_one(&self) {
        let mut st = lock(&self.pool);
        st.open = st.open.saturating_sub(1);
        let wake = st.waiting > 0;
        drop(st);
        if wake {
            self.freed.notify_one();
        }
    }
}

/// What [`Token::lease_retry`] learns from a lease that found its session, login or
/// token lost.
struct Lost {
    /// The generation of the session that failed.
    generation: u64,
    /// The return value that revealed it.
    rv: Option<RvError>,
}

/// A pooled session lent to one operation ([`Token::lease`]).
pub(crate) struct Lease<'a> {
    session: &'a Session,
    token: &'a TokenInner,
    /// The generation of the session (see [`TokenInner::recover`]).
    generation: u64,
    keep: bool,
    /// The session, the login or the token was found lost, with the return value that
    /// said so ([`Token::lease_retry`] recovers).
    lost: Option<RvError>,
    /// A PIN is configured: the session should be logged in.
    login_expected: bool,
}

impl<'a> Lease<'a> {
    pub(crate) fn session(&self) -> &'a Session {
        self.session
    }

    /// The generation the session belongs to; key handles of another generation are
    /// looked up again.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Closes the session afterwards instead of returning it to the pool.
    pub(crate) fn discard(&mut self) {
        self.keep = false;
    }

    /// Discards the session if `e` is a session-level error, and marks the session, the
    /// login or the token lost when `e` (or the slot) says so.
    pub(crate) fn note(&mut self, e: &CkError) {
        let fatal = is_session_fatal(e);
        if fatal {
            self.keep = false;
        }
        // After a logout tokens answer with other codes than CKR_USER_NOT_LOGGED_IN:
        // SoftHSM2 forgets the handles of private objects (CKR_KEY_HANDLE_INVALID), Kryoptic
        // says CKR_GENERAL_ERROR. So any session-level failure of a session that should be
        // logged in and is not counts as a lost login.
        let logged_out = || {
            self.login_expected
                && !self.session.get_session_info().is_ok_and(|i| {
                    matches!(
                        i.session_state(),
                        SessionState::RoUser | SessionState::RwUser
                    )
                })
        };
        // A token pulled out (and perhaps put back), or initialized anew: the slot says
        // the token is gone or has another label.
        // (Asked on any failure: a token deleted under a session may answer with any code,
        // e.g. CKR_GENERAL_ERROR; the two calls cost little next to a failed operation.)
        let removed = || is_removal(e) || self.token.token_gone();
        if is_session_lost(e) || removed() || logged_out() {
            self.keep = false;
            self.lost = Some(rv_of(e).unwrap_or(RvError::GeneralError));
        }
    }
}

/// Keeps the pool's count right if a lease unwinds (its session is then closed on drop).
struct OpenCount<'a> {
    token: &'a TokenInner,
    armed: bool,
}

impl Drop for OpenCount<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.token.forget_one();
        }
    }
}

/// A key object handle found by selector, looked up again if the token reports it invalid
/// or the token was recovered since (a token initialized anew may give the old handle to
/// another object).
pub(crate) struct KeyHandle {
    pub(crate) selector: KeySelector,
    pub(crate) class: KeyClass,
    /// The handle and the token generation it was found in.
    handle: RwLock<(ObjectHandle, u64)>,
}

impl KeyHandle {
    pub(crate) fn new(
        selector: KeySelector,
        class: KeyClass,
        handle: ObjectHandle,
        generation: u64,
    ) -> Self {
        Self {
            selector,
            class,
            handle: RwLock::new((handle, generation)),
        }
    }

    /// The handle to use on the leased session: the one found before, or, after a recovery
    /// of the token, the one found again by selector.
    ///
    /// # Errors
    /// [`Pkcs11Error::KeyNotFound`] when the recovered token no longer holds the key, or the
    /// lookup's own failure.
    pub(crate) fn get(&self, token: &Token, s: &Lease<'_>) -> Result<ObjectHandle, Pkcs11Error> {
        let (h, generation) = *self.handle.read().unwrap_or_else(|e| e.into_inner());
        if generation == s.generation() {
            return Ok(h);
        }
        match token.find_key(s.session(), &self.selector, self.class)? {
            Some(h) => {
                *self.handle.write().unwrap_or_else(|e| e.into_inner()) = (h, s.generation());
                Ok(h)
            }
            None => Err(Pkcs11Error::KeyNotFound {
                key: self.selector.clone(),
                class: self.class.name(),
            }),
        }
    }

    /// Finds the key again (after `CKR_KEY_HANDLE_INVALID`); true when a handle was found.
    pub(crate) fn refresh(&self, token: &Token, s: &Lease<'_>) -> bool {
        match token.find_key(s.session(), &self.selector, self.class) {
            Ok(Some(h)) => {
                *self.handle.write().unwrap_or_else(|e| e.into_inner()) = (h, s.generation());
                true
            }
            _ => false,
        }
    }
}

/// Whether `e` says the key handle is stale.
pub(crate) fn is_stale_handle(e: &CkError) -> bool {
    matches!(
        rv_of(e),
        Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_never_shows_the_pin() {
        let c = TokenConfig::new("/m.so", "tok").with_pin("s3cret-PIN");
        let d = format!("{c:?}");
        assert!(!d.contains("s3cret-PIN"), "{d}");
        assert!(d.contains("<redacted>"), "{d}");
        let d = format!("{:?}", TokenConfig::new("/m.so", "tok"));
        assert!(d.contains("pin: None"), "{d}");
        assert_eq!(
            TokenConfig::new("/m", "t")
                .with_max_sessions(0)
                .max_sessions,
            1
        );
    }

    #[test]
    fn selectors_display_as_label_or_hex_id() {
        assert_eq!(KeySelector::label("k1").to_string(), "label \"k1\"");
        assert_eq!(KeySelector::id(vec![0, 0xff]).to_string(), "id 0x00ff");
    }
}
