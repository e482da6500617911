//! Runner for the official AWS Encryption SDK *encrypt* test-vector manifests
//! (`awses-encrypt`): encrypts every scenario this build can run with this implementation
//! and writes the result as a decrypt-manifest set that the official vector runners read.
//!
//! Supported inputs:
//!
//! * `awses-encrypt` v1/v2 (framework feature 0003, e.g.
//!   `framework-manifests/0003-awses-message-encryption.v2.json`): `plaintext`, `algorithm`,
//!   `frame-size`, `encryption-context`, `master-keys`. The first master key is the
//!   generator, the others wrap the same data key (children), in order.
//! * `awses-encrypt` v5 (the Dafny ESDK format): `encryption-scenario` with
//!   `encryptKeyDescription` (`raw`, `multi-keyring`, `required-encryption-context-cmm`,
//!   `raw-ecdh`, the KMS types), `decryptKeyDescription` and
//!   `reproduced-encryption-context`.
//!
//! Output (in the `--output` directory, as the official handlers lay it out):
//!
//! * `keys.json`: a byte-for-byte copy of the keys manifest;
//! * `plaintexts/<name>`: one random plaintext per entry of the manifest's `plaintexts`
//!   (name → size in bytes);
//! * `ciphertexts/<test id>`: one message per scenario that ran;
//! * `manifest.json`: an `awses-decrypt` manifest. For v1/v2 input it is **v2** (framework
//!   feature 0004: `ciphertext`, `master-keys` as given, `result.output.plaintext`,
//!   `description`), which the Python handler (versions 2 and 4), the Dafny-based runners and
//!   `vectors decrypt` read. For v5 input it is **v5**, in the Dafny runner's layout
//!   (`decryption-scenario` with `type`, `ciphertext`, `result`, `algorithmSuiteId`,
//!   `frame-size`, `description`, `decryptKeyDescription`,
//!   `reproduced-encryption-context`). Test ids are the encrypt manifest's ids.
//!
//! Scenarios this build cannot run are skipped with a reason and left out of the decrypt
//! manifest: AWS KMS keys of any kind (KMS ECDH included), `frame-size: 0` (non-framed
//! messages: `esdk-core` writes framed messages only) and v5 scenario types other than
//! `positive-esdk`. Raw AES, raw RSA (all paddings), raw ECDH (`static`, `ephemeral`),
//! multi-keyrings and the required-encryption-context CMM are encrypted.
//!
//! Commitment policy: committing suites (0x0478, 0x0578) are encrypted under
//! `RequireEncryptRequireDecrypt`, the others under `ForbidEncryptAllowDecrypt`, as the
//! official handlers do.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use esdk_core::error::Error;
use esdk_core::materials::{DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::provider::RandomSource;
use esdk_core::{
    AlgorithmSuite, CryptoMaterialsManager, EncryptOptions, Keyring, MultiKeyring,
    RequiredEncryptionContextCmm,
};
use esdk_raw::RawAesKeyring;
use esdk_raw::ecdh::{EcdhCurve, EcdhPrivateKey, EcdhPublicKey, RawEcdhKeyring};
use esdk_raw::rsa::{RawRsaKeyring, RsaPadding, RsaPublicKey};
use serde_json::{Map, Value, json};

use crate::keys::{
    KeyEntry, KeysManifest, aes_key, ecdh_public_der, read_json, resolve_uri, rsa_pem,
};

/// The client name written into generated decrypt manifests.
pub const CLIENT_NAME: &str = "esdk-rs";

/// A loaded encrypt manifest.
#[derive(Debug, Clone)]
pub struct EncryptManifest {
    /// `manifest.version` (1, 2 or 5).
    pub version: u32,
    /// The keys manifest file.
    pub keys_path: PathBuf,
    /// Plaintext names and sizes in bytes.
    pub plaintexts: BTreeMap<String, usize>,
    /// All scenarios, sorted by id.
    pub tests: Vec<EncryptTest>,
}

/// One encrypt scenario.
#[derive(Debug, Clone)]
pub struct EncryptTest {
    /// The test id.
    pub id: String,
    /// The plaintext name (a key of [`EncryptManifest::plaintexts`]).
    pub plaintext: String,
    /// The algorithm suite id.
    pub suite_id: u16,
    /// Frame length; 0 asks for a non-framed message.
    pub frame_size: u32,
    /// The encryption context, sorted by key.
    pub encryption_context: Vec<(String, String)>,
    /// The parsed encrypt keyring description.
    pub keys: EncryptKey,
    /// v5 scenario type (`positive-esdk`, ...); `None` for v1/v2.
    pub scenario_type: Option<String>,
    /// The decrypt-manifest test entry minus `ciphertext` (and, for v5, the fields
    /// added at write time): `master-keys` (v2) or `decryptKeyDescription` and
    /// `reproduced-encryption-context` (v5), `description` when given.
    pub decrypt_template: Map<String, Value>,
}

/// A parsed encrypt key description.
#[derive(Clone, PartialEq, Eq)]
pub enum EncryptKey {
    /// A raw AES keyring.
    RawAes {
        /// The key namespace (EDK provider id).
        provider_id: String,
        /// The key name on the wire (keys-manifest `key-id`).
        key_name: String,
        /// The wrapping key.
        key: Vec<u8>,
    },
    /// A raw RSA keyring (encrypt side: public key only).
    RawRsa {
        /// The key namespace (EDK provider id).
        provider_id: String,
        /// The key name on the wire (keys-manifest `key-id`).
        key_name: String,
        /// The padding.
        padding: RsaPadding,
        /// The public key, DER SubjectPublicKeyInfo (derived from the private key when the
        /// keys manifest entry is a private key).
        public_der: Vec<u8>,
    },
    /// A raw ECDH keyring (schemas `static` and `ephemeral`; `discovery` cannot encrypt).
    RawEcdh {
        /// The curve.
        curve: EcdhCurve,
        /// `static`: the sender's PKCS#8 PEM private key; `None` for `ephemeral`.
        sender_private_pem: Option<String>,
        /// The recipient's public key, DER SubjectPublicKeyInfo.
        recipient_public_der: Vec<u8>,
    },
    /// Anything that needs AWS KMS; the description type.
    Kms(String),
    /// A multi-keyring: the generator makes the data key, every child wraps it too.
    Multi {
        /// The generator.
        generator: Box<EncryptKey>,
        /// The children, in order.
        children: Vec<EncryptKey>,
    },
    /// A required-encryption-context CMM over another description.
    RequiredEc {
        /// The wrapped description.
        underlying: Box<EncryptKey>,
        /// Keys that are authenticated but not stored in the header.
        required_keys: Vec<String>,
    },
}

impl fmt::Debug for EncryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncryptKey::RawAes {
                provider_id,
                key_name,
                key,
            } => write!(
                f,
                "RawAes({provider_id}/{key_name}, {} bits)",
                key.len() * 8
            ),
            EncryptKey::RawRsa {
                provider_id,
                key_name,
                padding,
                ..
            } => write!(f, "RawRsa({provider_id}/{key_name}, {padding})"),
            EncryptKey::RawEcdh {
                curve,
                sender_private_pem,
                ..
            } => {
                let schema = if sender_private_pem.is_some() {
                    "static"
                } else {
                    "ephemeral"
                };
                write!(f, "RawEcdh({schema}, {curve:?})")
            }
            EncryptKey::Kms(kind) => write!(f, "Kms({kind})"),
            EncryptKey::Multi {
                generator,
                children,
            } => f
                .debug_struct("Multi")
                .field("generator", generator)
                .field("children", children)
                .finish(),
            EncryptKey::RequiredEc {
                underlying,
                required_keys,
            } => f
                .debug_struct("RequiredEc")
                .field("underlying", underlying)
                .field("required_keys", required_keys)
                .finish(),
        }
    }
}

impl EncryptKey {
    fn first_kms(&self) -> Option<&str> {
        match self {
            EncryptKey::Kms(kind) => Some(kind),
            EncryptKey::Multi {
                generator,
                children,
            } => generator
                .first_kms()
                .or_else(|| children.iter().find_map(EncryptKey::first_kms)),
            EncryptKey::RequiredEc { underlying, .. } => underlying.first_kms(),
            _ => None,
        }
    }

    /// Why this description cannot be encrypted with here, if it cannot.
    pub fn unsupported(&self) -> Option<String> {
        self.first_kms()
            .map(|kind| format!("needs AWS KMS ({kind})"))
    }
}

/// A keyring built from an [`EncryptKey`].
enum BuiltKeyring<'a> {
    Aes(Box<RawAesKeyring<'a>>),
    Rsa(RawRsaKeyring),
    Ecdh(Box<RawEcdhKeyring>),
    Multi(Box<BuiltKeyring<'a>>, Vec<BuiltKeyring<'a>>),
}

impl Keyring for BuiltKeyring<'_> {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        match self {
            BuiltKeyring::Aes(k) => k.on_encrypt(m),
            BuiltKeyring::Rsa(k) => k.on_encrypt(m),
            BuiltKeyring::Ecdh(k) => k.on_encrypt(m),
            BuiltKeyring::Multi(g, c) => {
                let children: Vec<&dyn Keyring> = c.iter().map(|k| k as &dyn Keyring).collect();
                MultiKeyring::new(g.as_ref(), &children).on_encrypt(m)
            }
        }
    }

    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        match self {
            BuiltKeyring::Aes(k) => k.on_decrypt(m, edks),
            BuiltKeyring::Rsa(k) => k.on_decrypt(m, edks),
            BuiltKeyring::Ecdh(k) => k.on_decrypt(m, edks),
            BuiltKeyring::Multi(g, c) => {
                let children: Vec<&dyn Keyring> = c.iter().map(|k| k as &dyn Keyring).collect();
                MultiKeyring::new(g.as_ref(), &children).on_decrypt(m, edks)
            }
        }
    }
}

fn build_keyring(k: &EncryptKey) -> Result<BuiltKeyring<'_>, String> {
    match k {
        EncryptKey::RawAes {
            provider_id,
            key_name,
            key,
        } => RawAesKeyring::new(provider_id, key_name, key)
            .map(|k| BuiltKeyring::Aes(Box::new(k)))
            .map_err(|e| format!("cannot build raw AES keyring: {e}")),
        EncryptKey::RawRsa {
            provider_id,
            key_name,
            padding,
            public_der,
        } => RsaPublicKey::from_der(public_der)
            .and_then(|p| RawRsaKeyring::encrypt_only(provider_id, key_name, *padding, p))
            .map(BuiltKeyring::Rsa)
            .map_err(|e| format!("cannot build raw RSA keyring: {e}")),
        EncryptKey::RawEcdh {
            curve,
            sender_private_pem,
            recipient_public_der,
        } => {
            let fail = |e: Error| format!("cannot build raw ECDH keyring: {e}");
            let recipient = EcdhPublicKey::from_spki_der(recipient_public_der).map_err(fail)?;
            let keyring = match sender_private_pem {
                Some(pem) => {
                    let sender = EcdhPrivateKey::from_pkcs8_pem(pem).map_err(fail)?;
                    RawEcdhKeyring::raw_private_key_to_static_public_key(*curve, sender, recipient)
                }
                None => {
                    RawEcdhKeyring::ephemeral_private_key_to_static_public_key(*curve, recipient)
                }
            };
            keyring
                .map(|k| BuiltKeyring::Ecdh(Box::new(k)))
                .map_err(fail)
        }
        EncryptKey::Multi {
            generator,
            children,
        } => {
            let g = build_keyring(generator)?;
            let c = children
                .iter()
                .map(build_keyring)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(BuiltKeyring::Multi(Box::new(g), c))
        }
        EncryptKey::RequiredEc { .. } => {
            Err("a required-EC CMM nested inside a keyring is not supported".to_owned())
        }
        EncryptKey::Kms(kind) => Err(format!("needs AWS KMS ({kind})")),
    }
}

/// Why a scenario produced no ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioError {
    /// The scenario cannot run in this build; the reason.
    Skipped(String),
    /// Encryption failed; the error text.
    Failed(String),
}

/// Encrypts one scenario's `plaintext`; returns the message.
///
/// # Errors
/// [`ScenarioError::Skipped`] for scenarios this build cannot run (see the module docs),
/// [`ScenarioError::Failed`] when encryption fails.
pub fn encrypt_scenario(test: &EncryptTest, plaintext: &[u8]) -> Result<Vec<u8>, ScenarioError> {
    match test.scenario_type.as_deref() {
        Some(t) if t != "positive-esdk" => {
            return Err(ScenarioError::Skipped(format!(
                "scenario type {t:?} is not generated"
            )));
        }
        _ => {}
    }
    if let Some(reason) = test.keys.unsupported() {
        return Err(ScenarioError::Skipped(reason));
    }
    if test.frame_size == 0 {
        return Err(ScenarioError::Skipped(
            "frame-size 0 (non-framed message): esdk-core writes framed messages only".to_owned(),
        ));
    }
    let suite = AlgorithmSuite::from_id(test.suite_id)
        .map_err(|e| ScenarioError::Failed(format!("algorithm {:04x}: {e}", test.suite_id)))?;
    let cfg = esdk_test_support::config_for(suite);
    let opts = EncryptOptions::new()
        .with_suite(suite)
        .with_frame_length(test.frame_size);
    let ec: Vec<(&str, &str)> = test
        .encryption_context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let run = |cmm: &dyn CryptoMaterialsManager| {
        esdk::encrypt(&cfg, cmm, &opts, &ec, plaintext)
            .map_err(|e| ScenarioError::Failed(format!("encrypt: {e}")))
    };
    match &test.keys {
        EncryptKey::RequiredEc {
            underlying,
            required_keys,
        } => {
            let kr = build_keyring(underlying).map_err(ScenarioError::Failed)?;
            let keys: Vec<&str> = required_keys.iter().map(String::as_str).collect();
            run(&RequiredEncryptionContextCmm::new(&kr, &keys))
        }
        k => {
            let kr = build_keyring(k).map_err(ScenarioError::Failed)?;
            run(&kr)
        }
    }
}

/// What [`write_vectors`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Ids of the scenarios written.
    pub written: Vec<String>,
    /// `(id, error)` of the scenarios whose encryption failed.
    pub failed: Vec<(String, String)>,
    /// Skip reason → ids.
    pub skipped: BTreeMap<String, Vec<String>>,
    /// Version of the decrypt manifest written.
    pub decrypt_version: u32,
    /// Path of the decrypt manifest written.
    pub manifest_path: PathBuf,
}

/// Encrypts every scenario of `manifest` and writes keys, plaintexts, ciphertexts and the
/// decrypt manifest into `out_dir` (created if missing; files in it are overwritten).
///
/// `progress` is called once per scenario with its id and outcome.
///
/// # Errors
/// I/O errors and unusable plaintext names; per-scenario failures are reported in the
/// [`Summary`] instead.
pub fn write_vectors(
    manifest: &EncryptManifest,
    out_dir: &Path,
    progress: &mut dyn FnMut(&str, &Result<usize, ScenarioError>),
) -> Result<Summary, String> {
    let mkdir =
        |p: &Path| fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()));
    let write = |p: &Path, data: &[u8]| {
        fs::write(p, data).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    mkdir(&out_dir.join("plaintexts"))?;
    mkdir(&out_dir.join("ciphertexts"))?;
    let keys = fs::read(&manifest.keys_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest.keys_path.display()))?;
    write(&out_dir.join("keys.json"), &keys)?;

    let mut plaintexts = BTreeMap::new();
    for (name, &size) in &manifest.plaintexts {
        check_file_name(name).map_err(|e| format!("plaintext name {name:?}: {e}"))?;
        let mut data = vec![0u8; size];
        esdk::OsRng
            .fill_random(&mut data)
            .map_err(|e| format!("random plaintext {name:?}: {e}"))?;
        write(&out_dir.join("plaintexts").join(name), &data)?;
        plaintexts.insert(name.clone(), data);
    }

    let decrypt_version = if manifest.version >= 5 { 5 } else { 2 };
    let mut summary = Summary {
        decrypt_version,
        manifest_path: out_dir.join("manifest.json"),
        ..Summary::default()
    };
    let mut tests = Map::new();
    for test in &manifest.tests {
        let outcome = match plaintexts.get(&test.plaintext) {
            None => Err(ScenarioError::Failed(format!(
                "plaintext {:?} is not in the manifest's plaintexts",
                test.plaintext
            ))),
            Some(pt) => check_file_name(&test.id)
                .map_err(|e| ScenarioError::Failed(format!("test id: {e}")))
                .and_then(|()| encrypt_scenario(test, pt)),
        };
        let reported = outcome.as_ref().map(Vec::len).map_err(Clone::clone);
        progress(&test.id, &reported);
        match outcome {
            Ok(ct) => {
                write(&out_dir.join("ciphertexts").join(&test.id), &ct)?;
                tests.insert(
                    test.id.clone(),
                    decrypt_entry(test, decrypt_version, &ct_uri(&test.id)),
                );
                summary.written.push(test.id.clone());
            }
            Err(ScenarioError::Skipped(reason)) => {
                summary
                    .skipped
                    .entry(reason)
                    .or_default()
                    .push(test.id.clone());
            }
            Err(ScenarioError::Failed(e)) => summary.failed.push((test.id.clone(), e)),
        }
    }
    let doc = json!({
        "manifest": {"type": "awses-decrypt", "version": decrypt_version},
        "client": {"name": CLIENT_NAME, "version": env!("CARGO_PKG_VERSION")},
        "keys": "file://keys.json",
        "tests": Value::Object(tests),
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| format!("JSON: {e}"))?;
    write(&summary.manifest_path, text.as_bytes())?;
    Ok(summary)
}

fn ct_uri(id: &str) -> String {
    format!("file://ciphertexts/{id}")
}

/// A test id or plaintext name used as a file name must stay inside its directory.
fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.starts_with('.')
    {
        return Err(format!("{name:?} cannot be used as a file name"));
    }
    Ok(())
}

fn decrypt_entry(test: &EncryptTest, version: u32, ciphertext: &str) -> Value {
    let mut entry = test.decrypt_template.clone();
    let pt_uri = format!("file://plaintexts/{}", test.plaintext);
    if version >= 5 {
        entry.insert("type".into(), json!("positive-esdk"));
        entry.insert("ciphertext".into(), json!(ciphertext));
        entry.insert("result".into(), json!(pt_uri));
        entry.insert(
            "algorithmSuiteId".into(),
            json!(format!("{:04X}", test.suite_id)),
        );
        entry.insert("frame-size".into(), json!(test.frame_size));
        json!({ "decryption-scenario": Value::Object(entry) })
    } else {
        entry.insert("ciphertext".into(), json!(ciphertext));
        entry.insert("result".into(), json!({"output": {"plaintext": pt_uri}}));
        Value::Object(entry)
    }
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

/// A JSON object with a context string for error messages; `null` counts as absent.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    ctx: String,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, ctx: impl Into<String>) -> Result<Self, String> {
        let ctx = ctx.into();
        match v {
            Value::Object(map) => Ok(Self { map, ctx }),
            other => Err(format!("{ctx}: expected an object, found {other}")),
        }
    }

    fn err(&self, msg: impl fmt::Display) -> String {
        format!("{}: {msg}", self.ctx)
    }

    fn allow(&self, allowed: &[&str]) -> Result<(), String> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(self.err(format_args!("unknown field {k:?}"))),
            None => Ok(()),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn req(&self, key: &str) -> Result<&'a Value, String> {
        self.get(key)
            .ok_or_else(|| self.err(format_args!("missing field {key:?}")))
    }

    fn str_opt(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(format_args!("field {key:?} must be a string, found {v}"))),
        }
    }

    fn str_req(&self, key: &str) -> Result<&'a str, String> {
        self.str_opt(key)?
            .ok_or_else(|| self.err(format_args!("missing field {key:?}")))
    }

    fn u64_req(&self, key: &str) -> Result<u64, String> {
        let v = self.req(key)?;
        v.as_u64().ok_or_else(|| {
            self.err(format_args!(
                "field {key:?} must be a non-negative integer, found {v}"
            ))
        })
    }

    fn obj_req(&self, key: &str) -> Result<Obj<'a>, String> {
        Obj::new(self.req(key)?, format!("{}.{key}", self.ctx))
    }

    fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, String> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let o = Obj::new(v, format!("{}.{key}", self.ctx))?;
        let mut pairs = o
            .map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(o.err(format_args!(
                    "value of {k:?} must be a string, found {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        pairs.sort();
        Ok(pairs)
    }

    fn string_list(&self, key: &str) -> Result<Vec<String>, String> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let arr = v
            .as_array()
            .ok_or_else(|| self.err(format_args!("field {key:?} must be an array, found {v}")))?;
        arr.iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.err(format_args!("{key:?} entries must be strings")))
            })
            .collect()
    }
}

/// The keys manifest, with the public DER of each RSA key cached (deriving it from a private
/// key costs milliseconds).
struct Keys {
    manifest: KeysManifest,
    rsa_public: RefCell<BTreeMap<String, Vec<u8>>>,
}

impl Keys {
    fn load(path: &Path) -> Result<Self, String> {
        Ok(Self {
            manifest: KeysManifest::load(path)?,
            rsa_public: RefCell::new(BTreeMap::new()),
        })
    }

    fn get(&self, name: &str) -> Result<&KeyEntry, String> {
        self.manifest.get(name)
    }

    fn rsa_public_der(&self, name: &str, pem: &str) -> Result<Vec<u8>, String> {
        if let Some(der) = self.rsa_public.borrow().get(name) {
            return Ok(der.clone());
        }
        let der = rsa_public_der(name, pem)?;
        self.rsa_public
            .borrow_mut()
            .insert(name.to_owned(), der.clone());
        Ok(der)
    }
}

/// The DER SubjectPublicKeyInfo of an RSA key given as PEM: a `PUBLIC KEY` / `RSA PUBLIC
/// KEY` as is, a PKCS#8 `PRIVATE KEY` by deriving its public half (only the encrypt side
/// of this test tool does that; the keyring itself never derives).
fn rsa_public_der(name: &str, pem: &str) -> Result<Vec<u8>, String> {
    use aws_lc_rs::encoding::AsDer;
    let label = pem
        .lines()
        .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .map(|l| l.trim_end_matches('-').to_owned())
        .ok_or_else(|| format!("key {name:?}: not PEM"))?;
    match label.as_str() {
        "PUBLIC KEY" | "RSA PUBLIC KEY" => RsaPublicKey::from_pem(pem)
            .and_then(|k| k.to_spki_der())
            .map_err(|e| format!("key {name:?}: {e}")),
        "PRIVATE KEY" => {
            let body: String = pem
                .lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("-----"))
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| format!("key {name:?}: bad PEM base64: {e}"))?;
            let private = aws_lc_rs::rsa::PrivateDecryptingKey::from_pkcs8(&der)
                .map_err(|e| format!("key {name:?}: not an RSA PKCS#8 key: {e}"))?;
            private
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec())
                .map_err(|e| format!("key {name:?}: cannot encode the public key: {e}"))
        }
        other => Err(format!("key {name:?}: unsupported PEM label {other:?}")),
    }
}

fn parse_padding(o: &Obj<'_>) -> Result<RsaPadding, String> {
    match o.str_opt("padding-algorithm")? {
        // v5 writes a meaningless padding-hash next to pkcs1.
        Some("pkcs1") => Ok(RsaPadding::Pkcs1V15),
        Some("oaep-mgf1") => match o.str_req("padding-hash")? {
            "sha1" => Ok(RsaPadding::OaepSha1),
            "sha256" => Ok(RsaPadding::OaepSha256),
            "sha384" => Ok(RsaPadding::OaepSha384),
            "sha512" => Ok(RsaPadding::OaepSha512),
            other => Err(o.err(format_args!("unknown padding-hash {other:?}"))),
        },
        other => Err(o.err(format_args!("unknown padding-algorithm {other:?}"))),
    }
}

/// A `raw` master key / key description.
fn parse_raw(keys: &Keys, o: &Obj<'_>) -> Result<EncryptKey, String> {
    let name = o.str_req("key")?;
    let entry = keys.get(name).map_err(|e| o.err(e))?;
    let provider_id = o.str_req("provider-id")?.to_owned();
    // Framework feature 0005: a master key may override the wire key name.
    let key_name = o
        .str_opt("key-id")?
        .or(entry.key_id.as_deref())
        .unwrap_or(name)
        .to_owned();
    match o.str_req("encryption-algorithm")? {
        "aes" => Ok(EncryptKey::RawAes {
            provider_id,
            key_name,
            key: aes_key(entry).map_err(|e| o.err(e))?,
        }),
        "rsa" => {
            let pem = rsa_pem(entry).map_err(|e| o.err(e))?;
            Ok(EncryptKey::RawRsa {
                provider_id,
                key_name,
                padding: parse_padding(o)?,
                public_der: keys.rsa_public_der(name, pem).map_err(|e| o.err(e))?,
            })
        }
        other => Err(o.err(format_args!("unknown encryption-algorithm {other:?}"))),
    }
}

/// A v1/v2 master-key entry.
fn parse_master_key(keys: &Keys, o: &Obj<'_>) -> Result<EncryptKey, String> {
    match o.str_req("type")? {
        "raw" => {
            o.allow(&[
                "type",
                "key",
                "key-id",
                "provider-id",
                "encryption-algorithm",
                "padding-algorithm",
                "padding-hash",
            ])?;
            parse_raw(keys, o)
        }
        kind if kind.starts_with("aws-kms") => Ok(EncryptKey::Kms(kind.to_owned())),
        other => Err(o.err(format_args!("unknown master key type {other:?}"))),
    }
}

/// A v5 key description (recursive).
fn parse_description(keys: &Keys, v: &Value, ctx: &str) -> Result<EncryptKey, String> {
    let o = Obj::new(v, ctx)?;
    match o.str_req("type")? {
        "raw" => {
            o.allow(&[
                "type",
                "key",
                "provider-id",
                "encryption-algorithm",
                "padding-algorithm",
                "padding-hash",
            ])?;
            parse_raw(keys, &o)
        }
        "multi-keyring" => {
            o.allow(&["type", "generator", "childKeyrings"])?;
            let generator = o
                .get("generator")
                .ok_or_else(|| o.err("a multi-keyring without generator cannot encrypt"))?;
            let generator = parse_description(keys, generator, &format!("{ctx}.generator"))?;
            let children = match o.get("childKeyrings") {
                None => Vec::new(),
                Some(Value::Array(list)) => list
                    .iter()
                    .enumerate()
                    .map(|(i, c)| parse_description(keys, c, &format!("{ctx}.childKeyrings[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?,
                Some(other) => {
                    return Err(o.err(format_args!("childKeyrings must be an array: {other}")));
                }
            };
            Ok(EncryptKey::Multi {
                generator: Box::new(generator),
                children,
            })
        }
        "required-encryption-context-cmm" => {
            o.allow(&["type", "underlying", "requiredEncryptionContextKeys"])?;
            let underlying =
                parse_description(keys, o.req("underlying")?, &format!("{ctx}.underlying"))?;
            Ok(EncryptKey::RequiredEc {
                underlying: Box::new(underlying),
                required_keys: o.string_list("requiredEncryptionContextKeys")?,
            })
        }
        "raw-ecdh" => parse_raw_ecdh(keys, &o),
        kind if kind.starts_with("aws-kms") => Ok(EncryptKey::Kms(kind.to_owned())),
        other => Err(o.err(format_args!("unknown key description type {other:?}"))),
    }
}

/// A v5 `raw-ecdh` description, encrypt side.
fn parse_raw_ecdh(keys: &Keys, o: &Obj<'_>) -> Result<EncryptKey, String> {
    o.allow(&[
        "type",
        "sender",
        "recipient",
        "sender-public-key",
        "recipient-public-key",
        "provider-id",
        "ecc-curve",
        "schema",
    ])?;
    let curve = match o.str_req("ecc-curve")? {
        "ecc-256" => EcdhCurve::P256,
        "ecc-384" => EcdhCurve::P384,
        "ecc-521" => EcdhCurve::P521,
        other => return Err(o.err(format_args!("unknown ecc-curve {other:?}"))),
    };
    let member = |entry_name: &str, member: &str| -> Result<String, String> {
        let entry = keys.get(entry_name).map_err(|e| o.err(e))?;
        if entry.kind != "ecc-private" {
            return Err(o.err(format_args!("key {entry_name:?} is not an ecc-private key")));
        }
        entry
            .ecdh
            .get(member)
            .cloned()
            .ok_or_else(|| o.err(format_args!("key {entry_name:?} has no {member:?}")))
    };
    let recipient = o.str_req("recipient")?;
    let recipient_member = o.str_req("recipient-public-key")?;
    let recipient_public_der = ecdh_public_der(
        keys.get(recipient).map_err(|e| o.err(e))?,
        &member(recipient, recipient_member)?,
    )
    .map_err(|e| o.err(e))?;
    let sender_private_pem = match o.str_req("schema")? {
        "static" => Some(member(o.str_req("sender")?, "sender-material")?),
        "ephemeral" => None,
        "discovery" => return Err(o.err("a discovery raw-ecdh keyring cannot encrypt")),
        other => return Err(o.err(format_args!("unknown raw-ecdh schema {other:?}"))),
    };
    Ok(EncryptKey::RawEcdh {
        curve,
        sender_private_pem,
        recipient_public_der,
    })
}

fn parse_suite(o: &Obj<'_>, key: &str) -> Result<u16, String> {
    let s = o.str_req(key)?;
    if s.len() != 4 {
        return Err(o.err(format_args!("{key} {s:?} is not 4 hex digits")));
    }
    u16::from_str_radix(s, 16).map_err(|_| o.err(format_args!("{key} {s:?} is not hex")))
}

fn parse_frame(o: &Obj<'_>) -> Result<u32, String> {
    let f = o.u64_req("frame-size")?;
    u32::try_from(f).map_err(|_| o.err(format_args!("frame-size {f} is too large")))
}

fn parse_test_v2(keys: &Keys, id: &str, v: &Value) -> Result<EncryptTest, String> {
    let o = Obj::new(v, format!("test {id:?}"))?;
    o.allow(&[
        "plaintext",
        "algorithm",
        "frame-size",
        "encryption-context",
        "master-keys",
        "description",
    ])?;
    let list = o
        .req("master-keys")?
        .as_array()
        .ok_or_else(|| o.err("master-keys must be an array"))?;
    let mut parsed = list
        .iter()
        .enumerate()
        .map(|(i, m)| parse_master_key(keys, &Obj::new(m, format!("{}.master-keys[{i}]", o.ctx))?))
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.is_empty() {
        return Err(o.err("master-keys is empty"));
    }
    let generator = parsed.remove(0);
    let keys = if parsed.is_empty() {
        generator
    } else {
        EncryptKey::Multi {
            generator: Box::new(generator),
            children: parsed,
        }
    };
    let mut template = Map::new();
    if let Some(d) = o.str_opt("description")? {
        template.insert("description".into(), json!(d));
    }
    template.insert("master-keys".into(), Value::Array(list.clone()));
    Ok(EncryptTest {
        id: id.to_owned(),
        plaintext: o.str_req("plaintext")?.to_owned(),
        suite_id: parse_suite(&o, "algorithm")?,
        frame_size: parse_frame(&o)?,
        encryption_context: o.string_map("encryption-context")?,
        keys,
        scenario_type: None,
        decrypt_template: template,
    })
}

fn parse_test_v5(keys: &Keys, id: &str, v: &Value) -> Result<EncryptTest, String> {
    let top = Obj::new(v, format!("test {id:?}"))?;
    top.allow(&["encryption-scenario"])?;
    let o = top.obj_req("encryption-scenario")?;
    o.allow(&[
        "type",
        "plaintext",
        "description",
        "algorithmSuiteId",
        "frame-size",
        "encryptKeyDescription",
        "decryptKeyDescription",
        "encryption-context",
        "reproduced-encryption-context",
    ])?;
    let enc = parse_description(
        keys,
        o.req("encryptKeyDescription")?,
        &format!("{}.encryptKeyDescription", o.ctx),
    )?;
    let mut template = Map::new();
    if let Some(d) = o.str_opt("description")? {
        template.insert("description".into(), json!(d));
    }
    template.insert(
        "decryptKeyDescription".into(),
        o.req("decryptKeyDescription")?.clone(),
    );
    template.insert(
        "reproduced-encryption-context".into(),
        o.get("reproduced-encryption-context")
            .cloned()
            .unwrap_or_else(|| json!({})),
    );
    Ok(EncryptTest {
        id: id.to_owned(),
        plaintext: o.str_req("plaintext")?.to_owned(),
        suite_id: parse_suite(&o, "algorithmSuiteId")?,
        frame_size: parse_frame(&o)?,
        encryption_context: o.string_map("encryption-context")?,
        keys: enc,
        scenario_type: Some(o.str_req("type")?.to_owned()),
        decrypt_template: template,
    })
}

/// Loads an `awses-encrypt` manifest (v1, v2 or v5) and its keys manifest.
///
/// # Errors
/// A message naming the file, test id and field for anything malformed or unknown.
pub fn load_encrypt_manifest(path: &Path) -> Result<EncryptManifest, String> {
    let root = read_json(path)?;
    let top = Obj::new(&root, path.display().to_string())?;
    top.allow(&["manifest", "client", "keys", "plaintexts", "tests"])?;
    let meta = top.obj_req("manifest")?;
    if meta.str_req("type")? != "awses-encrypt" {
        return Err(meta.err("manifest.type is not \"awses-encrypt\""));
    }
    let version = u32::try_from(meta.u64_req("version")?).unwrap_or(u32::MAX);
    if !matches!(version, 1 | 2 | 5) {
        return Err(meta.err(format_args!(
            "unsupported awses-encrypt version {version} (1, 2 and 5 are supported)"
        )));
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let keys_path = resolve_uri(dir, top.str_req("keys")?)?;
    let keys = Keys::load(&keys_path)?;
    let mut plaintexts = BTreeMap::new();
    for (name, v) in top.obj_req("plaintexts")?.map {
        let size = v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| top.err(format_args!("plaintext {name:?}: bad size {v}")))?;
        plaintexts.insert(name.clone(), size);
    }
    let mut tests = top
        .obj_req("tests")?
        .map
        .iter()
        .map(|(id, v)| {
            if version >= 5 {
                parse_test_v5(&keys, id, v)
            } else {
                parse_test_v2(&keys, id, v)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    tests.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(EncryptManifest {
        version,
        keys_path,
        plaintexts,
        tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Expected, KeyDescription, load_decrypt_manifest};
    use crate::runner::{Options, decrypt_case};

    fn vectors_root() -> PathBuf {
        std::env::var_os("ESDK_TEST_VECTORS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/test-vectors")
            })
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("esdk-encman-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn framework_v2_manifest_parses_with_expected_shape() {
        let m = load_encrypt_manifest(
            &vectors_root().join("framework-manifests/0003-awses-message-encryption.v2.json"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.version, 2);
        assert_eq!(m.tests.len(), 3300);
        assert_eq!(m.plaintexts.get("small"), Some(&10240));
        let kms = m
            .tests
            .iter()
            .filter(|t| t.keys.unsupported().is_some())
            .count();
        assert_eq!(kms, 440);
        let multi_rsa = m
            .tests
            .iter()
            .filter(|t| {
                matches!(&t.keys, EncryptKey::Multi { generator, children }
                    if matches!(**generator, EncryptKey::RawRsa { .. })
                    && children.len() == 1)
            })
            .count();
        assert_eq!(multi_rsa, 5 * 220);
        let nonframed = m.tests.iter().filter(|t| t.frame_size == 0).count();
        assert_eq!(nonframed, 660);
        // rsa-4096-private is encrypted with its derived public half, under its own key-id.
        let t = m
            .tests
            .iter()
            .find(|t| matches!(t.keys, EncryptKey::RawRsa { .. }))
            .expect("an RSA test");
        if let EncryptKey::RawRsa {
            key_name,
            public_der,
            ..
        } = &t.keys
        {
            assert_eq!(key_name, "rsa-4096-private");
            let k = RsaPublicKey::from_der(public_der).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(k.modulus_bits(), 4096);
        }
    }

    #[test]
    fn dafny_v5_manifest_parses_with_expected_shape() {
        let m = load_encrypt_manifest(&vectors_root().join("dafny-4.1.0/encrypt-manifest.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.version, 5);
        assert_eq!(m.tests.len(), 302);
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for t in &m.tests {
            if let Some(r) = t.keys.unsupported() {
                *reasons.entry(r).or_default() += 1;
            }
        }
        let kms: usize = reasons
            .iter()
            .filter(|(r, _)| r.starts_with("needs AWS KMS"))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(kms, 124);
        assert_eq!(reasons.values().sum::<usize>(), 124);
        let ecdh = m
            .tests
            .iter()
            .filter(|t| matches!(t.keys, EncryptKey::RawEcdh { .. }))
            .count();
        assert_eq!(ecdh, 64);
    }

    /// A small hand-made manifest exercising every supported shape end to end: AES, RSA from
    /// a private and a public entry, multi-key, required EC, a KMS and a non-framed skip;
    /// the output is then read back with the decrypt loader and decrypted.
    #[test]
    fn writes_a_decrypt_manifest_that_decrypts() {
        let root = vectors_root().join("framework-manifests");
        let src = load_encrypt_manifest(&root.join("0003-awses-message-encryption.v2.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        // Every suite with framed raw keys, one of each key setup, EC variants mixed.
        let mut seen = BTreeMap::new();
        let mut picked: Vec<EncryptTest> = src
            .tests
            .iter()
            .filter(|t| {
                let key = (t.suite_id, format!("{:?}", t.keys), t.frame_size == 0);
                seen.insert(key, ()).is_none()
            })
            .cloned()
            .collect();
        picked.retain(|t| t.suite_id == 0x0578 || t.suite_id == 0x0014);
        let m = EncryptManifest {
            tests: picked,
            ..src
        };
        let out = temp_dir("v2");
        let summary = write_vectors(&m, &out, &mut |_, _| {}).unwrap_or_else(|e| panic!("{e}"));
        assert!(summary.failed.is_empty(), "{:?}", summary.failed);
        // 2 suites x 15 key setups x framed/non-framed.
        assert_eq!(m.tests.len(), 2 * 15 * 2);
        assert_eq!(summary.written.len(), 2 * 13);
        let skipped: usize = summary.skipped.values().map(Vec::len).sum();
        // KMS: 2 suites x 2 KMS setups x framed/non-framed; non-framed: 2 suites x 13.
        assert_eq!(skipped, 2 * 2 * 2 + 2 * 13);
        let d = load_decrypt_manifest(&summary.manifest_path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.version, 2);
        assert_eq!(d.tests.len(), summary.written.len());
        let opts = Options::default();
        for t in &d.tests {
            let Expected::Plaintext(want) = &t.expected else {
                panic!("{}: expected output", t.id)
            };
            assert_eq!(want.len(), 10240);
            let got = decrypt_case(t, &opts).unwrap_or_else(|e| panic!("{}: {e:?}", t.id));
            assert_eq!(&got, want, "{}", t.id);
        }
        let _ = fs::remove_dir_all(&out);
    }

    #[test]
    fn v5_output_keeps_required_ec_and_multi_keyring() {
        let src = load_encrypt_manifest(&vectors_root().join("dafny-4.1.0/encrypt-manifest.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        let out = temp_dir("v5");
        let summary = write_vectors(&src, &out, &mut |_, _| {}).unwrap_or_else(|e| panic!("{e}"));
        assert!(summary.failed.is_empty(), "{:?}", summary.failed);
        assert_eq!(summary.written.len(), 302 - 124);
        let d = load_decrypt_manifest(&summary.manifest_path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.version, 5);
        let required = d
            .tests
            .iter()
            .filter(|t| matches!(t.keyring, KeyDescription::RequiredEc { .. }))
            .count();
        assert_eq!(required, 35);
        let multi = d
            .tests
            .iter()
            .filter(|t| matches!(t.keyring, KeyDescription::Multi { .. }))
            .count();
        assert_eq!(multi, 27);
        for t in &d.tests {
            let Expected::Plaintext(want) = &t.expected else {
                panic!("{}: expected output", t.id)
            };
            let got =
                decrypt_case(t, &Options::default()).unwrap_or_else(|e| panic!("{}: {e:?}", t.id));
            assert_eq!(&got, want, "{}", t.id);
        }
        let _ = fs::remove_dir_all(&out);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_names() {
        let dir = temp_dir("bad");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::copy(
            vectors_root().join("framework-manifests/0002-keys.v3.json"),
            dir.join("keys.json"),
        )
        .expect("copy keys");
        let manifest = |test: &str| {
            format!(
                r#"{{"manifest":{{"type":"awses-encrypt","version":2}},"keys":"file://keys.json",
                    "plaintexts":{{"tiny":3}},"tests":{{"t1":{test}}}}}"#
            )
        };
        let ok = r#"{"plaintext":"tiny","algorithm":"0178","frame-size":512,
            "encryption-context":{"a":"b"},"master-keys":[{"type":"raw","key":"aes-192",
            "provider-id":"p","encryption-algorithm":"aes"}]}"#;
        let path = dir.join("m.json");
        fs::write(&path, manifest(ok)).expect("write");
        let m = load_encrypt_manifest(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.tests[0].suite_id, 0x0178);
        assert_eq!(
            m.tests[0].keys,
            EncryptKey::RawAes {
                provider_id: "p".into(),
                key_name: "aes-192".into(),
                key: hex::decode("000102030405060708091011121314151617181920212223").expect("hex"),
            }
        );
        let bad = ok.replace("\"frame-size\"", "\"frame-length\"");
        fs::write(&path, manifest(&bad)).expect("write");
        let err = load_encrypt_manifest(&path).expect_err("unknown field accepted");
        assert!(
            err.contains("\"t1\"") && err.contains("frame-length"),
            "{err}"
        );

        let bad = manifest(ok).replace("\"t1\"", "\"../escape\"");
        fs::write(&path, bad).expect("write");
        let m = load_encrypt_manifest(&path).unwrap_or_else(|e| panic!("{e}"));
        let summary =
            write_vectors(&m, &dir.join("out"), &mut |_, _| {}).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summary.failed.len(), 1);
        assert!(
            summary.failed[0].1.contains("file name"),
            "{:?}",
            summary.failed
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
