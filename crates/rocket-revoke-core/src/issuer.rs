//! [`Issuer`]: mints access/refresh pairs, records them, and rotates refresh tokens with
//! reuse detection.

use crate::store::{Rotation, TokenRecord};
use crate::{Claims, Engine, NoExtra, Revocation, Scope, TokenKind, Verifier, VerifyError};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Issuer settings. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerConfig {
    /// Signing algorithm. _Default:_ `"HS256"`.
    pub algorithm: Algorithm,
    /// HMAC secret for HS*. _Default:_ none.
    pub secret: Option<String>,
    /// PEM private key file for RS*, PS*, ES* and EdDSA. _Default:_ none.
    pub private_key_pem: Option<PathBuf>,
    /// `kid` header to put on tokens. _Default:_ none.
    pub kid: Option<String>,
    /// `iss` claim. _Default:_ none.
    pub issuer: Option<String>,
    /// `aud` claim. _Default:_ none.
    pub audience: Option<String>,
    /// Access token lifetime in seconds. _Default:_ `900`.
    pub access_ttl: i64,
    /// Refresh token lifetime in seconds. _Default:_ `1209600` (14 days).
    pub refresh_ttl: i64,
    /// `typ` header of minted tokens, for a verifier with
    /// [`required_typ`](crate::VerifierConfig::required_typ) (refresh tokens are told apart
    /// by their `kind` claim). _Default:_ none (`JWT`).
    pub typ: Option<String>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::HS256,
            secret: None,
            private_key_pem: None,
            kid: None,
            issuer: None,
            audience: None,
            access_ttl: 900,
            refresh_ttl: 14 * 24 * 3600,
            typ: None,
        }
    }
}

impl std::fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("private_key_pem", &self.private_key_pem)
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("typ", &self.typ)
            .finish()
    }
}

/// A freshly minted pair, serialized as the OAuth token response. `Debug` shows the claims
/// (the `jti`s identify the tokens) but never the tokens themselves.
#[derive(Clone, PartialEq, Serialize)]
pub struct TokenPair {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Always `"Bearer"`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The access token's claims.
    #[serde(skip)]
    pub access: Claims,
    /// The refresh token's claims.
    #[serde(skip)]
    pub refresh: Claims,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("access", &self.access)
            .field("refresh", &self.refresh)
            .finish()
    }
}

/// Why a refresh was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The token did not verify.
    #[error("invalid refresh token: {0}")]
    Invalid(#[from] VerifyError),
    /// The token verified but is not a refresh token.
    #[error("not a refresh token")]
    NotRefresh,
    /// The token is revoked.
    #[error("refresh token revoked ({0})")]
    Revoked(Scope),
    /// The token had been spent before; its family is now revoked.
    #[error("refresh token reused; session revoked")]
    Reused,
    /// The registry does not know the token.
    #[error("unknown refresh token")]
    Unknown,
    /// The database failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// Why an [`Issuer`] could not be built: a start-up error, about the configuration, never
/// one of the run-time errors of minting or rotating ([`crate::Error`], [`RefreshError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// An HS* algorithm, and no `secret`.
    #[error("issuer: `secret` is required for HS* algorithms")]
    MissingSecret,
    /// An asymmetric algorithm, and no `private_key_pem`.
    #[error("issuer: `private_key_pem` is required for {0:?}")]
    MissingPrivateKey(Algorithm),
    /// `secret` is empty.
    #[error("issuer: `secret` is empty")]
    EmptySecret,
    /// The `private_key_pem` file could not be read.
    #[error("issuer: cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key does not parse as a key for the algorithm.
    #[error("issuer: unusable signing key: {0}")]
    Key(#[from] jsonwebtoken::errors::Error),
}

impl IssuerError {
    /// The setting at fault, as in `Rocket.toml`'s `[revoke]` table: `"secret"` or
    /// `"private_key_pem"`.
    pub fn key(&self) -> &'static str {
        match self {
            IssuerError::MissingSecret | IssuerError::EmptySecret => "secret",
            IssuerError::MissingPrivateKey(_) | IssuerError::Read { .. } => "private_key_pem",
            // Secrets fail as `EmptySecret`; only a PEM can fail to parse.
            IssuerError::Key(_) => "private_key_pem",
        }
    }
}

/// Mints tokens and rotates refresh tokens.
#[derive(Clone)]
pub struct Issuer {
    key: EncodingKey,
    config: IssuerConfig,
    engine: Engine,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Issuer")
            .field("algorithm", &self.config.algorithm)
            .field("kid", &self.config.kid)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Builds an issuer; fails when no key fits the algorithm.
    pub fn new(config: IssuerConfig, engine: Engine) -> Result<Self, IssuerError> {
        use Algorithm::*;
        let key = match config.algorithm {
            HS256 | HS384 | HS512 => {
                let secret = config.secret.as_deref().ok_or(IssuerError::MissingSecret)?;
                EncodingKey::from_secret(secret.as_bytes()).map_err(|_| IssuerError::EmptySecret)?
            }
            alg => {
                let path = config
                    .private_key_pem
                    .as_ref()
                    .ok_or(IssuerError::MissingPrivateKey(alg))?;
                let pem = std::fs::read(path).map_err(|source| IssuerError::Read {
                    path: path.clone(),
                    source,
                })?;
                let key = match alg {
                    RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
                        EncodingKey::from_rsa_pem(&pem)
                    }
                    ES256 | ES384 => EncodingKey::from_ec_pem(&pem),
                    _ => EncodingKey::from_ed_pem(&pem),
                };
                key?
            }
        };
        Ok(Self {
            key,
            config,
            engine,
        })
    }

    /// The settings.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// Mints a pair for `sub` in a new session family and records both tokens.
    pub async fn issue(&self, sub: &str, label: Option<&str>) -> crate::Result<TokenPair> {
        let fid = uuid::Uuid::new_v4().to_string();
        let (pair, records) = self.mint(sub, &fid, label)?;
        self.engine.store().register(&records).await?;
        Ok(pair)
    }

    /// Spends `refresh_token` and mints a new pair in the same family. A refresh token works
    /// once: presenting a spent one revokes its whole family and records a security event.
    pub async fn refresh(
        &self,
        verifier: &Verifier,
        refresh_token: &str,
    ) -> Result<TokenPair, RefreshError> {
        let claims: Claims<NoExtra> = verifier.verify_at(refresh_token, self.engine.now_secs())?;
        if claims.kind != Some(TokenKind::Refresh) {
            return Err(RefreshError::NotRefresh);
        }
        if let Some(scope) = self.engine.check(&claims.token_ref()) {
            return Err(RefreshError::Revoked(scope));
        }
        let (Some(jti), Some(sub)) = (claims.jti.as_deref(), claims.sub.as_deref()) else {
            return Err(RefreshError::Unknown);
        };
        let fid = claims
            .fid
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (pair, records) = self.mint(sub, &fid, None)?;
        let now = self.engine.now_secs();
        let on_reuse = Revocation {
            scope: Scope::Family,
            key: fid.clone(),
            issuer: None,
            cutoff: None,
            expires_at: Some(self.engine.bounds().issued_until(now)),
            reason: Some("refresh token reuse detected".into()),
            actor: Some("system".into()),
            revoked_at: now,
        };
        match self
            .engine
            .store()
            .rotate(jti, claims.iss.as_deref(), now, &records, &on_reuse)
            .await?
        {
            Rotation::Rotated => Ok(pair),
            Rotation::Reused { fid, events } => {
                tracing::warn!(
                    jti,
                    fid = fid.as_deref().unwrap_or(""),
                    "refresh token reuse detected; family revoked"
                );
                self.engine.apply_committed(&events).await?;
                Err(RefreshError::Reused)
            }
            Rotation::Unknown => Err(RefreshError::Unknown),
            // A revocation this instance has not synced yet: the database saw it inside the
            // rotation's transaction.
            Rotation::Revoked(scope) => Err(RefreshError::Revoked(scope)),
        }
    }

    fn mint(
        &self,
        sub: &str,
        fid: &str,
        label: Option<&str>,
    ) -> crate::Result<(TokenPair, Vec<TokenRecord>)> {
        // Cut-offs are whole seconds and inclusive: a token minted in the second of a standing
        // subject or global cut-off would be born revoked. Issue it in the next second
        // instead, so a login right after "log out everywhere" works.
        let set = self.engine.set();
        let standing = set.subject_cutoff(sub).max(set.global_cutoff());
        let now = match standing {
            Some(cutoff) => self.engine.now_secs().max(cutoff.saturating_add(1)),
            None => self.engine.now_secs(),
        };
        let make = |kind: TokenKind, ttl: i64| Claims {
            jti: Some(uuid::Uuid::new_v4().to_string()),
            sub: Some(sub.to_owned()),
            iat: Some(now),
            exp: Some(now.saturating_add(ttl)),
            nbf: None,
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone().map(crate::Audience::One),
            fid: Some(fid.to_owned()),
            kind: Some(kind),
            extra: NoExtra::default(),
        };
        let access = make(TokenKind::Access, self.config.access_ttl);
        let refresh = make(TokenKind::Refresh, self.config.refresh_ttl);
        let mut header = Header::new(self.config.algorithm);
        header.kid = self.config.kid.clone();
        if let Some(typ) = &self.config.typ {
            header.typ = Some(typ.clone());
        }
        let access_token = jsonwebtoken::encode(&header, &access, &self.key)?;
        let refresh_token = jsonwebtoken::encode(&header, &refresh, &self.key)?;
        let record = |c: &Claims, kind| TokenRecord {
            jti: c.jti.clone().unwrap_or_default(),
            sub: sub.to_owned(),
            fid: Some(fid.to_owned()),
            kind,
            iat: now,
            exp: c.exp.unwrap_or(now),
            label: label.map(str::to_owned),
        };
        let records = vec![
            record(&access, TokenKind::Access),
            record(&refresh, TokenKind::Refresh),
        ];
        Ok((
            TokenPair {
                access_token,
                refresh_token,
                token_type: "Bearer",
                expires_in: self.config.access_ttl,
                access,
                refresh,
            },
            records,
        ))
    }
}
