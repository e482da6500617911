//! Writes the hostile messages of issue #14 to a directory, so that the `esdk` CLI and the
//! official ESDKs can be timed on exactly the same files:
//!
//! ```text
//! cargo run --release -p esdk-tests --bin hostile-headers -- DIR
//! ```
//!
//! Every file is a valid v2 message (suite 0x0478, 64-byte frames) whose only EDK that any
//! keyring here could open is a raw AES-256 EDK (key namespace [`NAMESPACE`], key name
//! [`NAME`], wrapping key [`KEY`]); in all files but the `*-decrypts.esdk` one that EDK is
//! wrapped under another key name ([`OTHER_NAME`]), so decryption fails after the whole
//! header was checked (the header is the only work). The decrypting one yields
//! [`PLAINTEXT`]. Contexts use distinct two-byte printable keys with value "v".

use std::path::Path;

use esdk_core::header::{self, ParseLimits, Parsed};
use esdk_core::materials::{DataKey, DecryptionMaterials, Edks, EncryptionMaterials};
use esdk_core::{AlgorithmSuite, Config, EncryptOptions, Error, Keyring};
use esdk_raw::RawAesKeyring;
use esdk_tests::forge::{Forge, ec_section, edk, long_edks, printable_keys, shuffle};

/// Raw AES key namespace (the provider id of its EDKs).
const NAMESPACE: &str = "hostile";
/// Raw AES key name of the key that opens the decrypting file.
const NAME: &str = "aes-256";
/// Key name of the EDK in the files that must not decrypt.
const OTHER_NAME: &str = "aes-256-other";
/// The raw AES-256 wrapping key: bytes 0x00, 0x01, ..., 0x1F.
const KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};
/// The plaintext of the decrypting file.
const PLAINTEXT: &[u8] = b"hostile header, valid message\n";
const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const DATA_KEY: [u8; 32] = [0x77; 32];

/// Wraps [`DATA_KEY`] (instead of a random one) with the raw AES keyring.
struct KnownKey<'a>(&'a RawAesKeyring<'a>);

impl Keyring for KnownKey<'_> {
    fn on_encrypt(&self, m: &mut EncryptionMaterials<'_>) -> Result<(), Error> {
        m.set_data_key(DataKey::from_slice(&DATA_KEY)?)?;
        self.0.on_encrypt(m)
    }
    fn on_decrypt(&self, m: &mut DecryptionMaterials<'_>, edks: Edks<'_>) -> Result<(), Error> {
        self.0.on_decrypt(m, edks)
    }
    fn encrypted_data_keys_len(&self, s: AlgorithmSuite) -> Option<(u16, usize)> {
        self.0.encrypted_data_keys_len(s)
    }
}

/// The raw AES EDK (key `name`) of [`DATA_KEY`] bound to `pairs`, and the message id.
fn raw_edk(name: &str, pairs: &[(&str, &str)]) -> (Vec<u8>, Vec<u8>) {
    let k = RawAesKeyring::new(NAMESPACE, name, &KEY).expect("keyring");
    let opts = EncryptOptions::new().with_suite(SUITE);
    let msg = esdk::encrypt(&Config::new(), &KnownKey(&k), &opts, pairs, b"").expect("encrypt");
    let Ok(Parsed::Complete(h)) = header::parse(&msg, ParseLimits::default()) else {
        panic!("header of our own message");
    };
    let (_, e) = h.edks.iter().next().expect("one EDK");
    (
        edk(e.provider_id.as_bytes(), e.provider_info, e.ciphertext),
        h.message_id.to_vec(),
    )
}

#[derive(Clone, Copy)]
enum Order {
    Sorted,
    Reverse,
    Shuffled,
}

/// A message: `n` context pairs in `order`, `junk` EDKs with `pid_len`-byte provider ids,
/// then the raw AES EDK under key `name`.
fn message(n: usize, order: Order, junk: u16, pid_len: usize, name: &str) -> Vec<u8> {
    let keys: Vec<String> = printable_keys(n)
        .iter()
        .map(|k| String::from_utf8(k.to_vec()).expect("ascii"))
        .collect();
    let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    let (real, mid) = raw_edk(name, &pairs);
    let mut stored: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    match order {
        Order::Sorted => {}
        Order::Reverse => stored.reverse(),
        Order::Shuffled => shuffle(&mut stored, 14),
    }
    let mut edks = long_edks(junk, pid_len);
    edks.extend(real);
    let mut f = Forge::new(SUITE);
    f.mid = mid;
    f.data_key = DATA_KEY.to_vec();
    let mut msg = f.header(&ec_section(&stored), junk + 1, &edks, 2, 64);
    msg.extend(f.final_frame(1, PLAINTEXT));
    msg
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| panic!("usage: hostile-headers DIR"));
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create DIR");
    // 8 836 pairs of 7 bytes: 61 854 bytes, the most two-byte printable keys allow.
    let max = 94 * 94;
    let files: [(&str, Vec<u8>); 6] = [
        (
            "edks-65535-long-ids.esdk",
            message(0, Order::Sorted, u16::MAX - 1, 90, OTHER_NAME),
        ),
        (
            "ec-max-sorted.esdk",
            message(max, Order::Sorted, 0, 0, OTHER_NAME),
        ),
        (
            "ec-max-unsorted.esdk",
            message(max, Order::Shuffled, 0, 0, OTHER_NAME),
        ),
        (
            "ec-max-reverse.esdk",
            message(max, Order::Reverse, 0, 0, OTHER_NAME),
        ),
        (
            "ec-8836-unsorted-edks-65535.esdk",
            message(max, Order::Shuffled, u16::MAX - 1, 90, OTHER_NAME),
        ),
        (
            "ec-8836-unsorted-edks-65535-decrypts.esdk",
            message(max, Order::Shuffled, u16::MAX - 1, 90, NAME),
        ),
    ];
    let key_hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).expect("write");
        let verdict = if name.ends_with("-decrypts.esdk") {
            "decrypts"
        } else {
            "does not decrypt (EDK key name differs)"
        };
        println!("hostile-headers: {name}: {} bytes, {verdict}", bytes.len());
    }
    println!(
        "hostile-headers: {} files in {}; raw AES key namespace {NAMESPACE:?}, key name \
         {NAME:?}, key (hex) {key_hex}; plaintext {:?}",
        files.len(),
        dir.display(),
        String::from_utf8_lossy(PLAINTEXT)
    );
}
