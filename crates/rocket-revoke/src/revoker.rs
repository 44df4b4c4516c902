//! [`Revoker`]: the managed handle on the engine, verifier and issuer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Phase, Rocket, Sentinel};
use rocket_revoke_core::store::Store;
use rocket_revoke_core::SyncStatus;
use rocket_revoke_core::{
    Claims, Engine, Event, Issuer, RevokeRequest, Scope, TokenKind, TokenPair, Verifier,
};
use rocket_revoke_core::{JwksRefresher, JwksStatus};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::RevokeConfig;
use crate::error::{AuthError, Error};
use crate::last_seen::LastSeen;
use crate::metrics::Metrics;

/// The revocation handle: managed state (and a request guard) put in place by the
/// [`Revoke`](crate::Revoke) fairing. Cheap to clone.
///
/// It offers what `revokectl` offers: revoke by token ([`revoke_token`](Self::revoke_token))
/// or by jti, subject, family or global cut-off (a [`RevokeRequest`] given to
/// [`revoke`](Self::revoke)), restore, status; and, when a signing key is configured,
/// minting and rotating token pairs.
///
/// ```rust
/// # use rocket::{delete, serde::json::Json};
/// use rocket_revoke::{Authenticated, RevokeRequest, Revoker};
///
/// /// "Log out everywhere".
/// #[delete("/auth/sessions")]
/// async fn logout_everywhere(user: Authenticated, revoker: Revoker) -> Result<(), String> {
///     let sub = user.sub.as_deref().unwrap_or_default();
///     revoker
///         .revoke(
///             RevokeRequest::subject(sub)
///                 .reason("user logged out everywhere")
///                 .actor(sub),
///         )
///         .await
///         .map(|_| ())
///         .map_err(|e| e.to_string())
/// }
/// ```
#[derive(Clone)]
pub struct Revoker {
    inner: Arc<Inner>,
}

/// What a [`Revoker`] and its clones share; one per app. [`Revoker::app_id`] gives it out
/// as the app's identity.
pub(crate) struct Inner {
    engine: Engine,
    verifier: Verifier,
    issuer: Option<Issuer>,
    config: RevokeConfig,
    last_seen: LastSeen,
    metrics: Metrics,
    /// The `jwks_url` refresher, from liftoff to shutdown.
    jwks: std::sync::Mutex<Option<JwksRefresher>>,
}

impl std::fmt::Debug for Revoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revoker")
            .field("engine", &self.inner.engine)
            .field("issuer", &self.inner.issuer)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What [`Revoker::public_health`] reports: the answer of a public health endpoint
/// (load balancers, uptime checks), with nothing an outsider could learn the deployment
/// from. The details ([`Health`]) are for operators: see [`health_routes`](crate::health_routes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicHealth {
    /// `"ok"`, or `"degraded"` exactly when [`Health::status`] is.
    pub status: &'static str,
    /// Milliseconds since the last successful read of the database (`None` before the
    /// first): how old the revocation set may be.
    pub staleness_ms: Option<i64>,
}

/// What [`Revoker::health`] reports; serializes as the body of a health endpoint. It holds
/// database error text, JWKS `kid`s and URLs: serve it to operators only (see
/// [`health_routes`](crate::health_routes)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `"ok"`, or `"degraded"` when the last sync read failed or sync is stale.
    pub status: &'static str,
    /// Milliseconds since the last successful read of the database (`None` before the
    /// first): how old the revocation set may be.
    pub staleness_ms: Option<i64>,
    /// The configured `max_staleness_ms`, if any.
    pub max_staleness_ms: Option<u64>,
    /// Whether the guards currently fail closed (503) because `staleness_ms` exceeds
    /// `max_staleness_ms`.
    pub failing_closed: bool,
    /// `"sqlite"` or `"postgres"`.
    pub backend: &'static str,
    /// Sync details.
    pub sync: SyncStatus,
    /// Entries in the in-memory set.
    pub revocations: rocket_revoke_core::SetCounts,
    /// Last-seen sightings dropped because the queue was full.
    pub last_seen_dropped: u64,
    /// The `jwks_url` key set: keys, last refresh, last error (`None` without a URL).
    pub jwks: Option<JwksStatus>,
}

impl Revoker {
    pub(crate) fn new(
        engine: Engine,
        verifier: Verifier,
        issuer: Option<Issuer>,
        config: RevokeConfig,
    ) -> Self {
        let last_seen = LastSeen::new(
            config.last_seen_capacity,
            Duration::from_millis(config.last_seen_interval_ms),
            config.engine.max_token_ttl_secs,
        );
        let metrics = Metrics::new();
        let lag = metrics.clone();
        engine.observe_lag(move |ms| lag.sync_applied(ms));
        Revoker {
            inner: Arc::new(Inner {
                engine,
                verifier,
                issuer,
                config,
                last_seen,
                metrics,
                jwks: std::sync::Mutex::new(None),
            }),
        }
    }

    /// The `Revoker` managed by `rocket`, once the fairing has run.
    pub fn fetch<P: Phase>(rocket: &Rocket<P>) -> Option<&Revoker> {
        rocket.state::<Revoker>()
    }

    /// The engine (store, set and sync).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.inner.engine.store()
    }

    /// The verifier the guards use.
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// The issuer, when a signing key is configured.
    pub fn issuer(&self) -> Option<&Issuer> {
        self.inner.issuer.as_ref()
    }

    /// The configuration the fairing read.
    pub fn config(&self) -> &RevokeConfig {
        &self.inner.config
    }

    /// This instance's metrics (see [`metrics_route`](crate::metrics_route)).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Last-seen sightings dropped so far because the queue was full.
    pub fn last_seen_dropped(&self) -> u64 {
        self.inner.last_seen.dropped()
    }

    /// The realm of the `WWW-Authenticate` challenges.
    pub fn realm(&self) -> &str {
        &self.inner.config.realm
    }

    /// Which scope revokes these claims, if any (no I/O).
    pub fn check<E>(&self, claims: &Claims<E>) -> Option<Scope> {
        self.inner.engine.check(&claims.token_ref())
    }

    /// Verifies `token` and checks it against the revocation set, as the
    /// [`Authenticated`](crate::Authenticated) guard does (refresh tokens included).
    pub fn authenticate<E: DeserializeOwned>(&self, token: &str) -> Result<Claims<E>, AuthError> {
        let claims = self
            .inner
            .verifier
            .verify_at::<E>(token, self.inner.engine.now_secs())?;
        match self.check(&claims) {
            Some(scope) => Err(AuthError::Revoked(scope)),
            None if self.too_stale() => Err(AuthError::Stale),
            None => Ok(claims),
        }
    }

    /// Commits any revocation built with [`RevokeRequest`].
    pub async fn revoke(&self, request: RevokeRequest) -> Result<Option<Event>, Error> {
        let event = self.inner.engine.revoke(request).await?;
        if let Some(e) = &event {
            self.inner.metrics.revoked(e.scope);
        }
        Ok(event)
    }

    /// The issuer scope a revocation made from `claims` gets: their `iss` when more than one
    /// issuer is accepted (`issuer` lists several), since subject "42" at one identity
    /// provider is not subject "42" at another; `None` (every issuer) otherwise, so a
    /// single-issuer app writes exactly what it wrote before issuer scopes existed.
    ///
    /// Use it with [`RevokeRequest::issuer`] when revoking from a token's claims, e.g.
    /// "log out everywhere" for the caller's subject.
    pub fn issuer_scope<'c, E>(&self, claims: &'c Claims<E>) -> Option<&'c str> {
        if self.inner.config.verifier.issuer.len() > 1 {
            claims.iss.as_deref().filter(|i| !i.is_empty())
        } else {
            None
        }
    }

    /// Revokes the token `token` (a compact JWS). The token must verify (signature, issuer,
    /// audience, not expired): a forged token revokes nothing. Its `jti` is revoked; with
    /// `family` (and always for a refresh token) its session family is revoked as well.
    /// When several issuers are accepted, both are scoped to the token's issuer
    /// ([`issuer_scope`](Self::issuer_scope)). Returns the events committed.
    pub async fn revoke_token(
        &self,
        token: &str,
        family: bool,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Vec<Event>, Error> {
        let claims = self
            .inner
            .verifier
            .verify_at::<rocket_revoke_core::NoExtra>(token, self.inner.engine.now_secs())?;
        let scope = |req: RevokeRequest| match self.issuer_scope(&claims) {
            Some(iss) => req.issuer(iss),
            None => req,
        };
        let mut requests = Vec::with_capacity(2);
        if let Some(jti) = claims.jti.as_deref() {
            let mut req = with(RevokeRequest::jti(jti), reason, actor);
            if let Some(exp) = claims.exp {
                req = req.expires_at(exp);
            }
            requests.push(scope(req));
        }
        if family || claims.kind == Some(TokenKind::Refresh) {
            if let Some(fid) = claims.fid.as_deref() {
                requests.push(scope(with(RevokeRequest::family(fid), reason, actor)));
            }
        }
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        // Revocations already in force write nothing: only new events come back.
        let events: Vec<Event> = self
            .inner
            .engine
            .revoke_many(requests)
            .await?
            .into_iter()
            .flatten()
            .collect();
        for event in &events {
            self.inner.metrics.revoked(event.scope);
        }
        Ok(events)
    }

    /// Lifts a revocation; `None` when there was none.
    pub async fn restore(
        &self,
        scope: Scope,
        key: &str,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Option<Event>, Error> {
        Ok(self.inner.engine.restore(scope, key, reason, actor).await?)
    }

    /// Mints an access/refresh pair for `sub` in a new session family.
    pub async fn issue(&self, sub: &str, label: Option<&str>) -> Result<TokenPair, Error> {
        let issuer = self.inner.issuer.as_ref().ok_or(Error::NoIssuer)?;
        Ok(issuer.issue(sub, label).await?)
    }

    /// Spends `refresh_token` and mints a new pair in its family. A spent refresh token
    /// presented again revokes the whole family ([`rocket_revoke_core::RefreshError::Reused`]).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let issuer = self.inner.issuer.as_ref().ok_or(Error::NoIssuer)?;
        if self.too_stale() {
            return Err(Error::Stale);
        }
        Ok(issuer.refresh(&self.inner.verifier, refresh_token).await?)
    }

    /// Sync status: cursor, last success and error, lag.
    pub fn status(&self) -> SyncStatus {
        self.inner.engine.status()
    }

    /// Health: `"degraded"` when the last sync read failed, no read succeeded for two poll
    /// intervals (`2 × poll_interval_ms`), the PostgreSQL change feed is not listening, the
    /// sync task was restarted and has not read since, the last fetch of `jwks_url`
    /// failed (the previous keys are still in use, but may miss a rotation), or the key set
    /// is older than `jwks_max_age_secs` (`jwks.stale`).
    pub fn health(&self) -> Health {
        let sync = self.status();
        let poll_ms = i64::try_from(self.inner.config.engine.poll_interval_ms).unwrap_or(i64::MAX);
        let staleness_ms = self.inner.engine.staleness_ms();
        // Sync reads at least once a poll interval: two intervals without a success mean
        // the database is unreachable (or a read hangs), whatever the last error says.
        let stale = staleness_ms.is_none_or(|ms| ms > poll_ms.saturating_mul(2));
        let feed_lost = self.inner.engine.store().backend()
            == rocket_revoke_core::store::Backend::Postgres
            && !sync.listening;
        let jwks = self.inner.verifier.jwks_status();
        let jwks_failing = jwks
            .as_ref()
            .is_some_and(|j| j.last_error.is_some() || j.stale);
        let degraded = sync.is_degraded() || stale || feed_lost || jwks_failing;
        let max_staleness_ms = self.inner.config.max_staleness_ms;
        Health {
            status: if degraded { "degraded" } else { "ok" },
            staleness_ms,
            max_staleness_ms,
            failing_closed: exceeds(staleness_ms, max_staleness_ms),
            backend: self.inner.engine.store().backend().as_str(),
            revocations: self.inner.engine.set().len(),
            last_seen_dropped: self.inner.last_seen.dropped(),
            sync,
            jwks,
        }
    }

    /// The part of [`Revoker::health`] a public endpoint may show: status and staleness.
    pub fn public_health(&self) -> PublicHealth {
        let health = self.health();
        PublicHealth {
            status: health.status,
            staleness_ms: health.staleness_ms,
        }
    }

    /// Whether the set is older than `max_staleness_ms`: one atomic load and a clock read,
    /// no lock, no allocation.
    #[inline]
    pub fn too_stale(&self) -> bool {
        match self.inner.config.max_staleness_ms {
            None => false,
            Some(max) => exceeds(self.inner.engine.staleness_ms(), Some(max)),
        }
    }

    /// This app's identity (shared by the clones of this `Revoker`), for per-thread caches
    /// keyed by app: a `Weak` of it keeps the address from being reused.
    pub(crate) fn app_id(&self) -> &Arc<Inner> {
        &self.inner
    }

    pub(crate) fn seen<E>(&self, claims: &Claims<E>) {
        self.inner.last_seen.record(claims);
    }

    /// Starts sync and the last-seen writer (liftoff).
    pub(crate) fn start(&self) {
        self.inner.engine.start_sync();
        self.inner.last_seen.start(self.store().clone());
        if let Some(refresher) = self.inner.verifier.spawn_jwks_refresh() {
            if let Ok(mut slot) = self.inner.jwks.lock() {
                *slot = Some(refresher);
            }
        }
    }

    /// Stops both and waits for them (shutdown). Idempotent.
    pub(crate) async fn stop(&self) {
        let refresher = self.inner.jwks.lock().ok().and_then(|mut slot| slot.take());
        if let Some(refresher) = refresher {
            refresher.stop().await;
        }
        self.inner.engine.stop_sync().await;
        self.inner.last_seen.stop().await;
    }
}

/// Whether `staleness_ms` (`None`: never synced) is beyond `max` (`None`: no limit).
fn exceeds(staleness_ms: Option<i64>, max: Option<u64>) -> bool {
    match max {
        None => false,
        Some(max) => staleness_ms.is_none_or(|ms| ms > i64::try_from(max).unwrap_or(i64::MAX)),
    }
}

fn with(mut req: RevokeRequest, reason: Option<&str>, actor: Option<&str>) -> RevokeRequest {
    if let Some(reason) = reason {
        req = req.reason(reason);
    }
    if let Some(actor) = actor {
        req = req.actor(actor);
    }
    req
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Revoker {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match Revoker::fetch(req.rocket()) {
            Some(r) => Outcome::Success(r.clone()),
            None => Outcome::Forward(Status::InternalServerError),
        }
    }
}

/// Logs and reports whether the fairing is missing (no [`Revoker`] managed); what the
/// `Sentinel`s of [`Revoker`] and of the guards answer. `what` names the type in use.
pub(crate) fn missing(rocket: &Rocket<Ignite>, what: &str) -> bool {
    let missing = Revoker::fetch(rocket).is_none();
    if missing {
        tracing::error!(
            "`{what}` is used but the rocket-revoke fairing is not attached: add `.attach(Revoke::<Db>::fairing())` after `.attach(Db::init())`"
        );
    }
    missing
}

impl Sentinel for Revoker {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        missing(rocket, "Revoker")
    }
}

/// Answers 200 with the JSON of [`Health`], never cached.
impl<'r> rocket::response::Responder<'r, 'static> for Health {
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'static> {
        no_store(rocket::serde::json::Json(self).respond_to(req)?)
    }
}

/// Answers 200 with the JSON of [`PublicHealth`], never cached.
impl<'r> rocket::response::Responder<'r, 'static> for PublicHealth {
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'static> {
        no_store(rocket::serde::json::Json(self).respond_to(req)?)
    }
}

/// A health answer is about this moment: no cache may keep it.
fn no_store(mut res: rocket::Response<'static>) -> rocket::response::Result<'static> {
    res.set_raw_header("Cache-Control", "no-store");
    Ok(res)
}
