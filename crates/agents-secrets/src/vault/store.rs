use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::time::Instant;
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use super::lease::{Lease, Upkeep};
use super::{VaultAuth, VaultConfig};
use crate::error::chain;
use crate::fs::{Privacy, read_file};
use crate::reference::{Target, VaultPath};
use crate::store::{admit, sealed};
use crate::{Backend, SecretError, SecretErrorKind, SecretRef, SecretStore, StoreHealth};

/// Reads KV v2 secrets from Vault or OpenBao.
///
/// It builds without a network call and authenticates on first use (or [`login`](Self::login)).
/// The token is renewed once `renew_at_percent` of its lease has passed — by the task of
/// [`spawn_token_renewal`](Self::spawn_token_renewal), or, without that task, by one read at a
/// time that does not wait for another's attempt — and AppRole logs in again when renewal is no
/// longer possible, keeping the current token until the new login succeeds. Reads wait for
/// authentication only when the token has expired. A read denied with `permission denied` looks
/// the token up: if Vault still accepts it, the denial is the policy's and is returned;
/// otherwise the store re-reads the credential reference, authenticates again (not more often
/// than once every 5 seconds) and retries once.
///
/// ```no_run
/// # async fn run() -> Result<(), agents_secrets::SecretError> {
/// use std::sync::Arc;
/// use agents_secrets::{EnvStore, SecretStore, VaultAuth, VaultConfig, VaultStore};
///
/// let config = VaultConfig::new("https://vault.internal:8200",
///     VaultAuth::token("env:VAULT_TOKEN".parse()?));
/// let vault = Arc::new(VaultStore::new(&config, Arc::new(EnvStore::new()))?);
/// vault.login().await?;
/// let _renewal = vault.spawn_token_renewal();
/// let key = vault.get(&"vault:secret/providers/openai#api_key".parse()?).await?;
/// # Ok(()) }
/// ```
pub struct VaultStore {
    address: String,
    namespace: Option<String>,
    auth: VaultAuth,
    /// Where the token or secret id is read from (never this store).
    credentials: Arc<dyn SecretStore>,
    client: tokio::sync::RwLock<VaultClient>,
    lease: Mutex<Option<Lease>>,
    /// One login or renewal at a time.
    upkeep: tokio::sync::Mutex<()>,
    renew_at_percent: u8,
    renew_retry: Duration,
    logins: AtomicU64,
    renewals: AtomicU64,
    failed_renewals: AtomicU64,
    /// When the last login succeeded: a denied read does not log in again sooner than
    /// [`RELOGIN_INTERVAL`] after it.
    last_login: Mutex<Option<Instant>>,
    /// When the last renewal (or re-login) of a still-valid token failed: reads do not retry it
    /// within `renew_retry`.
    renew_failed_at: Mutex<Option<Instant>>,
    /// Renewal tasks alive: while one runs, reads leave renewal to it.
    renewal_tasks: AtomicUsize,
}

/// The shortest time between two logins caused by denied reads. A policy denial answers 403
/// like a revoked token does; logging in again for each would mint a token, spend one of the
/// secret id's uses and register one more value with the redactor per request.
const RELOGIN_INTERVAL: Duration = Duration::from_secs(5);

/// What the store knows about its token, for health pages and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenStatus {
    /// Whether the store holds a token it has checked.
    pub authenticated: bool,
    /// Time left on the lease; `None` when not authenticated or the token never expires.
    pub expires_in: Option<Duration>,
    /// Whether Vault accepts renewals of it.
    pub renewable: bool,
    /// Logins (or token look-ups) so far.
    pub logins: u64,
    /// Successful renewals so far.
    pub renewals: u64,
    /// Failed renewals (or re-logins) of a still-valid token so far.
    pub failed_renewals: u64,
}

/// The background renewal task of one [`VaultStore`]. It ends by itself when the store is
/// dropped; dropping the handle leaves it running.
#[derive(Debug)]
pub struct RenewalHandle {
    task: tokio::task::JoinHandle<()>,
}

impl RenewalHandle {
    /// Stops the task.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Which call failed, for mapping Vault's answers to error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Read,
    Login,
    Renew,
}

impl VaultStore {
    /// Builds the store without contacting Vault. `credentials` serves the token or secret id
    /// reference of `config.auth` (typically the env/file/KMS stores).
    ///
    /// # Errors
    /// [`SecretError::Config`] for settings that do not validate or TLS files that cannot be
    /// used; the errors of reading the client key file.
    pub fn new(
        config: &VaultConfig,
        credentials: Arc<dyn SecretStore>,
    ) -> Result<Self, SecretError> {
        config.validate().map_err(|e| e.within("vault"))?;
        let address = url::Url::parse(&config.address)
            .map_err(|e| SecretError::config("vault.address", format!("not a URL: {e}")))?;
        let mut settings = VaultClientSettingsBuilder::default();
        // Every field set explicitly: vaultrs would otherwise read VAULT_* variables, and the
        // token and TLS must come from this config alone.
        settings
            .address(address.as_str())
            .token(String::new())
            .timeout(Some(Duration::from_millis(config.request_timeout_ms)))
            .verify(!config.tls.skip_verify)
            .ca_certs(
                config
                    .tls
                    .ca_cert_paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
            )
            .identity(identity(config)?)
            .namespace(config.namespace.clone());
        let settings = settings
            .build()
            .map_err(|e| SecretError::config("vault", e.to_string()))?;
        let client = VaultClient::new(settings).map_err(|e| {
            SecretError::config(
                "vault.tls",
                format!("cannot build the client: {}", chain(&e)),
            )
        })?;
        if config.tls.skip_verify {
            tracing::warn!(address = %config.address, "vault TLS verification is off");
        }
        Ok(Self {
            address: config.address.clone(),
            namespace: config.namespace.clone(),
            auth: config.auth.clone(),
            credentials,
            client: tokio::sync::RwLock::new(client),
            lease: Mutex::new(None),
            upkeep: tokio::sync::Mutex::new(()),
            renew_at_percent: config.renew_at_percent,
            renew_retry: Duration::from_millis(config.renew_retry_ms),
            logins: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            failed_renewals: AtomicU64::new(0),
            last_login: Mutex::new(None),
            renew_failed_at: Mutex::new(None),
            renewal_tasks: AtomicUsize::new(0),
        })
    }

    /// Authenticates now (token look-up or AppRole login) instead of on first use.
    ///
    /// # Errors
    /// The credential's reference cannot be loaded, Vault refuses it, or Vault is unreachable.
    pub async fn login(&self) -> Result<(), SecretError> {
        let _upkeep = self.upkeep.lock().await;
        self.authenticate().await
    }

    /// Starts the task that renews the token before it expires (and logs in again when it
    /// cannot be renewed). Needs a tokio runtime. The task holds only a weak reference and
    /// ends when the store is dropped.
    pub fn spawn_token_renewal(self: &Arc<Self>) -> RenewalHandle {
        // Counted before the spawn, so no read renews between this call and the task's start.
        let alive = TaskAlive::new(self);
        let store = Arc::downgrade(self);
        RenewalHandle {
            task: tokio::spawn(async move {
                let _alive = alive;
                renewal_loop(store).await;
            }),
        }
    }

    /// The token's state now.
    pub fn token_status(&self) -> TokenStatus {
        let lease = *self.lease();
        let now = Instant::now();
        TokenStatus {
            authenticated: lease.is_some(),
            expires_in: lease
                .and_then(|l| l.expires_at())
                .map(|at| at.saturating_duration_since(now)),
            renewable: lease.is_some_and(|l| l.renewable),
            logins: self.logins.load(Ordering::Relaxed),
            renewals: self.renewals.load(Ordering::Relaxed),
            failed_renewals: self.failed_renewals.load(Ordering::Relaxed),
        }
    }

    fn lease(&self) -> MutexGuard<'_, Option<Lease>> {
        self.lease.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn can_relogin(&self) -> bool {
        matches!(self.auth, VaultAuth::AppRole { .. })
    }

    fn upkeep_now(&self) -> Upkeep {
        match *self.lease() {
            None => Upkeep::Authenticate,
            Some(lease) => lease.upkeep(Instant::now(), self.renew_at_percent, self.can_relogin()),
        }
    }

    /// Makes sure a usable token is set before a read. Only a missing or expired token makes
    /// the read wait: a token that is still valid is used as it is, and its renewal never queues
    /// reads behind a Vault that does not answer.
    async fn ensure_token(&self) -> Result<(), SecretError> {
        match self.upkeep_now() {
            Upkeep::None => Ok(()),
            Upkeep::Authenticate => {
                let _upkeep = self.upkeep.lock().await;
                match self.upkeep_now() {
                    Upkeep::Authenticate => self.authenticate().await,
                    Upkeep::None | Upkeep::Renew => Ok(()),
                }
            }
            Upkeep::Renew => {
                self.renew_on_the_request_path().await;
                Ok(())
            }
        }
    }

    /// Renews a still-valid token from a read, only when no renewal task runs, no other
    /// renewal or login is under way, and the last attempt did not fail within `renew_retry`.
    /// A failure does not fail the read.
    async fn renew_on_the_request_path(&self) {
        if self.renewal_tasks.load(Ordering::Acquire) > 0 {
            return;
        }
        let Ok(_upkeep) = self.upkeep.try_lock() else {
            return;
        };
        if self.upkeep_now() != Upkeep::Renew || within(*self.renew_failed_at(), self.renew_retry) {
            return;
        }
        if let Err(error) = self.renew_or_relogin().await {
            tracing::warn!(
                address = %self.address,
                error = %error,
                "renewing the vault token failed; it is still valid, retrying later"
            );
        }
    }

    fn renew_failed_at(&self) -> MutexGuard<'_, Option<Instant>> {
        self.renew_failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn last_login(&self) -> MutexGuard<'_, Option<Instant>> {
        self.last_login
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// After a read was denied with the token of `used`: whether to read again. True when
    /// another caller has replaced the token meanwhile, or when Vault no longer accepts the
    /// token and a new one was had; false when the token is fine (the policy denies the path)
    /// or a login happened less than [`RELOGIN_INTERVAL`] ago.
    async fn recover_from_denial(
        &self,
        reference: &SecretRef,
        used: Option<Lease>,
    ) -> Result<bool, SecretError> {
        let _upkeep = self.upkeep.lock().await;
        // Concurrent denied reads authenticate once: whoever comes second finds a newer token
        // than the one that was denied.
        if *self.lease() != used {
            return Ok(true);
        }
        let looked_up = {
            let client = self.client.read().await;
            vaultrs::token::lookup_self(&*client).await
        };
        match looked_up {
            Ok(_) => return Ok(false),
            Err(error) => {
                let error = self.error(error, self.auth.credential(), Call::Login);
                if error.kind() != SecretErrorKind::PermissionDenied {
                    return Err(error.while_loading(reference));
                }
            }
        }
        if within(*self.last_login(), RELOGIN_INTERVAL) {
            tracing::debug!(
                reference = %reference,
                "vault refused the token, but it was had less than {RELOGIN_INTERVAL:?} ago"
            );
            return Ok(false);
        }
        tracing::debug!(reference = %reference, "vault no longer accepts the token; authenticating again");
        self.authenticate()
            .await
            .map_err(|e| e.while_loading(reference))?;
        Ok(true)
    }

    /// One step of the renewal task; errors are returned so it can back off.
    async fn upkeep_step(&self) -> Result<(), SecretError> {
        let _upkeep = self.upkeep.lock().await;
        match self.upkeep_now() {
            Upkeep::None => Ok(()),
            Upkeep::Authenticate => self.authenticate().await,
            Upkeep::Renew => self.renew_or_relogin().await,
        }
    }

    /// Renews or logs in again, counting failures and remembering when the last one was.
    async fn renew_or_relogin(&self) -> Result<(), SecretError> {
        let result = self.try_renew_or_relogin().await;
        *self.renew_failed_at() = match &result {
            Ok(()) => None,
            Err(_) => {
                self.failed_renewals.fetch_add(1, Ordering::Relaxed);
                Some(Instant::now())
            }
        };
        result
    }

    async fn try_renew_or_relogin(&self) -> Result<(), SecretError> {
        let renewable = self.lease().is_some_and(|l| l.renewable);
        let renewed = if renewable {
            self.renew().await
        } else {
            Err(SecretError::rejected(
                self.auth.credential(),
                Backend::Vault,
                "the token is not renewable",
            ))
        };
        match renewed {
            Ok(()) => Ok(()),
            Err(error) if self.can_relogin() && renewal_cannot_work(&error) => {
                tracing::info!(
                    address = %self.address,
                    error = %error,
                    "vault token cannot be renewed; logging in again"
                );
                self.replace_token().await
            }
            Err(error) => Err(error),
        }
    }

    async fn renew(&self) -> Result<(), SecretError> {
        let credential = self.auth.credential();
        let auth = {
            let client = self.client.read().await;
            vaultrs::token::renew_self(&*client, None)
                .await
                .map_err(|e| self.error(e, credential, Call::Renew))?
        };
        if auth.lease_duration == 0 && self.lease().is_some_and(|l| l.ttl.is_some()) {
            return Err(SecretError::rejected(
                credential,
                Backend::Vault,
                "the renewal granted no time (maximum TTL reached)",
            ));
        }
        *self.lease() = Some(Lease::new(
            Instant::now(),
            auth.lease_duration,
            auth.renewable,
        ));
        self.renewals.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            address = %self.address,
            ttl_seconds = auth.lease_duration,
            "vault token renewed"
        );
        Ok(())
    }

    /// Gets a token because the store has none it can use (none yet, expired, or refused). A
    /// failure leaves it with none, so the next read authenticates again.
    async fn authenticate(&self) -> Result<(), SecretError> {
        let result = self.replace_token().await;
        if result.is_err() {
            *self.lease() = None;
        }
        result
    }

    /// Reads the token reference and looks it up, or logs in with AppRole. The lease changes
    /// only when this succeeds: a still-valid AppRole token whose replacement fails (secret id
    /// unreadable or refused, KMS or Vault throttling) keeps serving reads until it expires.
    async fn replace_token(&self) -> Result<(), SecretError> {
        let lease = match &self.auth {
            VaultAuth::Token { token } => {
                let value = self.credentials.get(token).await?;
                self.client.write().await.set_token(value.expose_secret());
                let client = self.client.read().await;
                let info = vaultrs::token::lookup_self(&*client)
                    .await
                    .map_err(|e| self.error(e, token, Call::Login))?;
                Lease::new(Instant::now(), info.ttl, info.renewable.unwrap_or(false))
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let secret = self.credentials.get(secret_id).await?;
                let auth = {
                    let client = self.client.read().await;
                    vaultrs::auth::approle::login(&*client, mount, role_id, secret.expose_secret())
                        .await
                        .map_err(|e| self.error(e, secret_id, Call::Login))?
                };
                // The token is a secret too: masked wherever it might be printed.
                let token = admit(secret_id, Backend::Vault, auth.client_token)?;
                self.client.write().await.set_token(token.expose_secret());
                Lease::new(Instant::now(), auth.lease_duration, auth.renewable)
            }
        };
        *self.lease() = Some(lease);
        *self.last_login() = Some(Instant::now());
        self.logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            address = %self.address,
            method = self.auth.method(),
            ttl_seconds = lease.ttl.map(|t| t.as_secs()),
            renewable = lease.renewable,
            "authenticated to vault"
        );
        Ok(())
    }

    async fn read(
        &self,
        reference: &SecretRef,
        at: &VaultPath,
    ) -> Result<HashMap<String, Value>, SecretError> {
        let client = self.client.read().await;
        let result = match at.version {
            None => vaultrs::kv2::read(&*client, &at.mount, &at.path).await,
            Some(version) => {
                vaultrs::kv2::read_version(&*client, &at.mount, &at.path, version).await
            }
        };
        result.map_err(|e| self.error(e, reference, Call::Read))
    }

    /// Maps a vaultrs error to ours: by HTTP status where there is one, transport failures as
    /// unreachable. Vault's own messages are kept (they never contain secret values).
    fn error(&self, error: ClientError, reference: &SecretRef, call: Call) -> SecretError {
        let at = format!("vault at {}", self.address);
        let (status, said) = match &error {
            ClientError::APIError { code, errors } => (Some(*code), errors.join("; ")),
            ClientError::RestClientError {
                source: rustify::errors::ClientError::ServerResponseError { code, .. },
            } => (Some(*code), format!("HTTP {code}")),
            ClientError::RestClientError {
                source:
                    rustify::errors::ClientError::RequestError { .. }
                    | rustify::errors::ClientError::ResponseError { .. },
            } => {
                let said = chain(&error);
                // A certificate Vault's does not match will not start matching on a retry.
                if said.to_ascii_lowercase().contains("certificate") {
                    return SecretError::rejected(
                        reference,
                        Backend::Vault,
                        format!(
                            "{at}: {said}; check vault.tls (ca_cert_paths, client certificate)"
                        ),
                    );
                }
                return SecretError::unreachable(
                    reference,
                    Backend::Vault,
                    format!("{at}: {said}"),
                );
            }
            ClientError::ResponseEmptyError | ClientError::ResponseDataEmptyError => {
                return SecretError::not_found(
                    reference,
                    Backend::Vault,
                    format!("{at} returned no data"),
                );
            }
            ClientError::JsonParseError { .. } => {
                return SecretError::rejected(
                    reference,
                    Backend::Vault,
                    format!(
                        "{at}: the secret is not a KV v2 map of keys to values (is the mount KV v1?)"
                    ),
                );
            }
            other => (None, chain(other)),
        };
        let said = match (said.is_empty(), status) {
            (false, _) => said,
            (true, Some(404)) => "nothing at this path (or this version)".to_owned(),
            (true, _) => "no message".to_owned(),
        };
        let namespace = self
            .namespace
            .as_deref()
            .map(|n| format!(" (namespace {n})"))
            .unwrap_or_default();
        let detail = format!("{at}{namespace}: {said}");
        match (status, call) {
            (Some(404), Call::Read) => SecretError::not_found(reference, Backend::Vault, detail),
            (Some(400 | 401 | 403), Call::Login | Call::Renew) | (Some(401 | 403), Call::Read) => {
                SecretError::permission_denied(reference, Backend::Vault, detail)
            }
            (Some(429 | 500..=599), _) => SecretError::unreachable(
                reference,
                Backend::Vault,
                format!("{detail} (sealed, standby or overloaded)"),
            ),
            _ => SecretError::rejected(reference, Backend::Vault, detail),
        }
    }

    /// How long the renewal task sleeps before its next step.
    fn next_check(&self, failed: bool) -> Duration {
        if failed {
            return self.renew_retry;
        }
        let now = Instant::now();
        match *self.lease() {
            None => self.renew_retry,
            Some(lease) => lease
                .next_check(now, self.renew_at_percent, self.can_relogin())
                .saturating_duration_since(now),
        }
    }
}

/// Whether a failed renewal means the token will never be renewed (not renewable, maximum TTL
/// reached, refused), so that only a new login helps. A transient failure (Vault unreachable,
/// sealed, throttling) is not: it is retried after `renew_retry` rather than spending one of the
/// secret id's uses on a login that would most likely fail the same way.
fn renewal_cannot_work(error: &SecretError) -> bool {
    matches!(
        error.kind(),
        SecretErrorKind::PermissionDenied | SecretErrorKind::Rejected
    )
}

/// Whether `at` is less than `interval` ago.
fn within(at: Option<Instant>, interval: Duration) -> bool {
    at.is_some_and(|at| at.elapsed() < interval)
}

/// Counts one live renewal task for as long as it exists (aborted or ended).
struct TaskAlive(Weak<VaultStore>);

impl TaskAlive {
    fn new(store: &Arc<VaultStore>) -> Self {
        store.renewal_tasks.fetch_add(1, Ordering::AcqRel);
        Self(Arc::downgrade(store))
    }
}

impl Drop for TaskAlive {
    fn drop(&mut self) {
        if let Some(store) = self.0.upgrade() {
            store.renewal_tasks.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

async fn renewal_loop(store: Weak<VaultStore>) {
    let mut failed = false;
    loop {
        let Some(wait) = store.upgrade().map(|s| s.next_check(failed)) else {
            return;
        };
        tokio::time::sleep(wait).await;
        let Some(strong) = store.upgrade() else {
            return;
        };
        failed = match strong.upkeep_step().await {
            Ok(()) => false,
            Err(error) => {
                tracing::warn!(
                    address = %strong.address,
                    error = %error,
                    retry_in_ms = strong.renew_retry.as_millis() as u64,
                    "vault token upkeep failed"
                );
                true
            }
        };
    }
}

/// Reads the client certificate and key (the key must be private) into a TLS identity.
fn identity(config: &VaultConfig) -> Result<Option<vaultrs::client::Identity>, SecretError> {
    let (Some(cert), Some(key)) = (&config.tls.client_cert_path, &config.tls.client_key_path)
    else {
        return Ok(None);
    };
    let mut pem = read_file(
        &"vault.tls.client_cert_path",
        Backend::Vault,
        cert,
        Privacy::Any,
    )?;
    pem.push(b'\n');
    pem.extend(read_file(
        &"vault.tls.client_key_path",
        Backend::Vault,
        key,
        Privacy::OwnerOnly,
    )?);
    vaultrs::client::Identity::from_pem(&pem)
        .map(Some)
        .map_err(|_| {
            SecretError::config(
                "vault.tls",
                "the client certificate and key are not a PEM certificate and private key",
            )
        })
}

impl fmt::Debug for VaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client and its settings hold the token: never printed.
        f.debug_struct("VaultStore")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("auth", &self.auth.method())
            .field("credential", self.auth.credential())
            .field("token", &self.token_status())
            .finish_non_exhaustive()
    }
}

impl sealed::Sealed for VaultStore {}

#[async_trait::async_trait]
impl SecretStore for VaultStore {
    async fn get(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        let Target::Vault(at) = reference.target() else {
            return Err(SecretError::unsupported(
                reference,
                "the vault store serves only `vault:` references",
            ));
        };
        self.ensure_token()
            .await
            .map_err(|e| e.while_loading(reference))?;
        let used = *self.lease();
        let data = match self.read(reference, at).await {
            // The token may have been revoked, or the credential rotated: once, start over.
            // A plain policy denial is returned as it is.
            Err(e) if e.kind() == SecretErrorKind::PermissionDenied => {
                if !self.recover_from_denial(reference, used).await? {
                    return Err(e);
                }
                self.read(reference, at).await?
            }
            other => other?,
        };
        match data.get(&at.key) {
            Some(Value::String(value)) => admit(reference, Backend::Vault, value.clone()),
            Some(other) => Err(SecretError::invalid_value(
                reference,
                Backend::Vault,
                format!(
                    "key `{}` holds a JSON {}, not a string",
                    at.key,
                    json_type(other)
                ),
            )),
            None => {
                let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
                keys.sort_unstable();
                Err(SecretError::not_found(
                    reference,
                    Backend::Vault,
                    format!(
                        "`{}/{}` has no key `{}` (its keys: {})",
                        at.mount,
                        at.path,
                        at.key,
                        keys.join(", ")
                    ),
                ))
            }
        }
    }

    async fn health(&self) -> StoreHealth {
        let health = {
            let client = self.client.read().await;
            vaultrs::sys::health(&*client).await
        };
        let at = &self.address;
        // `sys/health` answers with its status code; the body's fields differ between Vault and
        // OpenBao versions, so a 2xx whose body vaultrs cannot parse still means "active".
        let server = match health {
            Ok(_) => Ok(()),
            Err(ClientError::RestClientError { source }) => match source {
                rustify::errors::ClientError::ResponseParseError { .. } => Ok(()),
                rustify::errors::ClientError::ServerResponseError { code, .. } => Err(match code {
                    429 | 472 | 473 => {
                        return StoreHealth::Degraded {
                            reason: format!("vault at {at} is a standby node (HTTP {code})"),
                        };
                    }
                    501 => format!("vault at {at} is not initialized"),
                    503 => format!("vault at {at} is sealed"),
                    code => format!("vault at {at} answered HTTP {code}"),
                }),
                other => Err(format!("vault at {at}: {}", chain(&other))),
            },
            Err(other) => Err(format!("vault at {at}: {}", chain(&other))),
        };
        if let Err(reason) = server {
            return StoreHealth::unhealthy(reason);
        }
        let expired = self
            .lease()
            .and_then(|l| l.expires_at())
            .is_some_and(|at| at <= Instant::now());
        if expired && !self.can_relogin() {
            StoreHealth::unhealthy(format!(
                "the vault token from `{}` has expired",
                self.auth.credential()
            ))
        } else {
            StoreHealth::Healthy
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn store(config: &VaultConfig) -> Result<VaultStore, SecretError> {
        VaultStore::new(config, Arc::new(MemoryStore::new()))
    }

    fn token() -> VaultAuth {
        VaultAuth::token("env:VAULT_TOKEN".parse().unwrap())
    }

    #[test]
    fn builds_without_network_and_debug_hides_the_client() {
        let vault =
            store(&VaultConfig::new("http://127.0.0.1:1", token()).with_namespace("ns")).unwrap();
        let shown = format!("{vault:?}");
        assert!(
            shown.contains("127.0.0.1:1") && shown.contains("env:VAULT_TOKEN"),
            "{shown}"
        );
        assert!(!vault.token_status().authenticated);
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let e = store(&VaultConfig::new("ftp://x", token())).unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Config);
        assert!(e.to_string().contains("vault.address"), "{e}");
        let e = store(&VaultConfig::new("http://[::1", token())).unwrap_err();
        assert!(e.to_string().contains("vault.address"), "{e}");
        let tls = super::super::VaultTls::default().with_ca_cert("/surely/not/here/ca.pem");
        let e = store(&VaultConfig::new("https://127.0.0.1:1", token()).with_tls(tls)).unwrap_err();
        assert!(e.to_string().contains("vault.tls"), "{e}");
    }

    #[test]
    fn client_identity_needs_a_private_key_and_valid_pem() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let config = VaultConfig::new("https://127.0.0.1:1", token())
            .with_tls(super::super::VaultTls::default().with_client_cert(&cert, &key));
        assert_eq!(
            store(&config).unwrap_err().kind(),
            SecretErrorKind::Insecure
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = store(&config).unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Config);
    }

    #[test]
    fn error_mapping_by_status_and_call() {
        let vault = store(&VaultConfig::new("http://127.0.0.1:1", token())).unwrap();
        let r: SecretRef = "vault:kv/app#key".parse().unwrap();
        let api = |code: u16| ClientError::APIError {
            code,
            errors: vec!["said".into()],
        };
        let kind = |e: ClientError, call| vault.error(e, &r, call).kind();
        assert_eq!(kind(api(404), Call::Read), SecretErrorKind::NotFound);
        assert_eq!(
            kind(api(403), Call::Read),
            SecretErrorKind::PermissionDenied
        );
        assert_eq!(kind(api(400), Call::Read), SecretErrorKind::Rejected);
        assert_eq!(
            kind(api(400), Call::Login),
            SecretErrorKind::PermissionDenied
        );
        assert_eq!(
            kind(api(403), Call::Renew),
            SecretErrorKind::PermissionDenied
        );
        assert_eq!(kind(api(503), Call::Read), SecretErrorKind::Unreachable);
        assert_eq!(kind(api(429), Call::Login), SecretErrorKind::Unreachable);
        let empty = ClientError::APIError {
            code: 404,
            errors: vec![],
        };
        assert!(
            vault
                .error(empty, &r, Call::Read)
                .to_string()
                .contains("nothing at this path")
        );
        let empty = ClientError::APIError {
            code: 500,
            errors: vec![],
        };
        assert!(
            vault
                .error(empty, &r, Call::Read)
                .to_string()
                .contains("no message")
        );
        let raw = ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError {
                code: 502,
                content: Some("<html>bad gateway</html>".into()),
            },
        };
        let e = vault.error(raw, &r, Call::Read);
        assert_eq!(e.kind(), SecretErrorKind::Unreachable);
        assert!(!e.to_string().contains("<html>"), "{e}");
        assert_eq!(
            kind(ClientError::ResponseDataEmptyError, Call::Read),
            SecretErrorKind::NotFound
        );
        let json = serde_json::from_str::<u8>("\"x\"").unwrap_err();
        assert_eq!(
            kind(ClientError::JsonParseError { source: json }, Call::Read),
            SecretErrorKind::Rejected
        );
        assert_eq!(
            kind(ClientError::InvalidLoginMethodError, Call::Read),
            SecretErrorKind::Rejected
        );
    }

    #[test]
    fn only_a_renewal_that_cannot_work_leads_to_a_new_login() {
        let vault = store(&VaultConfig::new("http://127.0.0.1:1", token())).unwrap();
        let r: SecretRef = "vault:kv/app#key".parse().unwrap();
        let renewal_failing_with = |code: u16| {
            let error = ClientError::APIError {
                code,
                errors: vec!["said".into()],
            };
            renewal_cannot_work(&vault.error(error, &r, Call::Renew))
        };
        assert!(renewal_failing_with(403), "refused");
        assert!(renewal_failing_with(400), "not renewable");
        assert!(!renewal_failing_with(503), "sealed");
        assert!(!renewal_failing_with(429), "throttled");
    }

    #[test]
    fn json_types_are_named() {
        let names: Vec<_> = [
            Value::Null,
            Value::Bool(true),
            serde_json::json!(1),
            serde_json::json!("s"),
            serde_json::json!([]),
            serde_json::json!({}),
        ]
        .iter()
        .map(json_type)
        .collect();
        assert_eq!(
            names,
            ["null", "boolean", "number", "string", "array", "object"]
        );
    }
}
