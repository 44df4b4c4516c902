//! Token verification: signature, algorithm allow-list, key selection and claim checks.
//!
//! The [`Verifier`] wraps `jsonwebtoken`'s crypto providers but parses the token itself, so
//! that every rule below is ours and tested here:
//!
//! - the token is at most [`MAX_TOKEN_LEN`] bytes, checked before anything is decoded;
//! - `alg` must name one of the configured algorithms; `none` (any letter case) never is one;
//! - the key comes from configuration only (a secret, PEM files, a JWKS file, or the key set
//!   of the configured `jwks_url`, see [`crate::jwks`]): `jku`, `x5u`, `x5c` and `jwk` header
//!   values are ignored, never fetched; a key is only used with the algorithm family it was loaded for,
//!   so an HMAC secret can never be confused with an RSA public key;
//! - a `crit` header is rejected (no JWS extension is understood);
//! - the signature is checked before any claim is looked at;
//! - `exp`, `nbf` (and a future `iat`) are checked with the configured leeway; `iss`/`aud`
//!   when configured; `required_claims` must be present;
//! - a token whose signature already verified on this thread, for this verifier and under
//!   its current JWKS key set, skips the header, base64 and signature steps (their outcome
//!   depends on nothing else); the claim checks above run on every call. See
//!   [`VerifierConfig::verified_cache`].
//!
//! Nothing here logs token contents.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Weak};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Map, Value};

use crate::claims::Claims;
use crate::clock::SharedClock;
use crate::jwks::{JwksRefresher, JwksStatus, RemoteJwks};

/// The longest token [`Verifier::verify`] looks at, in bytes. Longer input is rejected with
/// [`VerifyError::TooLarge`] before any decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// HMAC secrets shorter than this many bytes are accepted with a warning (RFC 7518 §3.2 asks
/// for at least the hash size: 32 bytes for HS256).
const MIN_SECRET_LEN: usize = 32;

/// The most keys a token without `kid` is tried against: with more usable keys for its
/// algorithm (configured and fetched together) it is refused with
/// [`VerifyError::KidRequired`] instead, so a stream of kid-less tokens cannot cost one
/// signature check per published key. Four covers a provider's current key plus the
/// previous and next ones of a rotation (Auth0, Keycloak and Google publish two or three);
/// providers that publish more (Microsoft Entra) put a `kid` in every token. At most this
/// many configured keys without a `kid` (the secret, PEM files, kid-less JWKS file keys) may
/// serve one algorithm, or start-up fails.
pub const MAX_KEYS_PER_TOKEN: usize = 4;

/// How tokens are verified: algorithms, keys and claim rules.
///
/// Deserializes from a config table (unknown fields are an error); every field has a default,
/// see [`VerifierConfig::default`].
///
/// `Debug` never prints the secret, and shows `jwks_url` through [`crate::redact_url`].
#[derive(Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifierConfig {
    /// Algorithms a token may use. A token whose `alg` is not listed is rejected. Default
    /// `["HS256"]`.
    pub algorithms: Vec<Algorithm>,
    /// The HMAC secret, for the `HS*` algorithms (its UTF-8 bytes are the key).
    pub secret: Option<String>,
    /// PEM files holding public keys: RSA (for `RS*`, `PS*`), EC P-256/P-384 (`ES256`,
    /// `ES384`) or Ed25519 (`EdDSA`). A PEM key has no `kid`; it is used for tokens without a
    /// `kid` and for tokens whose `kid` names no JWKS key.
    pub public_key_pem: Vec<PathBuf>,
    /// A JWKS file (`{"keys": [...]}`); its keys are picked by the token's `kid`. Keys marked
    /// for encryption, and key types this crate cannot use, are skipped with a warning.
    pub jwks_file: Option<PathBuf>,
    /// An `http://` or `https://` URL of a JWKS endpoint (Keycloak, Auth0, Okta...), whose keys
    /// are picked by the token's `kid` like those of [`jwks_file`](Self::jwks_file), and kept
    /// fresh by a background refresher: see the [`jwks`](crate::jwks) module for the refresh
    /// and rate-limit policy. Symmetric (`oct`) keys are never taken from a URL. Needs the
    /// `jwks` cargo feature (on by default). Default: none.
    pub jwks_url: Option<String>,
    /// Seconds between scheduled refreshes of the `jwks_url` key set (at least 1). Default 300.
    pub jwks_refresh_secs: u64,
    /// Rate limit of the refreshes that a token with an unknown `kid` triggers: at most one
    /// fetch this many seconds after the previous one (at least 1), so a flood of bogus `kid`s
    /// cannot hammer the provider. Default 10.
    pub jwks_min_refresh_interval_secs: u64,
    /// Timeout of one `jwks_url` fetch (connect, request and body), in seconds (at least 1).
    /// Default 5.
    pub jwks_timeout_secs: u64,
    /// Accept a plain `http://` `jwks_url` (and redirects to one) to a host that is not this
    /// machine. Off, such a URL is a start-up error: whoever can alter the response can forge
    /// tokens. Loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) are always accepted.
    /// Default `false`.
    pub jwks_allow_insecure_http: bool,
    /// Age of the `jwks_url` key set, in seconds since its last successful fetch, past which
    /// [`JwksStatus::stale`] is set (a health endpoint reports `degraded`); its keys still
    /// verify. At least `jwks_refresh_secs + jwks_timeout_secs`. Default 3600: twelve
    /// scheduled refreshes (and a hundred retries, one per 30 s) have failed by then, which is
    /// no passing blip of the provider, yet an operator hears of it within the hour.
    pub jwks_max_age_secs: u64,
    /// Age of the `jwks_url` key set past which its keys verify nothing: tokens signed by
    /// them get [`VerifyError::StaleKeys`] until a fetch succeeds. At least
    /// `jwks_max_age_secs`. Default 86400 (a day): long enough to ride out a provider outage
    /// of a day without locking every user out, short enough that a key the provider has
    /// withdrawn (rotated out, or compromised) stops being trusted within a day.
    pub jwks_max_stale_secs: u64,
    /// Accepted issuers. Empty: `iss` is not checked. Otherwise a token must carry one of them.
    pub issuer: Vec<String>,
    /// Accepted audiences. Empty: a token must carry no `aud` at all (RFC 7519 §4.1.3).
    /// Otherwise a token's `aud` must contain at least one of them.
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds. Default 30.
    pub leeway: u64,
    /// Claims every token must carry (any claim name; a JSON `null` counts as absent).
    /// Default `["exp", "jti"]`.
    pub required_claims: Vec<String>,
    /// The claim that names a token's session family, read into [`Claims::fid`] for family
    /// revocation. Identity providers name it differently: `"sid"` for Keycloak and OpenID
    /// Connect session ids. With another name than `fid`, a token's own `fid` claim is
    /// ignored (the configured one is authoritative). Default `"fid"`.
    pub family_claim: String,
    /// Slots per thread of the cache of tokens whose signature has verified, so a token sent
    /// again skips its header parse, base64 decoding and signature check (its claims are
    /// still checked on every request). Only tokens of at most 2 KiB are kept, so the cache
    /// holds at most about `verified_cache × 3.5 KiB` per thread (typically a tenth of
    /// that). A JWKS key rotation invalidates it. `0` turns it off. Default 512.
    pub verified_cache: usize,
    /// The header `typ` every token must carry, compared without letter case and without an
    /// `application/` prefix (RFC 7515 §4.1.9): `"at+jwt"` accepts `application/at+jwt`.
    /// Unset, a token may carry no `typ`, `JWT` or `at+jwt`, and any other `typ` is refused
    /// (RFC 8725 §3.11: `logout+jwt`, `secevent+jwt`, `dpop+jwt`, ... name other kinds of
    /// JWT). Default: none.
    pub required_typ: Option<String>,
    /// Which access-token profile tokens follow. [`TokenProfile::Rfc9068`] requires
    /// `typ: at+jwt` and the claims `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and
    /// `jti`, and needs `issuer` and `audience` configured. Default [`TokenProfile::Jwt`].
    pub profile: TokenProfile,
}

/// The access-token profile a [`Verifier`] holds tokens to ([`VerifierConfig::profile`]).
///
/// Whatever the profile, tokens that say they are another kind of JWT are refused with
/// [`VerifyError::WrongType`]: a header `typ` other than `JWT` or `at+jwt` (unless
/// [`VerifierConfig::required_typ`] names it), an `events` claim (Security Event Tokens and
/// OpenID back-channel logout tokens, RFC 8417 §4), or a `typ` claim naming an ID, refresh,
/// offline or logout token (as Keycloak marks them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TokenProfile {
    /// Any signed JWT that passes the claim rules.
    #[default]
    Jwt,
    /// The JWT profile for OAuth 2.0 access tokens (RFC 9068): `typ: at+jwt` and the claims
    /// `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti`.
    Rfc9068,
}

/// The claims RFC 9068 §2.2 makes mandatory.
const RFC9068_CLAIMS: [&str; 7] = ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"];

/// Header `typ` values of an access token when no `required_typ` is set.
const ACCESS_TYPS: [&str; 2] = ["jwt", "at+jwt"];

/// `typ` claim values (Keycloak's token categories) of tokens that are not access tokens.
const OTHER_KIND_CLAIMS: [&str; 5] = ["id", "refresh", "offline", "logout", "serialized-id"];

/// A media type as JOSE compares it: without an `application/` prefix (RFC 7515 §4.1.9);
/// callers compare the rest without letter case.
fn media_type(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            algorithms: vec![Algorithm::HS256],
            secret: None,
            public_key_pem: Vec::new(),
            jwks_file: None,
            jwks_url: None,
            jwks_refresh_secs: 300,
            jwks_min_refresh_interval_secs: 10,
            jwks_timeout_secs: 5,
            jwks_allow_insecure_http: false,
            jwks_max_age_secs: 3600,
            jwks_max_stale_secs: 86_400,
            issuer: Vec::new(),
            audience: Vec::new(),
            leeway: 30,
            required_claims: vec!["exp".to_owned(), "jti".to_owned()],
            family_claim: "fid".to_owned(),
            verified_cache: 512,
            required_typ: None,
            profile: TokenProfile::Jwt,
        }
    }
}

impl fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("algorithms", &self.algorithms)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_key_pem", &self.public_key_pem)
            .field("jwks_file", &self.jwks_file)
            .field("jwks_url", &self.jwks_url.as_deref().map(crate::redact_url))
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
            .finish()
    }
}

/// Why a token was rejected.
///
/// The [`Display`](fmt::Display) text and [`VerifyError::description`] never contain token
/// content, so either may be shown to the client or logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a well-formed JWS compact token: wrong number of parts, bad base64, bad JSON, a
    /// claim of the wrong type, or an empty `jti`.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify with the selected key(s).
    #[error("invalid signature")]
    InvalidSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not one of the configured issuers.
    #[error("invalid issuer")]
    InvalidIssuer,
    /// `aud` names none of the configured audiences (or is present when none is configured).
    #[error("invalid audience")]
    InvalidAudience,
    /// A required claim is absent; holds the claim's name (from the configuration).
    #[error("missing required claim `{0}`")]
    MissingClaim(String),
    /// The header's `alg` is `none`, unknown, or not in the allow-list.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// No configured key matches the token's `kid` and algorithm.
    #[error("unknown signing key")]
    UnknownKey,
    /// The token has no `kid` and more than [`MAX_KEYS_PER_TOKEN`] keys could verify its
    /// algorithm: it is not tried against them all.
    #[error("token names no signing key (kid)")]
    KidRequired,
    /// The token's key is in the `jwks_url` key set, which has not been fetched successfully
    /// for `jwks_max_stale_secs`: its keys are no longer trusted.
    #[error("signing keys are stale")]
    StaleKeys,
    /// The token is longer than [`MAX_TOKEN_LEN`].
    #[error("token too large")]
    TooLarge,
    /// The header has a `crit` parameter; no JWS extension is supported.
    #[error("unsupported critical header")]
    UnsupportedCritical,
    /// The token may live longer (`exp - iat`, or `exp - now` without `iat`) than the
    /// maximum lifetime every revocation is sized for ([`Verifier::with_max_lifetime`]):
    /// accepting it would let it outlive a revocation that covers it.
    #[error("token lifetime exceeds the maximum")]
    LifetimeTooLong,
    /// The token says it is another kind of JWT than an access token (an ID, logout,
    /// refresh or security event token), or lacks the `typ` the configuration requires: see
    /// [`TokenProfile`].
    #[error("token type not accepted")]
    WrongType,
    /// No crypto backend is available (a build with both or neither of jsonwebtoken's
    /// `rust_crypto` and `aws_lc_rs` features); a server fault, not the token's.
    #[error("token verification unavailable")]
    Unavailable,
}

impl VerifyError {
    /// Short, safe text for an RFC 6750 `error_description` (never echoes token content).
    pub fn description(&self) -> &'static str {
        match self {
            VerifyError::Malformed => "malformed token",
            VerifyError::InvalidSignature => "invalid signature",
            VerifyError::Expired => "token expired",
            VerifyError::NotYetValid => "token not yet valid",
            VerifyError::InvalidIssuer => "invalid issuer",
            VerifyError::InvalidAudience => "invalid audience",
            VerifyError::MissingClaim(_) => "missing required claim",
            VerifyError::AlgorithmNotAllowed => "algorithm not allowed",
            VerifyError::UnknownKey => "unknown signing key",
            VerifyError::KidRequired => "token names no signing key (kid)",
            VerifyError::StaleKeys => "signing keys are stale",
            VerifyError::TooLarge => "token too large",
            VerifyError::UnsupportedCritical => "unsupported critical header",
            VerifyError::Unavailable => "token verification unavailable",
            VerifyError::LifetimeTooLong => "token lifetime exceeds the maximum",
            VerifyError::WrongType => "token type not accepted",
        }
    }
}

/// A start-up error: the configuration names no usable key for what it allows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// `algorithms` is empty.
    #[error("no algorithms configured")]
    NoAlgorithms,
    /// An algorithm name or claim name in the configuration is invalid.
    #[error("invalid verifier configuration: {0}")]
    InvalidConfig(String),
    /// `secret` is set but empty.
    #[error("the HMAC secret is empty")]
    EmptySecret,
    /// A key file could not be read.
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file holds no public key this crate can use.
    #[error("bad public key PEM in {}: {reason}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The JWKS file is not valid or holds no usable key.
    #[error("bad JWKS file {}: {reason}", path.display())]
    BadJwks {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An allowed algorithm has no configured key that can verify it.
    #[error("algorithm {0:?} is allowed but no configured key can verify it")]
    NoKeyForAlgorithm(Algorithm),
    /// The first fetch of `jwks_url` failed (network, HTTP status, body) or its document holds
    /// no usable key: a verifier without its keys would reject every token.
    #[error("cannot load the JWKS from {url}: {reason}")]
    JwksFetch {
        /// The configured URL (any password in it masked).
        url: String,
        /// What went wrong (never a key or token).
        reason: String,
    },
    /// No crypto backend is compiled in (both or neither of jsonwebtoken's `rust_crypto` and
    /// `aws_lc_rs` features).
    #[error("no JWT crypto backend: enable exactly one of jsonwebtoken's `rust_crypto` or `aws_lc_rs` features")]
    NoCryptoBackend,
}

/// One configured verification key.
#[derive(Clone)]
pub(crate) struct Key {
    /// The JWKS `kid`; `None` for the secret and PEM keys.
    pub(crate) kid: Option<String>,
    /// The allowed algorithms this key verifies (checked when it is loaded).
    pub(crate) algs: Vec<Algorithm>,
    key: DecodingKey,
    /// Where it came from, for `Debug` and logs ("secret", a path, a kid).
    origin: String,
}

/// A key as read from configuration, before it is matched with the allowed algorithms.
pub(crate) struct LoadedKey {
    kid: Option<String>,
    key: DecodingKey,
    /// "secret", a path, "<source> key #i".
    origin: String,
    /// The one algorithm a JWKS `alg` pins it to.
    pinned: Option<Algorithm>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algs", &self.algs)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Verifies tokens: see the [module docs](self) for the rules.
///
/// Built once at start-up; `Send + Sync`, cheap to share behind an `Arc`. Verifying does no
/// I/O. With a `jwks_url`, the fetched keys live in an `ArcSwap` shared by the verifier's
/// clones and replaced by the refresher ([`Verifier::spawn_jwks_refresh`]).
#[derive(Debug, Clone)]
pub struct Verifier {
    algorithms: Vec<Algorithm>,
    /// Keys from the secret, PEM files and the JWKS file.
    keys: Vec<Key>,
    /// The key set fetched from `jwks_url`, when one is configured.
    remote: Option<Arc<RemoteJwks>>,
    issuer: Vec<String>,
    audience: Vec<String>,
    leeway: i64,
    required: Vec<String>,
    /// `family_claim` when it is not `fid`.
    family_claim: Option<String>,
    /// Identity of this verifier (shared by its clones) for the per-thread caches of
    /// crypto verifiers ([`with_crypto`]) and of verified tokens ([`crate::verified`]).
    cache_id: Arc<()>,
    /// Slots per thread of the verified-token cache; 0: off.
    verified_cache: usize,
    /// Longest accepted token lifetime, in seconds; with one, `exp` is required.
    max_lifetime: Option<i64>,
    /// The header `typ` every token must carry (as [`media_type`] leaves it); `None`: no
    /// `typ`, or one of [`ACCESS_TYPS`].
    required_typ: Option<String>,
    /// Where [`Verifier::verify`] reads the time (and the JWKS set its age).
    clock: SharedClock,
}

impl Verifier {
    /// Loads every configured key and checks that each allowed algorithm has one.
    ///
    /// Sync and without I/O: a `jwks_url` is checked but not fetched, so its key set starts
    /// empty (tokens get [`VerifyError::UnknownKey`]) until [`Verifier::refresh_jwks`] or the
    /// refresher's first fetch, and only the algorithms no URL can serve (`HS*`) are checked
    /// here. [`Verifier::from_config`] fetches first and checks them all.
    ///
    /// Reads the system clock; [`Verifier::new_with_clock`] takes another.
    pub fn new(config: &VerifierConfig) -> Result<Self, KeyError> {
        Verifier::new_with_clock(config, crate::system_clock())
    }

    /// [`Verifier::new`] reading the time from `clock`: [`Verifier::verify`], and the age of
    /// the `jwks_url` key set (`jwks_max_age_secs`, `jwks_max_stale_secs`).
    pub fn new_with_clock(config: &VerifierConfig, clock: SharedClock) -> Result<Self, KeyError> {
        let provider = CryptoProvider::try_get_default().ok_or(KeyError::NoCryptoBackend)?;
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for alg in &config.algorithms {
            if !algorithms.contains(alg) {
                algorithms.push(*alg);
            }
        }
        if algorithms.is_empty() {
            return Err(KeyError::NoAlgorithms);
        }
        if config.family_claim.is_empty() {
            return Err(KeyError::InvalidConfig("family_claim is empty".into()));
        }
        if config.required_claims.iter().any(|c| c.is_empty()) {
            return Err(KeyError::InvalidConfig(
                "required_claims holds an empty name".into(),
            ));
        }
        let required_typ = match config.required_typ.as_deref().map(str::trim) {
            Some("") => {
                return Err(KeyError::InvalidConfig(
                    "required_typ is empty (unset it to accept JWT and at+jwt)".into(),
                ))
            }
            Some(typ) => Some(media_type(typ).to_ascii_lowercase()),
            None => None,
        };
        let mut required = config.required_claims.clone();
        let required_typ = match config.profile {
            TokenProfile::Jwt => required_typ,
            TokenProfile::Rfc9068 => {
                if required_typ.as_deref().is_some_and(|t| t != "at+jwt") {
                    return Err(KeyError::InvalidConfig(
                        "profile \"rfc9068\" requires typ at+jwt: unset required_typ".into(),
                    ));
                }
                // RFC 9068 §4: the resource server checks `iss` and `aud` against its own.
                if config.issuer.is_empty() || config.audience.is_empty() {
                    return Err(KeyError::InvalidConfig(
                        "profile \"rfc9068\" needs `issuer` and `audience` (RFC 9068 §4)".into(),
                    ));
                }
                for claim in RFC9068_CLAIMS {
                    if !required.iter().any(|c| c == claim) {
                        required.push(claim.to_owned());
                    }
                }
                Some("at+jwt".to_owned())
            }
        };
        if config.jwks_url.is_some() && config.issuer.is_empty() {
            // Every token the provider signs (for any client of it) would pass `iss`.
            tracing::warn!(
                "`jwks_url` is set but `issuer` is empty: tokens are not checked for their \
                 issuer; set `issuer` to the identity provider's issuer URL"
            );
        }

        let remote = match &config.jwks_url {
            Some(url) => Some(Arc::new(RemoteJwks::new(
                url,
                config,
                &algorithms,
                clock.clone(),
            )?)),
            None => None,
        };

        let mut loaded: Vec<LoadedKey> = Vec::new();
        if let Some(secret) = &config.secret {
            if secret.is_empty() {
                return Err(KeyError::EmptySecret);
            }
            if secret.len() < MIN_SECRET_LEN {
                tracing::warn!(
                    len = secret.len(),
                    "the HMAC secret is shorter than {MIN_SECRET_LEN} bytes; use a longer random secret"
                );
            }
            let key =
                DecodingKey::from_secret(secret.as_bytes()).map_err(|_| KeyError::EmptySecret)?;
            loaded.push(LoadedKey {
                kid: None,
                key,
                origin: "secret".into(),
                pinned: None,
            });
        }
        for path in &config.public_key_pem {
            let key = load_pem(path)?;
            loaded.push(LoadedKey {
                kid: None,
                key,
                origin: path.display().to_string(),
                pinned: None,
            });
        }
        if let Some(path) = &config.jwks_file {
            let bytes = read_file(path)?;
            let source = path.display().to_string();
            let jwks = parse_jwks(&bytes, &source, true).map_err(|reason| KeyError::BadJwks {
                path: path.to_owned(),
                reason,
            })?;
            loaded.extend(jwks);
        }
        let keys = usable_keys(provider, &algorithms, loaded);

        // With a JWKS URL, the algorithms its keys may serve are checked after the first
        // fetch (`Verifier::from_config`); symmetric keys never come from a URL.
        for alg in &algorithms {
            let fetched_later = remote.is_some() && alg.family() != AlgorithmFamily::Hmac;
            if !fetched_later && !keys.iter().any(|k| k.algs.contains(alg)) {
                return Err(KeyError::NoKeyForAlgorithm(*alg));
            }
            // Kid-less keys beyond the cap could never be reached by a token.
            let kidless = keys
                .iter()
                .filter(|k| k.kid.is_none() && k.algs.contains(alg))
                .count();
            if kidless > MAX_KEYS_PER_TOKEN {
                return Err(KeyError::InvalidConfig(format!(
                    "public_key_pem: {kidless} keys without a kid can verify {alg:?}, but a token without kid is tried against at most {MAX_KEYS_PER_TOKEN}; give the keys kids in a jwks_file"
                )));
            }
        }

        Ok(Verifier {
            algorithms,
            keys,
            remote,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: i64::try_from(config.leeway).unwrap_or(i64::MAX),
            required,
            family_claim: (config.family_claim != "fid").then(|| config.family_claim.clone()),
            cache_id: Arc::new(()),
            verified_cache: config.verified_cache,
            max_lifetime: None,
            required_typ,
            clock,
        })
    }

    /// Refuses tokens that may live longer than `secs` ([`VerifyError::LifetimeTooLong`]:
    /// `exp - iat`, or `exp - now` for a token without `iat`) and tokens without `exp`
    /// ([`VerifyError::MissingClaim`]). Revocations stay in force for this long past their
    /// cut-off, so a token that lived longer would come back once they end: every verifier
    /// whose tokens are checked against revocations needs it (the rocket-revoke fairing sets
    /// it from `max_token_ttl_secs`).
    pub fn with_max_lifetime(mut self, secs: i64) -> Self {
        self.max_lifetime = Some(secs.max(0));
        self
    }

    /// The leeway on `exp`, `nbf` and `iat`, in seconds.
    pub fn leeway(&self) -> i64 {
        self.leeway
    }

    /// An HS256 verifier with the given secret and the default claim rules (leeway 30 s,
    /// `exp` and `jti` required). For tests and demos.
    ///
    /// An empty secret yields a verifier that rejects every token with
    /// [`VerifyError::UnknownKey`].
    pub fn hs256(secret: &[u8]) -> Self {
        let defaults = VerifierConfig::default();
        let keys = DecodingKey::from_secret(secret)
            .ok()
            .map(|key| Key {
                kid: None,
                algs: vec![Algorithm::HS256],
                key,
                origin: "secret".into(),
            })
            .into_iter()
            .collect();
        Verifier {
            algorithms: vec![Algorithm::HS256],
            keys,
            remote: None,
            issuer: Vec::new(),
            audience: Vec::new(),
            leeway: i64::try_from(defaults.leeway).unwrap_or(i64::MAX),
            required: defaults.required_claims,
            family_claim: None,
            cache_id: Arc::new(()),
            verified_cache: defaults.verified_cache,
            max_lifetime: None,
            required_typ: None,
            clock: crate::system_clock(),
        }
    }

    /// The allowed algorithms, in configuration order, without duplicates.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// [`Verifier::new`], then, when a `jwks_url` is configured, its first fetch: a verifier
    /// without its keys would reject every token, so start-up fails with
    /// [`KeyError::JwksFetch`] when that fetch fails, and with [`KeyError::NoKeyForAlgorithm`]
    /// when an allowed algorithm has no key, fetched or configured. Without a `jwks_url` it is
    /// `new`, so call this one whenever the configuration may name a URL.
    ///
    /// Reads the system clock; [`Verifier::from_config_with_clock`] takes another.
    pub async fn from_config(config: &VerifierConfig) -> Result<Self, KeyError> {
        Verifier::from_config_with_clock(config, crate::system_clock()).await
    }

    /// [`Verifier::from_config`] reading the time from `clock` (see
    /// [`Verifier::new_with_clock`]).
    pub async fn from_config_with_clock(
        config: &VerifierConfig,
        clock: SharedClock,
    ) -> Result<Self, KeyError> {
        let verifier = Verifier::new_with_clock(config, clock)?;
        if let Some(remote) = &verifier.remote {
            remote
                .refresh()
                .await
                .map_err(|reason| KeyError::JwksFetch {
                    url: remote.masked_url().to_owned(),
                    reason,
                })?;
            let fetched = remote.current();
            for alg in &verifier.algorithms {
                let mut all = verifier.keys.iter().chain(fetched.keys.iter());
                if !all.any(|k| k.algs.contains(alg)) {
                    return Err(KeyError::NoKeyForAlgorithm(*alg));
                }
            }
        }
        Ok(verifier)
    }

    /// Starts the task that keeps the `jwks_url` key set fresh on the current tokio runtime:
    /// a fetch every `jwks_refresh_secs`, and one soon after a token names an unknown `kid`,
    /// within the rate limit (see the [`jwks`](crate::jwks) module). It fetches at once if no
    /// fetch was attempted yet (a verifier made by [`Verifier::new`]).
    ///
    /// `None` when no `jwks_url` is configured, or when a refresher already runs for this
    /// verifier or one of its clones. The task stops when the handle is dropped or
    /// [stopped](JwksRefresher::stop), not when the verifier is dropped: keep the handle with
    /// the server and stop it at shutdown.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[must_use = "dropping the handle stops the refresher"]
    pub fn spawn_jwks_refresh(&self) -> Option<JwksRefresher> {
        self.remote.as_ref().and_then(RemoteJwks::spawn)
    }

    /// The state of the `jwks_url` key set, for a health endpoint; `None` without a URL.
    pub fn jwks_status(&self) -> Option<JwksStatus> {
        self.remote.as_ref().map(|remote| remote.status())
    }

    /// Fetches the `jwks_url` key set now, bypassing the schedule and the rate limit (for an
    /// operator's "reload keys"). A failure keeps the current keys, is recorded in
    /// [`Verifier::jwks_status`] and returned as [`KeyError::JwksFetch`];
    /// [`KeyError::InvalidConfig`] when no `jwks_url` is configured.
    pub async fn refresh_jwks(&self) -> Result<(), KeyError> {
        let remote = self
            .remote
            .as_ref()
            .ok_or_else(|| KeyError::InvalidConfig("no jwks_url is configured".into()))?;
        remote
            .refresh()
            .await
            .map_err(|reason| KeyError::JwksFetch {
                url: remote.masked_url().to_owned(),
                reason,
            })
    }

    /// Verifies `token` (the compact JWS, without any `Bearer ` prefix) against the current
    /// time (of the verifier's clock) and returns its claims.
    pub fn verify<E: DeserializeOwned>(&self, token: &str) -> Result<Claims<E>, VerifyError> {
        self.verify_at(token, self.clock.now_secs())
    }

    /// [`Verifier::verify`] at the given time (seconds since the epoch); the `jwks_url` key
    /// set's age (`jwks_max_stale_secs`) is judged at that time too.
    pub fn verify_at<E: DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Claims<E>, VerifyError> {
        let result = self.check(token, now);
        if let Err(e) = &result {
            // The error kind only: never token content.
            tracing::debug!(error = %e, "token rejected");
        }
        result
    }

    fn check<E: DeserializeOwned>(&self, token: &str, now: i64) -> Result<Claims<E>, VerifyError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::TooLarge);
        }
        // The one ArcSwap load of the request, when a JWKS URL is configured.
        let fetched = self.remote.as_ref().map(|remote| remote.current());
        let key_set = fetched.as_deref().map(|set| &set.cache_id);
        // Past `jwks_max_stale_secs` the fetched keys verify nothing, so no cached verdict
        // (which may rest on one of them) is used either.
        let fetched_expired = self.remote.as_ref().is_some_and(|r| r.expired_at(now));
        let cache_slots = if fetched_expired {
            0
        } else {
            self.verified_cache
        };
        let seen =
            crate::verified::lookup(&self.cache_id, key_set, cache_slots, token, |payload| {
                self.claims(payload, now)
            });
        if let Some(result) = seen {
            return result;
        }

        let mut parts = token.split('.');
        let (header_b64, payload_b64, signature_b64) =
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(h), Some(p), Some(s), None) => (h, p, s),
                _ => return Err(VerifyError::Malformed),
            };
        let signed_message = &token[..header_b64.len() + 1 + payload_b64.len()];

        // Header: the algorithm must be allowed before anything else is looked at.
        let header_json = decode_b64(header_b64)?;
        let header: JoseHeader<'_> =
            serde_json::from_slice(&header_json).map_err(|_| VerifyError::Malformed)?;
        let alg = match &header.alg {
            Some(Param::Str(alg)) => alg.as_ref(),
            _ => return Err(VerifyError::Malformed),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let alg = Algorithm::from_str(alg).map_err(|_| VerifyError::AlgorithmNotAllowed)?;
        if !self.algorithms.contains(&alg) {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        if header.crit.is_some() {
            return Err(VerifyError::UnsupportedCritical);
        }
        self.check_typ(&header.typ)?;
        if matches!(&header.b64, Some(p) if !matches!(p, Param::True)) {
            return Err(VerifyError::Malformed);
        }
        let kid = match &header.kid {
            None | Some(Param::Null) => None,
            Some(Param::Str(kid)) => Some(kid.as_ref()),
            Some(_) => return Err(VerifyError::Malformed),
        };
        // `jku`, `x5u`, `x5c`, `jwk`: deliberately ignored.

        // Both remaining parts must be base64url before any crypto runs; the payload's JSON
        // is only parsed once the signature holds.
        let payload = decode_b64(payload_b64)?;
        // Signature, with the configured key(s) for this algorithm and kid.
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| VerifyError::Malformed)?;
        let provider = CryptoProvider::try_get_default().ok_or(VerifyError::Unavailable)?;
        let fetched = fetched
            .as_deref()
            .map(|set| (&set.cache_id, set.keys.as_slice()));
        let (kid_unknown, candidates) = match self.keys_for(fetched, alg, kid, fetched_expired) {
            Ok(found) => found,
            Err(e) => {
                if kid.is_some() {
                    self.unknown_kid();
                }
                return Err(e);
            }
        };
        let mut verified = false;
        for (owner, index, key) in candidates {
            let ok = with_crypto(provider, owner, index, key, alg, |verifier| {
                verifier
                    .verify(signed_message.as_bytes(), &signature)
                    .is_ok()
            });
            if ok == Some(true) {
                verified = true;
                break;
            }
        }
        if !verified {
            if kid_unknown {
                self.unknown_kid();
            }
            return Err(VerifyError::InvalidSignature);
        }
        // Once per token: a cached token's payload passed this before it was kept.
        if other_kind(&payload)? {
            return Err(VerifyError::WrongType);
        }
        crate::verified::insert(&self.cache_id, key_set, cache_slots, token, &payload);
        self.claims(&payload, now)
    }

    /// The header `typ` against [`VerifierConfig::required_typ`], or, without one, against
    /// the types of an access token ([`ACCESS_TYPS`], or none).
    fn check_typ(&self, typ: &Option<Param<'_>>) -> Result<(), VerifyError> {
        let typ = match typ {
            None | Some(Param::Null) => None,
            Some(Param::Str(typ)) => Some(media_type(typ)),
            Some(_) => return Err(VerifyError::Malformed),
        };
        let accepted = match (&self.required_typ, typ) {
            (Some(required), Some(typ)) => typ.eq_ignore_ascii_case(required),
            (Some(_), None) => false,
            (None, None) => true,
            (None, Some(typ)) => ACCESS_TYPS.iter().any(|t| typ.eq_ignore_ascii_case(t)),
        };
        if accepted {
            Ok(())
        } else {
            Err(VerifyError::WrongType)
        }
    }

    /// The claims of a token whose signature holds, checked against `now` and the claim
    /// rules.
    fn claims<E: DeserializeOwned>(
        &self,
        payload: &[u8],
        now: i64,
    ) -> Result<Claims<E>, VerifyError> {
        let mut claims = match self.claims_direct::<E>(payload)? {
            Some(claims) => claims,
            None => self.claims_via_map::<E>(payload)?,
        };
        if let Some(name) = &self.family_claim {
            claims.fid = string_member(payload, name)?;
        }

        if let Some(exp) = claims.exp {
            if exp.saturating_add(self.leeway) <= now {
                return Err(VerifyError::Expired);
            }
        }
        if let Some(max) = self.max_lifetime {
            let Some(exp) = claims.exp else {
                return Err(VerifyError::MissingClaim("exp".into()));
            };
            // Without `iat` the token is as good as issued now. A covered token has
            // `iat <= cut-off`, so `exp - iat <= max` keeps it inside its revocation.
            let born = claims.iat.unwrap_or(now);
            if exp.saturating_sub(born) > max {
                return Err(VerifyError::LifetimeTooLong);
            }
        }
        let latest_start = now.saturating_add(self.leeway);
        if claims.nbf.is_some_and(|nbf| nbf > latest_start)
            || claims.iat.is_some_and(|iat| iat > latest_start)
        {
            return Err(VerifyError::NotYetValid);
        }
        if !self.issuer.is_empty() {
            match &claims.iss {
                None => return Err(VerifyError::MissingClaim("iss".into())),
                Some(iss) if !self.issuer.iter().any(|i| i == iss) => {
                    return Err(VerifyError::InvalidIssuer)
                }
                Some(_) => {}
            }
        }
        match (&claims.aud, self.audience.is_empty()) {
            (None, true) => {}
            (None, false) => return Err(VerifyError::MissingClaim("aud".into())),
            (Some(_), true) => return Err(VerifyError::InvalidAudience),
            (Some(aud), false) => {
                if !aud.iter().any(|a| self.audience.iter().any(|c| c == a)) {
                    return Err(VerifyError::InvalidAudience);
                }
            }
        }
        Ok(claims)
    }

    /// The claims from one parse straight into `Claims<E>`, with the same checks as
    /// [`Verifier::claims_via_map`]. `Ok(None)` when this path cannot decide alone: the
    /// parse failed (a duplicate name, where the lexically last member must win, or any
    /// other error, which the map path then classifies), or a required claim is not one
    /// of the registered ones that `Claims` holds.
    fn claims_direct<E: DeserializeOwned>(
        &self,
        payload: &[u8],
    ) -> Result<Option<Claims<E>>, VerifyError> {
        // Only a JSON object (a struct would also accept an array).
        if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Ok(None);
        }
        let Ok(claims) = serde_json::from_slice::<Claims<E>>(payload) else {
            return Ok(None);
        };
        let mut missing = None;
        for name in &self.required {
            let absent = match name.as_str() {
                "jti" => claims.jti.is_none(),
                "sub" => claims.sub.is_none(),
                "iat" => claims.iat.is_none(),
                "exp" => claims.exp.is_none(),
                "nbf" => claims.nbf.is_none(),
                "iss" => claims.iss.is_none(),
                "aud" => claims.aud.is_none(),
                "fid" => claims.fid.is_none(),
                "kind" => claims.kind.is_none(),
                _ => return Ok(None),
            };
            if absent && missing.is_none() {
                missing = Some(name);
            }
        }
        if claims.jti.as_deref() == Some("") {
            return Err(VerifyError::Malformed);
        }
        if let Some(name) = missing {
            return Err(VerifyError::MissingClaim(name.clone()));
        }
        Ok(Some(claims))
    }

    /// The claims through a JSON map (duplicate names: the lexically last wins), checked in
    /// this order: `jti` shape, required claims, then the types of the claims.
    fn claims_via_map<E: DeserializeOwned>(
        &self,
        payload: &[u8],
    ) -> Result<Claims<E>, VerifyError> {
        let payload = json_object(payload)?;
        match payload.get("jti") {
            None | Some(Value::Null) => {}
            Some(Value::String(jti)) if !jti.is_empty() => {}
            Some(_) => return Err(VerifyError::Malformed),
        }
        for name in &self.required {
            if matches!(payload.get(name.as_str()), None | Some(Value::Null)) {
                return Err(VerifyError::MissingClaim(name.clone()));
            }
        }
        serde_json::from_value(Value::Object(payload)).map_err(|_| VerifyError::Malformed)
    }

    /// A token named a `kid` that no key has: with a JWKS URL, ask the refresher for a fetch
    /// (it applies the rate limit). Without one, nothing to do.
    fn unknown_kid(&self) {
        if let Some(remote) = &self.remote {
            remote.request_refresh();
        }
    }

    /// The keys to try for `alg` (with their cache owner and index), among the configured
    /// ones and the `fetched` JWKS set: those with the token's `kid`; if none has it, the keys
    /// without a `kid` (secret, PEM files); with no `kid` at all, every key for the algorithm,
    /// if there are at most [`MAX_KEYS_PER_TOKEN`] ([`VerifyError::KidRequired`] otherwise).
    /// The keys of a `fetched_expired` set are never tried ([`VerifyError::StaleKeys`] when
    /// they were the only ones chosen). The flag says the token's `kid` named no key.
    #[allow(clippy::type_complexity)]
    fn keys_for<'a>(
        &'a self,
        fetched: Option<(&'a Arc<()>, &'a [Key])>,
        alg: Algorithm,
        kid: Option<&'a str>,
        fetched_expired: bool,
    ) -> Result<
        (
            bool,
            impl Iterator<Item = (&'a Arc<()>, usize, &'a Key)> + 'a,
        ),
        VerifyError,
    > {
        let own = (&self.cache_id, self.keys.as_slice());
        let over = move |fetched: Option<(&'a Arc<()>, &'a [Key])>| {
            [Some(own), fetched]
                .into_iter()
                .flatten()
                .flat_map(|(owner, keys)| {
                    keys.iter()
                        .enumerate()
                        .map(move |(index, key)| (owner, index, key))
                })
                .filter(move |(_, _, k)| k.algs.contains(&alg))
        };
        let named = |kid: &str| over(fetched).any(|(_, _, k)| k.kid.as_deref() == Some(kid));
        // Which keys: 0 = every usable key, 1 = those named by the kid, 2 = those without one.
        let which = match kid {
            None => 0,
            Some(kid) if named(kid) => 1,
            Some(_) => 2,
        };
        let chosen = move |(_, _, k): &(&'a Arc<()>, usize, &'a Key)| match which {
            0 => true,
            1 => k.kid.as_deref() == kid,
            _ => k.kid.is_none(),
        };
        let live = fetched.filter(|_| !fetched_expired);
        let tried = move || over(live).filter(chosen);
        // A few keys at most: counting them costs nothing next to one signature check.
        let count = tried().count();
        if count == 0 {
            let stale_only = fetched_expired && over(fetched).any(|c| chosen(&c));
            return Err(if stale_only {
                VerifyError::StaleKeys
            } else {
                VerifyError::UnknownKey
            });
        }
        if which == 0 && count > MAX_KEYS_PER_TOKEN {
            return Err(VerifyError::KidRequired);
        }
        Ok((which == 2, tried()))
    }
}

/// Runs `f` with the crypto verifier for key `index` of the key list identified by `owner`
/// (a verifier's own keys, or one fetched JWKS set) and `alg`, built once per thread and kept
/// in a small per-thread cache (building one costs an allocation and, for HMAC, two hash
/// blocks of key setup per request). `None` when the backend cannot build one for this key.
fn with_crypto<R>(
    provider: &CryptoProvider,
    owner_id: &Arc<()>,
    index: usize,
    key: &Key,
    alg: Algorithm,
    f: impl FnOnce(&dyn JwtVerifier) -> R,
) -> Option<R> {
    let owner = Arc::as_ptr(owner_id);
    CRYPTO_CACHE.with(|cache| {
        // Not re-entered: `f` only runs the backend's verify.
        let Ok(mut cache) = cache.try_borrow_mut() else {
            let verifier = (provider.verifier_factory)(&alg, &key.key).ok()?;
            return Some(f(verifier.as_ref()));
        };
        let pos = cache
            .iter()
            .position(|c| c.owner.as_ptr() == owner && c.index == index && c.alg == alg);
        let pos = match pos {
            Some(pos) => pos,
            None => {
                let verifier = (provider.verifier_factory)(&alg, &key.key).ok()?;
                // Entries of dropped verifiers go first, then the oldest.
                cache.retain(|c| c.owner.strong_count() > 0);
                if cache.len() >= CRYPTO_CACHE_MAX {
                    cache.remove(0);
                }
                cache.push(CachedCrypto {
                    owner: Arc::downgrade(owner_id),
                    index,
                    alg,
                    verifier,
                });
                cache.len() - 1
            }
        };
        Some(f(cache[pos].verifier.as_ref()))
    })
}

/// Most crypto verifiers one thread keeps (one per key and algorithm in use).
const CRYPTO_CACHE_MAX: usize = 16;

/// A crypto verifier built for one key of one [`Verifier`] (and its clones), or of one key
/// set fetched from its JWKS URL.
struct CachedCrypto {
    /// The key list's identity; dead once the verifier and its clones are dropped, or once
    /// the fetched set is replaced and no request uses it any more.
    owner: Weak<()>,
    index: usize,
    alg: Algorithm,
    verifier: Box<dyn JwtVerifier>,
}

thread_local! {
    /// Crypto verifiers are not `Send`, so each thread keeps its own.
    static CRYPTO_CACHE: RefCell<Vec<CachedCrypto>> = const { RefCell::new(Vec::new()) };
}

/// The JOSE header parameters the verifier reads. As for the claims, the lexically last of
/// duplicate names wins; other parameters are skipped (but must be valid JSON).
#[derive(Default)]
struct JoseHeader<'a> {
    alg: Option<Param<'a>>,
    crit: Option<Param<'a>>,
    b64: Option<Param<'a>>,
    kid: Option<Param<'a>>,
    typ: Option<Param<'a>>,
}

/// A header parameter's value, as far as the rules need it.
enum Param<'a> {
    Str(Cow<'a, str>),
    True,
    Null,
    Other,
}

impl<'de> serde::Deserialize<'de> for Param<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Param<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Param<'de>, E> {
                Ok(Param::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Param<'de>, E> {
                Ok(Param::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Param<'de>, E> {
                Ok(Param::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Param<'de>, E> {
                Ok(if v { Param::True } else { Param::Other })
            }
            fn visit_unit<E>(self) -> Result<Param<'de>, E> {
                Ok(Param::Null)
            }
            fn visit_none<E>(self) -> Result<Param<'de>, E> {
                Ok(Param::Null)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Param<'de>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Param<'de>, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::Deserialize<'de> for JoseHeader<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JoseHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<JoseHeader<'de>, A::Error> {
                let mut h = JoseHeader::default();
                while let Some(name) = a.next_key::<Param<'de>>()? {
                    let Param::Str(name) = name else {
                        a.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let slot = match name.as_ref() {
                        "alg" => &mut h.alg,
                        "crit" => &mut h.crit,
                        "b64" => &mut h.b64,
                        "kid" => &mut h.kid,
                        "typ" => &mut h.typ,
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(a.next_value::<Param<'de>>()?);
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

/// Whether `key` can verify `alg`: the same family and, for EC and Ed keys, the right curve
/// (decided here, since not every crypto backend checks it when a verifier is built).
fn key_fits(alg: Algorithm, key: &DecodingKey) -> bool {
    if alg.family() != key.family() {
        return false;
    }
    let point_len = key.try_get_as_bytes().map(<[u8]>::len);
    match alg {
        // SEC1 points, uncompressed or compressed.
        Algorithm::ES256 => matches!(point_len, Ok(65 | 33)),
        Algorithm::ES384 => matches!(point_len, Ok(97 | 49)),
        Algorithm::EdDSA => matches!(point_len, Ok(32)),
        _ => true,
    }
}

/// A non-empty base64url (no padding) part; anything else is `Malformed`.
fn decode_b64(part: &str) -> Result<Vec<u8>, VerifyError> {
    if part.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed)?;
    // JOSE header and claims are UTF-8 JSON; serde skips unknown members without checking
    // their encoding, so check it here for the whole segment.
    if std::str::from_utf8(&bytes).is_err() {
        return Err(VerifyError::Malformed);
    }
    Ok(bytes)
}

/// A JSON object (UTF-8); anything else is `Malformed`.
/// The string member `name` of the JSON object `bytes` (the last one when repeated, as in
/// the map path), without building the object. `None` when absent or `null`; a member of
/// another type is [`VerifyError::Malformed`].
fn string_member(bytes: &[u8], name: &str) -> Result<Option<String>, VerifyError> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

    struct Member<'n>(&'n str);

    impl<'de> Visitor<'de> for Member<'_> {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // `Param` borrows keys and values without escapes: no allocation per member.
            let mut found = None;
            while let Some(key) = map.next_key::<Param<'de>>()? {
                if matches!(&key, Param::Str(k) if k == self.0) {
                    found = match map.next_value::<Param<'de>>()? {
                        Param::Str(v) => Some(v.into_owned()),
                        Param::Null => None,
                        _ => return Err(serde::de::Error::custom("not a string")),
                    };
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    impl<'de> DeserializeSeed<'de> for Member<'_> {
        type Value = Option<String>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(bytes);
    Member(name)
        .deserialize(&mut de)
        .map_err(|_| VerifyError::Malformed)
}

/// Whether the payload (a JSON object) marks another kind of JWT than an access token: an
/// `events` claim (Security Event Tokens and OpenID back-channel logout tokens; RFC 8417 §4
/// asks JWT consumers to refuse it) or a `typ` claim in [`OTHER_KIND_CLAIMS`]. One pass,
/// without building the object; not an object is [`VerifyError::Malformed`].
fn other_kind(bytes: &[u8]) -> Result<bool, VerifyError> {
    use serde::de::{Deserializer, MapAccess, Visitor};

    struct Markers;

    impl<'de> Visitor<'de> for Markers {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut other = false;
            while let Some(key) = map.next_key::<Param<'de>>()? {
                match &key {
                    Param::Str(k) if k == "events" => {
                        other |= !matches!(map.next_value::<Param<'de>>()?, Param::Null);
                    }
                    Param::Str(k) if k == "typ" => {
                        if let Param::Str(typ) = map.next_value::<Param<'de>>()? {
                            other |= OTHER_KIND_CLAIMS
                                .iter()
                                .any(|t| typ.eq_ignore_ascii_case(t));
                        }
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(other)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(Markers)
        .map_err(|_| VerifyError::Malformed)
}

fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, VerifyError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VerifyError::Malformed),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A public key PEM: RSA (`PUBLIC KEY` or `RSA PUBLIC KEY`), EC or Ed25519.
fn load_pem(path: &Path) -> Result<DecodingKey, KeyError> {
    let pem = read_file(path)?;
    let bad = |reason: &str| KeyError::BadPem {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(&pem).map_err(|_| bad("not a text PEM file"))?;
    if text.contains("PRIVATE KEY-----") {
        return Err(bad("holds a private key; give the public key only"));
    }
    if !text.contains("-----BEGIN") {
        return Err(bad("no PEM block found"));
    }
    DecodingKey::from_rsa_pem(&pem)
        .or_else(|_| DecodingKey::from_ec_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|_| bad("not an RSA, EC (P-256/P-384) or Ed25519 public key"))
}

/// The usable signing keys of a JWKS document (a file's or a URL's bytes), with their `kid`s
/// and the algorithm their `alg` pins them to; `source` names the document in logs and key
/// origins. Symmetric (`oct`) keys are skipped unless `allow_symmetric`: a JWKS endpoint is
/// public, so an HMAC key published there would let anyone sign tokens. The error is the
/// reason, for [`KeyError::BadJwks`] or [`KeyError::JwksFetch`].
pub(crate) fn parse_jwks(
    bytes: &[u8],
    source: &str,
    allow_symmetric: bool,
) -> Result<Vec<LoadedKey>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({e})"))?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "no \"keys\" array".to_owned())?;
    let mut keys = Vec::new();
    let mut kids = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(entry.clone()) {
            Ok(jwk) => jwk,
            Err(e) => {
                tracing::warn!(jwks = %source, index = i, error = %e, "skipping unreadable JWKS key");
                continue;
            }
        };
        let kid = jwk.common.key_id.clone();
        if !usable_for_signatures(&jwk) {
            tracing::warn!(jwks = %source, index = i, kid = ?kid, "skipping JWKS key not meant for signatures or of an unsupported type");
            continue;
        }
        if !allow_symmetric && matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            tracing::warn!(jwks = %source, index = i, kid = ?kid, "skipping symmetric (oct) key published in a JWKS URL");
            continue;
        }
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|e| format!("key #{i} cannot be loaded ({e})"))?;
        // A key pinned to an algorithm (`alg`) is used with that algorithm only.
        let pinned = jwk
            .common
            .key_algorithm
            .and_then(|a| Algorithm::from_str(&a.to_string()).ok());
        if pinned.is_some_and(|p| p.family() != key.family()) {
            return Err(format!(
                "key #{i} has an \"alg\" that does not fit its key type"
            ));
        }
        if let Some(kid) = &kid {
            if !kids.insert(kid.clone()) {
                return Err(format!("duplicate kid {kid:?}"));
            }
        }
        keys.push(LoadedKey {
            kid,
            key,
            origin: format!("{source} key #{i}"),
            pinned,
        });
    }
    if keys.is_empty() {
        return Err("no usable signing key".into());
    }
    Ok(keys)
}

/// The loaded keys that can verify at least one of `algorithms`, each with the algorithms it
/// serves: its family, its pinned `alg`, and what the backend accepts for it (a P-384 key
/// cannot verify ES256, an Ed448 key nothing). The others are dropped with a warning.
pub(crate) fn usable_keys(
    provider: &CryptoProvider,
    algorithms: &[Algorithm],
    loaded: Vec<LoadedKey>,
) -> Vec<Key> {
    let mut keys = Vec::with_capacity(loaded.len());
    for LoadedKey {
        kid,
        key,
        origin,
        pinned,
    } in loaded
    {
        let algs: Vec<Algorithm> = algorithms
            .iter()
            .copied()
            .filter(|alg| {
                key_fits(*alg, &key)
                    && pinned.is_none_or(|p| p == *alg)
                    && (provider.verifier_factory)(alg, &key).is_ok()
            })
            .collect();
        if algs.is_empty() {
            tracing::warn!(key = %origin, "key can verify none of the allowed algorithms; it is unused");
            continue;
        }
        keys.push(Key {
            kid,
            algs,
            key,
            origin,
        });
    }
    keys
}

/// Whether a JWK may verify signatures: not marked for encryption, a supported key type, and an
/// `alg` (when present) that names a signature algorithm.
fn usable_for_signatures(jwk: &Jwk) -> bool {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return false;
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.iter().any(|op| matches!(op, KeyOperations::Verify)) {
            return false;
        }
    }
    if let Some(alg) = jwk.common.key_algorithm {
        if Algorithm::from_str(&alg.to_string()).is_err() {
            return false;
        }
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) | AlgorithmParameters::OctetKey(_) => true,
        AlgorithmParameters::EllipticCurve(p) => {
            matches!(p.curve, EllipticCurve::P256 | EllipticCurve::P384)
        }
        AlgorithmParameters::OctetKeyPair(p) => matches!(p.curve, EllipticCurve::Ed25519),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Verifier>();
    }

    #[test]
    fn default_config_round_trips_through_json() {
        let config = VerifierConfig::default();
        let json = serde_json::to_string(&config).expect("serialize");
        let back: VerifierConfig = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, config);
        assert!(serde_json::from_str::<VerifierConfig>(r#"{"secrett":"x"}"#).is_err());
    }

    #[cfg(not(feature = "jwks"))]
    #[test]
    fn jwks_url_needs_the_jwks_feature() {
        let config = VerifierConfig {
            algorithms: vec![Algorithm::RS256],
            jwks_url: Some("https://idp.example/jwks".into()),
            ..VerifierConfig::default()
        };
        match Verifier::new(&config) {
            Err(KeyError::InvalidConfig(reason)) => assert!(reason.contains("`jwks`"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
