//! [`RevokeConfig`]: the `[revoke]` table of the Rocket configuration.

mod keys;

use std::fmt;
use std::path::PathBuf;
use std::sync::LazyLock;

use jsonwebtoken::Algorithm;
use rocket::figment::{self, Figment};
use rocket_revoke_core::{EngineConfig, IssuerConfig, KeyError, VerifierConfig};
use serde::{Deserialize, Serialize};

use keys::{KeySet, KnownKeys, Section};

/// The configuration of the [`Revoke`](crate::Revoke) fairing: the `revoke` table of the
/// Rocket figment (`[default.revoke]` in `Rocket.toml`, or `ROCKET_REVOKE={...}`).
///
/// Every key is optional except a verification key (`secret`, `public_key_pem` or
/// `jwks_file`); a key that no part of it reads (see below), or a value of the wrong type, is
/// a launch error that names it.
///
/// ```toml
/// [default.revoke]
/// # Verification (every incoming token).
/// algorithms = ["HS256"]
/// secret = "a long random string, at least 32 bytes of it"
/// issuer = ["https://auth.example.com"]
/// audience = ["api"]
/// leeway = 30
/// required_claims = ["exp", "jti"]
/// realm = "api"
/// # Minting (Revoker::issue / refresh), when the app issues its own tokens.
/// access_ttl = 900
/// refresh_ttl = 1209600
/// # Sync with the database.
/// poll_interval_ms = 250
/// # Fail closed (503) when the set has not been synced for this long (off by default).
/// max_staleness_ms = 60000
/// # RFC 7662 introspection client.
/// client_id = "gateway"
/// client_secret = "another long random string"
/// # Last-seen recording.
/// last_seen_interval_ms = 1000
/// # Token sources besides the Authorization header (both off by default).
/// token_cookie = "access_token"
/// ```
///
/// Tokens are minted with the first entry of `algorithms`, `issuer` and `audience`, so tokens
/// this app issues always pass its own verifier. Secrets are never printed by `Debug`.
///
/// # One flat table, three parts
///
/// The table is flat, but it is read into three parts:
/// [`verifier`](Self::verifier) (every key of [`VerifierConfig`]: `algorithms`, `secret`,
/// `jwks_url`, `leeway`, ...), [`engine`](Self::engine) (the keys of [`EngineConfig`] an app
/// sets: `poll_interval_ms`, `prune_interval_secs`, `max_token_ttl_secs`, `clock_skew_secs`,
/// `retention_secs`, `write_queue`), and the fields of this struct, which only Rocket reads.
/// [`RevokeConfig::from_figment`] reads each part from the same `revoke` table, so an error
/// names the key as written (`revoke.leeway`) and its source, and refuses a key no part
/// reads. docs/CONFIGURATION.md describes every key.
///
/// `Serialize` writes the same flat table. `Deserialize` reads only the fields of this
/// struct (and refuses every other key): read a whole table with
/// [`RevokeConfig::from_figment`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevokeConfig {
    /// How tokens are verified: the keys of [`VerifierConfig`] (`algorithms`, `secret`,
    /// `public_key_pem`, `jwks_file`, `jwks_url`, `jwks_*`, `issuer`, `audience`, `leeway`,
    /// `required_claims`, `family_claim`, `verified_cache`, `required_typ`, `profile`), flat in
    /// the table.
    ///
    /// _Default:_ [`VerifierConfig::default`].
    #[serde(flatten, skip_deserializing)]
    pub verifier: VerifierConfig,
    /// The engine's settings an app chooses, flat in the table: `poll_interval_ms`,
    /// `prune_interval_secs`, `max_token_ttl_secs`, `clock_skew_secs`, `retention_secs` and
    /// `write_queue`. Its `leeway_secs`, `publish_bounds` and `prune_database` are not keys of
    /// the table and are not read: [`RevokeConfig::engine_config`] takes the leeway from
    /// [`verifier.leeway`](VerifierConfig::leeway), and an app always records its bounds and
    /// prunes its database.
    ///
    /// _Default:_ [`EngineConfig::default`].
    #[serde(flatten, skip_deserializing, serialize_with = "serialize_engine_keys")]
    pub engine: EngineConfig,
    /// The `realm` of every `WWW-Authenticate` challenge. Must not contain `"`, `\` or
    /// control characters.
    ///
    /// _Default:_ `"api"`.
    pub realm: String,
    /// PEM private key that signs minted tokens when the first algorithm is not `HS*`.
    /// Without it (and without `secret` for `HS*`) the app verifies only and
    /// [`Revoker::issue`](crate::Revoker::issue) fails.
    ///
    /// _Default:_ none.
    pub private_key_pem: Option<PathBuf>,
    /// The `kid` header of minted tokens.
    ///
    /// _Default:_ none.
    pub kid: Option<String>,
    /// Lifetime of minted access tokens, in seconds.
    ///
    /// _Default:_ `900` (15 minutes).
    pub access_ttl: i64,
    /// Lifetime of minted refresh tokens, in seconds. At most `max_token_ttl_secs`.
    ///
    /// _Default:_ `1209600` (14 days).
    pub refresh_ttl: i64,
    /// The longest the revocation set may go without a successful read of the database, in
    /// milliseconds, before [`Authenticated`](crate::Authenticated) fails closed: past it,
    /// a token that verifies and is not in the (stale) set is answered `503 Service
    /// Unavailable` (JSON body `{"error":"temporarily_unavailable",...}`, `Retry-After`)
    /// instead of being accepted, because a revocation made elsewhere during the outage
    /// might be missed. Tokens that fail verification, or that the set already revokes,
    /// are still a 401. [`Verified`](crate::Verified) (no revocation check) is not affected.
    ///
    /// Unset, the guard keeps answering from the last synced set for as long as the
    /// database is unreachable (fail open on staleness, the default). When set, it must be
    /// greater than `poll_interval_ms`; a value of a few poll intervals plus the longest
    /// database hiccup you want to ride out (for example `60000`) is typical.
    ///
    /// _Default:_ none (off).
    pub max_staleness_ms: Option<u64>,
    /// The client id that may call the RFC 7662 introspection route (HTTP Basic).
    /// Without `client_id` and `client_secret` introspection answers 401 to everyone.
    ///
    /// _Default:_ none.
    pub client_id: Option<String>,
    /// The secret of `client_id`.
    ///
    /// _Default:_ none.
    pub client_secret: Option<String>,
    /// How often tokens seen by the guards are written to the registry (`last_seen`), in
    /// milliseconds. Requests never wait on it.
    ///
    /// _Default:_ `1000`.
    pub last_seen_interval_ms: u64,
    /// How many sightings may wait for the next write; beyond that they are dropped (the
    /// request is never slowed down).
    ///
    /// Between 1 and 1048576.
    ///
    /// _Default:_ `8192`.
    pub last_seen_capacity: usize,
    /// The name of a cookie the guards read the token from when a request has no
    /// `Authorization` header (for browser apps). The cookie's value is the bare token.
    /// Set it `HttpOnly`, `Secure` and `SameSite=Strict` (or `Lax`): a cookie is sent by the
    /// browser on its own, so routes that change state must also be protected against
    /// cross-site request forgery.
    ///
    /// _Default:_ none (cookies are not read).
    pub token_cookie: Option<String>,
    /// The name of a query parameter the guards read the token from when neither the
    /// `Authorization` header nor `token_cookie` supplies one (RFC 6750 §2.3).
    ///
    /// **Avoid it**: URLs end up in access logs, proxy logs, browser history and `Referer`
    /// headers, so a token in a query string leaks. Only for clients that cannot send
    /// headers (some WebSocket and EventSource clients), with short-lived tokens.
    ///
    /// _Default:_ none (the query string is never read).
    pub token_query: Option<String>,
    /// Opens a `tracing` span (`revoke.guard`, level debug) around every guard check. Off
    /// by default: the guard is on every request, and a span costs more than the check.
    ///
    /// _Default:_ `false`.
    pub trace_requests: bool,
}

/// Shortest HMAC secret outside the debug profile (RFC 7518 §3.2: a key at least as long as
/// the HS256 output).
const MIN_RELEASE_SECRET_LEN: usize = 32;
/// Largest `verified_cache` (slots per worker thread, up to ~3.5 KiB each: ~224 MiB a thread).
const MAX_VERIFIED_CACHE: usize = 65_536;
/// Largest `last_seen_capacity` (queued sightings).
const MAX_LAST_SEEN_CAPACITY: usize = 1 << 20;

/// Fields of [`EngineConfig`] that are not keys of the `revoke` table: the leeway is the
/// verifier's `leeway`, and an app always records its bounds and prunes its own database.
const ENGINE_FIELDS_NOT_KEYS: [&str; 3] = ["leeway_secs", "publish_bounds", "prune_database"];

/// Every key of the `revoke` table, as the structs that read them name them: the fields of
/// [`VerifierConfig`], of [`EngineConfig`] but [`ENGINE_FIELDS_NOT_KEYS`], and Rocket's own.
struct TableKeys;

impl KeySet for TableKeys {
    fn keys() -> &'static [&'static str] {
        static KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
            let engine = keys::fields::<EngineConfig>()
                .iter()
                .filter(|field| !ENGINE_FIELDS_NOT_KEYS.contains(field));
            keys::fields::<VerifierConfig>()
                .iter()
                .chain(engine)
                .chain(keys::fields::<RevokeConfig>())
                .copied()
                .collect()
        });
        KEYS.as_slice()
    }
}

impl Default for RevokeConfig {
    fn default() -> Self {
        let issuer = IssuerConfig::default();
        RevokeConfig {
            verifier: VerifierConfig::default(),
            engine: EngineConfig::default(),
            realm: "api".into(),
            private_key_pem: None,
            kid: None,
            access_ttl: issuer.access_ttl,
            refresh_ttl: issuer.refresh_ttl,
            max_staleness_ms: None,
            client_id: None,
            client_secret: None,
            last_seen_interval_ms: 1000,
            last_seen_capacity: 8192,
            token_cookie: None,
            token_query: None,
            trace_requests: false,
        }
    }
}

/// The engine keys of the `revoke` table: [`EngineConfig`]'s fields but those an app does
/// not set ([`ENGINE_FIELDS_NOT_KEYS`]).
fn serialize_engine_keys<S: serde::Serializer>(
    engine: &EngineConfig,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    let mut table = match figment::value::Value::serialize(engine).map_err(S::Error::custom)? {
        figment::value::Value::Dict(_, table) => table,
        _ => return Err(S::Error::custom("the engine settings are not a table")),
    };
    for field in ENGINE_FIELDS_NOT_KEYS {
        table.remove(field);
    }
    table.serialize(serializer)
}

impl fmt::Debug for RevokeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `VerifierConfig`'s own `Debug` redacts `secret` and the credentials of `jwks_url`.
        f.debug_struct("RevokeConfig")
            .field("verifier", &self.verifier)
            .field("engine", &self.engine)
            .field("realm", &self.realm)
            .field("private_key_pem", &self.private_key_pem)
            .field("kid", &self.kid)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("max_staleness_ms", &self.max_staleness_ms)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("last_seen_interval_ms", &self.last_seen_interval_ms)
            .field("last_seen_capacity", &self.last_seen_capacity)
            .field("token_cookie", &self.token_cookie)
            .field("token_query", &self.token_query)
            .field("trace_requests", &self.trace_requests)
            .finish()
    }
}

/// A start-up error: the `revoke` configuration cannot be used. Its message names the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key is unknown or has a value of the wrong type (the message names it and its
    /// source).
    #[error("invalid revoke configuration: {0}")]
    Figment(Box<figment::Error>),
    /// A value has the right type but cannot be used.
    #[error("invalid `revoke.{key}`: {reason}")]
    Invalid {
        /// The key, relative to the `revoke` table.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The verification keys cannot be loaded.
    #[error("invalid `revoke.{key}`: {source}")]
    Key {
        /// The key, relative to the `revoke` table.
        key: &'static str,
        /// Why.
        #[source]
        source: KeyError,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        ConfigError::Figment(Box::new(e))
    }
}

impl RevokeConfig {
    /// The figment key the configuration lives under.
    pub const KEY: &'static str = "revoke";

    /// Reads the `revoke` table of `figment` (Rocket's), fills in the defaults and checks the
    /// values.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let config = Self::read(&figment.focus(Self::KEY))?;
        config.validate()?;
        config.check_for_profile(figment.profile().as_str().as_str())?;
        Ok(config)
    }

    /// Reads `table` (the focused `revoke` table): refuses a key no part reads, then reads
    /// each part, with its defaults, from the same figment so that an error names the key
    /// and its source.
    fn read(table: &Figment) -> Result<Self, ConfigError> {
        let error = |e| ConfigError::from(prefixed(e));
        table.extract::<KnownKeys<TableKeys>>().map_err(error)?;
        let Section(own) = table.extract::<Section<RevokeConfig>>().map_err(error)?;
        let Section(verifier) = table.extract().map_err(error)?;
        let Section(engine) = table.extract().map_err(error)?;
        Ok(RevokeConfig {
            verifier,
            engine,
            ..own
        })
    }

    /// What only a debug profile may run with, as Rocket does for `secret_key`: an HMAC
    /// secret shorter than 32 bytes can be brute-forced from one token, so any other profile
    /// (`release`, which release builds select, or a custom one) refuses it.
    pub fn check_for_profile(&self, profile: &str) -> Result<(), ConfigError> {
        // Profiles are case-insensitive, as in figment.
        if profile.eq_ignore_ascii_case(rocket::Config::DEBUG_PROFILE.as_str().as_str()) {
            return Ok(());
        }
        match &self.verifier.secret {
            Some(secret) if secret.len() < MIN_RELEASE_SECRET_LEN => Err(ConfigError::Invalid {
                key: "secret",
                reason: format!(
                    "is {} bytes; the `{profile}` profile needs at least {MIN_RELEASE_SECRET_LEN} random bytes: set your own from the environment, ROCKET_REVOKE='{{secret=\"...\"}}' (for example the output of `openssl rand -base64 48`)",
                    secret.len()
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Checks values that have the right type but cannot be used.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.realm.is_empty()
            || self
                .realm
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control())
        {
            return invalid(
                "realm",
                "must be non-empty, without quotes, backslashes or control characters",
            );
        }
        if self.verifier.algorithms.is_empty() {
            return invalid("algorithms", "must list at least one algorithm");
        }
        if self.access_ttl <= 0 {
            return invalid("access_ttl", "must be a positive number of seconds");
        }
        if self.refresh_ttl <= 0 {
            return invalid("refresh_ttl", "must be a positive number of seconds");
        }
        if self.engine.max_token_ttl_secs <= 0
            || self.engine.max_token_ttl_secs > rocket_revoke_core::MAX_TTL_SECS
        {
            return invalid(
                "max_token_ttl_secs",
                "must be a positive number of seconds, at most 10 years",
            );
        }
        if i64::try_from(self.verifier.leeway)
            .map_or(true, |l| l > rocket_revoke_core::MAX_LEEWAY_SECS)
        {
            return invalid("leeway", "must be at most 3600 seconds");
        }
        if !(0..=rocket_revoke_core::MAX_LEEWAY_SECS).contains(&self.engine.clock_skew_secs) {
            return invalid("clock_skew_secs", "must be between 0 and 3600 seconds");
        }
        if self.refresh_ttl > self.engine.max_token_ttl_secs
            || self.access_ttl > self.engine.max_token_ttl_secs
        {
            return invalid(
                "refresh_ttl",
                "token lifetimes must not exceed `max_token_ttl_secs`, or pruned cut-offs would let old tokens back in",
            );
        }
        if self.engine.retention_secs < 0 {
            return invalid("retention_secs", "must not be negative");
        }
        if self.engine.poll_interval_ms == 0 {
            return invalid("poll_interval_ms", "must be at least 1");
        }
        if let Some(max) = self.max_staleness_ms {
            if max <= self.engine.poll_interval_ms {
                return invalid(
                    "max_staleness_ms",
                    "must be greater than `poll_interval_ms`, or every request between two reads would fail",
                );
            }
        }
        if self.engine.prune_interval_secs == 0 {
            return invalid("prune_interval_secs", "must be at least 1");
        }
        if self.last_seen_interval_ms == 0 {
            return invalid("last_seen_interval_ms", "must be at least 1");
        }
        if self.last_seen_capacity == 0 || self.last_seen_capacity > MAX_LAST_SEEN_CAPACITY {
            return invalid(
                "last_seen_capacity",
                "must be between 1 and 1048576 (each waiting sighting holds a token's claims)",
            );
        }
        if self.engine.write_queue == 0
            || self.engine.write_queue > rocket_revoke_core::MAX_WRITE_QUEUE
        {
            return invalid(
                "write_queue",
                "must be between 1 and 65536 (each waiting revocation holds a request)",
            );
        }
        if self.verifier.verified_cache > MAX_VERIFIED_CACHE {
            return invalid(
                "verified_cache",
                "must be at most 65536 slots per thread (each can hold about 3.5 KiB)",
            );
        }
        if self.verifier.profile == rocket_revoke_core::TokenProfile::Rfc9068
            && self.issuer_config().is_some()
        {
            return invalid(
                "profile",
                "\"rfc9068\" is for tokens an identity provider issues: this app mints its own (a signing key for the first algorithm is set), and they carry no `client_id`",
            );
        }
        if let Some(name) = &self.token_cookie {
            // RFC 6265 §4.1.1: a cookie name is an RFC 7230 token.
            let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || !name.chars().all(tchar) {
                return invalid(
                    "token_cookie",
                    "must be a cookie name: letters, digits and !#$%&'*+-.^_`|~ only",
                );
            }
        }
        if let Some(name) = &self.token_query {
            if name.is_empty() || name.contains(['&', '=', '#']) {
                return invalid(
                    "token_query",
                    "must be a non-empty parameter name without `&`, `=` or `#`",
                );
            }
            tracing::warn!(
                "`revoke.token_query` is set: tokens in URLs leak into logs, history and Referer headers"
            );
        }
        match (&self.client_id, &self.client_secret) {
            (Some(_), None) => return invalid("client_secret", "is required with `client_id`"),
            (None, Some(_)) => return invalid("client_id", "is required with `client_secret`"),
            (Some(id), Some(secret)) => {
                if id.is_empty() || id.contains(':') {
                    return invalid("client_id", "must be non-empty and contain no `:`");
                }
                if secret.is_empty() {
                    return invalid("client_secret", "must not be empty");
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// The verifier part: [`verifier`](Self::verifier).
    pub fn verifier_config(&self) -> &VerifierConfig {
        &self.verifier
    }

    /// The engine part: [`engine`](Self::engine), with the verifier's leeway, recording its
    /// bounds in the database and pruning it (as every app does).
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            leeway_secs: i64::try_from(self.verifier.leeway).unwrap_or(i64::MAX),
            publish_bounds: true,
            prune_database: true,
            ..self.engine.clone()
        }
    }

    /// The issuer part, when a signing key is configured for the first algorithm.
    pub fn issuer_config(&self) -> Option<IssuerConfig> {
        let algorithm = *self.verifier.algorithms.first()?;
        let hmac = matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        );
        let has_key = if hmac {
            self.verifier.secret.is_some()
        } else {
            self.private_key_pem.is_some()
        };
        has_key.then(|| IssuerConfig {
            algorithm,
            secret: self.verifier.secret.clone(),
            private_key_pem: self.private_key_pem.clone(),
            kid: self.kid.clone(),
            issuer: self.verifier.issuer.first().cloned(),
            audience: self.verifier.audience.first().cloned(),
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            typ: self.verifier.required_typ.clone(),
        })
    }

    /// Loads the verification keys, fetching `jwks_url` when one is configured; an error
    /// names the key at fault. The verifier reads the system clock.
    pub async fn verifier(&self) -> Result<rocket_revoke_core::Verifier, ConfigError> {
        self.verifier_with_clock(rocket_revoke_core::system_clock())
            .await
    }

    /// [`RevokeConfig::verifier`] reading the time (and the JWKS key set's age) from `clock`.
    pub async fn verifier_with_clock(
        &self,
        clock: rocket_revoke_core::SharedClock,
    ) -> Result<rocket_revoke_core::Verifier, ConfigError> {
        rocket_revoke_core::Verifier::from_config_with_clock(&self.verifier, clock)
            .await
            .map_err(|e| self.key_error(e))
    }

    /// Names the configuration key a verifier key error points at.
    fn key_error(&self, source: KeyError) -> ConfigError {
        let key = match &source {
            KeyError::NoKeyForAlgorithm(alg) => {
                let hmac = matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
                return ConfigError::Invalid {
                    key: if hmac { "secret" } else { "public_key_pem" },
                    reason: format!(
                        "algorithm {alg:?} is allowed but no key can verify it: set `revoke.secret` for HS*, or `revoke.public_key_pem` / `revoke.jwks_file` / `revoke.jwks_url`"
                    ),
                };
            }
            KeyError::Read { path, .. }
                if self.verifier.jwks_file.as_deref() == Some(path.as_path()) =>
            {
                "jwks_file"
            }
            KeyError::Read { .. } | KeyError::BadPem { .. } => "public_key_pem",
            KeyError::BadJwks { .. } => "jwks_file",
            KeyError::JwksFetch { .. } => "jwks_url",
            KeyError::EmptySecret => "secret",
            KeyError::InvalidConfig { key, .. } => key,
            _ => "algorithms",
        };
        ConfigError::Key { key, source }
    }
}

/// `focus` makes error paths relative to the `revoke` table: put the table back in front so
/// the message names the key as the user wrote it (`default.revoke.leeway`).
fn prefixed(error: figment::Error) -> figment::Error {
    let mut errors = error.into_iter().map(|mut e| {
        e.path.insert(0, RevokeConfig::KEY.to_owned());
        e
    });
    let first = errors.next();
    match first {
        Some(first) => errors.fold(first, |chain, e| chain.chain(e)),
        None => figment::Error::from("invalid revoke configuration".to_owned()),
    }
}

#[cfg(test)]
mod tests;
