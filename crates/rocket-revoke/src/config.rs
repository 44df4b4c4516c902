//! [`RevokeConfig`]: the `[revoke]` table of the Rocket configuration.

use std::fmt;
use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use rocket::figment::providers::Serialized;
use rocket::figment::{self, Figment};
use rocket_revoke_core::{EngineConfig, IssuerConfig, KeyError, VerifierConfig};
use serde::{Deserialize, Serialize};

/// The configuration of the [`Revoke`](crate::Revoke) fairing: the `revoke` table of the
/// Rocket figment (`[default.revoke]` in `Rocket.toml`, or `ROCKET_REVOKE={...}`).
///
/// Every key is optional except a verification key (`secret`, `public_key_pem` or
/// `jwks_file`); a key that is not listed here, or a value of the wrong type, is a launch
/// error that names it.
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
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevokeConfig {
    /// The `realm` of every `WWW-Authenticate` challenge. Must not contain `"`, `\` or
    /// control characters.
    ///
    /// _Default:_ `"api"`.
    pub realm: String,
    /// Algorithms a token may use (`"HS256"`, `"RS256"`, `"ES256"`, `"EdDSA"`, ...). `none`
    /// is never accepted. The first one also signs the tokens this app mints.
    ///
    /// _Default:_ `["HS256"]`.
    pub algorithms: Vec<Algorithm>,
    /// The HMAC secret for `HS*` (its UTF-8 bytes are the key); it both verifies and signs.
    /// At least 32 random bytes: outside Rocket's `debug` profile a shorter one is a launch
    /// error (in debug it is a warning).
    ///
    /// _Default:_ none.
    pub secret: Option<String>,
    /// PEM files with public keys (RSA, EC P-256/P-384, Ed25519) that verify tokens.
    ///
    /// _Default:_ `[]`.
    pub public_key_pem: Vec<PathBuf>,
    /// A JWKS file (`{"keys": [...]}`); its keys are picked by the token's `kid`.
    ///
    /// _Default:_ none.
    pub jwks_file: Option<PathBuf>,
    /// The JWKS endpoint of an identity provider (Keycloak, Auth0, Okta, ...), `https://`
    /// (plain `http://` only to this machine, or with `jwks_allow_insecure_http`). Its keys are fetched at launch (a failed first fetch fails the launch),
    /// picked by the token's `kid`, refreshed every `jwks_refresh_secs` and when a token
    /// names an unknown `kid` (at most once per `jwks_min_refresh_interval_secs`). A failed
    /// refresh keeps the last good key set; [`Health`](crate::Health) reports its state.
    ///
    /// _Default:_ none.
    pub jwks_url: Option<String>,
    /// Seconds between scheduled refreshes of `jwks_url`.
    ///
    /// _Default:_ `300`.
    pub jwks_refresh_secs: u64,
    /// The least time between two refreshes triggered by unknown `kid`s, in seconds, so a
    /// flood of bogus `kid`s cannot make the app hammer the provider.
    ///
    /// _Default:_ `10`.
    pub jwks_min_refresh_interval_secs: u64,
    /// Timeout of one `jwks_url` fetch, in seconds.
    ///
    /// _Default:_ `5`.
    pub jwks_timeout_secs: u64,
    /// Accept a plain `http://` `jwks_url` to a host that is not this machine. Without it such
    /// a URL fails the launch: whoever can alter the response can forge tokens. Loopback
    /// hosts (`localhost`, `127.0.0.0/8`, `::1`, for a sidecar) are always accepted.
    ///
    /// _Default:_ `false`.
    pub jwks_allow_insecure_http: bool,
    /// Age of the `jwks_url` key set (seconds since its last successful fetch) past which
    /// [`Health`](crate::Health) reports `degraded` (`jwks.stale`); its keys still verify.
    /// At least `jwks_refresh_secs + jwks_timeout_secs`. The default is twelve failed
    /// scheduled refreshes: no passing blip of the provider, and an operator hears of it
    /// within the hour.
    ///
    /// _Default:_ `3600`.
    pub jwks_max_age_secs: u64,
    /// Age of the `jwks_url` key set past which its keys verify nothing: tokens signed by
    /// them are refused (401 `signing keys are stale`) until a fetch succeeds. At least
    /// `jwks_max_age_secs`. A day rides out a provider outage of a day without locking every
    /// user out, yet a key the provider withdrew (rotated out, or compromised) stops being
    /// trusted within a day.
    ///
    /// _Default:_ `86400`.
    pub jwks_max_stale_secs: u64,
    /// Accepted issuers (`iss`). Empty: `iss` is not checked. Minted tokens carry the first.
    ///
    /// _Default:_ `[]`.
    pub issuer: Vec<String>,
    /// Accepted audiences (`aud`). Empty: a token must carry no `aud`. Minted tokens carry
    /// the first.
    ///
    /// _Default:_ `[]`.
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds, at most 3600. Revocations
    /// stay in force this long (plus `clock_skew_secs`) past the tokens they cover.
    ///
    /// _Default:_ `30`.
    pub leeway: u64,
    /// Claims every token must carry.
    ///
    /// _Default:_ `["exp", "jti"]`.
    pub required_claims: Vec<String>,
    /// The claim that names a token's session family, for family revocation: `"sid"` for
    /// Keycloak and OpenID Connect session ids. With another name than `fid`, a token's own
    /// `fid` claim is ignored.
    ///
    /// _Default:_ `"fid"`.
    pub family_claim: String,
    /// Slots per worker thread of the cache of tokens whose signature has verified: a token
    /// sent again skips its header parse, base64 decoding and signature check, while its
    /// claims (`exp`, `nbf`, `iss`, `aud`, required claims) and revocation are still checked
    /// on every request. Tokens over 2 KiB are not kept; a JWKS key rotation invalidates the
    /// cache; `0` turns it off. See
    /// [`VerifierConfig::verified_cache`](rocket_revoke_core::VerifierConfig::verified_cache).
    ///
    /// At most 65536.
    ///
    /// _Default:_ `512`.
    pub verified_cache: usize,
    /// The JOSE header `typ` every token must carry, compared without letter case and
    /// without an `application/` prefix: `"at+jwt"` for RFC 9068 access tokens. Tokens this
    /// app mints carry it. Unset, a token may carry no `typ`, `JWT` or `at+jwt`; any other
    /// `typ` names another kind of JWT (`logout+jwt`, `secevent+jwt`, `dpop+jwt`, ...) and
    /// is refused (401 `token type not accepted`), as are tokens with an `events` claim
    /// (security event and logout tokens) or a `typ` claim of `ID`, `Refresh`, `Offline` or
    /// `Logout` (Keycloak's ID and refresh tokens). See
    /// [`TokenProfile`](rocket_revoke_core::TokenProfile).
    ///
    /// _Default:_ none.
    pub required_typ: Option<String>,
    /// `"rfc9068"` holds tokens to the JWT profile for OAuth 2.0 access tokens (RFC 9068):
    /// `typ: at+jwt` and the claims `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti`
    /// are required, and `issuer` and `audience` must be set. For tokens an identity provider
    /// issues: an app that mints its own (a signing key for the first algorithm) cannot use
    /// it, since its tokens carry no `client_id`.
    ///
    /// _Default:_ `"jwt"` (any signed JWT that passes the other rules).
    pub profile: rocket_revoke_core::TokenProfile,
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
    /// How often sync reads the event log when nothing woke it, in milliseconds. On SQLite
    /// this bounds how long another instance takes to see a revocation.
    ///
    /// _Default:_ `250`.
    pub poll_interval_ms: u64,
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
    /// How often expired entries are dropped from the in-memory set and the database is
    /// pruned (revocations no longer in force, registry rows and events past
    /// `retention_secs`), in seconds. The database prune runs on one instance at a time, in
    /// transactions of at most 1000 rows per table.
    ///
    /// _Default:_ `60`.
    pub prune_interval_secs: u64,
    /// The longest lifetime (`exp - iat`) of any token the app accepts, in seconds, at most
    /// 10 years. Tokens that may live longer, and tokens without `exp`, are refused (401
    /// `token lifetime exceeds the maximum`), because revocations are kept in force this long
    /// past the last token they cover. Recorded in the database at launch; the largest value
    /// of every app on the database is what every writer (other instances, revokectl) sizes
    /// revocations by. `access_ttl` and `refresh_ttl` must not exceed it.
    ///
    /// _Default:_ `2592000` (30 days).
    pub max_token_ttl_secs: i64,
    /// How far the clocks of instances (and of the identity providers whose tokens are
    /// accepted) may disagree, in seconds, at most 3600: revocations outlive the tokens they
    /// cover by `leeway` plus this.
    ///
    /// _Default:_ `60`.
    pub clock_skew_secs: i64,
    /// How long expired registry rows and old events are kept, in seconds.
    ///
    /// _Default:_ `604800` (7 days).
    pub retention_secs: i64,
    /// How many revocations may wait to be written (group commit: one transaction takes
    /// every waiting revocation, up to 256). When that many are waiting, one more is refused
    /// at once with `503 Service Unavailable`, `Retry-After` and
    /// `{"error":"temporarily_unavailable",...}`, and nothing is written: a stalled database
    /// cannot pile up requests and memory without end. A revocation whose request went away
    /// (client gone, timeout) before its turn is not written.
    ///
    /// Between 1 and 65536.
    ///
    /// _Default:_ `4096` (16 full transactions ahead): far beyond what a healthy database
    /// lets queue up, since every transaction takes all that waits, so only a stall fills it.
    pub write_queue: usize,
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

impl Default for RevokeConfig {
    fn default() -> Self {
        let verifier = VerifierConfig::default();
        let engine = EngineConfig::default();
        let issuer = IssuerConfig::default();
        RevokeConfig {
            realm: "api".into(),
            algorithms: verifier.algorithms,
            secret: None,
            public_key_pem: Vec::new(),
            jwks_file: None,
            jwks_url: None,
            jwks_refresh_secs: verifier.jwks_refresh_secs,
            jwks_min_refresh_interval_secs: verifier.jwks_min_refresh_interval_secs,
            jwks_timeout_secs: verifier.jwks_timeout_secs,
            jwks_allow_insecure_http: verifier.jwks_allow_insecure_http,
            jwks_max_age_secs: verifier.jwks_max_age_secs,
            jwks_max_stale_secs: verifier.jwks_max_stale_secs,
            issuer: Vec::new(),
            audience: Vec::new(),
            leeway: verifier.leeway,
            required_claims: verifier.required_claims,
            family_claim: verifier.family_claim,
            verified_cache: verifier.verified_cache,
            required_typ: None,
            profile: rocket_revoke_core::TokenProfile::Jwt,
            private_key_pem: None,
            kid: None,
            access_ttl: issuer.access_ttl,
            refresh_ttl: issuer.refresh_ttl,
            poll_interval_ms: engine.poll_interval_ms,
            max_staleness_ms: None,
            prune_interval_secs: engine.prune_interval_secs,
            max_token_ttl_secs: engine.max_token_ttl_secs,
            clock_skew_secs: engine.clock_skew_secs,
            retention_secs: engine.retention_secs,
            write_queue: engine.write_queue,
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

impl fmt::Debug for RevokeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("RevokeConfig")
            .field("realm", &self.realm)
            .field("algorithms", &self.algorithms)
            .field("secret", &redact(&self.secret))
            .field("public_key_pem", &self.public_key_pem)
            .field("jwks_file", &self.jwks_file)
            .field(
                "jwks_url",
                &self.jwks_url.as_deref().map(rocket_revoke_core::redact_url),
            )
            .field("jwks_refresh_secs", &self.jwks_refresh_secs)
            .field(
                "jwks_min_refresh_interval_secs",
                &self.jwks_min_refresh_interval_secs,
            )
            .field("jwks_timeout_secs", &self.jwks_timeout_secs)
            .field("jwks_allow_insecure_http", &self.jwks_allow_insecure_http)
            .field("jwks_max_age_secs", &self.jwks_max_age_secs)
            .field("jwks_max_stale_secs", &self.jwks_max_stale_secs)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .field("required_claims", &self.required_claims)
            .field("family_claim", &self.family_claim)
            .field("verified_cache", &self.verified_cache)
            .field("required_typ", &self.required_typ)
            .field("profile", &self.profile)
            .field("private_key_pem", &self.private_key_pem)
            .field("kid", &self.kid)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("max_staleness_ms", &self.max_staleness_ms)
            .field("prune_interval_secs", &self.prune_interval_secs)
            .field("max_token_ttl_secs", &self.max_token_ttl_secs)
            .field("clock_skew_secs", &self.clock_skew_secs)
            .field("retention_secs", &self.retention_secs)
            .field("write_queue", &self.write_queue)
            .field("client_id", &self.client_id)
            .field("client_secret", &redact(&self.client_secret))
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
        let config: RevokeConfig = figment
            .focus(Self::KEY)
            .join(Serialized::defaults(RevokeConfig::default()))
            .extract()
            .map_err(prefixed)?;
        config.validate()?;
        config.check_for_profile(figment.profile().as_str().as_str())?;
        Ok(config)
    }

    /// What only a debug profile may run with, as Rocket does for `secret_key`: an HMAC
    /// secret shorter than 32 bytes can be brute-forced from one token, so any other profile
    /// (`release`, which release builds select, or a custom one) refuses it.
    pub fn check_for_profile(&self, profile: &str) -> Result<(), ConfigError> {
        // Profiles are case-insensitive, as in figment.
        if profile.eq_ignore_ascii_case(rocket::Config::DEBUG_PROFILE.as_str().as_str()) {
            return Ok(());
        }
        match &self.secret {
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
        if self.algorithms.is_empty() {
            return invalid("algorithms", "must list at least one algorithm");
        }
        if self.access_ttl <= 0 {
            return invalid("access_ttl", "must be a positive number of seconds");
        }
        if self.refresh_ttl <= 0 {
            return invalid("refresh_ttl", "must be a positive number of seconds");
        }
        if self.max_token_ttl_secs <= 0
            || self.max_token_ttl_secs > rocket_revoke_core::MAX_TTL_SECS
        {
            return invalid(
                "max_token_ttl_secs",
                "must be a positive number of seconds, at most 10 years",
            );
        }
        if i64::try_from(self.leeway).map_or(true, |l| l > rocket_revoke_core::MAX_LEEWAY_SECS) {
            return invalid("leeway", "must be at most 3600 seconds");
        }
        if !(0..=rocket_revoke_core::MAX_LEEWAY_SECS).contains(&self.clock_skew_secs) {
            return invalid("clock_skew_secs", "must be between 0 and 3600 seconds");
        }
        if self.refresh_ttl > self.max_token_ttl_secs || self.access_ttl > self.max_token_ttl_secs {
            return invalid(
                "refresh_ttl",
                "token lifetimes must not exceed `max_token_ttl_secs`, or pruned cut-offs would let old tokens back in",
            );
        }
        if self.retention_secs < 0 {
            return invalid("retention_secs", "must not be negative");
        }
        if self.poll_interval_ms == 0 {
            return invalid("poll_interval_ms", "must be at least 1");
        }
        if let Some(max) = self.max_staleness_ms {
            if max <= self.poll_interval_ms {
                return invalid(
                    "max_staleness_ms",
                    "must be greater than `poll_interval_ms`, or every request between two reads would fail",
                );
            }
        }
        if self.prune_interval_secs == 0 {
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
        if self.write_queue == 0 || self.write_queue > rocket_revoke_core::MAX_WRITE_QUEUE {
            return invalid(
                "write_queue",
                "must be between 1 and 65536 (each waiting revocation holds a request)",
            );
        }
        if self.verified_cache > MAX_VERIFIED_CACHE {
            return invalid(
                "verified_cache",
                "must be at most 65536 slots per thread (each can hold about 3.5 KiB)",
            );
        }
        if self.profile == rocket_revoke_core::TokenProfile::Rfc9068
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

    /// The verifier part.
    pub fn verifier_config(&self) -> VerifierConfig {
        VerifierConfig {
            algorithms: self.algorithms.clone(),
            secret: self.secret.clone(),
            public_key_pem: self.public_key_pem.clone(),
            jwks_file: self.jwks_file.clone(),
            jwks_url: self.jwks_url.clone(),
            jwks_refresh_secs: self.jwks_refresh_secs,
            jwks_min_refresh_interval_secs: self.jwks_min_refresh_interval_secs,
            jwks_timeout_secs: self.jwks_timeout_secs,
            jwks_allow_insecure_http: self.jwks_allow_insecure_http,
            jwks_max_age_secs: self.jwks_max_age_secs,
            jwks_max_stale_secs: self.jwks_max_stale_secs,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            leeway: self.leeway,
            required_claims: self.required_claims.clone(),
            family_claim: self.family_claim.clone(),
            verified_cache: self.verified_cache,
            required_typ: self.required_typ.clone(),
            profile: self.profile,
        }
    }

    /// The engine part.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            poll_interval_ms: self.poll_interval_ms,
            prune_interval_secs: self.prune_interval_secs,
            max_token_ttl_secs: self.max_token_ttl_secs,
            leeway_secs: i64::try_from(self.leeway).unwrap_or(i64::MAX),
            clock_skew_secs: self.clock_skew_secs,
            retention_secs: self.retention_secs,
            // An app records its bounds and prunes its own database.
            publish_bounds: true,
            prune_database: true,
            write_queue: self.write_queue,
        }
    }

    /// The issuer part, when a signing key is configured for the first algorithm.
    pub fn issuer_config(&self) -> Option<IssuerConfig> {
        let algorithm = *self.algorithms.first()?;
        let hmac = matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        );
        let has_key = if hmac {
            self.secret.is_some()
        } else {
            self.private_key_pem.is_some()
        };
        has_key.then(|| IssuerConfig {
            algorithm,
            secret: self.secret.clone(),
            private_key_pem: self.private_key_pem.clone(),
            kid: self.kid.clone(),
            issuer: self.issuer.first().cloned(),
            audience: self.audience.first().cloned(),
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            typ: self.required_typ.clone(),
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
        rocket_revoke_core::Verifier::from_config_with_clock(&self.verifier_config(), clock)
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
            KeyError::Read { path, .. } if self.jwks_file.as_deref() == Some(path.as_path()) => {
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
