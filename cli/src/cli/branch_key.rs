//! The AWS KMS hierarchical keyring on the command line: `--branch-key-id ID` with its
//! branch key store (`--branch-key-table`, `--branch-key-kms-key`, ...) on encrypt and
//! decrypt, and `esdk branch-key create|version` to manage the store's branch keys
//! ([`esdk::kms::AwsKmsHierarchicalKeyring`], [`esdk::kms::BranchKeyStore`]).

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::error::CliError;

/// How long the hierarchical keyring keeps a branch key (the MPL's usual 10 minutes; one
/// run of the tool rarely lasts longer).
#[cfg_attr(not(feature = "kms"), allow(dead_code))]
pub(crate) const TTL_SECONDS: u64 = 600;

/// The branch key store flags of `encrypt` and `decrypt`.
#[derive(Debug, Args)]
pub(crate) struct BranchKeyFlags {
    /// A branch key of the AWS KMS hierarchical keyring (the MPL's): its id in the key
    /// store --branch-key-table, whose branch keys --branch-key-kms-key wraps. Data keys
    /// are wrapped locally with the branch key's active version (one DynamoDB GetItem and
    /// one KMS Decrypt per run); decrypt uses the version each message names, so messages
    /// made before a rotation still decrypt. Like the other key flags, first means generator.
    #[arg(long, value_name = "ID", requires_all = ["branch_key_table", "branch_key_kms_key"])]
    pub branch_key_id: Option<String>,

    /// The DynamoDB table of the branch key store (in AWS_REGION, else the KMS key's
    /// region). `esdk branch-key create` makes keys (and the table).
    #[arg(long, value_name = "NAME", requires = "branch_key_id")]
    pub branch_key_table: Option<String>,

    /// The ARN of the AWS KMS key that wraps the store's branch keys.
    #[arg(long, value_name = "ARN", requires = "branch_key_id")]
    pub branch_key_kms_key: Option<String>,

    /// The store's logical name, bound into every branch key (default: the table name,
    /// as the MPL's examples use).
    #[arg(long, value_name = "NAME", requires = "branch_key_id")]
    pub branch_key_store_name: Option<String>,

    /// The DynamoDB endpoint URL (a DynamoDB-compatible server), instead of
    /// AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL or the regional AWS endpoint.
    #[arg(long, value_name = "URL", requires = "branch_key_id")]
    pub branch_key_endpoint: Option<String>,
}

/// One hierarchical keyring of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HierarchySpec {
    /// The branch key id.
    pub branch_key_id: String,
    /// The store.
    pub store: StoreSpec,
}

/// A branch key store: table, KMS key, logical name, endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreSpec {
    /// The DynamoDB table.
    pub table: String,
    /// The KMS key ARN.
    pub kms_key: String,
    /// The logical key store name.
    pub logical_name: String,
    /// The DynamoDB endpoint.
    pub ddb_endpoint: Option<String>,
}

impl BranchKeyFlags {
    /// The hierarchical keyring these flags ask for, if any (clap checks that the table
    /// and the KMS key come with the id).
    pub(crate) fn spec(&self) -> Option<HierarchySpec> {
        let id = self.branch_key_id.clone()?;
        let table = self.branch_key_table.clone()?;
        Some(HierarchySpec {
            branch_key_id: id,
            store: StoreSpec {
                logical_name: self
                    .branch_key_store_name
                    .clone()
                    .unwrap_or_else(|| table.clone()),
                table,
                kms_key: self.branch_key_kms_key.clone()?,
                ddb_endpoint: self.branch_key_endpoint.clone(),
            },
        })
    }
}

/// Options of `esdk branch-key`.
#[derive(Debug, Args)]
pub(crate) struct BranchKeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: BranchKeyAction,
}

/// `esdk branch-key` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BranchKeyAction {
    /// Create a branch key (and its beacon key) and print its id.
    Create(CreateArgs),
    /// Rotate a branch key: make a new version active and print it. Older versions stay,
    /// so messages made with them still decrypt.
    Version(VersionArgs),
}

/// The key store of a `branch-key` subcommand.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The DynamoDB table of the branch key store (in AWS_REGION, else the KMS key's region).
    #[arg(long, value_name = "NAME")]
    pub branch_key_table: String,

    /// The ARN of the AWS KMS key that wraps the store's branch keys.
    #[arg(long, value_name = "ARN")]
    pub branch_key_kms_key: String,

    /// The store's logical name, bound into every branch key (default: the table name).
    #[arg(long, value_name = "NAME")]
    pub branch_key_store_name: Option<String>,

    /// The DynamoDB endpoint URL, instead of AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL or
    /// the regional AWS endpoint.
    #[arg(long, value_name = "URL")]
    pub branch_key_endpoint: Option<String>,

    /// The AWS KMS endpoint URL, instead of AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL or the
    /// regional AWS endpoint.
    #[arg(long, value_name = "URL")]
    pub kms_endpoint: Option<String>,

    /// The AWS profile for credentials and region (instead of AWS_PROFILE or `default`).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

#[cfg_attr(not(feature = "kms"), allow(dead_code))]
impl StoreArgs {
    fn spec(&self) -> StoreSpec {
        StoreSpec {
            table: self.branch_key_table.clone(),
            kms_key: self.branch_key_kms_key.clone(),
            logical_name: self
                .branch_key_store_name
                .clone()
                .unwrap_or_else(|| self.branch_key_table.clone()),
            ddb_endpoint: self.branch_key_endpoint.clone(),
        }
    }
}

/// Options of `esdk branch-key create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The key store.
    #[command(flatten)]
    pub store: StoreArgs,

    /// The new key's id (default: a new UUID). A chosen id needs --encryption-context.
    #[arg(long, value_name = "ID")]
    pub branch_key_id: Option<String>,

    /// Custom encryption context KEY=VALUE bound to every version of the key (stored as
    /// aws-crypto-ec:KEY attributes).
    #[arg(short = 'c', long, value_name = "KEY=VALUE", num_args = 1.., action = clap::ArgAction::Append)]
    pub encryption_context: Vec<String>,

    /// Create the table first (partition key branch-key-id, sort key type, on demand).
    #[arg(long)]
    pub create_table: bool,
}

/// Options of `esdk branch-key version`.
#[derive(Debug, Args)]
pub(crate) struct VersionArgs {
    /// The key store.
    #[command(flatten)]
    pub store: StoreArgs,

    /// The branch key to rotate.
    #[arg(long, value_name = "ID")]
    pub branch_key_id: String,
}

/// Runs `esdk branch-key`.
///
/// # Errors
/// Usage errors (arguments, a build without `kms`); store failures (code 1) naming the key,
/// the table and the KMS or DynamoDB error.
pub(crate) fn run(args: &BranchKeyArgs) -> Result<ExitCode, CliError> {
    #[cfg(feature = "kms")]
    {
        with_kms::run(args)
    }
    #[cfg(not(feature = "kms"))]
    {
        let _ = args;
        Err(CliError::usage(
            "not built with AWS KMS support: this esdk was built without the `kms` feature \
             (cargo install --path cli, default features)",
        ))
    }
}

#[cfg(feature = "kms")]
pub(crate) use with_kms::open_store;

#[cfg(feature = "kms")]
mod with_kms {
    use std::process::ExitCode;

    use esdk::kms::{
        self, BranchKeyStore, ClientSupplier, DefaultClientSupplier, KmsArn, KmsRuntime,
    };

    use super::{BranchKeyAction, BranchKeyArgs, StoreSpec};
    use crate::cli::Mode;
    use crate::cli::error::CliError;

    /// A store error: usage for a misconfiguration, else a failure (code 1).
    fn fail(what: &str, e: &esdk::Error) -> CliError {
        if e.is_configuration() {
            CliError::usage(format!("{what}: {e}"))
        } else {
            CliError::crypto(format!("{what}: {e}"))
        }
    }

    /// The branch key store of `spec` on the clients of `supplier` (the AWS credential
    /// chain): KMS in the key's region, DynamoDB in the supplier's default region
    /// (AWS_REGION or the profile's) or else the key's.
    ///
    /// # Errors
    /// A KMS key that is not a key ARN; an invalid region.
    pub(crate) fn open_store(
        spec: &StoreSpec,
        supplier: &DefaultClientSupplier,
    ) -> Result<BranchKeyStore, CliError> {
        let flag = "--branch-key-kms-key";
        let arn = KmsArn::parse(&spec.kms_key).map_err(|e| {
            CliError::usage(format!(
                "{flag} {:?}: {e} (the key store needs the key ARN)",
                spec.kms_key
            ))
        })?;
        let kms_client = supplier
            .client(Some(arn.region()))
            .map_err(|e| CliError::usage(format!("{flag} {}: {e}", spec.kms_key)))?;
        let region = supplier.default_region().unwrap_or(arn.region()).to_owned();
        if !kms::is_valid_region(&region) {
            return Err(CliError::usage(format!(
                "the region {region:?} (AWS_REGION or the profile's) is not a region name"
            )));
        }
        let ddb = supplier.dynamodb_client(&region, spec.ddb_endpoint.as_deref());
        BranchKeyStore::new(
            &spec.table,
            &spec.logical_name,
            &spec.kms_key,
            kms_client,
            ddb,
        )
        .map_err(|e| fail(flag, &e))
    }

    /// The supplier of `esdk branch-key`: the AWS credential chain (`--profile`), with
    /// `--kms-endpoint` for KMS.
    fn supplier(
        rt: &KmsRuntime,
        store: &super::StoreArgs,
    ) -> Result<DefaultClientSupplier, CliError> {
        let s = rt
            .block_on(DefaultClientSupplier::from_aws_chain(
                store.profile.as_deref(),
            ))
            .map_err(|e| CliError::usage(format!("--profile: {e}")))?;
        Ok(match &store.kms_endpoint {
            Some(url) => s.with_endpoint_url(url),
            None => s,
        })
    }

    pub(super) fn run(args: &BranchKeyArgs) -> Result<ExitCode, CliError> {
        let rt = KmsRuntime::new().map_err(|e| CliError::usage(format!("AWS KMS: {e}")))?;
        match &args.action {
            BranchKeyAction::Create(a) => {
                let spec = a.store.spec();
                let store = open_store(&spec, &supplier(&rt, &a.store)?)?;
                let pairs = crate::cli::parse_context(Mode::Encrypt, &a.encryption_context)?;
                let ec: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or_default()))
                    .collect();
                if a.create_table {
                    rt.block_on(store.create_table())
                        .map_err(|e| fail(&format!("creating table {}", spec.table), &e))?;
                }
                let id = rt
                    .block_on(store.create_branch_key(a.branch_key_id.as_deref(), &ec))
                    .map_err(|e| fail("creating a branch key", &e))?;
                println!("{id}");
            }
            BranchKeyAction::Version(a) => {
                let spec = a.store.spec();
                let store = open_store(&spec, &supplier(&rt, &a.store)?)?;
                let version = rt
                    .block_on(store.version_branch_key(&a.branch_key_id))
                    .map_err(|e| fail(&format!("versioning {}", a.branch_key_id), &e))?;
                println!("{version}");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
