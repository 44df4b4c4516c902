//! Rows as the queries return them, and what they decode to.

use super::{RevocationInfo, TokenInfo, TokenRecord, TokenStatus};
use crate::types::issuer_from_column;
use crate::{Error, Event, Result};
use std::fmt;

/// An event row as `sql::EVENT_COLUMNS` lists it.
#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    id: i64,
    at_ms: i64,
    kind: String,
    scope: String,
    key: String,
    cutoff: Option<i64>,
    expires_at: Option<i64>,
    reason: Option<String>,
    actor: Option<String>,
    iss: String,
}

impl TryFrom<EventRow> for Event {
    type Error = Error;

    fn try_from(r: EventRow) -> Result<Event> {
        Ok(Event {
            id: r.id,
            at_ms: r.at_ms,
            kind: r.kind.parse().map_err(corrupt)?,
            scope: r.scope.parse().map_err(corrupt)?,
            key: r.key,
            issuer: issuer_from_column(r.iss),
            cutoff: r.cutoff,
            expires_at: r.expires_at,
            reason: r.reason,
            actor: r.actor,
        })
    }
}

/// A registry row with its status columns, as `sql::token_select` lists it.
#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    jti: String,
    sub: String,
    fid: Option<String>,
    kind: String,
    iat: i64,
    exp: i64,
    label: Option<String>,
    last_seen: Option<i64>,
    spent_at: Option<i64>,
    r_scope: Option<String>,
    r_at: Option<i64>,
    r_reason: Option<String>,
    r_actor: Option<String>,
    expired_flag: bool,
}

impl TryFrom<TokenRow> for TokenInfo {
    type Error = Error;

    fn try_from(r: TokenRow) -> Result<TokenInfo> {
        let revocation = match r.r_scope {
            Some(scope) => Some(RevocationInfo {
                scope: scope.parse().map_err(corrupt)?,
                revoked_at: r
                    .r_at
                    .ok_or_else(|| corrupt("a revocation row without `revoked_at`"))?,
                reason: r.r_reason,
                actor: r.r_actor,
            }),
            None => None,
        };
        let status = if revocation.is_some() {
            TokenStatus::Revoked
        } else if r.expired_flag {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        };
        Ok(TokenInfo {
            token: TokenRecord {
                jti: r.jti,
                sub: r.sub,
                fid: r.fid,
                kind: r.kind.parse().map_err(corrupt)?,
                iat: r.iat,
                exp: r.exp,
                label: r.label,
            },
            last_seen: r.last_seen,
            spent_at: r.spent_at,
            status,
            revocation,
        })
    }
}

/// A column that does not parse: the database holds what no version of this crate writes.
pub(super) fn corrupt(e: impl fmt::Display) -> Error {
    Error::Corrupt(e.to_string())
}
