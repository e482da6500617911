//! The ECDH keyring: the EC private key stays on the token (`CKM_ECDH1_DERIVE`).

use std::fmt;

use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use esdk_core::error::{
    AttemptFailure, Error, KeyringError, Pkcs11Attribute, Pkcs11KeyType, Pkcs11Mechanism,
    Pkcs11ObjectClass, Pkcs11Operation,
};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::{AlgorithmSuite, Keyring};
use esdk_raw::ecdh::{
    CompressedPoint, EcdhCurve, EcdhPublicKey, KMS_PROVIDER_ID, PROVIDER_ID, SharedSecretWrap,
    ciphertext_len, edk_len, is_static_pair, parse_provider_info, provider_info,
};
use zeroize::Zeroizing;

use crate::error::{Pkcs11Error, record_token_failure};
use crate::token::{KeyClass, KeyHandle, KeySelector, Lease, Token, bool_attrs, is_stale_handle};

/// The DER `CKA_EC_PARAMS` (named-curve OIDs) of the three curves.
const CURVES: [(EcdhCurve, &[u8]); 3] = [
    (
        EcdhCurve::P256,
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    ),
    (EcdhCurve::P384, &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
    (EcdhCurve::P521, &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23]),
];

/// The DER `CKA_EC_PARAMS` (named-curve OID) of `curve`, e.g. for generating a key pair on
/// a token with `CKM_EC_KEY_PAIR_GEN`.
pub fn ec_params(curve: EcdhCurve) -> &'static [u8] {
    CURVES
        .iter()
        .find(|(c, _)| *c == curve)
        .map_or(&[], |(_, p)| p)
}

/// The curve whose named-curve OID `params` is.
fn curve_of(params: &[u8]) -> Option<EcdhCurve> {
    CURVES.iter().find(|(_, p)| *p == params).map(|(c, _)| *c)
}

/// The uncompressed SEC1 point of `key` (the `CKM_ECDH1_DERIVE` public data): the tail
/// of its SubjectPublicKeyInfo.
fn uncompressed(key: &EcdhPublicKey) -> Vec<u8> {
    let spki = key.to_spki_der();
    let n = 1 + 2 * key.curve().shared_secret_len();
    let der = spki.as_bytes();
    der.get(der.len().saturating_sub(n)..)
        .unwrap_or_default()
        .to_vec()
}

/// Reads a `CKA_EC_POINT`: a DER OCTET STRING around the SEC1 point (PKCS#11 2.40), or the
/// bare point (some modules).
fn parse_ec_point(curve: EcdhCurve, value: &[u8]) -> Option<EcdhPublicKey> {
    let inner = match value {
        [0x04, 0x81, len, rest @ ..] | [0x04, len, rest @ ..]
            if usize::from(*len) == rest.len() =>
        {
            Some(rest)
        }
        _ => None,
    };
    inner
        .and_then(|p| EcdhPublicKey::from_sec1(curve, p).ok())
        .or_else(|| EcdhPublicKey::from_sec1(curve, value).ok())
}

/// The keyring's key agreement schema.
enum Scheme {
    /// `RawPrivateKeyToStaticPublicKey` with the sender's private key on the token.
    Static {
        /// The recipient's public key (boxed: the variants' sizes stay close).
        recipient: Box<EcdhPublicKey>,
        recipient_point: CompressedPoint,
    },
    /// `PublicKeyDiscovery` with the recipient's private key on the token (decrypt-only).
    Discovery,
}

/// An ECDH keyring whose EC private key (P-256, P-384 or P-521) lives on a PKCS#11 token:
/// the shared secret is computed by the token (`C_DeriveKey` with `CKM_ECDH1_DERIVE`,
/// `CKD_NULL`), read back from a session object that is destroyed at once (and zeroized
/// in memory), and fed to the raw ECDH keyring's KDF and wrap
/// ([`esdk_raw::ecdh::SharedSecretWrap`]). Its EDKs are therefore the raw ECDH keyring's
/// (spec `framework/raw-ecdh-keyring.md`: provider id `raw-ecdh`, provider info = version ‖
/// recipient ‖ sender compressed public keys, ciphertext = salt ‖ commitment key ‖ wrapped
/// key ‖ tag), readable by `esdk_raw::ecdh::RawEcdhKeyring` and the MPL's raw ECDH keyring
/// with the matching keys, and the other way round.
///
/// Two schemas (spec `framework/key-agreement-schemas.md`):
/// - [`Self::public_key_discovery`]: the token key is the **recipient's**; decrypt-only.
///   Every EDK addressed to the token key's public key is opened with the sender's public
///   key from the EDK, whoever sent it: a device that encrypted with the no_std raw ECDH
///   keyring (`EphemeralPrivateKeyToStaticPublicKey`) to [`Self::public_key`].
/// - [`Self::private_key_to_static_public_key`]: the token key is the **sender's**, the
///   recipient's public key is given; encrypts, and decrypts the EDKs of this key pair
///   either way round (as the raw keyring's static schema does).
///
/// The key is selected by label or id; the private key needs `CKA_DERIVE`, and a public
/// key object under the same selector gives its public key (`CKA_EC_POINT`).
/// `Send + Sync`: share one keyring between threads.
pub struct Pkcs11EcdhKeyring {
    token: Token,
    private: KeyHandle,
    selector: KeySelector,
    curve: EcdhCurve,
    public: EcdhPublicKey,
    public_point: CompressedPoint,
    scheme: Scheme,
}

impl fmt::Debug for Pkcs11EcdhKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Pkcs11EcdhKeyring");
        d.field("token", &self.token.label())
            .field("key", &self.selector)
            .field("schema", &self.schema())
            .field("curve", &self.curve)
            .field("public_key", &self.public_point);
        if let Scheme::Static {
            recipient_point, ..
        } = &self.scheme
        {
            d.field("recipient", recipient_point);
        }
        d.finish()
    }
}

impl Pkcs11EcdhKeyring {
    /// `PublicKeyDiscovery`: the recipient's private key is the token key selected by
    /// `key`. Decrypt-only.
    ///
    /// # Errors
    /// [`Pkcs11Error::KeyNotFound`] when no private key, or no public key object, matches;
    /// [`Pkcs11Error::KeyAmbiguous`]; [`Pkcs11Error::KeyType`] for a key that is not
    /// `CKK_EC` on P-256, P-384 or P-521 or whose `CKA_EC_POINT` is unreadable;
    /// [`Pkcs11Error::KeyUsage`] when the private key lacks `CKA_DERIVE`;
    /// [`Pkcs11Error::MechanismNotSupported`] when the token does not list
    /// `CKM_ECDH1_DERIVE`; [`Pkcs11Error::TokenRemoved`] and [`Pkcs11Error::Cryptoki`].
    pub fn public_key_discovery(token: &Token, key: KeySelector) -> Result<Self, Pkcs11Error> {
        Self::build(token, key, None)
    }

    /// `RawPrivateKeyToStaticPublicKey` with the sender's private key on the token
    /// (selected by `key`) and the recipient's public key `recipient`.
    ///
    /// # Errors
    /// As [`Self::public_key_discovery`], and [`Pkcs11Error::EcdhCurve`] when `recipient`
    /// is on another curve than the token key.
    pub fn private_key_to_static_public_key(
        token: &Token,
        key: KeySelector,
        recipient: EcdhPublicKey,
    ) -> Result<Self, Pkcs11Error> {
        Self::build(token, key, Some(recipient))
    }

    fn build(
        token: &Token,
        key: KeySelector,
        recipient: Option<EcdhPublicKey>,
    ) -> Result<Self, Pkcs11Error> {
        if !token.has_mechanism(MechanismType::ECDH1_DERIVE) {
            return Err(Pkcs11Error::MechanismNotSupported {
                mechanism: Pkcs11Mechanism::Ecdh1Derive,
                rv: None,
            });
        }
        let generation = token.generation();
        let (private, curve, public) = token.lease(|s| find_pair(token, s.session(), &key))??;
        let scheme = match recipient {
            None => Scheme::Discovery,
            Some(r) if r.curve() == curve => Scheme::Static {
                recipient: Box::new(r),
                recipient_point: r.to_compressed(),
            },
            Some(r) => {
                return Err(Pkcs11Error::EcdhCurve {
                    key,
                    token: curve,
                    public: r.curve(),
                });
            }
        };
        Ok(Self {
            token: token.clone(),
            private: KeyHandle::new(key.clone(), KeyClass::Private, private, generation),
            selector: key,
            curve,
            public,
            public_point: public.to_compressed(),
            scheme,
        })
    }

    /// The token key's public key: what a device encrypts to (with
    /// `RawEcdhKeyring::ephemeral_private_key_to_static_public_key`), or what the recipient
    /// configures as the sender's key.
    pub fn public_key(&self) -> EcdhPublicKey {
        self.public
    }

    /// The curve of the token key.
    pub fn curve(&self) -> EcdhCurve {
        self.curve
    }

    /// The schema's name: `RawPrivateKeyToStaticPublicKey` or `PublicKeyDiscovery`.
    pub fn schema(&self) -> &'static str {
        match self.scheme {
            Scheme::Static { .. } => "RawPrivateKeyToStaticPublicKey",
            Scheme::Discovery => "PublicKeyDiscovery",
        }
    }

    /// Whether it can encrypt (the static schema only).
    pub fn can_encrypt(&self) -> bool {
        matches!(self.scheme, Scheme::Static { .. })
    }

    /// The token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The ECDH shared secret of the token key and `peer` (the x-coordinate of the agreed
    /// point), computed on the token. The derived session object is destroyed before this
    /// returns (the session is closed instead if that fails).
    ///
    /// # Errors
    /// [`Pkcs11Error::EcdhCurve`] when `peer` is on another curve;
    /// [`Pkcs11Error::OutputLength`] when the token returns a secret of another length;
    /// [`Pkcs11Error::TokenRemoved`] and [`Pkcs11Error::Cryptoki`].
    pub fn shared_secret(&self, peer: &EcdhPublicKey) -> Result<Zeroizing<Vec<u8>>, Pkcs11Error> {
        if peer.curve() != self.curve {
            return Err(Pkcs11Error::EcdhCurve {
                key: self.selector.clone(),
                token: self.curve,
                public: peer.curve(),
            });
        }
        self.token.lease_retry(|s| self.derive(s, peer))?
    }

    fn derive(
        &self,
        s: &mut Lease<'_>,
        peer: &EcdhPublicKey,
    ) -> Result<Zeroizing<Vec<u8>>, Pkcs11Error> {
        let point = uncompressed(peer);
        let mech = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point));
        let len = self.curve.shared_secret_len();
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::ValueLen((len as u64).into()),
        ];
        let session = s.session();
        let r = match session.derive_key(&mech, self.private.get(&self.token, s)?, &template) {
            Err(e) if is_stale_handle(&e) && self.private.refresh(&self.token, s) => {
                session.derive_key(&mech, self.private.get(&self.token, s)?, &template)
            }
            r => r,
        };
        let object = r.map_err(|e| {
            s.note(&e);
            self.token.error(Pkcs11Operation::EcdhDerive, e)
        })?;
        let value = session.get_attributes(object, &[AttributeType::Value]);
        if session.destroy_object(object).is_err() {
            // Closing the session destroys its session objects.
            s.discard();
        }
        let mut attrs = value.map_err(|e| {
            s.note(&e);
            self.token.error(Pkcs11Operation::EcdhReadSecret, e)
        })?;
        let secret = attrs.iter_mut().find_map(|a| match a {
            Attribute::Value(v) => Some(Zeroizing::new(std::mem::take(v))),
            _ => None,
        });
        let secret = secret.unwrap_or_default();
        if secret.len() != len {
            return Err(Pkcs11Error::OutputLength {
                operation: Pkcs11Operation::EcdhDerive,
                expected: len,
                actual: secret.len(),
            });
        }
        Ok(secret)
    }

    /// Tries one EDK on a leased session.
    fn try_edk(
        &self,
        s: &mut Lease<'_>,
        m: &DecryptionMaterials<'_>,
        info: &[u8],
        ct: &[u8],
    ) -> Result<DataKey, Attempt> {
        let (edk_recipient, edk_sender) = parse_provider_info(self.curve, info)
            .ok_or(Attempt::Skip(AttemptFailure::ProviderInfoFormat))?;
        let bad_point = |_| Attempt::Skip(AttemptFailure::ProviderInfoFormat);
        let sender = EcdhPublicKey::from_sec1(self.curve, edk_sender).map_err(bad_point)?;
        EcdhPublicKey::from_sec1(self.curve, edk_recipient).map_err(bad_point)?;
        let me = self.public_point.as_bytes();
        let peer = match &self.scheme {
            Scheme::Static {
                recipient,
                recipient_point,
            } => {
                if !is_static_pair(me, recipient_point.as_bytes(), edk_sender, edk_recipient) {
                    return Err(Attempt::Skip(AttemptFailure::KeyNameMismatch));
                }
                **recipient
            }
            Scheme::Discovery => {
                if edk_recipient != me {
                    return Err(Attempt::Skip(AttemptFailure::KeyNameMismatch));
                }
                sender
            }
        };
        let key_len = m.suite().key_len();
        if ct.len() != ciphertext_len(key_len) {
            return Err(Attempt::Skip(AttemptFailure::DataKeyLength));
        }
        let z = self.derive(s, &peer).map_err(Attempt::Token)?;
        SharedSecretWrap {
            curve: self.curve,
            shared_secret: &z,
            sender: edk_sender,
            recipient: edk_recipient,
            serialized_ec: m.serialized_encryption_context(),
        }
        .unwrap(ct, key_len)
        .map_err(Attempt::Skip)
    }

    /// Tries every EDK on one leased session.
    fn unwrap_any(
        &self,
        s: &mut Lease<'_>,
        m: &mut DecryptionMaterials<'_>,
        edks: Edks<'_>,
    ) -> Result<(), Error> {
        let mut backend_error = None;
        for (i, edk) in edks.iter() {
            if edk.provider_id != PROVIDER_ID && edk.provider_id != KMS_PROVIDER_ID {
                m.record_failure(i, AttemptFailure::ProviderIdMismatch);
                continue;
            }
            match self.try_edk(s, m, edk.provider_info, edk.ciphertext) {
                Ok(k) => return m.set_data_key(k),
                Err(Attempt::Skip(reason)) => m.record_failure(i, reason),
                Err(Attempt::Token(e)) => {
                    if record_token_failure(m, i, &e, &mut backend_error) {
                        break;
                    }
                }
            }
        }
        Err(backend_error.unwrap_or_else(|| m.no_data_key_error()))
    }
}

/// Why one EDK was not opened.
enum Attempt {
    /// Not this keyring's, or it did not unwrap.
    Skip(AttemptFailure),
    /// The token failed.
    Token(Pkcs11Error),
}

/// Finds the private key, checks it, and reads the curve and public key.
fn find_pair(
    token: &Token,
    session: &Session,
    key: &KeySelector,
) -> Result<(ObjectHandle, EcdhCurve, EcdhPublicKey), Pkcs11Error> {
    let not_found = |class| Pkcs11Error::KeyNotFound {
        key: key.clone(),
        class,
    };
    let private = token
        .find_key(session, key, KeyClass::Private)?
        .ok_or_else(|| not_found(Pkcs11ObjectClass::PrivateKey))?;
    let public = token
        .find_key(session, key, KeyClass::Public)?
        .ok_or_else(|| not_found(Pkcs11ObjectClass::PublicKey))?;
    let wrong_type = || Pkcs11Error::KeyType {
        key: key.clone(),
        expected: Pkcs11KeyType::Ec,
    };
    let attrs = session
        .get_attributes(private, &[AttributeType::KeyType, AttributeType::EcParams])
        .map_err(|e| token.error(Pkcs11Operation::GetAttributeValue, e))?;
    let mut is_ec = false;
    let mut curve = None;
    for a in &attrs {
        match a {
            Attribute::KeyType(t) => is_ec = *t == KeyType::EC,
            Attribute::EcParams(p) => curve = curve_of(p),
            _ => {}
        }
    }
    let curve = curve.filter(|_| is_ec).ok_or_else(wrong_type)?;
    let point = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .map_err(|e| token.error(Pkcs11Operation::GetAttributeValue, e))?;
    let public = point
        .iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => parse_ec_point(curve, p),
            _ => None,
        })
        .ok_or_else(wrong_type)?;
    let derive = bool_attrs(token, session, private, &[AttributeType::Derive])?;
    if !derive.first().copied().unwrap_or(false) {
        return Err(Pkcs11Error::KeyUsage {
            key: key.clone(),
            attribute: Pkcs11Attribute::Derive,
        });
    }
    Ok((private, curve, public))
}

impl Keyring for Pkcs11EcdhKeyring {
    /// Generates the data key if needed and wraps it under the key derived from the token's
    /// shared secret with the recipient.
    ///
    /// # Errors
    /// [`KeyringError::EncryptNotSupported`] for `PublicKeyDiscovery`; the token's failure
    /// as [`Pkcs11Error::to_core_error`]; the RNG's and the EDK writer's errors.
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let Scheme::Static {
            recipient,
            recipient_point,
        } = &self.scheme
        else {
            return Err(KeyringError::EncryptNotSupported.into());
        };
        let z = self
            .shared_secret(recipient)
            .map_err(|e| e.to_core_error())?;
        let mut salt = Zeroizing::new([0u8; 32]);
        m.fill_random(&mut salt[..])?;
        let info = provider_info(self.curve, recipient_point, &self.public_point)?;
        let wrapped = SharedSecretWrap {
            curve: self.curve,
            shared_secret: &z,
            sender: self.public_point.as_bytes(),
            recipient: recipient_point.as_bytes(),
            serialized_ec: m.serialized_encryption_context(),
        }
        .wrap(&salt, m.generate_data_key()?.as_bytes())?;
        m.push_edk(PROVIDER_ID, &[info.as_bytes()], &[wrapped.as_bytes()])
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        if m.data_key().is_some() {
            return Err(KeyringError::DataKeyAlreadyPresent.into());
        }
        match self.token.lease_retry(|s| self.unwrap_any(s, m, edks)) {
            Ok(r) => r,
            Err(e) => {
                for (i, _) in edks.iter() {
                    m.record_failure(i, AttemptFailure::Backend);
                }
                Err(e.to_core_error())
            }
        }
    }

    fn encrypted_data_keys_len(&self, suite: AlgorithmSuite) -> Option<(u16, usize)> {
        if !self.can_encrypt() {
            return None;
        }
        Some((1, edk_len(self.curve, suite.key_len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_round_trip_through_their_ec_params() {
        for (c, p) in CURVES {
            assert_eq!(ec_params(c), p);
            assert_eq!(curve_of(p), Some(c));
        }
        assert_eq!(curve_of(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21]), None);
    }

    #[test]
    fn ec_points_are_read_with_or_without_the_octet_string() {
        // The P-256 generator.
        let g = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
        let raw: Vec<u8> = (0..g.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&g[i..i + 2], 16).ok())
            .collect();
        let mut der = vec![0x04, 65];
        der.extend_from_slice(&raw);
        let a = parse_ec_point(EcdhCurve::P256, &raw);
        let b = parse_ec_point(EcdhCurve::P256, &der);
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(uncompressed(&a.unwrap_or_else(|| unreachable!())), raw);
        assert!(parse_ec_point(EcdhCurve::P384, &der).is_none());
        assert!(parse_ec_point(EcdhCurve::P256, &der[..40]).is_none());
    }
}
