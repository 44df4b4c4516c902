//! Plain data shared by the set, the store, sync and the issuer.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a revocation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One token, by its `jti`.
    Jti,
    /// Every token of a subject issued at or before a cut-off ("log out everywhere").
    Subject,
    /// Every token of one login session (`fid`), including rotated refresh tokens.
    Family,
    /// Every token issued at or before a cut-off (the emergency switch).
    Global,
}

impl Scope {
    /// All scopes, in the order `check` tests them.
    pub const ALL: [Scope; 4] = [Scope::Global, Scope::Subject, Scope::Family, Scope::Jti];

    /// The lowercase name used in the database, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Jti => "jti",
            Scope::Subject => "subject",
            Scope::Family => "family",
            Scope::Global => "global",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a string that names no [`Scope`] or [`TokenKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {value:?}")]
pub struct ParseNameError {
    what: &'static str,
    value: String,
}

impl FromStr for Scope {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jti" => Ok(Scope::Jti),
            "subject" | "sub" => Ok(Scope::Subject),
            "family" | "fid" => Ok(Scope::Family),
            "global" => Ok(Scope::Global),
            _ => Err(ParseNameError {
                what: "scope",
                value: s.to_owned(),
            }),
        }
    }
}

/// The role of a token in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A short-lived access token, presented on every request.
    Access,
    /// A refresh token: spent exactly once to get a new pair.
    Refresh,
    /// A token minted by someone else (an identity provider) and first seen by a guard.
    External,
}

impl TokenKind {
    /// The lowercase name used in the database, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::External => "external",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenKind {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "access" => Ok(TokenKind::Access),
            "refresh" => Ok(TokenKind::Refresh),
            "external" => Ok(TokenKind::External),
            _ => Err(ParseNameError {
                what: "token kind",
                value: s.to_owned(),
            }),
        }
    }
}

/// The parts of a token the revocation set looks at. Borrowed, so a check allocates nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenRef<'a> {
    /// The token's `jti`.
    pub jti: Option<&'a str>,
    /// The token's `sub`.
    pub sub: Option<&'a str>,
    /// The token's session family (`fid`).
    pub fid: Option<&'a str>,
    /// The token's `iat` in seconds since the epoch. A token without one is treated as issued
    /// before any cut-off (fail closed).
    pub iat: Option<i64>,
    /// The token's `iss`: revocations scoped to an issuer ([`Revocation::issuer`]) apply only
    /// to tokens that carry it; unscoped ones apply whatever it is.
    pub iss: Option<&'a str>,
}

/// One revocation as stored in the database and applied to the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// What it applies to.
    pub scope: Scope,
    /// The jti, subject or family id; empty for [`Scope::Global`].
    pub key: String,
    /// The issuer (`iss`) it is scoped to: it applies only to tokens from that issuer, so
    /// subject "42" at one identity provider is not subject "42" at another. `None` (stored
    /// as an empty string) applies to tokens of every issuer, as every revocation did before
    /// issuer scopes existed; a single-issuer app needs nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// For [`Scope::Subject`] and [`Scope::Global`]: tokens with `iat <= cutoff` are revoked.
    pub cutoff: Option<i64>,
    /// When the entry may be pruned (seconds since the epoch); `None` keeps it forever.
    pub expires_at: Option<i64>,
    /// Why (free text from the operator or the app).
    pub reason: Option<String>,
    /// Who (an operator name, a service, `"system"` for reuse detection).
    pub actor: Option<String>,
    /// When it was made, seconds since the epoch.
    pub revoked_at: i64,
}

/// What an event in the log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A revocation was made (or moved forward).
    Revoke,
    /// A revocation was lifted.
    Restore,
    /// A spent refresh token was presented again; its family was revoked in the same transaction.
    ReuseDetected,
}

impl EventKind {
    /// The snake_case name used in the database and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Revoke => "revoke",
            EventKind::Restore => "restore",
            EventKind::ReuseDetected => "reuse_detected",
        }
    }
}

impl FromStr for EventKind {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "revoke" => Ok(EventKind::Revoke),
            "restore" => Ok(EventKind::Restore),
            "reuse_detected" => Ok(EventKind::ReuseDetected),
            _ => Err(ParseNameError {
                what: "event kind",
                value: s.to_owned(),
            }),
        }
    }
}

/// One row of the append-only event log that sync reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Sequence id; readers keep a cursor of the highest applied id.
    pub id: i64,
    /// When it was written, milliseconds since the epoch.
    pub at_ms: i64,
    /// What happened.
    pub kind: EventKind,
    /// The scope it touched.
    pub scope: Scope,
    /// The jti, subject or family id; empty for global.
    pub key: String,
    /// The issuer the revocation is scoped to ([`Revocation::issuer`]); `None` for every
    /// issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The cut-off for subject and global revocations.
    pub cutoff: Option<i64>,
    /// The revocation's expiry.
    pub expires_at: Option<i64>,
    /// Why.
    pub reason: Option<String>,
    /// Who.
    pub actor: Option<String>,
}

impl Event {
    /// The revocation this event asserts, for a [`EventKind::Revoke`] event.
    pub fn as_revocation(&self) -> Option<Revocation> {
        (self.kind == EventKind::Revoke).then(|| Revocation {
            scope: self.scope,
            key: self.key.clone(),
            issuer: self.issuer.clone(),
            cutoff: self.cutoff,
            expires_at: self.expires_at,
            reason: self.reason.clone(),
            actor: self.actor.clone(),
            revoked_at: self.at_ms.div_euclid(1000),
        })
    }
}

/// The database's spelling of an issuer scope: `""` for none.
pub(crate) fn issuer_column(issuer: Option<&str>) -> &str {
    issuer.unwrap_or_default()
}

/// An issuer scope as read from the database: `""` is none.
pub(crate) fn issuer_from_column(column: String) -> Option<String> {
    (!column.is_empty()).then_some(column)
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
