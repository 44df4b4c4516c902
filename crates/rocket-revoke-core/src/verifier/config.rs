//! [`VerifierConfig`], the settings a [`Verifier`](super::Verifier) is built from, and the
//! [`TokenProfile`] it holds tokens to.

use std::fmt;
use std::path::PathBuf;

use jsonwebtoken::Algorithm;

use crate::jwks::JwksSettings;

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
    /// fresh by a background refresher: see [`JwksRefresher`](crate::JwksRefresher) for the refresh
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
    ///
    /// [`JwksStatus::stale`]: crate::JwksStatus::stale
    pub jwks_max_age_secs: u64,
    /// Age of the `jwks_url` key set past which its keys verify nothing: tokens signed by
    /// them get [`VerifyError::StaleKeys`] until a fetch succeeds. At least
    /// `jwks_max_age_secs`. Default 86400 (a day): long enough to ride out a provider outage
    /// of a day without locking every user out, short enough that a key the provider has
    /// withdrawn (rotated out, or compromised) stops being trusted within a day.
    ///
    /// [`VerifyError::StaleKeys`]: super::VerifyError::StaleKeys
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
    ///
    /// [`Claims::fid`]: crate::Claims::fid
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
///
/// [`Verifier`]: super::Verifier
/// [`VerifyError::WrongType`]: super::VerifyError::WrongType
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
pub(super) const RFC9068_CLAIMS: [&str; 7] =
    ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"];

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

impl VerifierConfig {
    /// The `jwks_*` settings, for the JWKS refresher of `jwks_url` (which takes them as
    /// values so that it does not depend on this module).
    pub(crate) fn jwks_settings(&self) -> JwksSettings {
        JwksSettings {
            jwks_refresh_secs: self.jwks_refresh_secs,
            jwks_min_refresh_interval_secs: self.jwks_min_refresh_interval_secs,
            jwks_timeout_secs: self.jwks_timeout_secs,
            jwks_allow_insecure_http: self.jwks_allow_insecure_http,
            jwks_max_age_secs: self.jwks_max_age_secs,
            jwks_max_stale_secs: self.jwks_max_stale_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_round_trips_through_json() {
        let config = VerifierConfig::default();
        let json = serde_json::to_string(&config).expect("serialize");
        let back: VerifierConfig = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, config);
        assert!(serde_json::from_str::<VerifierConfig>(r#"{"secrett":"x"}"#).is_err());
    }
}
