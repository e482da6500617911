//! The hierarchical keyring and its DynamoDB branch key store against the local KMS +
//! DynamoDB server (`../shared/peers/kms_server.py`, started by `scripts/kms-test.sh`, which
//! exports `ESDK_KMS_ENDPOINT` and `ESDK_PY`), and against the official Python ESDK +
//! Material Providers Library (`../shared/peers/mpl_peer.py`) on the same server and the
//! same tables. These tests never skip: without the server or the peer they fail and say how
//! to start them.
#![cfg(feature = "kms")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use esdk::kms::{
    self, AsyncKeyring, AwsKmsHierarchicalKeyring, BranchKeyStore, BranchKeyStoreError,
    DefaultClientSupplier, Error, Failure, HIERARCHY_PROVIDER_ID, KmsRuntime, asynch,
};
use esdk::{AlgorithmSuite, Config, EncryptOptions};

const W: &str = "us-west-2";
const TTL: Duration = Duration::from_secs(600);

fn endpoint() -> String {
    let ep = std::env::var("ESDK_KMS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "ESDK_KMS_ENDPOINT is not set: the hierarchical keyring tests need the local KMS + \
             DynamoDB server. Run `bash scripts/kms-test.sh kms_hierarchy` (it starts \
             ../shared/peers/kms_server.py on a free port and runs these tests)."
        )
    });
    let addr = ep.trim_start_matches("http://").trim_end_matches('/');
    assert!(
        TcpStream::connect(addr).is_ok(),
        "the KMS server at {ep} does not answer: start it with scripts/kms-test.sh"
    );
    ep
}

fn creds() -> aws_sdk_kms::config::Credentials {
    aws_sdk_kms::config::Credentials::new("test", "test", None, None, "static")
}

fn rt() -> &'static KmsRuntime {
    static RT: OnceLock<KmsRuntime> = OnceLock::new();
    RT.get_or_init(|| KmsRuntime::new().unwrap())
}

/// Counts the SDK calls of one client, per operation name, honestly: an interceptor sees
/// every request before it is sent.
#[derive(Debug, Clone, Default)]
struct Calls(
    Arc<std::sync::Mutex<HashMap<&'static str, usize>>>,
    Arc<AtomicUsize>,
);

impl Calls {
    fn of(&self, op: &'static str) -> usize {
        self.0.lock().unwrap().get(op).copied().unwrap_or(0)
    }
}

impl aws_sdk_dynamodb::config::Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }
    fn read_before_execution(
        &self,
        ctx: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use aws_sdk_dynamodb::operation as ddb;
        use aws_sdk_kms::operation as kms;
        let i = ctx.input();
        let op = if i.downcast_ref::<ddb::get_item::GetItemInput>().is_some() {
            "GetItem"
        } else if i
            .downcast_ref::<ddb::transact_write_items::TransactWriteItemsInput>()
            .is_some()
        {
            "TransactWriteItems"
        } else if i.downcast_ref::<kms::decrypt::DecryptInput>().is_some() {
            "Decrypt"
        } else {
            "other"
        };
        *self.0.lock().unwrap().entry(op).or_default() += 1;
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn kms_client(calls: Option<&Calls>) -> aws_sdk_kms::Client {
    let mut s = DefaultClientSupplier::new()
        .with_endpoint_url(&endpoint())
        .with_credentials(creds());
    if let Some(c) = calls {
        s = s.with_interceptor(c.clone());
    }
    s.client_for(W)
}

fn ddb_client(calls: Option<&Calls>) -> aws_sdk_dynamodb::Client {
    let mut b = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(W))
        .endpoint_url(endpoint())
        .credentials_provider(creds())
        .http_client(kms::https_client());
    if let Some(c) = calls {
        b = b.interceptor(c.clone());
    }
    aws_sdk_dynamodb::Client::from_conf(b.build())
}

fn new_kms_key() -> String {
    rt().block_on(async {
        let out = kms_client(None).create_key().send().await.unwrap();
        out.key_metadata().unwrap().arn().unwrap().to_owned()
    })
}

/// The KMS key of the key stores of this test binary.
fn kms_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(new_kms_key)
}

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn store_on(table: &str, logical: &str, key: &str, calls: Option<&Calls>) -> BranchKeyStore {
    BranchKeyStore::new(table, logical, key, kms_client(calls), ddb_client(calls)).unwrap()
}

/// A new table created by our store, and the store.
fn new_store() -> Arc<BranchKeyStore> {
    let table = unique("hier");
    let store = store_on(&table, &table, kms_key(), None);
    rt().block_on(store.create_table()).unwrap();
    Arc::new(store)
}

fn encrypt(k: &dyn AsyncKeyring, ec: &[(&str, &str)], pt: &[u8]) -> Result<Vec<u8>, Error> {
    kms::blocking::encrypt(rt(), &Config::new(), k, &EncryptOptions::new(), ec, pt)
}

fn decrypt(k: &dyn AsyncKeyring, ec: &[(&str, &str)], msg: &[u8]) -> Result<Vec<u8>, Error> {
    kms::blocking::decrypt(rt(), &Config::new(), k, ec, msg).map(|d| d.plaintext)
}

/// The EDKs of a message: (provider id, provider info, ciphertext).
fn edks(msg: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    esdk_test_support::header_edks(msg)
        .into_iter()
        .map(|(id, info, ct)| (id, String::from_utf8(info).unwrap(), ct))
        .collect()
}

/// The branch key version an EDK names (bytes 28..44 of its ciphertext), as a UUID string.
fn edk_version(msg: &[u8]) -> String {
    let e = edks(msg);
    let v = &e[0].2[28..44];
    let h: String = v.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn attempts(e: &Error) -> &[kms::Attempt] {
    match e {
        Error::NoDataKeyDecrypted { attempts } => attempts,
        other => panic!("expected NoDataKeyDecrypted, got {other:?}: {other}"),
    }
}

fn store_error(e: &Error) -> &BranchKeyStoreError {
    match e {
        Error::BranchKeyStore(s) => s,
        other => panic!("expected a branch key store error, got {other:?}: {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Round trips.

#[test]
fn hierarchy_round_trips_every_suite_async_and_blocking() {
    let store = new_store();
    let id = rt().block_on(store.create_branch_key(None, &[])).unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let kr = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &id, TTL).unwrap();
    let active = rt().block_on(store.get_active_branch_key(&id)).unwrap();
    assert_eq!(active.branch_key_id(), id);
    assert!(active.encryption_context().is_empty());
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let ec = [("purpose", "hierarchy"), ("tenant", "7")];
    let tokio = tokio::runtime::Runtime::new().unwrap();
    for suite in AlgorithmSuite::ALL {
        let cfg = esdk_test_support::config_for(suite);
        let o = EncryptOptions::new().with_suite(suite);
        let msg = kms::blocking::encrypt(rt(), &cfg, &kr, &o, &ec, &data).unwrap();
        // One EDK: aws-kms-hierarchy, the branch key id, salt + IV + version + key + tag.
        let e = edks(&msg);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, HIERARCHY_PROVIDER_ID);
        assert_eq!(e[0].1, id);
        assert_eq!(e[0].2.len(), 16 + 12 + 16 + suite.key_len() + 16, "{suite}");
        assert_eq!(edk_version(&msg), active.version());
        let out = kms::blocking::decrypt(rt(), &cfg, &kr, &ec, &msg).unwrap();
        assert_eq!(out.plaintext, data, "{suite}");
        let out = tokio
            .block_on(asynch::decrypt(&cfg, &kr, &[], &msg))
            .unwrap();
        assert_eq!(out.plaintext, data, "{suite}");
    }
    // Async encrypt, blocking decrypt by another keyring (its own, empty cache).
    let msg = tokio
        .block_on(asynch::encrypt(
            &Config::new(),
            &kr,
            &EncryptOptions::new(),
            &ec,
            &data,
        ))
        .unwrap();
    let other = AwsKmsHierarchicalKeyring::new(store, &id, TTL).unwrap();
    assert_eq!(decrypt(&other, &[], &msg).unwrap(), data);
}

#[test]
fn hierarchy_rotation_keeps_old_messages_decryptable() {
    let store = new_store();
    let id = rt()
        .block_on(store.create_branch_key(Some("rotating"), &[("tenant", "r")]))
        .unwrap();
    assert_eq!(id, "rotating");
    let v1 = rt().block_on(store.get_active_branch_key(&id)).unwrap();
    assert_eq!(
        v1.encryption_context(),
        [("tenant".to_owned(), "r".to_owned())]
    );
    let kr = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &id, TTL).unwrap();
    let m1 = encrypt(&kr, &[("n", "1")], b"before").unwrap();
    let v2 = rt().block_on(store.version_branch_key(&id)).unwrap();
    assert_ne!(v2, v1.version());
    let active = rt().block_on(store.get_active_branch_key(&id)).unwrap();
    assert_eq!(active.version(), v2);
    assert_ne!(active.branch_key(), v1.branch_key());
    // The old version is still there, with the same key.
    let old = rt()
        .block_on(store.get_branch_key_version(&id, v1.version()))
        .unwrap();
    assert_eq!(old.branch_key(), v1.branch_key());
    assert_eq!(old.encryption_context(), v1.encryption_context());
    // A keyring with a fresh cache encrypts with v2; both messages decrypt.
    let fresh = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &id, TTL).unwrap();
    let m2 = encrypt(&fresh, &[("n", "2")], b"after").unwrap();
    assert_eq!(edk_version(&m1), v1.version());
    assert_eq!(edk_version(&m2), v2);
    for k in [&kr, &fresh] {
        assert_eq!(decrypt(k, &[], &m1).unwrap(), b"before");
        assert_eq!(decrypt(k, &[], &m2).unwrap(), b"after");
    }
    // The cached keyring keeps using v1 until its TTL ends (the spec's cache semantics).
    assert_eq!(edk_version(&encrypt(&kr, &[], b"x").unwrap()), v1.version());
}

#[test]
fn hierarchy_cache_serves_until_the_ttl_then_refetches() {
    let table = unique("hier-ttl");
    let calls = Calls::default();
    let store = Arc::new(store_on(&table, &table, kms_key(), Some(&calls)));
    rt().block_on(store.create_table()).unwrap();
    let id = rt().block_on(store.create_branch_key(None, &[])).unwrap();
    let (gets, decrypts) = (calls.of("GetItem"), calls.of("Decrypt"));
    let ttl = Duration::from_millis(700);
    let kr = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &id, ttl).unwrap();
    let mut msgs = Vec::new();
    for i in 0..20u8 {
        msgs.push(encrypt(&kr, &[], &[i]).unwrap());
    }
    // Twenty messages, one GetItem and one KMS Decrypt (the active version).
    assert_eq!(calls.of("GetItem") - gets, 1);
    assert_eq!(calls.of("Decrypt") - decrypts, 1);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(decrypt(&kr, &[], m).unwrap(), [u8::try_from(i).unwrap()]);
    }
    // Decryption caches the version apart from the active key: one more of each.
    assert_eq!(calls.of("GetItem") - gets, 2);
    assert_eq!(calls.of("Decrypt") - decrypts, 2);
    // After the TTL both are fetched again, once.
    std::thread::sleep(ttl + Duration::from_millis(300));
    for m in &msgs[..5] {
        encrypt(&kr, &[], b"again").unwrap();
        decrypt(&kr, &[], m).unwrap();
    }
    assert_eq!(calls.of("GetItem") - gets, 4);
    assert_eq!(calls.of("Decrypt") - decrypts, 4);
    // A shared cache: a second keyring with the same partition finds the entries.
    let cache = esdk::caching::LocalCache::new(10);
    let a = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &id, TTL)
        .unwrap()
        .with_cache(Arc::clone(&cache))
        .with_partition_id("p");
    let b = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &id, TTL)
        .unwrap()
        .with_cache(Arc::clone(&cache))
        .with_partition_id("p");
    let before = calls.of("GetItem");
    encrypt(&a, &[], b"a").unwrap();
    encrypt(&b, &[], b"b").unwrap();
    assert_eq!(calls.of("GetItem") - before, 1);
    assert_eq!(cache.len(), 1);
}

#[test]
fn hierarchy_multi_tenant_supplier() {
    let store = new_store();
    let a = rt()
        .block_on(store.create_branch_key(Some("tenant-a"), &[("tenant", "a")]))
        .unwrap();
    let b = rt()
        .block_on(store.create_branch_key(Some("tenant-b"), &[("tenant", "b")]))
        .unwrap();
    let supplier = |ec: &[(&str, &str)]| -> Result<String, String> {
        match ec.iter().find(|(k, _)| *k == "tenant") {
            Some((_, "a")) => Ok("tenant-a".to_owned()),
            Some((_, "b")) => Ok("tenant-b".to_owned()),
            Some((_, t)) => Err(format!("no branch key for tenant {t:?}")),
            None => Err("no tenant in the encryption context".to_owned()),
        }
    };
    let kr = AwsKmsHierarchicalKeyring::with_supplier(Arc::clone(&store), supplier, TTL);
    let ma = encrypt(&kr, &[("tenant", "a")], b"for a").unwrap();
    let mb = encrypt(&kr, &[("tenant", "b")], b"for b").unwrap();
    assert_eq!(edks(&ma)[0].1, a);
    assert_eq!(edks(&mb)[0].1, b);
    assert_eq!(decrypt(&kr, &[], &ma).unwrap(), b"for a");
    assert_eq!(decrypt(&kr, &[], &mb).unwrap(), b"for b");
    // A keyring fixed to tenant b cannot decrypt a's message: the EDK is another branch key.
    let only_b = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &b, TTL).unwrap();
    let e = decrypt(&only_b, &[], &ma).unwrap_err();
    assert!(
        matches!(&attempts(&e)[0].failure, Failure::KeyMismatch { configured } if configured.contains("tenant-b")),
        "{e}"
    );
    // The supplier's refusal is the error, before any store call.
    let e = encrypt(&kr, &[("tenant", "c")], b"x").unwrap_err();
    assert!(
        matches!(store_error(&e), BranchKeyStoreError::Supplier { reason } if reason.contains("\"c\"")),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Errors.

#[test]
fn hierarchy_unknown_branch_key_and_store_errors() {
    let store = new_store();
    // Unknown branch key id: encryption names the id and the table.
    let kr = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), "no-such-key", TTL).unwrap();
    let e = encrypt(&kr, &[], b"x").unwrap_err();
    assert!(
        matches!(store_error(&e), BranchKeyStoreError::NotFound { branch_key_id, version: None, table } if branch_key_id == "no-such-key" && table == store.table()),
        "{e}"
    );
    assert!(e.to_string().contains("no-such-key"), "{e}");
    // Creation: a chosen id needs a custom context; an existing id is refused.
    let e = rt()
        .block_on(store.create_branch_key(Some("k"), &[]))
        .unwrap_err();
    assert!(matches!(
        store_error(&e),
        BranchKeyStoreError::CustomContextRequired
    ));
    assert!(e.is_configuration());
    rt().block_on(store.create_branch_key(Some("k"), &[("x", "1")]))
        .unwrap();
    let e = rt()
        .block_on(store.create_branch_key(Some("k"), &[("x", "2")]))
        .unwrap_err();
    assert!(
        matches!(store_error(&e), BranchKeyStoreError::AlreadyExists { branch_key_id, .. } if branch_key_id == "k"),
        "{e}"
    );
    let e = rt().block_on(store.version_branch_key("nope")).unwrap_err();
    assert!(
        matches!(store_error(&e), BranchKeyStoreError::NotFound { .. }),
        "{e}"
    );
    let e = rt()
        .block_on(store.get_branch_key_version("k", "00000000-0000-4000-8000-000000000000"))
        .unwrap_err();
    assert!(
        matches!(
            store_error(&e),
            BranchKeyStoreError::NotFound {
                version: Some(_),
                ..
            }
        ),
        "{e}"
    );
    // The same table opened with another logical name: KMS refuses the context.
    let renamed = store_on(store.table(), "other-name", kms_key(), None);
    let e = rt()
        .block_on(renamed.get_active_branch_key("k"))
        .unwrap_err();
    assert_eq!(e.kms_codes(), ["InvalidCiphertextException"], "{e}");
    // Opened with another KMS key: refused before any KMS call.
    let other_key = new_kms_key();
    let wrong = store_on(store.table(), store.table(), &other_key, None);
    let e = rt().block_on(wrong.get_active_branch_key("k")).unwrap_err();
    assert!(
        matches!(store_error(&e), BranchKeyStoreError::KmsKeyMismatch { configured, .. } if *configured == other_key),
        "{e}"
    );
    // An alias or a table that does not exist.
    assert!(matches!(
        BranchKeyStore::new(
            "t",
            "t",
            "alias/x",
            kms_client(None),
            ddb_client(None)
        ),
        Err(Error::BranchKeyStore(b)) if matches!(*b, BranchKeyStoreError::KmsKeyNotArn { .. })
    ));
    let missing = store_on("no-such-table", "no-such-table", kms_key(), None);
    let e = rt()
        .block_on(missing.get_active_branch_key("k"))
        .unwrap_err();
    assert!(
        matches!(store_error(&e), BranchKeyStoreError::DynamoDb(d) if d.code.as_deref() == Some("ResourceNotFoundException")),
        "{e}"
    );
    assert!(AwsKmsHierarchicalKeyring::new(Arc::clone(&store), "", TTL).is_err());
}

#[test]
fn hierarchy_wrong_context_and_tampering_fail_the_tag() {
    let store = new_store();
    let id = rt().block_on(store.create_branch_key(None, &[])).unwrap();
    let kr = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &id, TTL).unwrap();
    let msg = encrypt(&kr, &[("purpose", "tamper")], b"secret").unwrap();
    // A reproduced pair the message does not store is in the context: the tag fails.
    let e = decrypt(&kr, &[("extra", "pair")], &msg).unwrap_err();
    assert!(
        matches!(&attempts(&e)[0].failure, Failure::BranchKeyUnwrap { .. }),
        "{e}"
    );
    // A changed byte of the stored context value ("tamper" -> "tampes").
    let at = msg.windows(6).position(|w| w == b"tamper").unwrap();
    let mut bad = msg.clone();
    bad[at + 5] ^= 0x17;
    let e = decrypt(&kr, &[], &bad).unwrap_err();
    assert!(
        matches!(&attempts(&e)[0].failure, Failure::BranchKeyUnwrap { .. }),
        "{e}"
    );
    // A changed byte of the wrapped key in the EDK.
    let ct = &edks(&msg)[0].2;
    let at = msg
        .windows(ct.len())
        .position(|w| w == ct.as_slice())
        .unwrap();
    let mut bad = msg.clone();
    bad[at + 50] ^= 1;
    let e = decrypt(&kr, &[], &bad).unwrap_err();
    assert!(
        matches!(&attempts(&e)[0].failure, Failure::BranchKeyUnwrap { .. }),
        "{e}"
    );
    // A changed version: that version is not in the store.
    let mut bad = msg.clone();
    bad[at + 30] ^= 1;
    let e = decrypt(&kr, &[], &bad).unwrap_err();
    assert!(
        matches!(&attempts(&e)[0].failure, Failure::BranchKeyStore(s) if matches!(**s, BranchKeyStoreError::NotFound { version: Some(_), .. })),
        "{e}"
    );
    assert!(decrypt(&kr, &[], &msg).is_ok());
}

#[test]
fn hierarchy_disabled_kms_key() {
    let key = new_kms_key();
    let table = unique("hier-disabled");
    let store = Arc::new(store_on(&table, &table, &key, None));
    rt().block_on(store.create_table()).unwrap();
    let id = rt().block_on(store.create_branch_key(None, &[])).unwrap();
    let kr = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &id, TTL).unwrap();
    let msg = encrypt(&kr, &[], b"x").unwrap();
    // DisableKey by bare key id: moto 5.2 answers HTTP 500 to a key ARN here.
    let key_id = key.rsplit('/').next().unwrap();
    rt().block_on(kms_client(None).disable_key().key_id(key_id).send())
        .unwrap();
    // A keyring with a cold cache can neither encrypt nor decrypt; both name the code.
    let cold = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), &id, TTL).unwrap();
    let e = encrypt(&cold, &[], b"x").unwrap_err();
    assert_eq!(e.kms_codes(), ["DisabledException"], "{e}");
    assert!(e.to_string().contains(&key), "{e}");
    let e = decrypt(&cold, &[], &msg).unwrap_err();
    assert_eq!(e.kms_codes(), ["DisabledException"], "{e}");
    let e = rt()
        .block_on(store.create_branch_key(None, &[]))
        .unwrap_err();
    assert_eq!(e.kms_codes(), ["DisabledException"], "{e}");
}

// ---------------------------------------------------------------------------------------
// Interop with the official Python ESDK + Material Providers Library on the same tables.

fn mpl_peer_run(args: &[&str]) -> std::process::Output {
    esdk_test_support::mpl_peer("kms_hierarchy", args)
}

/// Runs `mpl_peer.py`, which must succeed; returns its stdout, trimmed.
fn mpl_peer(args: &[&str]) -> String {
    let out = mpl_peer_run(args);
    assert!(
        out.status.success(),
        "mpl_peer.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The attribute names and kinds (S, N, B) of an item.
fn item_layout(table: &str, id: &str, item_type: &str) -> Vec<(String, &'static str)> {
    let item = rt()
        .block_on(
            ddb_client(None)
                .get_item()
                .table_name(table)
                .key("branch-key-id", AttributeValue::S(id.to_owned()))
                .key("type", AttributeValue::S(item_type.to_owned()))
                .send(),
        )
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no item {item_type} of {id} in {table}"));
    let mut v: Vec<(String, &'static str)> = item
        .iter()
        .map(|(k, v)| {
            let kind = match v {
                AttributeValue::S(_) => "S",
                AttributeValue::N(_) => "N",
                AttributeValue::B(_) => "B",
                _ => "other",
            };
            (k.clone(), kind)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn hierarchy_mpl_interop_both_ways_with_rotation() {
    let ep = endpoint();
    let key = kms_key();
    let table = unique("hier-mpl");
    let store_args = [
        "--endpoint",
        ep.as_str(),
        "--table",
        table.as_str(),
        "--kms-key",
        key,
    ];
    // The MPL creates the table and a branch key; ours creates another (with a custom
    // context, as the MPL requires for a chosen id).
    let mut args = vec!["create-store"];
    args.extend(store_args);
    mpl_peer(&args);
    let mut args = vec!["create-branch-key"];
    args.extend(store_args);
    let mpl_id = mpl_peer(&args);
    assert!(!mpl_id.is_empty());
    let store = Arc::new(store_on(&table, &table, key, None));
    let ours_id = rt()
        .block_on(store.create_branch_key(Some("ours-key"), &[("department", "interop")]))
        .unwrap();
    let mut args = vec!["create-branch-key"];
    args.extend(store_args);
    args.extend(["--branch-key-id", "mpl-key", "-c", "department=interop"]);
    assert_eq!(mpl_peer(&args), "mpl-key");
    // The items have the same layout whoever wrote them.
    for t in ["branch:ACTIVE", "beacon:ACTIVE"] {
        assert_eq!(
            item_layout(&table, "ours-key", t),
            item_layout(&table, "mpl-key", t),
            "{t}"
        );
    }
    let v = rt()
        .block_on(store.get_active_branch_key("mpl-key"))
        .unwrap();
    assert_eq!(
        item_layout(
            &table,
            "ours-key",
            &format!(
                "branch:version:{}",
                rt().block_on(store.get_active_branch_key("ours-key"))
                    .unwrap()
                    .version()
            )
        ),
        item_layout(
            &table,
            "mpl-key",
            &format!("branch:version:{}", v.version())
        )
    );
    assert_eq!(
        v.encryption_context(),
        [("department".to_owned(), "interop".to_owned())]
    );

    let dir = std::env::temp_dir().join(format!("esdk-hier-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (pt, py_ct, py_pt) = (path("pt"), path("py.ct"), path("py.pt"));
    // The MPL encrypts or decrypts `input` into `output` with branch key `id`.
    let peer = |mode: &str, input: &str, output: &str, id: &str, ec: &[&str]| {
        let mut a = vec![mode, "-i", input, "-o", output, "--hierarchical"];
        a.extend(store_args);
        a.extend(["--branch-key-id", id, "-c"]);
        a.extend(ec);
        mpl_peer_run(&a)
    };
    let ok = |out: std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "mpl_peer.py failed:\n{err}");
    };
    let data: Vec<u8> = (0..40_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(&pt, &data).unwrap();
    let ec = [("app", "interop"), ("side", "both")];
    let ec_args = ["app=interop", "side=both"];
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let mut messages: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
    for round in 0..2 {
        for id in [mpl_id.as_str(), ours_id.as_str(), "mpl-key"] {
            let kr = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), id, TTL).unwrap();
            // Ours encrypts; the MPL decrypts.
            let ours = encrypt(&kr, &ec, &data).unwrap();
            let rust_ct = path("rust.ct");
            std::fs::write(&rust_ct, &ours).unwrap();
            ok(peer("decrypt", &rust_ct, &py_pt, id, &ec_args));
            assert_eq!(std::fs::read(&py_pt).unwrap(), data, "{id} round {round}");
            // The MPL encrypts; ours decrypts, async and blocking.
            ok(peer("encrypt", &pt, &py_ct, id, &ec_args));
            let theirs = std::fs::read(&py_ct).unwrap();
            let e = edks(&theirs);
            assert_eq!(
                (e[0].0.as_str(), e[0].1.as_str()),
                (HIERARCHY_PROVIDER_ID, id)
            );
            assert_eq!(
                edk_version(&theirs),
                edk_version(&ours),
                "{id} round {round}"
            );
            assert_eq!(decrypt(&kr, &ec, &theirs).unwrap(), data);
            let out = tokio
                .block_on(asynch::decrypt(&Config::new(), &kr, &[], &theirs))
                .unwrap();
            assert_eq!(out.plaintext, data);
            messages.push((id.to_owned(), ours, theirs));
        }
        if round == 0 {
            // Rotate: the MPL versions its key and "mpl-key", ours versions "ours-key".
            for id in [mpl_id.as_str(), "mpl-key"] {
                let mut a = vec!["version-branch-key"];
                a.extend(store_args);
                a.extend(["--branch-key-id", id]);
                mpl_peer(&a);
            }
            rt().block_on(store.version_branch_key(&ours_id)).unwrap();
        }
    }
    // After the rotations every message of both rounds decrypts on both sides, and the
    // second round used new versions.
    assert_eq!(messages.len(), 6);
    let old = path("old.ct");
    for (i, (id, ours, theirs)) in messages.iter().enumerate() {
        let kr = AwsKmsHierarchicalKeyring::new(Arc::clone(&store), id, TTL).unwrap();
        assert_eq!(decrypt(&kr, &[], theirs).unwrap(), data);
        std::fs::write(&old, ours).unwrap();
        ok(peer("decrypt", &old, &py_pt, id, &[]));
        assert_eq!(std::fs::read(&py_pt).unwrap(), data);
        if i < 3 {
            assert_ne!(edk_version(ours), edk_version(&messages[i + 3].1), "{id}");
        }
    }
    // A changed context fails in the MPL too.
    std::fs::write(&old, &messages[0].1).unwrap();
    let out = peer("decrypt", &old, &py_pt, &mpl_id, &["app=other"]);
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).ok();
}
