//! Verification keys as the configuration names them: the HMAC secret, PEM files and JWKS
//! documents (a `jwks_file`, or a body fetched from a `jwks_url`), and [`KeyError`], the
//! start-up error when they do not fit what the configuration allows.
//!
//! A leaf module: both the [`Verifier`](crate::Verifier) and the JWKS refresher
//! ([`crate::jwks`]) load keys through it, so neither has to import the other for them.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// HMAC secrets shorter than this many bytes are accepted with a warning (RFC 7518 §3.2 asks
/// for at least the hash size: 32 bytes for HS256).
const MIN_SECRET_LEN: usize = 32;

/// A start-up error: the configuration names no usable key for what it allows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// `algorithms` is empty.
    #[error("no algorithms configured")]
    NoAlgorithms,
    /// A verifier setting is invalid; `key` names it (as in `Rocket.toml`'s `[revoke]`
    /// table, e.g. `"jwks_max_age_secs"`), so a front end can point at it without parsing
    /// `reason`.
    #[error("invalid verifier configuration: {reason}")]
    InvalidConfig {
        /// The setting at fault.
        key: &'static str,
        /// What is wrong with it, starting with the setting's name.
        reason: String,
    },
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
    /// The key material, for the crypto backend.
    pub(crate) key: DecodingKey,
    /// Where it came from, for `Debug` and logs ("secret", a path, a kid).
    pub(crate) origin: String,
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

/// The keys the configuration names, before they are matched with the allowed algorithms:
/// the HMAC `secret`, each of the `public_key_pem` files, then the keys of the `jwks_file`.
pub(crate) fn load_configured(
    secret: Option<&str>,
    public_key_pem: &[PathBuf],
    jwks_file: Option<&Path>,
) -> Result<Vec<LoadedKey>, KeyError> {
    let mut loaded: Vec<LoadedKey> = Vec::new();
    if let Some(secret) = secret {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        if secret.len() < MIN_SECRET_LEN {
            tracing::warn!(
                len = secret.len(),
                "the HMAC secret is shorter than {MIN_SECRET_LEN} bytes; use a longer random secret"
            );
        }
        let key = DecodingKey::from_secret(secret.as_bytes()).map_err(|_| KeyError::EmptySecret)?;
        loaded.push(LoadedKey {
            kid: None,
            key,
            origin: "secret".into(),
            pinned: None,
        });
    }
    for path in public_key_pem {
        let key = load_pem(path)?;
        loaded.push(LoadedKey {
            kid: None,
            key,
            origin: path.display().to_string(),
            pinned: None,
        });
    }
    if let Some(path) = jwks_file {
        let bytes = read_file(path)?;
        let source = path.display().to_string();
        let jwks = parse_jwks(&bytes, &source, true).map_err(|reason| KeyError::BadJwks {
            path: path.to_owned(),
            reason,
        })?;
        loaded.extend(jwks);
    }
    Ok(loaded)
}

/// The bytes of a key file; a failure names the file.
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
