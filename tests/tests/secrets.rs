//! Secrets (issue #8, part 4): every type that holds a data key, a derived key, a signing key
//! or a wrapping key prints redacted under `Debug`, and is zeroized on drop; commitment keys
//! and header tags are compared in constant time.
//!
//! - `Debug`: each type is formatted while holding a known key, and the output must contain
//!   none of the key's renderings (hex, `{:?}` of the bytes, decimal list, base64, PEM body).
//! - Zeroize on drop: `DataKey` is dropped in place and its storage inspected (it is a plain
//!   byte array, so the bytes read are initialized); the other types must at least have drop
//!   glue (their zeroizing comes from `aes`/`aes-gcm`'s `ZeroizeOnDrop`, aws-lc's cleanse on
//!   free, and `Zeroizing` fields, as reviewed for issue #8).
//! - Constant time: a source check that the commitment and header-tag comparisons go through
//!   `subtle::ConstantTimeEq`.
//!
//! The PKCS#11 PIN is covered by esdk-pkcs11's own test (`config_debug_never_shows_the_pin`):
//! esdk-tests does not depend on that crate.

use std::mem::ManuallyDrop;

use base64::Engine as _;
use esdk_core::error::Error;
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::CryptoProvider;
use esdk_core::{AlgorithmSuite, Config, Decryptor, EncryptOptions, Encryptor, Keyring};

/// Every rendering of `key` that a careless `Debug` could produce.
fn renderings(key: &[u8]) -> Vec<String> {
    let mut v = vec![
        hex::encode(key),
        hex::encode_upper(key),
        format!("{key:?}"),
        format!("{key:x?}"),
        base64::engine::general_purpose::STANDARD.encode(key),
    ];
    // Any 8 consecutive bytes as a decimal list fragment ("12, 34, ...").
    for w in key.windows(8).step_by(4) {
        v.push(
            w.iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
        v.push(hex::encode(w));
    }
    v
}

fn assert_redacted(what: &str, debug: &str, key: &[u8]) {
    for r in renderings(key) {
        assert!(
            !debug.contains(&r),
            "{what}: Debug shows the key ({r}): {debug}"
        );
    }
    println!("secrets: {what}: {debug}");
}

/// A distinctive key: no byte repeats, so fragments are meaningful.
fn key(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(0x81))
        .collect()
}

#[test]
fn data_key_is_redacted_and_zeroized_on_drop() {
    let k = key(32);
    let dk = DataKey::from_slice(&k).expect("key");
    assert_eq!(format!("{dk:?}"), "DataKey(<32 bytes redacted>)");
    assert_redacted("DataKey", &format!("{dk:?}"), &k);
    assert_redacted("DataKey (alternate)", &format!("{dk:#?}"), &k);

    // Drop in place and look at the storage. `DataKey` is `[u8; 32]` plus a `u8` length:
    // no padding, so every byte read back is initialized.
    assert_eq!(std::mem::size_of::<DataKey>(), 33);
    let mut slot = ManuallyDrop::new(dk);
    let p: *mut DataKey = &mut *slot;
    #[allow(unsafe_code)]
    // SAFETY: `slot` holds a valid `DataKey` that is dropped exactly once here and never
    // used as a `DataKey` again; afterwards its 33 bytes (no padding) are read as bytes,
    // which is valid for the memory of the still-live `ManuallyDrop` slot.
    let after: [u8; 33] = unsafe {
        std::ptr::drop_in_place(p);
        std::ptr::read(p.cast::<[u8; 33]>())
    };
    assert_eq!(after, [0u8; 33], "DataKey storage after drop");
}

#[test]
fn content_keys_of_both_providers_are_redacted() {
    for len in [16, 24, 32] {
        let k = key(len);
        let rc = esdk::RUSTCRYPTO_PROVIDER.aead_key(&k).expect("key");
        assert_redacted("RustCryptoAead", &format!("{rc:?}"), &k);
        let lc = esdk::DEFAULT_PROVIDER.aead_key(&k).expect("key");
        assert_redacted("AwsLcAead", &format!("{lc:?}"), &k);
    }
    assert!(std::mem::needs_drop::<esdk_core::rustcrypto::RustCryptoAead>());
    assert!(std::mem::needs_drop::<esdk_aws_lc_aead::Aead>());
}

/// The aws-lc AEAD key type, named through the provider so that this test needs no direct
/// dependency on esdk-aws-lc.
mod esdk_aws_lc_aead {
    pub type Aead = <esdk::DefaultProvider as esdk_core::CryptoProvider>::Aead;
}

/// A keyring with a known data key that formats the materials it is handed.
struct Spy {
    key: Vec<u8>,
}

impl Keyring for Spy {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        let n = m.suite().key_len();
        m.set_data_key(DataKey::from_slice(&self.key[..n])?)?;
        assert_redacted("EncryptionMaterials", &format!("{m:?}"), &self.key[..n]);
        m.push_edk("spy", &[], &[b"k"])
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, _: Edks<'_>) -> Result<(), Error> {
        let n = m.suite().key_len();
        m.set_data_key(DataKey::from_slice(&self.key[..n])?)?;
        assert_redacted("DecryptionMaterials", &format!("{m:?}"), &self.key[..n]);
        Ok(())
    }
}

#[test]
fn materials_and_state_machines_holding_keys_are_redacted() {
    let spy = Spy { key: key(32) };
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let cfg = Config::new();
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(16);
    let p = esdk::DEFAULT_PROVIDER;
    let mut enc = Encryptor::new(&cfg, &p, &opts).expect("encryptor");
    let mut msg = vec![0u8; 4096];
    let mut ec = [("purpose", "secrets")];
    let mut at = enc.write_header(&spy, &mut ec, &mut msg).expect("header");
    // The encryptor now holds the derived key and the private signing key.
    assert_redacted("Encryptor", &format!("{enc:?}"), &spy.key);
    at += enc.seal_frame(&[1; 16], &mut msg[at..]).expect("frame");
    at += enc.finish(b"end", &mut msg[at..]).expect("finish");
    assert!(std::mem::needs_drop::<Encryptor<'_, esdk::DefaultProvider>>());

    let mut dec = Decryptor::new(&cfg, &p, &[]);
    let mut out = vec![0u8; 64];
    let mut pos = 0;
    loop {
        let pr = dec
            .process_with(&spy, &msg[pos..at], &mut out)
            .expect("decrypt");
        pos += pr.consumed;
        // Holding the derived key after the header.
        assert_redacted("Decryptor", &format!("{dec:?}"), &spy.key);
        if dec.is_done() {
            break;
        }
    }
    assert!(std::mem::needs_drop::<Decryptor<'_, esdk::DefaultProvider>>());
}

#[test]
fn wrapping_keys_are_redacted() {
    // Raw AES.
    let k = key(32);
    let aes = esdk_raw::RawAesKeyring::new("ns", "name", &k).expect("keyring");
    assert_redacted("RawAesKeyring", &format!("{aes:?}"), &k);
    assert!(std::mem::needs_drop::<esdk_raw::RawAesKeyring<'_>>());

    // Raw RSA: the private key of the official vectors.
    let keys: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::env::var("ESDK_TEST_VECTORS").unwrap_or_else(|_| {
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/test-vectors").to_owned()
            }) + "/python-4.0.7-local/keys.json",
        )
        .expect("vectors keys.json (ESDK_TEST_VECTORS)"),
    )
    .expect("json");
    let pem = keys["keys"]["rsa-4096-private"]["material"]
        .as_str()
        .expect("pem");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&body)
        .expect("der");
    let private = esdk_raw::rsa::RsaPrivateKey::from_pem(pem).expect("rsa key");
    let d = format!("{private:?}");
    assert_redacted("RsaPrivateKey", &d, &der[der.len() - 64..]);
    for line in pem
        .lines()
        .filter(|l| l.len() > 20 && !l.starts_with("-----"))
    {
        assert!(
            !d.contains(&line[..20]),
            "RsaPrivateKey: Debug shows PEM text"
        );
    }
    let rsa = esdk_raw::rsa::RawRsaKeyring::decrypt_only(
        "ns",
        "rsa",
        esdk_raw::rsa::RsaPadding::OaepSha256,
        private,
    )
    .expect("rsa keyring");
    assert_redacted("RawRsaKeyring", &format!("{rsa:?}"), &der[der.len() - 64..]);
    assert!(std::mem::needs_drop::<esdk_raw::rsa::RsaPrivateKey>());

    // Raw ECDH: a fresh P-256 key from aws-lc-rs (PKCS#8), its scalar must not show.
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .expect("p256 key");
    let pkcs8 = doc.as_ref();
    // The 32-byte scalar sits in the OCTET STRING `04 20 <scalar>` of the ECPrivateKey.
    let at = pkcs8
        .windows(2)
        .position(|w| w == [0x04, 0x20])
        .expect("scalar")
        + 2;
    let scalar = &pkcs8[at..at + 32];
    let ecdh = esdk_raw::ecdh::EcdhPrivateKey::from_pkcs8_der(pkcs8).expect("ecdh key");
    assert_redacted("EcdhPrivateKey", &format!("{ecdh:?}"), scalar);
    let ring =
        esdk_raw::ecdh::RawEcdhKeyring::public_key_discovery(esdk_raw::ecdh::EcdhCurve::P256, ecdh)
            .expect("ecdh keyring");
    assert_redacted("RawEcdhKeyring", &format!("{ring:?}"), scalar);
    assert!(std::mem::needs_drop::<esdk_raw::ecdh::EcdhPrivateKey>());
}

#[test]
fn decrypted_plaintext_is_not_printed() {
    let k = esdk_raw::RawAesKeyring::new("ns", "name", &[9u8; 32]).expect("keyring");
    let secret = b"the plaintext must not appear in Debug";
    let msg =
        esdk::encrypt(&Config::new(), &k, &EncryptOptions::new(), &[], secret).expect("encrypt");
    let d = esdk::decrypt(&Config::new(), &k, &[], &msg).expect("decrypt");
    let text = format!("{d:?}");
    assert!(!text.contains("must not appear"), "{text}");
    assert_redacted("Decrypted", &text, secret);
}

/// The body of `fn name` in `src` (up to the next line that closes a top-level item).
fn function<'a>(src: &'a str, name: &str) -> &'a str {
    let start = src
        .find(&format!("fn {name}"))
        .unwrap_or_else(|| panic!("fn {name} not found"));
    let rest = &src[start..];
    let end = rest.find("\n}\n").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

#[test]
fn commitment_and_header_tag_comparisons_are_constant_time() {
    let kdf = include_str!("../../core/src/kdf.rs");
    let check = function(kdf, "check_commitment");
    assert!(
        check.contains(".ct_eq("),
        "check_commitment must use ct_eq:\n{check}"
    );
    assert!(
        !check.contains("expected ==") && !check.contains("== stored") && !check.contains("!="),
        "check_commitment compares with == / !=:\n{check}"
    );
    // `header_key` derives each candidate key; `check_tag` (its own frame) compares tags.
    assert!(
        function(kdf, "header_key").contains("check_tag("),
        "header_key must check the tag through check_tag"
    );
    let open = function(kdf, "check_tag");
    assert!(
        open.contains("tag.ct_eq(&h.tag)"),
        "the header tag must be compared with ct_eq"
    );
    assert!(
        !open.contains("tag == h.tag") && !open.contains("h.tag == tag"),
        "the header tag is compared with =="
    );
    println!("secrets: commitment and header-tag comparisons use subtle::ConstantTimeEq");
}
