//! Token verification: signature, algorithm allow-list, key selection and claim checks.
//!
//! The rules are on [`Verifier`].

mod checks;
mod config;
mod crypto;
mod error;
mod header;

use std::str::FromStr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::de::DeserializeOwned;

pub use self::config::{TokenProfile, VerifierConfig};
pub use self::error::VerifyError;
use crate::keys::KeyError;

use self::checks::other_kind;
use self::config::RFC9068_CLAIMS;
use self::crypto::with_crypto;
use self::header::{decode_b64, media_type, JoseHeader, Param, ACCESS_TYPS};
use crate::claims::Claims;
use crate::clock::SharedClock;
use crate::jwks::{JwksRefresher, JwksStatus, RemoteJwks};
use crate::keys::{load_configured, usable_keys, Key};

/// The longest token [`Verifier::verify`] looks at, in bytes. Longer input is rejected with
/// [`VerifyError::TooLarge`] before any decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The most keys a token without `kid` is tried against: with more usable keys for its
/// algorithm (configured and fetched together) it is refused with
/// [`VerifyError::KidRequired`] instead, so a stream of kid-less tokens cannot cost one
/// signature check per published key. Four covers a provider's current key plus the
/// previous and next ones of a rotation (Auth0, Keycloak and Google publish two or three);
/// providers that publish more (Microsoft Entra) put a `kid` in every token. At most this
/// many configured keys without a `kid` (the secret, PEM files, kid-less JWKS file keys) may
/// serve one algorithm, or start-up fails.
pub const MAX_KEYS_PER_TOKEN: usize = 4;

/// Verifies tokens: signature, algorithm allow-list, key selection and claim checks.
///
/// The [`Verifier`] wraps `jsonwebtoken`'s crypto providers but parses the token itself, so
/// that every rule below is ours and tested here:
///
/// - the token is at most [`MAX_TOKEN_LEN`] bytes, checked before anything is decoded;
/// - `alg` must name one of the configured algorithms; `none` (any letter case) never is one;
/// - the key comes from configuration only (a secret, PEM files, a JWKS file, or the key set
///   of the configured `jwks_url`, see [`JwksRefresher`](crate::JwksRefresher)): `jku`, `x5u`, `x5c` and `jwk` header
///   values are ignored, never fetched; a key is only used with the algorithm family it was loaded for,
///   so an HMAC secret can never be confused with an RSA public key;
/// - a `crit` header is rejected (no JWS extension is understood);
/// - the signature is checked before any claim is looked at;
/// - `exp`, `nbf` (and a future `iat`) are checked with the configured leeway; `iss`/`aud`
///   when configured; `required_claims` must be present;
/// - a token whose signature already verified on this thread, for this verifier and under
///   its current JWKS key set, skips the header, base64 and signature steps (their outcome
///   depends on nothing else); the claim checks above run on every call. See
///   [`VerifierConfig::verified_cache`].
///
/// Nothing here logs token contents.
///
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
            return Err(KeyError::InvalidConfig {
                key: "family_claim",
                reason: "family_claim is empty".into(),
            });
        }
        if config.required_claims.iter().any(|c| c.is_empty()) {
            return Err(KeyError::InvalidConfig {
                key: "required_claims",
                reason: "required_claims holds an empty name".into(),
            });
        }
        let required_typ = match config.required_typ.as_deref().map(str::trim) {
            Some("") => {
                return Err(KeyError::InvalidConfig {
                    key: "required_typ",
                    reason: "required_typ is empty (unset it to accept JWT and at+jwt)".into(),
                })
            }
            Some(typ) => Some(media_type(typ).to_ascii_lowercase()),
            None => None,
        };
        let mut required = config.required_claims.clone();
        let required_typ = match config.profile {
            TokenProfile::Jwt => required_typ,
            TokenProfile::Rfc9068 => {
                if required_typ.as_deref().is_some_and(|t| t != "at+jwt") {
                    return Err(KeyError::InvalidConfig {
                        key: "profile",
                        reason: "profile \"rfc9068\" requires typ at+jwt: unset required_typ"
                            .into(),
                    });
                }
                // RFC 9068 §4: the resource server checks `iss` and `aud` against its own.
                if config.issuer.is_empty() || config.audience.is_empty() {
                    return Err(KeyError::InvalidConfig {
                        key: "profile",
                        reason: "profile \"rfc9068\" needs `issuer` and `audience` (RFC 9068 §4)"
                            .into(),
                    });
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
                &config.jwks_settings(),
                &algorithms,
                clock.clone(),
            )?)),
            None => None,
        };

        let loaded = load_configured(
            config.secret.as_deref(),
            &config.public_key_pem,
            config.jwks_file.as_deref(),
        )?;
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
                return Err(KeyError::InvalidConfig {
                    key: "public_key_pem",
                    reason: format!(
                    "public_key_pem: {kidless} keys without a kid can verify {alg:?}, but a token without kid is tried against at most {MAX_KEYS_PER_TOKEN}; give the keys kids in a jwks_file"
                ),
                });
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
            remote.fetch_now().await?;
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
    /// within the rate limit (see [`JwksRefresher`](crate::JwksRefresher)). It fetches at once if no
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
            .ok_or_else(|| KeyError::InvalidConfig {
                key: "jwks_url",
                reason: "no jwks_url is configured".into(),
            })?;
        remote.fetch_now().await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Verifier>();
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
            Err(KeyError::InvalidConfig { reason, .. }) => {
                assert!(reason.contains("`jwks`"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
