//! Cryptographic materials without a heap: data keys, the EDK writer and reader, and the
//! encryption / decryption materials handed to keyrings
//! (spec `framework/structures.md`).

use core::cell::{Cell, RefCell};
use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::encryption_context::ContextView;
use crate::error::{
    Attempt, AttemptFailure, Attempts, CryptoError, Error, KeyringError, Malformed,
};
use crate::provider::RandomSource;
use crate::signature::SigningKey;
use crate::suite::AlgorithmSuite;

/// A plaintext data key (16, 24 or 32 bytes). Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey {
    bytes: [u8; 32],
    len: u8,
}

impl DataKey {
    /// Copies a key of at most 32 bytes.
    ///
    /// # Errors
    /// [`KeyringError::DataKeyLength`] when `key` is longer than 32 bytes.
    pub fn from_slice(key: &[u8]) -> Result<Self, Error> {
        if key.len() > 32 {
            return Err(KeyringError::DataKeyLength.into());
        }
        let mut k = Self {
            bytes: [0u8; 32],
            len: key.len() as u8,
        };
        k.bytes[..key.len()].copy_from_slice(key);
        Ok(k)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Puts a copy of `key` into `slot` in place. `key` itself is dropped (wiped) by the
    /// caller's scope: a move would leave its bytes behind in the moved-from memory, which
    /// no drop wipes.
    pub(crate) fn store(slot: &mut Option<DataKey>, key: &DataKey) {
        let k = slot.insert(DataKey {
            bytes: [0u8; 32],
            len: key.len,
        });
        k.bytes.copy_from_slice(&key.bytes);
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(<{} bytes redacted>)", self.len)
    }
}

/// Overwrites the stack below the caller's frame with zeros, where the keyrings' frames
/// just were: a data key moved between their locals leaves copies there (a move does not
/// wipe its source), and the header step's next frames would otherwise build the
/// encryptor's state over them — its unused enum space (an unsigned suite's absent signer)
/// keeps whatever bytes were there, and an encryptor on the heap would carry them there.
/// The decryptor does the same after its keyring.
#[inline(never)]
pub(crate) fn scrub_stack() {
    let mut zeros = [0u8; SCRUB_LEN];
    core::hint::black_box(&mut zeros);
}

/// Stack bytes [`scrub_stack`] overwrites: deeper than the keyrings of this crate and
/// `esdk-raw` go, small enough for firmware stacks.
const SCRUB_LEN: usize = 2048;

/// Bytes of a [`RandomPool`]: a message id, a data key and two raw AES keyrings' IVs.
const RANDOM_POOL_LEN: usize = 96;

/// Random bytes for one message's header, drawn in one call of the provider's generator at
/// the first need and handed out in order: the keyrings' data key and IVs and the message
/// id then cost one call of the generator (an OS call for the std providers) rather than
/// one each. A need the rest of the pool cannot serve calls the generator directly. Each byte
/// is handed out once and wiped from the pool as it is; the rest is zeroized on drop.
pub(crate) struct RandomPool {
    bytes: RefCell<Zeroizing<[u8; RANDOM_POOL_LEN]>>,
    /// Bytes handed out, once the pool was drawn.
    taken: Cell<Option<usize>>,
}

impl RandomPool {
    /// An undrawn pool.
    pub(crate) fn new() -> Self {
        Self {
            bytes: RefCell::new(Zeroizing::new([0u8; RANDOM_POOL_LEN])),
            taken: Cell::new(None),
        }
    }

    /// Fills `out` with random bytes: from the pool (drawn from `rng` first if it was not),
    /// or from `rng` directly when the pool cannot hold `out`.
    fn fill(&self, rng: &dyn RandomSource, out: &mut [u8]) -> Result<(), CryptoError> {
        let Ok(mut bytes) = self.bytes.try_borrow_mut() else {
            return rng.fill_random(out);
        };
        let at = self.taken.get().unwrap_or(0);
        let end = at + out.len();
        if end > RANDOM_POOL_LEN {
            return rng.fill_random(out);
        }
        if self.taken.get().is_none() {
            rng.fill_random(&mut bytes[..])?;
        }
        out.copy_from_slice(&bytes[at..end]);
        bytes[at..end].zeroize();
        self.taken.set(Some(end));
        Ok(())
    }
}

/// One encrypted data key, borrowed from the message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edk<'a> {
    /// Key provider id (UTF-8).
    pub provider_id: &'a str,
    /// Key provider info.
    pub provider_info: &'a [u8],
    /// The wrapped data key.
    pub ciphertext: &'a [u8],
}

/// The EDK section of a header: a zero-copy sequence of [`Edk`]s.
#[derive(Clone, Copy)]
pub struct Edks<'a> {
    bytes: &'a [u8],
    count: u16,
}

/// Reads a u16-length-prefixed field at `*at`; returns its start and moves `*at` past it,
/// or `Err(needed)` with the input length needed to complete it.
fn field_or_need(bytes: &[u8], at: &mut usize) -> Result<usize, usize> {
    let (Some(hi), Some(lo)) = (bytes.get(*at), bytes.get(*at + 1)) else {
        return Err(*at + 2);
    };
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    let start = *at + 2;
    if bytes.len() < start + len {
        return Err(start + len);
    }
    *at = start + len;
    Ok(start)
}

fn field(bytes: &[u8], at: &mut usize) -> Option<usize> {
    field_or_need(bytes, at).ok()
}

/// How far an earlier parse of the same EDK section got: the first `done` EDKs, which end
/// at byte `at`, are complete and checked. Lets an incremental parse resume there instead
/// of starting over (linear time when the section arrives in small pieces).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EdkProgress {
    /// Complete, checked EDKs.
    pub done: u16,
    /// Where they end.
    pub at: usize,
}

impl<'a> Edks<'a> {
    /// Parses `count` EDKs at the start of `bytes` and returns them with the number of bytes
    /// they span.
    ///
    /// # Errors
    /// [`Error::Truncated`] with `offset` = the length `bytes` must have to complete the next
    /// field, when it ends early; [`Malformed::EdkProviderId`] for a provider id that is not
    /// UTF-8 (offsets relative to `bytes`).
    pub fn parse(bytes: &'a [u8], count: u16) -> Result<(Self, usize), Error> {
        Self::parse_from(bytes, count, &mut EdkProgress::default())
    }

    /// [`parse`](Self::parse), resuming after the EDKs that `progress` records as checked by
    /// an earlier call on a prefix of the same bytes, and recording how far this call got
    /// (also when it fails with `Truncated`). A `progress` that does not fit `bytes` and
    /// `count` is ignored.
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn parse_from(
        bytes: &'a [u8],
        count: u16,
        progress: &mut EdkProgress,
    ) -> Result<(Self, usize), Error> {
        if progress.done > count || progress.at > bytes.len() {
            *progress = EdkProgress::default();
        }
        let mut at = progress.at;
        for index in progress.done..count {
            for f in 0..3 {
                let start = at;
                let s =
                    field_or_need(bytes, &mut at).map_err(|offset| Error::Truncated { offset })?;
                if f == 0 && core::str::from_utf8(&bytes[s..at]).is_err() {
                    return Err(Error::Malformed {
                        offset: start,
                        kind: Malformed::EdkProviderId { index },
                    });
                }
            }
            *progress = EdkProgress {
                done: index + 1,
                at,
            };
        }
        Ok((
            Self {
                bytes: &bytes[..at],
                count,
            },
            at,
        ))
    }

    /// Number of EDKs.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The EDKs with their index in the header.
    pub fn iter(&self) -> impl Iterator<Item = (u16, Edk<'a>)> + 'a {
        let bytes = self.bytes;
        let mut at = 0usize;
        (0..self.count).map_while(move |i| {
            let p = field(bytes, &mut at)?;
            let pe = at;
            let q = field(bytes, &mut at)?;
            let qe = at;
            let c = field(bytes, &mut at)?;
            let provider_id = core::str::from_utf8(&bytes[p..pe]).ok()?;
            Some((
                i,
                Edk {
                    provider_id,
                    provider_info: &bytes[q..qe],
                    ciphertext: &bytes[c..at],
                },
            ))
        })
    }
}

impl fmt::Debug for Edks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|(_, e)| e)).finish()
    }
}

/// Serializes EDKs straight into the header being written.
pub struct EdkWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u16,
    /// Offset of `buf` within the whole output, for `BufferTooSmall` reports.
    base: usize,
}

impl<'a> EdkWriter<'a> {
    pub(crate) fn new(buf: &'a mut [u8], base: usize) -> Self {
        Self {
            buf,
            len: 0,
            count: 0,
            base,
        }
    }

    /// Appends one EDK; `provider_info` and `ciphertext` are each the concatenation of
    /// their parts.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when the output cannot hold it;
    /// [`KeyringError::FieldTooLong`] when a field exceeds 65 535 bytes or there would be
    /// more than 65 535 EDKs.
    pub fn push(
        &mut self,
        provider_id: &str,
        provider_info: &[&[u8]],
        ciphertext: &[&[u8]],
    ) -> Result<(), Error> {
        let info_len: usize = provider_info.iter().map(|p| p.len()).sum();
        let ct_len: usize = ciphertext.iter().map(|p| p.len()).sum();
        if provider_id.len() > 0xFFFF
            || info_len > 0xFFFF
            || ct_len > 0xFFFF
            || self.count == u16::MAX
        {
            return Err(KeyringError::FieldTooLong.into());
        }
        let need = 6 + provider_id.len() + info_len + ct_len;
        let end = self.len + need;
        let Some(dst) = self.buf.get_mut(self.len..end) else {
            return Err(Error::BufferTooSmall {
                required: self.base + end,
            });
        };
        let mut at = 0;
        let mut put = |parts: &[&[u8]], len: usize| {
            dst[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
            at += 2;
            for p in parts {
                dst[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        };
        put(&[provider_id.as_bytes()], provider_id.len());
        put(provider_info, info_len);
        put(ciphertext, ct_len);
        self.len = end;
        self.count += 1;
        Ok(())
    }

    /// How many EDKs were written.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The EDKs written so far, serialized (without the u16 count).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// What a keyring receives on encrypt: step 2 of writing a header
/// ([`Encryptor::materials`](crate::Encryptor::materials)). The encryption context is final
/// (signing suites' public key included); the keyrings add the data key and the EDKs, which
/// are written into the caller's work buffer.
pub struct EncryptionMaterials<'a> {
    pub(crate) suite: AlgorithmSuite,
    pub(crate) ec: ContextView<'a>,
    pub(crate) data_key: Option<DataKey>,
    pub(crate) edks: EdkWriter<'a>,
    pub(crate) rng: &'a dyn RandomSource,
    pub(crate) pool: RandomPool,
    pub(crate) required_keys: &'a [&'a str],
    pub(crate) signing_key: Option<SigningKey>,
    pub(crate) plaintext_len: Option<u64>,
    pub(crate) max_edks: Option<u16>,
}

impl<'a> EncryptionMaterials<'a> {
    /// The algorithm suite of the message.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The full encryption context (including `aws-crypto-public-key` for signing suites and
    /// pairs kept out of the header by a required-encryption-context CMM).
    pub fn encryption_context(&self) -> ContextView<'a> {
        self.ec
    }

    /// The canonical serialization of the full encryption context, as raw keyrings use it
    /// for AAD.
    pub fn serialized_encryption_context(&self) -> &'a [u8] {
        self.ec.as_bytes()
    }

    /// Keys of the encryption context that are authenticated but not stored.
    pub fn required_encryption_context_keys(&self) -> &'a [&'a str] {
        self.required_keys
    }

    /// The plaintext data key, once a keyring has generated one.
    pub fn data_key(&self) -> Option<&DataKey> {
        self.data_key.as_ref()
    }

    /// The message's signing key (signing suites): a caching CMM stores it with the data key
    /// and the EDKs, because its public key is in the context they are bound to.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signing_key.as_ref()
    }

    /// The declared plaintext length, when known
    /// ([`EncryptOptions::plaintext_len`](crate::EncryptOptions::plaintext_len)).
    pub fn plaintext_length(&self) -> Option<u64> {
        self.plaintext_len
    }

    /// The configured maximum number of EDKs.
    pub fn max_encrypted_data_keys(&self) -> Option<u16> {
        self.max_edks
    }

    /// The EDKs pushed so far, as a view (for a cache that keeps them).
    pub fn encrypted_data_keys(&self) -> Edks<'_> {
        Edks {
            bytes: self.edks.as_bytes(),
            count: self.edks.count(),
        }
    }

    /// Sets the plaintext data key (a generating keyring).
    ///
    /// # Errors
    /// [`KeyringError::DataKeyLength`] when the length is not the suite's;
    /// [`KeyringError::DataKeyAlreadyPresent`] when one is already set.
    pub fn set_data_key(&mut self, key: DataKey) -> Result<(), Error> {
        if self.data_key.is_some() {
            return Err(KeyringError::DataKeyAlreadyPresent.into());
        }
        if key.as_bytes().len() != self.suite.key_len() {
            return Err(KeyringError::DataKeyLength.into());
        }
        DataKey::store(&mut self.data_key, &key);
        Ok(())
    }

    /// Generates a fresh random data key if none is set yet, and returns it.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when randomness fails.
    pub fn generate_data_key(&mut self) -> Result<&DataKey, Error> {
        if self.data_key.is_none() {
            let mut k = [0u8; 32];
            let n = self.suite.key_len();
            let r = self.fill_random(&mut k[..n]);
            let key = r.and_then(|()| DataKey::from_slice(&k[..n]));
            k.zeroize();
            self.data_key = Some(key?);
        }
        self.data_key
            .as_ref()
            .ok_or(Error::Keyring(KeyringError::NoDataKeyGenerated))
    }

    /// Appends an EDK to the message header.
    ///
    /// # Errors
    /// As [`EdkWriter::push`].
    pub fn push_edk(
        &mut self,
        provider_id: &str,
        provider_info: &[&[u8]],
        ciphertext: &[&[u8]],
    ) -> Result<(), Error> {
        self.edks.push(provider_id, provider_info, ciphertext)
    }

    /// Number of EDKs so far.
    pub fn edk_count(&self) -> u16 {
        self.edks.count()
    }

    /// Random bytes from the provider.
    ///
    /// # Errors
    /// [`CryptoError::Rng`].
    pub fn fill_random(&self, out: &mut [u8]) -> Result<(), Error> {
        Ok(self.pool.fill(self.rng, out)?)
    }
}

impl fmt::Debug for EncryptionMaterials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionMaterials")
            .field("suite", &self.suite)
            .field("encryption_context", &self.ec)
            .field("data_key", &self.data_key)
            .field("signing_key", &self.signing_key)
            .field("edks", &self.edks.count)
            .finish()
    }
}

/// What a keyring receives on decrypt.
pub struct DecryptionMaterials<'a> {
    pub(crate) suite: AlgorithmSuite,
    pub(crate) ec: ContextView<'a>,
    pub(crate) edks: Edks<'a>,
    pub(crate) reproduced: &'a [(&'a str, &'a str)],
    pub(crate) data_key: Option<DataKey>,
    pub(crate) attempts: Attempts,
    pub(crate) keyring_index: u8,
    pub(crate) observer: Option<&'a mut (dyn FnMut(Attempt) + Send)>,
}

impl<'a> DecryptionMaterials<'a> {
    /// The algorithm suite of the message.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The full encryption context: the pairs stored in the message plus those supplied
    /// as the reproduced encryption context that the message does not store.
    pub fn encryption_context(&self) -> ContextView<'a> {
        self.ec
    }

    /// Its canonical serialization, as raw keyrings use it for AAD.
    pub fn serialized_encryption_context(&self) -> &'a [u8] {
        self.ec.as_bytes()
    }

    /// The reproduced encryption context supplied by the caller (sorted by key).
    pub fn reproduced_encryption_context(&self) -> &'a [(&'a str, &'a str)] {
        self.reproduced
    }

    /// The data key, once a keyring has decrypted one.
    pub fn data_key(&self) -> Option<&DataKey> {
        self.data_key.as_ref()
    }

    /// The data key a keyring decrypted, for
    /// [`Decryptor::set_data_key`](crate::Decryptor::set_data_key).
    ///
    /// # Errors
    /// [`KeyringError::NoDataKeyDecrypted`] with the attempts when there is none.
    pub fn into_data_key(mut self) -> Result<DataKey, Error> {
        self.data_key.take().ok_or_else(|| self.no_data_key_error())
    }

    /// The encrypted data keys of the message.
    pub fn encrypted_data_keys(&self) -> Edks<'a> {
        self.edks
    }

    /// Calls `observer` with every failed attempt recorded from now on.
    pub fn observe_attempts(&mut self, observer: &'a mut (dyn FnMut(Attempt) + Send)) {
        self.observer = Some(observer);
    }

    /// Sets the decrypted data key.
    ///
    /// # Errors
    /// [`KeyringError::DataKeyAlreadyPresent`] or [`KeyringError::DataKeyLength`].
    pub fn set_data_key(&mut self, key: DataKey) -> Result<(), Error> {
        if self.data_key.is_some() {
            return Err(KeyringError::DataKeyAlreadyPresent.into());
        }
        if key.as_bytes().len() != self.suite.key_len() {
            return Err(KeyringError::DataKeyLength.into());
        }
        DataKey::store(&mut self.data_key, &key);
        Ok(())
    }

    /// Records that the current keyring could not decrypt EDK `edk`.
    pub fn record_failure(&mut self, edk: u16, reason: AttemptFailure) {
        let attempt = Attempt {
            keyring: self.keyring_index,
            edk,
            reason,
        };
        self.attempts.push(attempt);
        if let Some(observe) = self.observer.as_deref_mut() {
            observe(attempt);
        }
    }

    /// The failed attempts so far.
    pub fn attempts(&self) -> Attempts {
        self.attempts
    }

    /// The error a keyring returns when it decrypted nothing.
    pub fn no_data_key_error(&self) -> Error {
        Error::Keyring(KeyringError::NoDataKeyDecrypted(self.attempts))
    }

    /// Sets which child of a multi-keyring is running (for the attempt record).
    pub fn set_keyring_index(&mut self, index: u8) {
        self.keyring_index = index;
    }

    /// The current keyring index.
    pub fn keyring_index(&self) -> u8 {
        self.keyring_index
    }
}

impl fmt::Debug for DecryptionMaterials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionMaterials")
            .field("suite", &self.suite)
            .field("encryption_context", &self.ec)
            .field("data_key", &self.data_key)
            .field("attempts", &self.attempts)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_key_debug_is_redacted() {
        let k = DataKey::from_slice(&[0xAB; 32]).unwrap();
        let mut s = [0u8; 64];
        let mut w = crate::test_util::Buf(&mut s, 0);
        core::fmt::write(&mut w, format_args!("{k:?}")).unwrap();
        let n = w.1;
        assert_eq!(&s[..n], b"DataKey(<32 bytes redacted>)");
    }

    #[test]
    fn edk_writer_and_reader_round_trip() {
        let mut buf = [0u8; 64];
        let mut w = EdkWriter::new(&mut buf, 0);
        w.push("p1", &[b"ab", b"c"], &[b"xyz"]).unwrap();
        w.push("p2", &[], &[b"q"]).unwrap();
        let n = w.len();
        assert_eq!(w.count(), 2);
        let (edks, used) = Edks::parse(&buf[..n], 2).unwrap();
        assert_eq!(used, n);
        let v: [(u16, Edk<'_>); 2] = {
            let mut it = edks.iter();
            [it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(
            v[0].1,
            Edk {
                provider_id: "p1",
                provider_info: b"abc",
                ciphertext: b"xyz"
            }
        );
        assert_eq!(v[1].0, 1);
        assert_eq!(
            Edks::parse(&buf[..n - 1], 2).unwrap_err(),
            Error::Truncated { offset: n }
        );
        // The length prefix itself incomplete, then the field: the offset is the end needed.
        assert_eq!(
            Edks::parse(&buf[..1], 2).unwrap_err(),
            Error::Truncated { offset: 2 }
        );
        assert_eq!(
            Edks::parse(&buf[..3], 2).unwrap_err(),
            Error::Truncated { offset: 4 }
        );
        let mut small = [0u8; 8];
        let mut w = EdkWriter::new(&mut small, 100);
        assert_eq!(
            w.push("p1", &[b"ab"], &[b"xyz"]),
            Err(Error::BufferTooSmall { required: 113 })
        );
    }
}
