//! Scraping the [`Metrics`]: the values read from the engine when scraped (a
//! `prometheus_client` collector on a [`Revoker`]), the OpenMetrics text, and the
//! `/metrics` route ([`metrics_route`]).
//!
//! Apart from `metrics.rs` because it needs the [`Revoker`], which owns a [`Metrics`].

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use rocket::http::ContentType;
use rocket::response::{self, Responder};
use rocket::{get, Request, Route};

use crate::metrics::Metrics;
use crate::revoker::Revoker;

impl Metrics {
    /// Adds this instance's metrics to `registry`, next to the app's own; `revoker`
    /// provides the values read at scrape time.
    pub fn register(&self, registry: &mut Registry, revoker: &Revoker) {
        self.register_own(registry);
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
