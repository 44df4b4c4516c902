//! Prometheus metrics: what the guards, the revocations and sync are doing.
//!
//! Built on [`prometheus_client`] (the Prometheus project's OpenMetrics client). Every
//! [`Revoker`] owns one [`Metrics`], so several Rocket instances in one process (tests, for
//! one) never share counters, and nothing is global.
//!
//! The request path pays one relaxed atomic increment per check, plus one per rejection:
//! the per-reason counters are resolved once at start-up, so no label lookup or lock
//! happens per request. Everything read from the engine (set size, sync state, key sets)
//! is read when scraped, not kept up to date in the background.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rocket::http::ContentType;
use rocket::response::{self, Responder};
use rocket::{get, Request, Route};
use rocket_revoke_core::{Scope, VerifyError};

use crate::{AuthError, Revoker};

/// Every rejection reason, in the order of [`reason_index`]; the `reason` label values.
const REASONS: [&str; 23] = [
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
            // `VerifyError` is non-exhaustive: a future kind counts as a backend fault.
            _ => 15,
        },
        AuthError::RefreshToken => 16,
        AuthError::Revoked(scope) => 17 + scope_index(*scope),
        AuthError::NotAttached => 21,
        AuthError::Stale => 22,
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

/// The metrics of one [`Revoker`]; render them with [`metrics_route`] or
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

    /// Adds this instance's metrics to `registry`, next to the app's own; `revoker`
    /// provides the values read at scrape time.
    pub fn register(&self, registry: &mut Registry, revoker: &Revoker) {
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
        registry.register_collector(Box::new(Live(revoker.clone())));
    }

    /// The metrics in the OpenMetrics text format (what Prometheus scrapes).
    pub fn render(&self, revoker: &Revoker) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry, revoker);
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// Values read from the engine at scrape time.
struct Live(Revoker);

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Live")
    }
}

fn gauge<T>(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: T) -> fmt::Result
where
    ConstGauge<T>: EncodeMetric,
{
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let revoker = &self.0;
        let status = revoker.status();
        counter(
            &mut encoder,
            "revoke_sync_errors",
            "Failed reads of the revocation event log",
            status.errors,
        )?;
        counter(
            &mut encoder,
            "revoke_sync_events_applied",
            "Revocation events applied to this instance's set",
            status.applied,
        )?;
        counter(
            &mut encoder,
            "revoke_sync_restarts",
            "Times the sync task ended or panicked and was restarted",
            status.restarts,
        )?;
        let staleness = revoker
            .engine()
            .staleness_ms()
            .map_or(f64::NAN, |ms| ms as f64 / 1000.0);
        gauge(
            &mut encoder,
            "revoke_sync_staleness_seconds",
            "Time since the last successful read of the database (NaN before the first)",
            staleness,
        )?;
        gauge(
            &mut encoder,
            "revoke_sync_cursor",
            "Highest event id applied to this instance's set",
            status.cursor,
        )?;

        let pruned = revoker.engine().pruned();
        let rows = prometheus_client::metrics::counter::ConstCounter::new(0_u64);
        let mut family = encoder.encode_descriptor(
            "revoke_pruned_rows",
            "Database rows removed by this instance's scheduled prunes, by table",
            None,
            rows.metric_type(),
        )?;
        for (table, n) in [
            ("revocations", pruned.revocations),
            ("tokens", pruned.tokens),
            ("events", pruned.events),
        ] {
            let labels = [("table", table)];
            prometheus_client::metrics::counter::ConstCounter::new(n)
                .encode(family.encode_family(&labels)?)?;
        }

        let counts = revoker.engine().set().len();
        let entries = ConstGauge::new(0_i64);
        let mut family = encoder.encode_descriptor(
            "revoke_set_entries",
            "Entries in the in-memory revocation set, by scope",
            None,
            entries.metric_type(),
        )?;
        for (scope, n) in [
            ("jti", counts.jtis),
            ("subject", counts.subjects),
            ("family", counts.families),
            ("global", usize::from(counts.global)),
        ] {
            let labels = [("scope", scope)];
            ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX))
                .encode(family.encode_family(&labels)?)?;
        }
        counter(
            &mut encoder,
            "revoke_last_seen_dropped",
            "Last-seen sightings dropped because the queue was full",
            revoker.last_seen_dropped(),
        )?;

        if let Some(jwks) = revoker.verifier().jwks_status() {
            gauge(
                &mut encoder,
                "revoke_jwks_keys",
                "Keys in the JWKS key set in use",
                i64::try_from(jwks.keys).unwrap_or(i64::MAX),
            )?;
            let c = ConstCounter::new(0_u64);
            let mut family = encoder.encode_descriptor(
                "revoke_jwks_refreshes",
                "JWKS fetches, by outcome",
                None,
                c.metric_type(),
            )?;
            for (outcome, n) in [("ok", jwks.refreshes), ("error", jwks.failures)] {
                ConstCounter::new(n).encode(family.encode_family(&[("outcome", outcome)])?)?;
            }
        }
        Ok(())
    }
}

/// The metrics route, to mount where your scraper looks (`.mount("/", metrics_route())`
/// serves `GET /metrics`).
///
/// It answers every caller: mount it on a path your proxy keeps internal, or wrap your own
/// guarded route around [`Metrics::render`].
///
/// ```rust,no_run
/// # use rocket::launch;
/// # use rocket_db_pools::{sqlx, Database};
/// # #[derive(Database)] #[database("revoke")] struct Db(sqlx::SqlitePool);
/// #[launch]
/// fn rocket() -> _ {
///     rocket::build()
///         .attach(Db::init())
///         .attach(rocket_revoke::Revoke::<Db>::fairing())
///         .mount("/", rocket_revoke::metrics_route())
/// }
/// ```
pub fn metrics_route() -> Vec<Route> {
    rocket::routes![metrics]
}

/// The OpenMetrics text of this instance.
struct OpenMetrics(String);

impl<'r> Responder<'r, 'static> for OpenMetrics {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let content_type = ContentType::new("application", "openmetrics-text")
            .with_params([("version", "1.0.0"), ("charset", "utf-8")]);
        (content_type, self.0).respond_to(req)
    }
}

#[get("/metrics")]
fn metrics(revoker: Revoker) -> OpenMetrics {
    OpenMetrics(revoker.metrics().render(&revoker))
}
