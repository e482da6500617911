//! The header summary of a message and the `--metadata-output` JSON lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use esdk::AlgorithmSuite;
use esdk::core::header::{ContentType, Header};
use serde_json::{Map, Value, json};

use super::Mode;
use super::args::suite_name;
use super::error::CliError;
use super::paths::{Input, Output};
use std::path::Path;

/// One encrypted data key, as the metadata shows it.
#[derive(Debug, Clone)]
pub(crate) struct EdkInfo {
    /// Provider id (key namespace for raw keys, `aws-kms` for KMS).
    pub provider_id: String,
    /// Provider info (key name, plus the IV for raw AES keys).
    pub provider_info: Vec<u8>,
    /// Length of the wrapped data key.
    pub ciphertext: Vec<u8>,
}

impl EdkInfo {
    /// The key name inside the provider info: raw AES (and PKCS#11 AES) provider info is
    /// name ‖ tag bits (128) ‖ IV length (12) ‖ IV; raw RSA and KMS provider info is the name.
    pub fn key_name(&self) -> Option<String> {
        let info = &self.provider_info;
        let n = info.len();
        let aes_tail = n >= 20
            && info[n - 20..n - 16] == 128u32.to_be_bytes()
            && info[n - 16..n - 12] == 12u32.to_be_bytes();
        let name = if aes_tail { &info[..n - 20] } else { &info[..] };
        std::str::from_utf8(name).ok().map(str::to_owned)
    }
}

/// What the metadata needs from a header, owned.
#[derive(Debug, Clone)]
pub(crate) struct HeaderInfo {
    /// Message format version.
    pub version: u8,
    /// The suite.
    pub suite: AlgorithmSuite,
    /// Message id.
    pub message_id: Vec<u8>,
    /// The stored encryption context, in stored order.
    pub encryption_context: Vec<(String, String)>,
    /// The EDKs.
    pub edks: Vec<EdkInfo>,
    /// Framed or not.
    pub framed: bool,
    /// Frame length (0 for non-framed).
    pub frame_length: u32,
    /// Header length in bytes.
    pub header_len: usize,
    /// The algorithm suite data (version 2: the commitment key of committing suites).
    pub suite_data: Vec<u8>,
    /// The header authentication's IV (zeros in version 2).
    pub auth_iv: [u8; 12],
    /// The header authentication's tag.
    pub auth_tag: [u8; 16],
}

impl HeaderInfo {
    /// The summary of a parsed header.
    pub fn new(h: &Header<'_>) -> Self {
        Self {
            version: h.version,
            suite: h.suite,
            message_id: h.message_id.to_vec(),
            encryption_context: h
                .encryption_context
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            edks: h
                .edks
                .iter()
                .map(|(_, e)| EdkInfo {
                    provider_id: e.provider_id.to_owned(),
                    provider_info: e.provider_info.to_vec(),
                    ciphertext: e.ciphertext.to_vec(),
                })
                .collect(),
            framed: h.content_type == ContentType::Framed,
            frame_length: h.frame_length,
            header_len: h.bytes.len(),
            suite_data: h.suite_data.to_vec(),
            auth_iv: if h.version == 1 { h.iv } else { [0; 12] },
            auth_tag: h.tag,
        }
    }

    /// The stored value of an encryption-context key.
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.encryption_context
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The header in the shape of aws-encryption-cli's metadata (the Python ESDK's message
    /// header with binary fields and the provider id in base64, Python's suite name; the
    /// version-1-only fields `type` and `header_iv_length` null in version 2, and
    /// `commitment_key` null without one).
    fn official_json(&self) -> Value {
        let ec: Map<String, Value> = self
            .encryption_context
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut edks: Vec<&EdkInfo> = self.edks.iter().collect();
        edks.sort_by(|a, b| {
            (a.provider_id.as_bytes(), &a.provider_info[..])
                .cmp(&(b.provider_id.as_bytes(), &b.provider_info[..]))
        });
        let edks: Vec<Value> = edks
            .into_iter()
            .map(|e| {
                json!({
                    "encrypted_data_key": B64.encode(&e.ciphertext),
                    "key_provider": {
                        "key_info": B64.encode(&e.provider_info),
                        "provider_id": B64.encode(e.provider_id.as_bytes()),
                    },
                })
            })
            .collect();
        json!({
            "algorithm": suite_name(self.suite),
            "content_type": if self.framed { 2 } else { 1 },
            "encrypted_data_keys": edks,
            "encryption_context": ec,
            "frame_length": self.frame_length,
            "header_iv_length": if self.version == 1 { Value::from(12) } else { Value::Null },
            "message_id": B64.encode(&self.message_id),
            "type": if self.version == 1 { Value::from(128) } else { Value::Null },
            "version": format!("{}.0", self.version),
            "commitment_key": if self.suite_data.is_empty() {
                Value::Null
            } else {
                Value::from(B64.encode(&self.suite_data))
            },
        })
    }

    /// The header authentication in the shape of aws-encryption-cli's metadata.
    fn official_auth_json(&self) -> Value {
        json!({ "iv": B64.encode(self.auth_iv), "tag": B64.encode(self.auth_tag) })
    }
}

/// One line of metadata.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    /// Encrypt or decrypt.
    pub mode: Mode,
    /// Input as shown.
    pub input: String,
    /// Output as shown.
    pub output: String,
    /// The message header.
    pub header: &'a HeaderInfo,
    /// Bytes read.
    pub input_bytes: u64,
    /// Bytes written.
    pub output_bytes: u64,
}

impl Record<'_> {
    /// The JSON object: the aws-encryption-cli fields (`mode`, `input`, `output`, `header`,
    /// and on decrypt `header_auth`) and readable ones (`suite`, `encryption_context`, `encrypted_data_keys` with provider
    /// id and key name, `frame_length`, sizes).
    pub fn to_json(&self) -> Value {
        let h = self.header;
        let ec: Map<String, Value> = h
            .encryption_context
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let edks: Vec<Value> = h
            .edks
            .iter()
            .map(|e| json!({ "provider_id": e.provider_id, "key_name": e.key_name() }))
            .collect();
        let (plaintext, message) = match self.mode {
            Mode::Encrypt => (self.input_bytes, self.output_bytes),
            Mode::Decrypt => (self.output_bytes, self.input_bytes),
        };
        let mut v = json!({
            "mode": self.mode.as_str(),
            "input": self.input,
            "output": self.output,
            "suite": format!("{}", h.suite),
            "encryption_context": ec,
            "encrypted_data_keys": edks,
            "frame_length": h.frame_length,
            "header_length": h.header_len,
            "plaintext_bytes": plaintext,
            "message_bytes": message,
            "header": h.official_json(),
        });
        if self.mode == Mode::Decrypt
            && let Some(o) = v.as_object_mut()
        {
            o.insert("header_auth".into(), h.official_auth_json());
        }
        v
    }
}

/// An input as metadata names it: as given, or (aws-encryption-cli's syntax) as an absolute
/// path, the way aws-encryption-cli names it.
pub(crate) fn shown(input: &Input, absolute: bool) -> String {
    match input {
        Input::File(p) if absolute => absolute_path(p),
        other => other.display(),
    }
}

/// An output as metadata names it (see [`shown`]).
pub(crate) fn shown_output(output: &Output, absolute: bool) -> String {
    match output {
        Output::File(p) if absolute => absolute_path(p),
        other => other.display(),
    }
}

fn absolute_path(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_owned())
        .display()
        .to_string()
}

/// Where metadata lines go.
#[derive(Debug)]
pub(crate) enum MetadataSink {
    /// Nowhere.
    None,
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(File, String),
}

impl MetadataSink {
    /// Opens `--metadata-output`: appends to a file, or truncates it first with `truncate`
    /// (aws-encryption-cli's `--overwrite-metadata`).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(target: Option<&str>, truncate: bool) -> Result<Self, CliError> {
        match target {
            None => Ok(Self::None),
            Some("-") => Ok(Self::Stdout),
            Some(path) => OpenOptions::new()
                .create(true)
                .append(!truncate)
                .write(true)
                .truncate(truncate)
                .open(path)
                .map(|f| Self::File(f, path.to_owned()))
                .map_err(|e| CliError::io("opening metadata output", &format!("'{path}'"), &e)),
        }
    }

    /// Writes one record as a JSON line.
    ///
    /// # Errors
    /// The line cannot be written.
    pub fn write(&mut self, record: &Record<'_>) -> Result<(), CliError> {
        let mut line = record.to_json().to_string();
        line.push('\n');
        let r = match self {
            Self::None => return Ok(()),
            Self::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
            Self::File(f, _) => f.write_all(line.as_bytes()),
        };
        r.map_err(|e| {
            let name = match self {
                Self::File(_, p) => format!("'{p}'"),
                _ => "<stdout>".to_owned(),
            };
            CliError::io("writing metadata to", &name, &e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_come_out_of_provider_info() {
        let mut aes = b"my-key".to_vec();
        aes.extend_from_slice(&128u32.to_be_bytes());
        aes.extend_from_slice(&12u32.to_be_bytes());
        aes.extend_from_slice(&[7u8; 12]);
        let e = |info: Vec<u8>| EdkInfo {
            provider_id: "ns".into(),
            provider_info: info,
            ciphertext: vec![],
        };
        assert_eq!(e(aes).key_name().as_deref(), Some("my-key"));
        assert_eq!(
            e(b"rsa-key".to_vec()).key_name().as_deref(),
            Some("rsa-key")
        );
        assert_eq!(e(vec![0xff, 0xfe]).key_name(), None);
    }
}
