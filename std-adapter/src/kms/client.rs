//! KMS clients: the regional client supplier the multi-keyrings use, and a default one built
//! on `aws-sdk-kms` with rustls on aws-lc-rs, configured from the standard AWS chain
//! (`aws-config`: environment, profiles, SSO, web identity, ECS, IMDS) or by hand.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_kms::Client;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{
    BehaviorVersion, Credentials, Intercept, Region, SharedCredentialsProvider, SharedHttpClient,
    SharedInterceptor,
};

use super::arn::is_valid_region;
use crate::Error;

/// The most regional clients a [`DefaultClientSupplier`] keeps. Discovery keyrings ask for
/// a client in whatever region a message's key ARNs name, which the message's author
/// chooses; beyond this many regions the least recently used client is dropped (a later
/// call in its region builds a new one), so the cache stays bounded.
pub const MAX_CACHED_CLIENTS: usize = 64;

/// The regional clients, least recently used evicted first.
#[derive(Default)]
struct Clients {
    /// Region to (client, last use).
    map: HashMap<String, (Client, u64)>,
    tick: u64,
}

impl Clients {
    fn get(&mut self, region: &str) -> Option<Client> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(region).map(|(c, used)| {
            *used = tick;
            c.clone()
        })
    }

    fn insert(&mut self, region: &str, client: Client) {
        if self.map.len() >= MAX_CACHED_CLIENTS {
            // A scan of at most MAX_CACHED_CLIENTS entries.
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(r, _)| r.clone());
            if let Some(r) = oldest {
                self.map.remove(&r);
            }
        }
        self.tick += 1;
        self.map.insert(region.to_owned(), (client, self.tick));
    }
}

/// Supplies a KMS client per region (spec "regional client supplier").
///
/// `region` is `None` for key ids and aliases that name no region: the supplier then uses
/// its default region. Any `Fn(Option<&str>) -> Result<Client, Error>` is a supplier, so a
/// caller that builds its clients with `aws-config` (profiles, SSO, IMDS) can pass a closure.
pub trait ClientSupplier: Send + Sync {
    /// A client for `region`, or for the default region.
    ///
    /// # Errors
    /// [`Error::NoDefaultRegion`] when `region` is `None` and there is no default region,
    /// or any error of the supplier.
    fn client(&self, region: Option<&str>) -> Result<Client, Error>;
}

impl<F> ClientSupplier for F
where
    F: Fn(Option<&str>) -> Result<Client, Error> + Send + Sync,
{
    fn client(&self, region: Option<&str>) -> Result<Client, Error> {
        self(region)
    }
}

/// The region a KMS client was configured with.
pub(crate) fn client_region(client: &Client) -> Option<String> {
    client.config().region().map(|r| r.as_ref().to_owned())
}

/// A regional client supplier: one HTTPS connection pool (rustls on aws-lc-rs) shared by a
/// cached `aws-sdk-kms` client per region.
///
/// Three ways to configure it:
/// - [`from_aws_chain`](Self::from_aws_chain): what the AWS CLI and SDKs do, through
///   `aws-config`: credentials from the environment, the shared config and credentials
///   files (a named profile or `AWS_PROFILE`), SSO (`aws sso login`), `credential_process`,
///   web identity, ECS or IMDS; the default region and any endpoint URL from the same
///   places. This is what the `esdk` tool uses.
/// - [`from_sdk_config`](Self::from_sdk_config): an `SdkConfig` the application loaded
///   itself.
/// - [`from_env`](Self::from_env) or [`new`](Self::new) and the `with_` methods: no files
///   read, only environment variables or what is given.
///
/// The `with_` methods override what the chain found (a `--kms-endpoint`, fixed
/// credentials).
pub struct DefaultClientSupplier {
    /// The configuration loaded from the AWS chain or given, if any: each regional client
    /// starts from it.
    base: Option<aws_types::SdkConfig>,
    default_region: Option<String>,
    endpoint_url: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    retry: Option<RetryConfig>,
    timeouts: Option<TimeoutConfig>,
    interceptors: Vec<SharedInterceptor>,
    http: SharedHttpClient,
    clients: Mutex<Clients>,
}

impl std::fmt::Debug for DefaultClientSupplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultClientSupplier")
            .field("aws_chain", &self.base.is_some())
            .field("default_region", &self.default_region)
            .field("endpoint_url", &self.endpoint_url)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl Default for DefaultClientSupplier {
    fn default() -> Self {
        Self::new()
    }
}

/// The HTTPS client: hyper with rustls on aws-lc-rs (the crypto library the std adapter
/// already links), trusting the platform's root certificates.
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl DefaultClientSupplier {
    /// A supplier with no default region, the AWS endpoints, and no credentials.
    pub fn new() -> Self {
        Self {
            base: None,
            default_region: None,
            endpoint_url: None,
            credentials: None,
            retry: None,
            timeouts: None,
            interceptors: Vec::new(),
            http: https_client(),
            clients: Mutex::new(Clients::default()),
        }
    }

    /// A supplier configured from the standard environment variables: `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`) as the default region, `AWS_ENDPOINT_URL_KMS` (or
    /// `AWS_ENDPOINT_URL`) as the endpoint, and `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` as credentials.
    pub fn from_env() -> Self {
        let mut s = Self::new();
        s.default_region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
        s.endpoint_url = env("AWS_ENDPOINT_URL_KMS").or_else(|| env("AWS_ENDPOINT_URL"));
        if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            let token = env("AWS_SESSION_TOKEN");
            s.credentials = Some(SharedCredentialsProvider::new(Credentials::new(
                id,
                secret,
                token,
                None,
                "environment",
            )));
        }
        s
    }

    /// A supplier configured by the standard AWS chain, as the AWS CLI is: `profile` (or,
    /// when `None`, `AWS_PROFILE`, else `default`) from the shared config and credentials
    /// files (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/config` and
    /// `~/.aws/credentials`), environment credentials first, then the profile's (static
    /// keys, SSO, `credential_process`, an assumed role), web identity, ECS and IMDS. The
    /// default region is `AWS_REGION` (or `AWS_DEFAULT_REGION`) or the profile's `region`,
    /// never EC2 instance metadata (whose lookup costs its timeouts off EC2: use a key ARN
    /// or set the region there); an endpoint URL comes from
    /// `AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL` or the profile's `endpoint_url` /
    /// `services` section.
    ///
    /// Credentials are resolved on the first KMS call (and cached and refreshed by the
    /// SDK), so a keyring that never calls KMS (an RSA keyring encrypting) needs none.
    ///
    /// # Errors
    /// [`Error::AwsProfile`] when `profile` is given and neither file defines it, or a
    /// file cannot be parsed.
    pub async fn from_aws_chain(profile: Option<&str>) -> Result<Self, Error> {
        let http = https_client();
        if let Some(name) = profile {
            check_profile(name).await?;
        }
        // The region from the environment, then the profile. Not from EC2 instance metadata
        // (the default chain's last step): off EC2 that lookup waits for its timeouts on
        // every run, and a key ARN names its region anyway.
        let mut from_profile = aws_config::profile::ProfileFileRegionProvider::builder();
        if let Some(name) = profile {
            from_profile = from_profile.profile_name(name);
        }
        let region = aws_config::meta::region::RegionProviderChain::first_try(
            aws_config::environment::EnvironmentVariableRegionProvider::new(),
        )
        .or_else(from_profile.build());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http.clone())
            .region(region);
        if let Some(name) = profile {
            loader = loader.profile_name(name);
        }
        let config = loader.load().await;
        let mut s = Self::from_sdk_config(&config);
        s.http = http;
        Ok(s)
    }

    /// A supplier whose clients start from `config` (credentials, retry and timeout
    /// settings, endpoint URL, HTTP client), with its region as the default region.
    pub fn from_sdk_config(config: &aws_types::SdkConfig) -> Self {
        let mut s = Self::new();
        s.default_region = config.region().map(|r| r.as_ref().to_owned());
        if let Some(http) = config.http_client() {
            s.http = http;
        }
        s.base = Some(config.clone());
        s
    }

    /// The AWS configuration the clients start from, when the supplier was made by
    /// [`from_aws_chain`](Self::from_aws_chain) or [`from_sdk_config`](Self::from_sdk_config)
    /// (other AWS clients, e.g. DynamoDB for a branch key store, can share it).
    pub fn sdk_config(&self) -> Option<&aws_types::SdkConfig> {
        self.base.as_ref()
    }

    /// Sets the region used for key ids and aliases that name none.
    pub fn with_default_region(mut self, region: &str) -> Self {
        self.default_region = Some(region.to_owned());
        self
    }

    /// Sends every request to `url` (a local KMS-compatible server, a VPC endpoint) instead
    /// of the regional AWS endpoint. `http://` is accepted.
    pub fn with_endpoint_url(mut self, url: &str) -> Self {
        self.endpoint_url = Some(url.to_owned());
        self
    }

    /// Uses fixed credentials.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(SharedCredentialsProvider::new(credentials));
        self
    }

    /// Uses a credentials provider (anything implementing the SDK's `ProvideCredentials`).
    pub fn with_credentials_provider(mut self, provider: SharedCredentialsProvider) -> Self {
        self.credentials = Some(provider);
        self
    }

    /// Total attempts per KMS call, first included (the SDK default is 3). Throttling and
    /// transient errors are retried with exponential backoff.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.retry = Some(RetryConfig::standard().with_max_attempts(attempts.max(1)));
        self
    }

    /// Bounds each KMS call, retries included, and each attempt.
    pub fn with_timeouts(mut self, operation: Duration, attempt: Duration) -> Self {
        self.timeouts = Some(
            TimeoutConfig::builder()
                .operation_timeout(operation)
                .operation_attempt_timeout(attempt)
                .connect_timeout(attempt)
                .build(),
        );
        self
    }

    /// Adds an SDK interceptor to every client (metrics, logging, call counting).
    pub fn with_interceptor(mut self, interceptor: impl Intercept + 'static) -> Self {
        self.interceptors.push(SharedInterceptor::new(interceptor));
        self
    }

    /// A DynamoDB client for `region` configured as this supplier's KMS clients are (the
    /// AWS chain's credentials, retry and timeout settings and interceptors, the same HTTPS
    /// client), for the hierarchical keyring's branch key store. Its endpoint is
    /// `endpoint_url`, else what the chain names for DynamoDB (`AWS_ENDPOINT_URL_DYNAMODB`,
    /// `AWS_ENDPOINT_URL`, the profile), else the regional AWS endpoint; the KMS endpoint
    /// of [`with_endpoint_url`](Self::with_endpoint_url) does not apply.
    pub fn dynamodb_client(
        &self,
        region: &str,
        endpoint_url: Option<&str>,
    ) -> aws_sdk_dynamodb::Client {
        let mut b = match &self.base {
            Some(config) => aws_sdk_dynamodb::config::Builder::from(config),
            None => aws_sdk_dynamodb::Config::builder().behavior_version(BehaviorVersion::latest()),
        }
        .region(Region::new(region.to_owned()))
        .http_client(self.http.clone());
        let from_env = || env("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| env("AWS_ENDPOINT_URL"));
        match endpoint_url {
            Some(url) => b = b.endpoint_url(url),
            // Without the chain's configuration, the environment variables it would read.
            None if self.base.is_none() => {
                if let Some(url) = from_env() {
                    b = b.endpoint_url(url);
                }
            }
            None => {}
        }
        if let Some(c) = &self.credentials {
            b = b.credentials_provider(c.clone());
        }
        if let Some(r) = &self.retry {
            b = b.retry_config(r.clone());
        }
        if let Some(t) = &self.timeouts {
            b = b.timeout_config(t.clone());
        }
        for i in &self.interceptors {
            b.push_interceptor(i.clone());
        }
        aws_sdk_dynamodb::Client::from_conf(b.build())
    }

    /// The default region, if any.
    pub fn default_region(&self) -> Option<&str> {
        self.default_region.as_deref()
    }

    /// The client for `region`, created on first use and cached (at most
    /// [`MAX_CACHED_CLIENTS`] regions, least recently used dropped first).
    ///
    /// The region is not checked here: [`ClientSupplier::client`] refuses one that is not a
    /// region name ([`is_valid_region`]); check untrusted regions before calling this.
    pub fn client_for(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = clients.get(region) {
            return c;
        }
        let mut b = match &self.base {
            Some(config) => aws_sdk_kms::config::Builder::from(config),
            None => aws_sdk_kms::Config::builder().behavior_version(BehaviorVersion::latest()),
        }
        .region(Region::new(region.to_owned()))
        .http_client(self.http.clone());
        if let Some(url) = &self.endpoint_url {
            b = b.endpoint_url(url.clone());
        }
        if let Some(c) = &self.credentials {
            b = b.credentials_provider(c.clone());
        }
        if let Some(r) = &self.retry {
            b = b.retry_config(r.clone());
        }
        if let Some(t) = &self.timeouts {
            b = b.timeout_config(t.clone());
        }
        for i in &self.interceptors {
            b.push_interceptor(i.clone());
        }
        let client = Client::from_conf(b.build());
        clients.insert(region, client.clone());
        client
    }
}

/// Fails unless the shared config or credentials file defines the profile `name`: the SDK
/// would otherwise only fail at the first KMS call, with a less direct message.
async fn check_profile(name: &str) -> Result<(), Error> {
    use aws_types::os_shim_internal::{Env, Fs};
    let failed = |reason: String| Error::AwsProfile {
        profile: name.to_owned(),
        reason,
    };
    let set = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        // The default files: AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE or ~/.aws.
        &Default::default(),
        Some(name.to_owned().into()),
    )
    .await
    .map_err(|e| failed(e.to_string()))?;
    if set.get_profile(name).is_some() {
        return Ok(());
    }
    let config = env("AWS_CONFIG_FILE").unwrap_or_else(|| "~/.aws/config".to_owned());
    let credentials =
        env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| "~/.aws/credentials".to_owned());
    Err(failed(format!(
        "no such profile in {config} or {credentials}"
    )))
}

impl ClientSupplier for DefaultClientSupplier {
    fn client(&self, region: Option<&str>) -> Result<Client, Error> {
        let region = region
            .or(self.default_region.as_deref())
            .ok_or(Error::NoDefaultRegion)?;
        if region.is_empty() {
            return Err(Error::EmptyRegion);
        }
        if !is_valid_region(region) {
            return Err(Error::InvalidRegion {
                region: region.to_owned(),
            });
        }
        Ok(self.client_for(region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(s: &DefaultClientSupplier) -> Vec<String> {
        let c = s.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<String> = c.map.keys().cloned().collect();
        v.sort();
        v
    }

    #[test]
    fn the_client_cache_is_bounded_and_drops_the_least_recently_used() {
        let s = DefaultClientSupplier::new().with_endpoint_url("http://127.0.0.1:1");
        let region = |i: usize| format!("r-{i:03}");
        for i in 0..MAX_CACHED_CLIENTS {
            s.client(Some(&region(i))).expect("client");
        }
        assert_eq!(cached(&s).len(), MAX_CACHED_CLIENTS);
        // r-000 is used again, so r-001 is now the least recently used.
        let again = s.client(Some(&region(0))).expect("client");
        assert_eq!(client_region(&again).as_deref(), Some("r-000"));
        s.client(Some("r-new")).expect("client");
        let now = cached(&s);
        assert_eq!(now.len(), MAX_CACHED_CLIENTS);
        assert!(now.contains(&region(0)) && now.contains(&"r-new".to_owned()));
        assert!(
            !now.contains(&region(1)),
            "the least recently used was kept"
        );
        // Many more regions (as a hostile message's discovery would name): still bounded,
        // and every client is for the region asked for.
        let n = 1000;
        for i in 0..n {
            let r = format!("x-{i}");
            let c = s.client(Some(&r)).expect("client");
            assert_eq!(client_region(&c).as_deref(), Some(r.as_str()));
        }
        assert_eq!(cached(&s).len(), MAX_CACHED_CLIENTS);
        println!(
            "{} regions asked for, {} clients cached",
            n + 66,
            cached(&s).len()
        );
    }

    #[test]
    fn a_profile_in_neither_file_is_named() {
        let rt = crate::kms::KmsRuntime::new().expect("runtime");
        let name = "esdk-test-no-such-profile-7f3a";
        match rt.block_on(DefaultClientSupplier::from_aws_chain(Some(name))) {
            Err(Error::AwsProfile { profile, reason }) => {
                assert_eq!(profile, name);
                assert!(reason.contains("no such profile"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn regions_that_are_not_region_names_get_no_client() {
        let s = DefaultClientSupplier::new().with_default_region("evil.example/");
        for r in [
            "attacker.example/",
            "us-west-2.evil.com",
            "US-WEST-2",
            "a:b",
            "-x",
        ] {
            assert!(
                matches!(s.client(Some(r)), Err(Error::InvalidRegion { region }) if region == r),
                "{r}"
            );
        }
        // The default region is checked too.
        assert!(matches!(s.client(None), Err(Error::InvalidRegion { .. })));
        assert!(matches!(s.client(Some("")), Err(Error::EmptyRegion)));
        assert!(cached(&s).is_empty(), "no client was built");
        assert!(s.client(Some("us-west-2")).is_ok());
    }
}
