//! The command line: subcommands, flags and their help text (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use esdk::AlgorithmSuite;

use super::range::ByteRange;

/// The exit codes, shown at the end of every `--help`.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  cryptographic or message-format failure: authentication (wrong key, tampering,
     truncation), a refused policy (commitment, encryption context, limits), a keyring
     that could not wrap or unwrap the data key
  2  usage error: bad arguments, unreadable key material, conflicting options
  3  I/O error: an input could not be read or an output written

When several files fail (directories), the code is that of the first failure. A failed
file never leaves a regular output file behind: regular files are written to a temporary
file in the target directory and renamed into place only on success. Other outputs (stdout,
devices, FIFOs, sockets, /dev/stdout, /dev/fd/N) are written in place and may have received
data before a failure (see --output).";

const ABOUT: &str = "Encrypt and decrypt files in the AWS Encryption SDK message format, \
byte-compatible with the official SDKs and the aws-encryption-cli.";

const KEYS_HELP: &str = "\
Wrapping keys:
  Give one or more keys with --raw-aes-key, --raw-rsa-key, --raw-ecdh-key,
  --recipient-public-key, --kms-key, --kms-rsa-key, --kms-ecdh-key and --pkcs11-key (repeat
  the flags).
  The first key on the command line is the generator; the others are children of a
  multi-keyring: on encrypt every key wraps the data key, on decrypt any one of them opens it.

  --key-namespace, --key-name and --rsa-padding apply to the key flag they follow; written
  before the first key flag they set the default for every key. Defaults: namespace
  \"esdk\", name \"default\", padding oaep-sha256. Decryption needs the namespace and name
  used at encryption.

  --raw-aes-key FILE holds a 16-, 24- or 32-byte AES key as raw bytes, hex or base64; the
  encoding is detected (--key-encoding forces one). Text made only of hex digits is read as
  hex. A file that fits two encodings (32 raw bytes that are also 32 hex digits, 24 raw bytes
  that are also base64) is refused: choose with --key-encoding. `esdk keygen` makes one.

  --raw-rsa-key PEM holds an RSA key (2048 to 8192 bits) in PEM (or DER): a public key
  (SubjectPublicKeyInfo or PKCS#1) encrypts only; a private key (PKCS#8 or PKCS#1, not
  password-protected) decrypts, and also encrypts: its public half is derived from it with
  aws-lc-rs.

  Raw ECDH keys (P-256, P-384, P-521; the MPL's raw ECDH keyring, EDK provider raw-ecdh):
    --raw-ecdh-key PRIV --recipient-public-key PUB
        RawPrivateKeyToStaticPublicKey: PRIV is the sender's; encrypts, and decrypts what
        either side wrote (the recipient's key with the sender's public key decrypts too)
    --recipient-public-key PUB (not right after an ECDH key)
        EphemeralPrivateKeyToStaticPublicKey: a fresh sender key per message; encrypts
        only (what devices with the no_std raw ECDH keyring send)
    --raw-ecdh-key PRIV --ecdh-discovery
        PublicKeyDiscovery: PRIV is the recipient's; decrypts whatever was sent to its
        public key, by any sender; decrypt only
  Private keys are PKCS#8 (PEM or DER; convert a SEC1 `EC PRIVATE KEY` with openssl pkcs8
  -topk8 -nocrypt), public keys SubjectPublicKeyInfo (PEM or DER; openssl pkey -pubout).
  --recipient-public-key and --ecdh-discovery belong to the --raw-ecdh-key, --pkcs11-key or
  --kms-ecdh-key right before them; a --recipient-public-key anywhere else is a key of its
  own. ECDH keys take no --key-namespace or --key-name: their EDKs name the public keys.

  AWS KMS keys (--kms-key ARN, repeatable; --kms-discovery on decrypt) need a build with
  the `kms` feature (on by default). Their KMS calls run concurrently; KMS errors name the
  key, the region and the KMS error code. --kms-endpoint URL points at a KMS-compatible
  server.

  AWS KMS RSA keys (--kms-rsa-key ARN --kms-rsa-public-key PEM on encrypt, --kms-rsa-key ARN
  on decrypt; --rsa-padding oaep-sha256 or oaep-sha1 after it) encrypt offline with the KMS
  key's public key and decrypt with KMS Decrypt, like the MPL's AWS KMS RSA keyring. They
  refuse signing suites, so the default suite is then 0x0478.

  AWS KMS ECDH keys (--kms-ecdh-key ARN, a KEY_AGREEMENT key) wrap with a key derived from
  an ECDH shared secret that KMS computes, like the MPL's AWS KMS ECDH keyring; their EDKs
  are the raw ECDH keyring's. After it, --recipient-public-key FILE|ARN sends to that
  public key (the ARN's key is the sender's; both sides decrypt), or --ecdh-discovery
  decrypts with the ARN's key whatever any sender wrote to its public key (devices with the
  raw ECDH keyring, for instance).
  A branch key of an AWS KMS hierarchical keyring (--branch-key-id ID --branch-key-table
  NAME --branch-key-kms-key ARN) wraps data keys locally under a branch key kept in a
  DynamoDB key store and protected by KMS, like the MPL's hierarchical keyring: one
  DynamoDB and one KMS call per run, not per file. `esdk branch-key create|version` makes
  and rotates branch keys.

  PKCS#11 keys (--pkcs11-module, --pkcs11-token LABEL or --pkcs11-slot ID, --pkcs11-key
  label:NAME|id:HEX) need the `pkcs11` feature (on by default: cargo install --path cli).
  The user PIN comes from --pkcs11-pin-file FILE, else the environment variable
  ESDK_PKCS11_PIN, else a prompt when stdin is a terminal (no echo); otherwise a token that
  needs a PIN is a usage error. A key names an AES key (AES-GCM wrapping, same EDKs as
  --raw-aes-key), an RSA key pair (OAEP, same EDKs as --raw-rsa-key; pkcs1 padding is not
  offered on tokens) or an EC key pair with CKA_DERIVE (ECDH on the token, same EDKs as
  --raw-ecdh-key): followed by --recipient-public-key PUB it is the sender's static key,
  followed by --ecdh-discovery (decrypt) the recipient's, opening what devices sent to its
  public key.";

/// `esdk`: the command line.
#[derive(Debug, Parser)]
#[command(
    name = "esdk",
    version,
    about = ABOUT,
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Encrypt files, directories or stdin into ESDK messages.
    #[command(after_help = format!("{KEYS_HELP}\n\n{EXIT_CODES}"))]
    Encrypt(EncryptArgs),
    /// Decrypt ESDK messages from files, directories or stdin.
    #[command(after_help = format!("{KEYS_HELP}\n\n{DECRYPT_NOTE}\n\n{EXIT_CODES}"))]
    Decrypt(DecryptArgs),
    /// Write a new random raw AES-256 key file (mode 0600; never overwrites).
    #[command(after_help = EXIT_CODES)]
    Keygen(KeygenArgs),
    /// Create or rotate branch keys of an AWS KMS hierarchical keyring's key store
    /// (DynamoDB + KMS, as the MPL's key store).
    #[command(after_help = EXIT_CODES)]
    BranchKey(super::branch_key::BranchKeyArgs),
}

const DECRYPT_NOTE: &str = "\
Signed messages (the default suite 0x0578): the signature covers the whole message and is
checked at its end. Regular files are safe (the output appears only after everything
verified). For stdout and the other non-regular outputs (devices, FIFOs, /dev/fd/N) the
plaintext is held in memory until the signature verifies, up to a bound; with
--stream-unverified it is streamed, and what was written before a failure is unverified:
discard it when the exit code is not 0. --decrypt-unsigned refuses signed messages before
any output. --range decrypts part of an unsigned message; a range of a signed message is
unverified output and needs --range-unverified-signed.";

/// Options of `esdk encrypt`.
#[derive(Debug, Args)]
pub(crate) struct EncryptArgs {
    /// Options shared with `decrypt`.
    #[command(flatten)]
    pub common: CommonArgs,

    /// Algorithm suite: a hex id (0x0578, 0x0478, ... 0x0014) or a name
    /// (AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, also with an ALG_ prefix). Default:
    /// 0x0578, or 0x0378 under forbid-encrypt-allow-decrypt.
    #[arg(long, value_name = "SUITE", value_parser = parse_suite)]
    pub suite: Option<AlgorithmSuite>,

    /// Frame length in bytes (plaintext per frame; memory use grows with it).
    #[arg(long, value_name = "BYTES", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub frame_length: u32,
}

/// Options of `esdk decrypt`.
#[derive(Debug, Args)]
pub(crate) struct DecryptArgs {
    /// Options shared with `encrypt`.
    #[command(flatten)]
    pub common: CommonArgs,

    /// Refuse signed messages (suites 0x0214, 0x0346, 0x0378, 0x0578) right after the
    /// header, so no plaintext is ever released before the whole message is verified.
    #[arg(long)]
    pub decrypt_unsigned: bool,

    /// For stdout and other non-regular outputs: stream the plaintext of a signed message as
    /// its frames verify, before the signature at its end is checked (what was written before
    /// a failure is unverified). Without it such plaintext is held in memory until the
    /// signature verifies (see --signed-buffer-limit). Regular files are unaffected.
    #[arg(long)]
    pub stream_unverified: bool,

    /// Most plaintext of a signed message held in memory for stdout and other non-regular
    /// outputs until its signature verifies; a larger message is refused (exit 1) with what to
    /// do instead.
    #[arg(long, value_name = "BYTES", default_value_t = esdk::stream::DEFAULT_SIGNED_BUFFER_LIMIT)]
    pub signed_buffer_limit: usize,

    /// Refuse messages whose body is larger than this: the frame length of a framed
    /// message, the content length of a non-framed one.
    #[arg(long, value_name = "BYTES")]
    pub max_length: Option<u64>,

    /// Decrypt only these plaintext bytes, as HTTP `Range: bytes=` writes them: START-END
    /// (both inclusive: 0-99 is the first 100 bytes), START- (from START to the end) or
    /// -LEN (the last LEN bytes). Only the header, the final frame and the frames that hold
    /// the range are read and verified, so the input must be able to seek: a file, or stdin
    /// redirected from a file (a pipe is refused). Framed messages only. An END past the
    /// last byte is clipped to it and -LEN larger than the plaintext gives all of it; a
    /// START at or past the end is an error that says the plaintext length (exit 2). One
    /// input file only (not with --recursive). Truncated or extended messages are refused
    /// before any output; frames outside the range are not read, so damage there goes
    /// unnoticed. Signed messages are refused unless --range-unverified-signed.
    #[arg(long, value_name = "START-END|START-|-LEN", allow_hyphen_values = true)]
    pub range: Option<ByteRange>,

    /// DANGER: with --range, also decrypt ranges of SIGNED messages (suites 0x0214, 0x0346,
    /// 0x0378, 0x0578) as UNVERIFIED OUTPUT. The signature covers the whole message and is
    /// NOT checked, and every frame's tag can be forged by anyone who can decrypt the
    /// message (every reader holds its data key): the bytes written may come from any
    /// reader of the message, not from its signer. Use only where the message's origin is
    /// established otherwise; to verify it, decrypt the whole message without --range.
    #[arg(long, requires = "range")]
    pub range_unverified_signed: bool,
}

/// Options of both `encrypt` and `decrypt`.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// Input: a file, a directory (with --recursive) or - for stdin.
    #[arg(short, long, value_name = "PATH|-")]
    pub input: String,

    /// Output: a file, a directory or - for stdout. For a directory input, the output
    /// directory mirrors its tree (created if missing). For a file input and an existing
    /// output directory, the name is the input's with --suffix added (encrypt) or
    /// removed (decrypt).
    ///
    /// A regular file (or a new path; through a symbolic link, the file it points at) is
    /// written to a temporary file beside it and renamed over it only after the whole
    /// message verified: a failure leaves the old file, or none. Anything else (a
    /// character or block device such as /dev/null or a tape, a FIFO, a socket,
    /// /dev/stdout, /dev/fd/N and /proc/self/fd/N as made by >(...), or a symbolic link to
    /// one) is opened and written in place, never created, truncated or replaced.
    ///
    /// Decrypting a signed message (suites 0x0214, 0x0346, 0x0378, 0x0578) to such an
    /// output or to stdout: the signature is at the end of the message, so the plaintext is
    /// held in memory until it verifies, up to a bound; a larger message fails instead.
    /// --stream-unverified streams it instead, and then the plaintext that reached the
    /// output before a failure is unverified: discard it when the exit code is not 0.
    #[arg(short, long, value_name = "PATH|-")]
    pub output: String,

    /// Process a directory input and everything below it (symbolic links to
    /// directories are not followed).
    #[arg(short, long)]
    pub recursive: bool,

    /// Suffix added to output file names on encrypt and removed on decrypt, when the
    /// name is derived (directory output). On decrypt, files without it are skipped.
    #[arg(long, value_name = "SUFFIX", default_value = ".esdk")]
    pub suffix: String,

    /// Leave existing output files alone (skip them, with a warning) instead of
    /// replacing them.
    #[arg(long)]
    pub no_overwrite: bool,

    /// A raw AES wrapping key file (16, 24 or 32 bytes: raw, hex or base64). Repeatable.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub raw_aes_key: Vec<PathBuf>,

    /// How --raw-aes-key files are encoded.
    #[arg(long, value_enum, value_name = "ENCODING", default_value_t = KeyEncoding::Auto)]
    pub key_encoding: KeyEncoding,

    /// A raw RSA key file, PEM (or DER): public = encrypt only, private = both.
    /// Repeatable.
    #[arg(long, value_name = "PEM", action = clap::ArgAction::Append)]
    pub raw_rsa_key: Vec<PathBuf>,

    /// RSA padding of the key flag it follows (default oaep-sha256). MGF1 uses the same
    /// hash as OAEP.
    #[arg(long, value_enum, value_name = "PADDING", action = clap::ArgAction::Append)]
    pub rsa_padding: Vec<RsaPaddingArg>,

    /// Key namespace (EDK provider id) of the key flag it follows (default "esdk").
    #[arg(long, value_name = "NAMESPACE", action = clap::ArgAction::Append)]
    pub key_namespace: Vec<String>,

    /// Key name of the key flag it follows (default "default").
    #[arg(long, value_name = "NAME", action = clap::ArgAction::Append)]
    pub key_name: Vec<String>,

    /// PKCS#11 module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so.
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,

    /// Label of the PKCS#11 token holding the --pkcs11-key keys.
    #[arg(long, value_name = "LABEL", conflicts_with = "pkcs11_slot")]
    pub pkcs11_token: Option<String>,

    /// The PKCS#11 slot (decimal, or hex with 0x) holding the token, instead of
    /// --pkcs11-token: its label is read from the slot. Some modules (SoftHSM2) renumber
    /// slots when tokens come and go; labels stay.
    #[arg(long, value_name = "ID", value_parser = parse_slot)]
    pub pkcs11_slot: Option<u64>,

    /// A file holding the PKCS#11 user PIN (one trailing newline is dropped). It takes
    /// precedence over ESDK_PKCS11_PIN; a file that group or others may read is warned
    /// about.
    #[arg(long, value_name = "FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,

    /// A key on the PKCS#11 token (AES key, RSA key pair, or EC key pair followed by
    /// --recipient-public-key or --ecdh-discovery): label:NAME, id:HEX (its CKA_ID), or a
    /// plain NAME (a label). Repeatable. The user PIN comes from --pkcs11-pin-file, the
    /// environment variable ESDK_PKCS11_PIN, or a prompt when stdin is a terminal.
    #[arg(long, value_name = "label:NAME|id:HEX", action = clap::ArgAction::Append)]
    pub pkcs11_key: Vec<String>,

    /// A raw ECDH private key (P-256, P-384 or P-521; PKCS#8 PEM or DER, not
    /// password-protected), followed by --recipient-public-key FILE (the key is the sender's:
    /// RawPrivateKeyToStaticPublicKey, encrypts and decrypts) or --ecdh-discovery (the key is
    /// the recipient's: PublicKeyDiscovery, decrypt only). Repeatable.
    #[arg(long, value_name = "PEM", action = clap::ArgAction::Append)]
    pub raw_ecdh_key: Vec<PathBuf>,

    /// An AWS KMS key to wrap the data key with: a key ARN (on encrypt also a key id,
    /// alias name or alias ARN, in the default region). Repeatable; the KMS calls of
    /// several keys run concurrently. Multi-Region keys decrypt with their replica in the
    /// ARN's region. Credentials and the default region come from the standard AWS chain,
    /// as for the AWS CLI: environment (AWS_ACCESS_KEY_ID, AWS_REGION, ...), then the
    /// profile (--profile, AWS_PROFILE or default) in ~/.aws/config and ~/.aws/credentials
    /// (static keys, `aws sso login`, credential_process, assumed roles), web identity,
    /// ECS and EC2 instance roles.
    #[arg(long, value_name = "ARN", action = clap::ArgAction::Append)]
    pub kms_key: Vec<String>,

    /// An AWS KMS RSA key (key spec RSA_2048, RSA_3072 or RSA_4096, key usage
    /// ENCRYPT_DECRYPT) by its key ARN: the AWS KMS RSA keyring. Encrypt wraps the data key
    /// locally with the key's public key (--kms-rsa-public-key; no KMS call, no
    /// credentials); decrypt calls KMS Decrypt. --rsa-padding after it chooses oaep-sha256
    /// (RSAES_OAEP_SHA_256, the default) or oaep-sha1 (RSAES_OAEP_SHA_1): the same on both
    /// sides. It takes only suites without a signature: the default suite becomes 0x0478
    /// (0x0178 under forbid-encrypt-allow-decrypt). Repeatable.
    #[arg(long, value_name = "ARN", action = clap::ArgAction::Append)]
    pub kms_rsa_key: Vec<String>,

    /// The public key of the --kms-rsa-key it follows (needed to encrypt): PEM or DER
    /// SubjectPublicKeyInfo, e.g. `aws kms get-public-key --key-id ARN --query PublicKey
    /// --output text | base64 -d > key.der`.
    #[arg(long, value_name = "PEM", action = clap::ArgAction::Append)]
    pub kms_rsa_public_key: Vec<PathBuf>,

    /// An AWS KMS ECDH key (key usage KEY_AGREEMENT, key spec ECC_NIST_P256, _P384 or
    /// _P521) by its key ARN: the AWS KMS ECDH keyring, whose shared secrets KMS derives
    /// (DeriveSharedSecret); the curve is the key's. Follow it with --recipient-public-key
    /// (KmsPrivateKeyToStaticPublicKey: the key is the sender's; encrypts, and decrypts what
    /// either side wrote) or --kms-ecdh-discovery (KmsPublicKeyDiscovery: the key is the
    /// recipient's; decrypts what any sender wrote to its public key). Repeatable.
    #[arg(long, value_name = "ARN", action = clap::ArgAction::Append)]
    pub kms_ecdh_key: Vec<String>,

    /// An ECDH recipient's public key (PEM or DER SubjectPublicKeyInfo file): right after
    /// --raw-ecdh-key, --pkcs11-key (an EC key) or --kms-ecdh-key (there also a KMS ECDH key
    /// ARN, fetched with GetPublicKey) it is the recipient of that sender key; anywhere
    /// else it is a key of its own: a fresh sender key pair per message
    /// (EphemeralPrivateKeyToStaticPublicKey, encrypt only, as devices with the no_std raw
    /// ECDH keyring do). Repeatable.
    #[arg(long, value_name = "FILE|ARN", action = clap::ArgAction::Append)]
    pub recipient_public_key: Vec<String>,

    /// After --raw-ecdh-key, an EC --pkcs11-key or --kms-ecdh-key: that key is the
    /// recipient's, and decrypts every ECDH encrypted data key addressed to its public key,
    /// whoever sent it (PublicKeyDiscovery, KmsPublicKeyDiscovery; decrypt only). Also
    /// spelled --kms-ecdh-discovery.
    #[arg(long, alias = "kms-ecdh-discovery", action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "true", value_parser = clap::value_parser!(bool))]
    pub ecdh_discovery: Vec<bool>,
    /// The hierarchical keyring's branch key and key store.
    #[command(flatten)]
    pub branch_key: super::branch_key::BranchKeyFlags,

    /// Decrypt: also try every AWS KMS encrypted data key of the message with KMS
    /// discovery (any key the credentials may use), calling KMS in each key's region.
    #[arg(long)]
    pub kms_discovery: bool,

    /// With --kms-discovery: only use keys of this AWS account. Repeatable.
    #[arg(long, value_name = "ACCOUNT", action = clap::ArgAction::Append,
          requires = "kms_discovery")]
    pub discovery_account: Vec<String>,

    /// With --discovery-account: the accounts' AWS partition (default aws).
    #[arg(long, value_name = "PARTITION", requires = "discovery_account")]
    pub discovery_partition: Option<String>,

    /// The AWS KMS endpoint URL (a KMS-compatible server, a VPC endpoint), instead of the
    /// regional AWS endpoint or AWS_ENDPOINT_URL_KMS.
    #[arg(long, value_name = "URL")]
    pub kms_endpoint: Option<String>,

    /// The AWS profile for credentials, region and endpoint (instead of AWS_PROFILE or
    /// `default`), from AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE or ~/.aws/config
    /// and ~/.aws/credentials; e.g. after `aws sso login --profile NAME`.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// The default AWS region for KMS key ids and aliases that name none (instead of
    /// AWS_REGION or the profile's region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Cache data keys across the files of this run (fewer KMS calls): SETTING=VALUE
    /// with capacity (entries, default 100), max_age (seconds, default 300; an age past
    /// what the clock can represent, such as 18446744073709551615, means no age limit),
    /// max_messages (messages per data key, default 1000) and max_bytes (plaintext bytes
    /// per data key, default unlimited). Encrypting stdin bypasses the cache (its length
    /// is unknown), as do suites without key derivation (0x0014, 0x0046, 0x0078).
    #[arg(long, value_name = "SETTING=VALUE", num_args = 0..,
          action = clap::ArgAction::Append)]
    pub caching: Option<Vec<String>>,

    /// Encryption context pairs KEY=VALUE. On encrypt they are stored in the message; on
    /// decrypt each pair must be in the message with that value (KEY alone: the key must
    /// be present) and is passed to the keyrings as the reproduced context.
    #[arg(short = 'c', long, value_name = "KEY=VALUE", num_args = 1.., action = clap::ArgAction::Append)]
    pub encryption_context: Vec<String>,

    /// Commitment policy.
    #[arg(long, value_enum, value_name = "POLICY",
          default_value_t = PolicyArg::RequireEncryptRequireDecrypt)]
    pub commitment_policy: PolicyArg,

    /// Refuse messages with more encrypted data keys than this (and refuse to write
    /// them).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_encrypted_data_keys: Option<u16>,

    /// Threads that seal or open one message's frames: 0 (the default) uses every core, 1
    /// processes them on one thread as earlier versions did. The output is the same for
    /// every value. With more than one, batches of frames (about 1 MiB) are sealed or
    /// opened on worker threads while the signature hash of the signed suites runs on a
    /// thread of its own; memory grows by about 2 MiB per thread.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Encrypt: read input files with `read` instead of mapping them into memory. Regular
    /// files of 256 KiB and more are mapped by default (frames are sealed straight from the
    /// page cache, with no copy); a file that another program truncates while it is mapped
    /// kills the process with SIGBUS (a regular output file is then left untouched, as
    /// after any failure). Decryption always reads.
    #[arg(long)]
    pub no_mmap: bool,

    /// Append one JSON line per file (input, output, mode, suite, encryption context,
    /// EDK providers and key names, frame length, sizes, and the header in the shape of
    /// aws-encryption-cli's metadata) to PATH, or write it to stdout with -.
    #[arg(long, value_name = "PATH|-")]
    pub metadata_output: Option<String>,

    /// No progress bar and no warnings (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Log what is done on stderr: -v each file, -vv also the settings and keys, -vvv also
    /// the AWS SDK's log (its requests, without secrets).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
}

/// How an AES key file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyEncoding {
    /// Detect raw, hex or base64; refuse ambiguous files.
    Auto,
    /// The file is the key's bytes.
    Raw,
    /// Hex digits (surrounding whitespace ignored).
    Hex,
    /// Standard base64, padded or not (surrounding whitespace ignored).
    Base64,
}

/// The RSA padding names of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RsaPaddingArg {
    /// OAEP with SHA-1 and MGF1-SHA-1.
    OaepSha1,
    /// OAEP with SHA-256 and MGF1-SHA-256.
    OaepSha256,
    /// OAEP with SHA-384 and MGF1-SHA-384.
    OaepSha384,
    /// OAEP with SHA-512 and MGF1-SHA-512.
    OaepSha512,
    /// PKCS#1 v1.5 (legacy).
    Pkcs1,
}

/// The commitment policy names of the command line (the names of the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum PolicyArg {
    /// Encrypt with non-committing suites only; decrypt anything.
    ForbidEncryptAllowDecrypt,
    /// Encrypt with committing suites only; decrypt anything.
    RequireEncryptAllowDecrypt,
    /// Committing suites only, both ways (the default).
    RequireEncryptRequireDecrypt,
}

impl From<PolicyArg> for esdk::CommitmentPolicy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::ForbidEncryptAllowDecrypt => Self::ForbidEncryptAllowDecrypt,
            PolicyArg::RequireEncryptAllowDecrypt => Self::RequireEncryptAllowDecrypt,
            PolicyArg::RequireEncryptRequireDecrypt => Self::RequireEncryptRequireDecrypt,
        }
    }
}

/// Options of `esdk keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// The new key file (created with mode 0600; an existing file is never replaced), or -
    /// for stdout (hex or base64 only).
    #[arg(short, long, value_name = "FILE|-")]
    pub output: String,

    /// How to write the key.
    #[arg(long, value_enum, value_name = "ENCODING", default_value_t = KeygenEncoding::Raw)]
    pub encoding: KeygenEncoding,
}

/// Encodings `keygen` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeygenEncoding {
    /// 32 raw bytes.
    Raw,
    /// 64 hex digits and a newline.
    Hex,
    /// 44 base64 characters and a newline.
    Base64,
}

/// The Python ESDK's suite names (also the aws-encryption-cli's `--algorithm` values).
pub(crate) fn suite_name(s: AlgorithmSuite) -> &'static str {
    use AlgorithmSuite as S;
    match s {
        S::Aes128GcmIv12Tag16NoKdf => "AES_128_GCM_IV12_TAG16",
        S::Aes192GcmIv12Tag16NoKdf => "AES_192_GCM_IV12_TAG16",
        S::Aes256GcmIv12Tag16NoKdf => "AES_256_GCM_IV12_TAG16",
        S::Aes128GcmIv12Tag16HkdfSha256 => "AES_128_GCM_IV12_TAG16_HKDF_SHA256",
        S::Aes192GcmIv12Tag16HkdfSha256 => "AES_192_GCM_IV12_TAG16_HKDF_SHA256",
        S::Aes256GcmIv12Tag16HkdfSha256 => "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
        S::Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256",
        S::Aes192GcmIv12Tag16HkdfSha384EcdsaP384 => "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
        S::Aes256GcmIv12Tag16HkdfSha384EcdsaP384 => "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
        S::Aes256GcmHkdfSha512CommitKey => "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
        S::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
    }
}

/// Parses `--pkcs11-slot`: a decimal slot id, or hex with `0x` (as pkcs11-tool prints them).
fn parse_slot(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| format!("{s:?} is not a slot id (decimal, or hex with 0x)"))
}

/// Parses `--suite`: `0x0578`, `0578`, `578`, or a name (case-insensitive, `-` or `_`,
/// optional `ALG_` prefix as in the Material Providers Library).
pub(crate) fn parse_suite(s: &str) -> Result<AlgorithmSuite, String> {
    let t = s.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if !hex.is_empty() && hex.len() <= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let id = u16::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
        return AlgorithmSuite::from_id(id).map_err(|e| e.to_string());
    }
    let norm = t.to_ascii_uppercase().replace('-', "_");
    let norm = norm.strip_prefix("ALG_").unwrap_or(&norm);
    AlgorithmSuite::ALL
        .into_iter()
        .find(|&suite| suite_name(suite) == norm)
        .ok_or_else(|| {
            format!(
                "unknown algorithm suite {s:?}: use a hex id (0x0578, 0x0478, 0x0378, ...) or a name such as {}",
                suite_name(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_parse_by_id_and_name() {
        for s in AlgorithmSuite::ALL {
            assert_eq!(parse_suite(&format!("{s}")), Ok(s));
            assert_eq!(parse_suite(&format!("{:04x}", s.id())), Ok(s));
            assert_eq!(parse_suite(suite_name(s)), Ok(s));
            assert_eq!(
                parse_suite(&format!("alg_{}", suite_name(s).to_lowercase())),
                Ok(s)
            );
        }
        assert!(parse_suite("0x0579").is_err());
        assert!(parse_suite("AES").is_err());
        assert!(parse_suite("").is_err());
    }

    #[test]
    fn slots_parse_in_decimal_and_hex() {
        assert_eq!(parse_slot("0"), Ok(0));
        assert_eq!(parse_slot("1793456123"), Ok(1_793_456_123));
        assert_eq!(parse_slot("0x6ae5a4fb"), Ok(0x6ae5_a4fb));
        assert_eq!(parse_slot("0X1F"), Ok(31));
        for bad in ["", "-1", "0x", "0xzz", "slot1", "18446744073709551616"] {
            let e = parse_slot(bad).expect_err(bad);
            assert!(e.contains("not a slot id"), "{e}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
