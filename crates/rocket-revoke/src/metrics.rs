//! Prometheus metrics: what the guards, the revocations and sync are doing. This module
//! holds the counters a [`Revoker`](crate::Revoker) keeps (a leaf: it imports only
//! [`AuthError`] from this crate); reading the live values and serving them is `scrape.rs`.
//!
//! Built on [`prometheus_client`] (the Prometheus project's OpenMetrics client). Every
//! [`Revoker`](crate::Revoker) owns one [`Metrics`], so several Rocket instances in one process (tests, for
//! one) never share counters, and nothing is global.
//!
//! The request path pays one relaxed atomic increment per check, plus one per rejection:
//! the per-reason counters are resolved once at start-up, so no label lookup or lock
//! happens per request. Everything read from the engine (set size, sync state, key sets)
//! is read when scraped, not kept up to date in the background.

use std::fmt;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rocket_revoke_core::{Scope, VerifyError};

use crate::error::AuthError;

/// Every rejection reason, in the order of [`reason_index`]; the `reason` label values.
const REASONS: [&str; 27] = [
    "missing",
    "ambiguous",
    "scheme",
    "malformed_header",
    "malformed",
    "invalid_signature",
    "expired",
    "not_yet_valid",
    "invalid_issuer",
    "invalid_audience",
    "missing_claim",
    "algorithm_not_allowed",
    "unknown_key",
    "too_large",
    "unsupported_critical",
    "kid_required",
    "signing_keys_stale",
    "lifetime_too_long",
    "wrong_type",
    "verification_unavailable",
    "refresh_token",
    "revoked_jti",
    "revoked_subject",
    "revoked_family",
    "revoked_global",
    "not_attached",
    "stale",
];

/// The `reason` label of a rejection (an index into [`REASONS`]).
fn reason_index(e: &AuthError) -> usize {
    match e {
        AuthError::Missing => 0,
        AuthError::Ambiguous => 1,
        AuthError::Scheme => 2,
        AuthError::MalformedHeader => 3,
        AuthError::Invalid(v) => match v {
            VerifyError::Malformed => 4,
            VerifyError::InvalidSignature => 5,
            VerifyError::Expired => 6,
            VerifyError::NotYetValid => 7,
            VerifyError::InvalidIssuer => 8,
            VerifyError::InvalidAudience => 9,
            VerifyError::MissingClaim(_) => 10,
            VerifyError::AlgorithmNotAllowed => 11,
            VerifyError::UnknownKey => 12,
            VerifyError::TooLarge => 13,
            VerifyError::UnsupportedCritical => 14,
            VerifyError::KidRequired => 15,
            VerifyError::StaleKeys => 16,
            VerifyError::LifetimeTooLong => 17,
            VerifyError::WrongType => 18,
            VerifyError::Unavailable => 19,
            // `VerifyError` is non-exhaustive: a future kind counts as a backend fault.
            _ => 19,
        },
        AuthError::RefreshToken => 20,
        AuthError::Revoked(scope) => 21 + scope_index(*scope),
        AuthError::NotAttached => 25,
        AuthError::Stale => 26,
    }
}

const SCOPES: [Scope; 4] = [Scope::Jti, Scope::Subject, Scope::Family, Scope::Global];

fn scope_index(scope: Scope) -> usize {
    match scope {
        Scope::Jti => 0,
        Scope::Subject => 1,
        Scope::Family => 2,
        Scope::Global => 3,
    }
}

/// The label set of the per-reason and per-scope families.
type Labels = Vec<(&'static str, &'static str)>;

/// Sync lag buckets, in seconds: from 1 ms (NOTIFY on a quiet PostgreSQL) to 30 s (a
/// database outage being caught up).
const LAG_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// The metrics of one [`Revoker`](crate::Revoker); render them with
/// [`metrics_route`](crate::metrics_route) or
/// [`Metrics::render`], or add them to the app's own registry with [`Metrics::register`].
///
/// | metric | type | labels |
/// |---|---|---|
/// | `revoke_checks_total` | counter | |
/// | `revoke_rejections_total` | counter | `reason` |
/// | `revoke_revocations_total` | counter | `scope` |
/// | `revoke_sync_lag_seconds` | histogram | |
/// | `revoke_sync_errors_total` | counter | |
/// | `revoke_sync_events_applied_total` | counter | |
/// | `revoke_sync_staleness_seconds` | gauge | |
/// | `revoke_sync_cursor` | gauge | |
/// | `revoke_sync_restarts_total` | counter | |
/// | `revoke_pruned_rows_total` | counter | `table` |
/// | `revoke_set_entries` | gauge | `scope` |
/// | `revoke_last_seen_dropped_total` | counter | |
/// | `revoke_jwks_keys` | gauge | |
/// | `revoke_jwks_refreshes_total` | counter | `outcome` |
///
/// The `revoke_jwks_*` metrics are present only when a JWKS URL is configured.
#[derive(Clone)]
pub struct Metrics {
    checks: Counter,
    rejections_family: Family<Labels, Counter>,
    rejections: Arc<[Counter]>,
    revocations_family: Family<Labels, Counter>,
    revocations: Arc<[Counter]>,
    sync_lag: Histogram,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("checks", &self.checks.get())
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh counters, every labelled series created at zero (so rates work from the first
    /// scrape).
    pub fn new() -> Self {
        let rejections_family = Family::<Labels, Counter>::default();
        let rejections = REASONS
            .iter()
            .map(|r| {
                rejections_family
                    .get_or_create(&vec![("reason", *r)])
                    .clone()
            })
            .collect();
        let revocations_family = Family::<Labels, Counter>::default();
        let revocations = SCOPES
            .iter()
            .map(|s| {
                revocations_family
                    .get_or_create(&vec![("scope", s.as_str())])
                    .clone()
            })
            .collect();
        Metrics {
            checks: Counter::default(),
            rejections_family,
            rejections,
            revocations_family,
            revocations,
            sync_lag: Histogram::new(LAG_BUCKETS),
        }
    }

    /// Counts one guard check.
    pub(crate) fn checked(&self) {
        self.checks.inc();
    }

    /// Counts one rejection.
    pub(crate) fn rejected(&self, e: &AuthError) {
        self.rejections[reason_index(e)].inc();
    }

    /// Counts revocations committed through this instance.
    pub(crate) fn revoked(&self, scope: Scope) {
        self.revocations[scope_index(scope)].inc();
    }

    /// Records how long an event took from being written to being applied here.
    pub(crate) fn sync_applied(&self, lag_ms: i64) {
        self.sync_lag.observe(lag_ms.max(0) as f64 / 1000.0);
    }

    /// Guard checks so far (accepted and rejected).
    pub fn checks(&self) -> u64 {
        self.checks.get()
    }

    /// Rejections so far with this `reason` label (see the table above); 0 for an unknown
    /// label.
    pub fn rejections(&self, reason: &str) -> u64 {
        REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.rejections[i].get())
    }

    /// Adds the counters and the histogram this instance keeps to `registry` (the values
    /// read from the engine at scrape time are added by [`Metrics::register`]).
    pub(crate) fn register_own(&self, registry: &mut Registry) {
        registry.register(
            "revoke_checks",
            "Bearer token checks by the request guards",
            self.checks.clone(),
        );
        registry.register(
            "revoke_rejections",
            "Requests the guards rejected, by reason",
            self.rejections_family.clone(),
        );
        registry.register(
            "revoke_revocations",
            "Revocations committed through this instance, by scope",
            self.revocations_family.clone(),
        );
        registry.register(
            "revoke_sync_lag_seconds",
            "Delay between a revocation event being written and being applied here",
            self.sync_lag.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_has_a_label_of_its_own() {
        let verify = [
            VerifyError::Malformed,
            VerifyError::InvalidSignature,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::InvalidIssuer,
            VerifyError::InvalidAudience,
            VerifyError::MissingClaim("jti".into()),
            VerifyError::AlgorithmNotAllowed,
            VerifyError::UnknownKey,
            VerifyError::KidRequired,
            VerifyError::StaleKeys,
            VerifyError::TooLarge,
            VerifyError::UnsupportedCritical,
            VerifyError::LifetimeTooLong,
            VerifyError::WrongType,
            VerifyError::Unavailable,
        ];
        let mut errors = vec![
            AuthError::Missing,
            AuthError::Ambiguous,
            AuthError::Scheme,
            AuthError::MalformedHeader,
            AuthError::RefreshToken,
            AuthError::NotAttached,
            AuthError::Stale,
        ];
        errors.extend(verify.into_iter().map(AuthError::Invalid));
        errors.extend(
            [Scope::Jti, Scope::Subject, Scope::Family, Scope::Global].map(AuthError::Revoked),
        );
        let mut labels: Vec<&str> = errors.iter().map(|e| REASONS[reason_index(e)]).collect();
        // A client's bad token is never counted as the server's fault.
        for (e, label) in errors.iter().zip(&labels) {
            let server_fault = matches!(e, AuthError::Invalid(VerifyError::Unavailable));
            assert_eq!(*label == "verification_unavailable", server_fault, "{e:?}");
        }
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), errors.len(), "two rejections share a label");
        assert_eq!(labels.len(), REASONS.len(), "a label no rejection uses");
    }
}
