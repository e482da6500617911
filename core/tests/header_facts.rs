//! `HeaderFacts` (feature `heapless`): the facts of a parsed header outlive the buffer it was
//! parsed from, and a header that does not fit the capacities is refused by field.

use esdk_core::header::{ContentType, Header, ParseLimits, Parsed, parse};
use esdk_core::header_facts::{FactsCapacity, FactsField, HeaderFacts};
use esdk_core::rustcrypto::RustCrypto;
use esdk_core::{AlgorithmSuite, Config, EncryptOptions, MultiKeyring, encrypt};
use esdk_raw::RawAesKeyring;
use esdk_test_support::XorShift;

/// A message from two raw AES keys (namespaces "device-keys" and "backup").
fn message(suite: AlgorithmSuite, ec: &mut [(&str, &str)], out: &mut [u8]) -> usize {
    let provider = RustCrypto::new(XorShift::new(11));
    let a = RawAesKeyring::new("device-keys", "k1", &[3u8; 32]).expect("keyring");
    let b = RawAesKeyring::new("backup", "k2", &[4u8; 16]).expect("keyring");
    let children = [&b as &dyn esdk_core::Keyring];
    let multi = MultiKeyring::new(&a, &children);
    let cfg = Config::new()
        .with_commitment_policy(esdk_core::CommitmentPolicy::ForbidEncryptAllowDecrypt);
    let cfg = if suite.is_committing() {
        Config::new()
    } else {
        cfg
    };
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(512);
    encrypt(&cfg, &provider, &multi, &opts, ec, b"temperature=21.5", out).expect("encrypt")
}

fn header(msg: &[u8]) -> Header<'_> {
    match parse(msg, ParseLimits::default()).expect("parse") {
        Parsed::Complete(h) => h,
        Parsed::Need(n) => panic!("header incomplete: needs {n}"),
    }
}

#[test]
fn facts_outlive_the_buffer() {
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256,
    ] {
        let mut buf = [0u8; 2048];
        let mut ec = [("device", "sensor-7"), ("fw", "1.4.2")];
        let n = message(suite, &mut ec, &mut buf);
        let h = header(&buf[..n]);
        let id: Vec<u8> = h.message_id.to_vec();
        let pairs: Vec<(String, String)> = h
            .encryption_context
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let facts = HeaderFacts::<256, 4, 32>::from_header(&h).expect("fits");
        buf.fill(0xEE); // the receive buffer is reused
        assert_eq!(facts.suite(), suite);
        assert_eq!(facts.version(), suite.message_format_version());
        assert_eq!(facts.message_id(), &id[..]);
        assert_eq!(facts.message_id().len(), suite.message_id_len());
        assert_eq!(facts.content_type(), ContentType::Framed);
        assert_eq!(facts.frame_length(), 512);
        let ctx = facts.encryption_context();
        let got: Vec<(String, String)> = ctx.iter().map(|(k, v)| (k.into(), v.into())).collect();
        assert_eq!(got, pairs);
        assert_eq!(ctx.get("device"), Some("sensor-7"));
        assert_eq!(ctx.get("fw"), Some("1.4.2"));
        // Signed suites store the verification key in the context too.
        assert_eq!(
            ctx.get("aws-crypto-public-key").is_some(),
            suite.signature().is_some()
        );
        assert_eq!(facts.edk_count(), 2);
        assert_eq!(
            facts.provider_ids().collect::<Vec<_>>(),
            ["device-keys", "backup"]
        );
        let dbg = format!("{facts:?}");
        assert!(
            dbg.contains("sensor-7") && dbg.contains("device-keys"),
            "{dbg}"
        );
    }
}

#[test]
fn too_small_capacities_are_refused_by_field() {
    let mut buf = [0u8; 2048];
    let mut ec = [("device", "sensor-7")];
    let n = message(
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        &mut ec,
        &mut buf,
    );
    let h = header(&buf[..n]);
    // The section: pair count (2), key length (2) + "device", value length (2) + "sensor-7".
    let ec_len = 2 + 2 + 6 + 2 + 8;
    assert_eq!(h.encryption_context.as_bytes().len(), ec_len);
    assert!(HeaderFacts::<{ 2 + 2 + 6 + 2 + 8 }, 2, 11>::from_header(&h).is_ok());
    let e = HeaderFacts::<{ 2 + 2 + 6 + 2 + 8 - 1 }, 2, 11>::from_header(&h).unwrap_err();
    assert_eq!(
        e,
        FactsCapacity {
            field: FactsField::EncryptionContext,
            needed: ec_len,
            capacity: ec_len - 1
        }
    );
    assert!(e.to_string().contains("encryption context"), "{e}");
    let e = HeaderFacts::<64, 1, 32>::from_header(&h).unwrap_err();
    assert_eq!(
        e,
        FactsCapacity {
            field: FactsField::EncryptedDataKeys,
            needed: 2,
            capacity: 1
        }
    );
    // "device-keys" is 11 bytes, "backup" 6: the first EDK does not fit 10.
    let e = HeaderFacts::<64, 2, 10>::from_header(&h).unwrap_err();
    assert_eq!(
        e,
        FactsCapacity {
            field: FactsField::ProviderId { index: 0 },
            needed: 11,
            capacity: 10
        }
    );
    assert!(e.to_string().contains("EDK 0"), "{e}");
}
