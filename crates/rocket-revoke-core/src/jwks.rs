//! Verification keys fetched from a JWKS URL (`jwks_url`) and kept fresh in the background.
//!
//! The policy is on [`JwksRefresher`].
#![cfg_attr(not(feature = "jwks"), allow(dead_code))]

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::Algorithm;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::SharedClock;
use crate::keys::{parse_jwks, usable_keys, Key, KeyError};

/// The largest JWKS response body accepted, in bytes: real key sets are a few KiB, and a
/// misbehaving endpoint must not make the process buffer without bound.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// After a failed fetch, the next scheduled one comes at most this long after (or after
/// `jwks_refresh_secs`, when shorter; never sooner than the rate limit).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Redirects an endpoint may chain before the fetch fails.
#[cfg(feature = "jwks")]
const MAX_REDIRECTS: usize = 5;

/// Error texts are cut to this many characters, to stay short in `/health`.
const MAX_ERROR_LEN: usize = 200;

/// `last_success_ms` before any fetch has succeeded.
const NEVER: i64 = i64::MIN;

/// The state of a verifier's JWKS URL key set, as [`Verifier::jwks_status`] reports it for a
/// health endpoint. Holds no key material and no token content.
///
/// [`Verifier::jwks_status`]: crate::Verifier::jwks_status
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct JwksStatus {
    /// The configured URL (a password in it is masked).
    pub url: String,
    /// How many usable keys the current set holds (0 before the first successful fetch).
    pub keys: usize,
    /// The `kid`s of those keys, in document order (keys without a `kid` are not listed).
    pub kids: Vec<String>,
    /// When the last fetch succeeded, in seconds since the epoch; `None` if none has.
    pub last_success: Option<i64>,
    /// Seconds since the last successful fetch (on the verifier's clock); `None` if none has
    /// succeeded.
    #[serde(default)]
    pub age_secs: Option<i64>,
    /// The key set is older than `jwks_max_age_secs`: refreshes have failed for that long
    /// (a health endpoint reports `degraded`); its keys still verify.
    #[serde(default)]
    pub stale: bool,
    /// The key set is older than `jwks_max_stale_secs`: its keys verify nothing until a
    /// fetch succeeds (tokens signed by them get
    /// [`VerifyError::StaleKeys`](crate::VerifyError::StaleKeys)).
    #[serde(default)]
    pub expired: bool,
    /// When the last fetch started, successful or not, in seconds since the epoch.
    pub last_attempt: Option<i64>,
    /// Why the last fetch failed; `None` when it succeeded (or none was made). A short text
    /// naming the kind of failure, never a key or token.
    pub last_error: Option<String>,
    /// Successful fetches, the first one included.
    pub refreshes: u64,
    /// Failed fetches.
    pub failures: u64,
    /// Fetches made because a token named an unknown `kid`.
    pub unknown_kid_refreshes: u64,
    /// Unknown-`kid` requests that did not get a fetch of their own: they found one already
    /// pending (waiting for the rate limit, or for a refresher that does not run).
    pub unknown_kid_refreshes_skipped: u64,
    /// Whether an unknown-`kid` fetch is waiting for the rate limit right now.
    pub throttled: bool,
    /// Whether a refresher task runs (see [`Verifier::spawn_jwks_refresh`]); without one the
    /// keys are never refreshed after start-up.
    ///
    /// [`Verifier::spawn_jwks_refresh`]: crate::Verifier::spawn_jwks_refresh
    pub refresher_running: bool,
}

/// The handle of a running JWKS refresher task (see
/// [`Verifier::spawn_jwks_refresh`](crate::Verifier::spawn_jwks_refresh)): the task stops
/// when the handle is dropped or [stopped](JwksRefresher::stop), so the owner (a server's
/// shutdown hook) controls its lifetime.
///
/// Identity providers (Keycloak, Auth0, Okta...) publish their signing keys at a JWKS
/// endpoint and rotate them: a new `kid` appears, the old one goes some time later. This
/// module fetches that key set and swaps it into the [`Verifier`](crate::Verifier) without
/// ever putting I/O on the request path: a verification reads the current set with one
/// `ArcSwap` load and never waits for the network.
///
/// # Start-up
///
/// [`Verifier::from_config`](crate::Verifier::from_config) fetches the set once before it
/// returns, and fails with [`KeyError::JwksFetch`] when that
/// fetch fails: a verifier with no keys would reject every token. Then
/// [`Verifier::spawn_jwks_refresh`](crate::Verifier::spawn_jwks_refresh) starts the
/// refresher task; its [`JwksRefresher`] handle stops it.
///
/// # Refresh and rate-limit policy
///
/// - **Scheduled**: a fetch `jwks_refresh_secs` (default 300) after the previous attempt
///   started. After a failed attempt the next one comes sooner, after
///   `min(jwks_refresh_secs, max(30, jwks_min_refresh_interval_secs))` seconds.
/// - **On demand**: a token whose `kid` names no key is rejected at once with
///   [`VerifyError::UnknownKey`](crate::VerifyError::UnknownKey) (the request never waits),
///   and wakes the refresher. It fetches at once, unless the previous fetch of any kind
///   started less than `jwks_min_refresh_interval_secs` (default 10) ago: then it fetches
///   when that interval ends. Every unknown-`kid` request in the meantime shares that one
///   pending fetch (counted in [`JwksStatus::unknown_kid_refreshes_skipped`]). So a flood of
///   bogus `kid`s costs the provider at most one fetch per interval, on top of the scheduled
///   ones, and the first request with a newly rotated `kid` is the only one rejected (or
///   those within one interval of the previous fetch).
/// - **Failures** (connection, timeout of `jwks_timeout_secs`, non-2xx status, a body over
///   [`MAX_JWKS_BYTES`], bad JSON, no usable key) keep the last good key set; the error and
///   the counts are in [`JwksStatus`]. A document identical to the current one is not parsed
///   again (it still counts as a successful fetch).
///
/// # How long a key set is trusted
///
/// Its age is measured from the last successful fetch, on the verifier's
/// [`SharedClock`] (scheduling itself runs on tokio's monotonic timer).
/// Past `jwks_max_age_secs` (default 3600) [`JwksStatus::stale`] is set, for a health
/// endpoint to report `degraded`; past `jwks_max_stale_secs` (default 86400)
/// [`JwksStatus::expired`] is set and its keys verify nothing: a token signed by one of them
/// gets [`VerifyError::StaleKeys`](crate::VerifyError::StaleKeys). The next successful fetch
/// lifts both. Start-up requires `jwks_refresh_secs + jwks_timeout_secs <=
/// jwks_max_age_secs <= jwks_max_stale_secs`: a set is that old just before a successful
/// scheduled refresh lands, and health should degrade before tokens are refused.
///
/// # Which keys
///
/// The same as a `jwks_file`: keys are picked by `kid`, a key's `alg` pins it to that
/// algorithm, keys meant for encryption or of unsupported types are skipped, and a duplicate
/// `kid` refuses the whole document. One difference: symmetric (`oct`) keys are never taken
/// from a URL, since anyone who can read the endpoint could then sign tokens.
///
/// # Transport
///
/// Whoever can alter the response can forge tokens, so a plain `http://` URL is refused at
/// start-up unless its host is this machine (`localhost`, `127.0.0.0/8`, `::1`: a sidecar or
/// a test), or `jwks_allow_insecure_http` is set (then it is accepted with a warning). The
/// same holds for redirects, and an `https://` URL never follows a redirect to `http://`.
#[derive(Debug)]
#[must_use = "dropping the handle stops the refresher"]
pub struct JwksRefresher {
    task: tokio::task::JoinHandle<()>,
}

impl JwksRefresher {
    /// Stops the task and waits until it has ended (a fetch in progress is abandoned; the
    /// current keys stay in use).
    pub async fn stop(mut self) {
        self.task.abort();
        // Cancelled, or a panic: either way it has ended.
        let _ = (&mut self.task).await;
    }

    /// Whether the task still runs (it ends only when stopped, or if it panicked).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for JwksRefresher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `jwks_*` settings of a [`VerifierConfig`](crate::VerifierConfig), named as there. The
/// verifier passes them in as values: it imports this module, so this one does not import it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JwksSettings {
    pub(crate) jwks_refresh_secs: u64,
    pub(crate) jwks_min_refresh_interval_secs: u64,
    pub(crate) jwks_timeout_secs: u64,
    pub(crate) jwks_allow_insecure_http: bool,
    pub(crate) jwks_max_age_secs: u64,
    pub(crate) jwks_max_stale_secs: u64,
}

/// One fetched key set, as the verifier reads it.
pub(crate) struct FetchedKeys {
    /// Identity of this set for the per-thread crypto cache: a new set gets new entries.
    pub(crate) cache_id: Arc<()>,
    pub(crate) keys: Vec<Key>,
    /// Hash of the document it came from, to skip re-parsing an unchanged one.
    body_hash: Option<u64>,
}

/// What the last fetches did (read by the status and the refresher, never by verification).
#[derive(Default)]
struct Progress {
    /// Start of the last attempt: the scheduled refresh and the rate limit count from it.
    attempt_started: Option<Instant>,
    last_ok: bool,
    last_attempt: Option<i64>,
    last_error: Option<String>,
}

/// A JWKS URL key set shared by a verifier and its clones, and the refresher's state.
pub(crate) struct RemoteJwks {
    /// The URL as configured, for fetching.
    url: String,
    /// The URL with any password masked, for errors, logs and the status.
    shown_url: String,
    /// The verifier's allowed algorithms, to decide which fetched keys are usable.
    algorithms: Vec<Algorithm>,
    refresh_every: Duration,
    min_interval: Duration,
    /// Where the key set's age is read (see [`JwksRefresher`]).
    clock: SharedClock,
    /// `jwks_max_age_secs` and `jwks_max_stale_secs`, in milliseconds.
    max_age_ms: i64,
    max_stale_ms: i64,
    /// When the last fetch succeeded, on `clock`; [`NEVER`] before the first. The one time
    /// the verification path reads.
    last_success_ms: AtomicI64,
    keys: ArcSwap<FetchedKeys>,
    /// An unknown `kid` was seen since the last fetch started.
    wanted: AtomicBool,
    /// Wakes the refresher for `wanted`.
    wake: Notify,
    throttled: AtomicBool,
    running: AtomicBool,
    refreshes: AtomicU64,
    failures: AtomicU64,
    unknown_kid_refreshes: AtomicU64,
    skipped: AtomicU64,
    progress: Mutex<Progress>,
    /// One fetch at a time (the refresher and a manual refresh).
    fetching: tokio::sync::Mutex<()>,
    #[cfg(feature = "jwks")]
    client: reqwest::Client,
    #[cfg(feature = "jwks")]
    timeout: Duration,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.keys.load();
        f.debug_struct("RemoteJwks")
            .field("url", &self.shown_url)
            .field("keys", &current.keys)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Checks the `jwks_*` settings and prepares the HTTP client; fetches nothing.
    pub(crate) fn new(
        url: &str,
        config: &JwksSettings,
        algorithms: &[Algorithm],
        clock: SharedClock,
    ) -> Result<Self, KeyError> {
        let invalid = |key: &'static str, reason: &str| KeyError::InvalidConfig {
            key,
            reason: reason.to_owned(),
        };
        for (name, value) in [
            ("jwks_refresh_secs", config.jwks_refresh_secs),
            (
                "jwks_min_refresh_interval_secs",
                config.jwks_min_refresh_interval_secs,
            ),
            ("jwks_timeout_secs", config.jwks_timeout_secs),
        ] {
            if value == 0 {
                return Err(invalid(name, &format!("{name} must be at least 1")));
            }
        }
        // The set is up to `refresh + timeout` old just before a scheduled fetch lands.
        let longest_normal = config
            .jwks_refresh_secs
            .saturating_add(config.jwks_timeout_secs);
        if config.jwks_max_age_secs < longest_normal {
            return Err(invalid(
                "jwks_max_age_secs",
                &format!(
                "jwks_max_age_secs ({}) must be at least jwks_refresh_secs + jwks_timeout_secs ({longest_normal}): the key set is that old just before a successful scheduled refresh",
                config.jwks_max_age_secs
            ),
            ));
        }
        if config.jwks_max_stale_secs < config.jwks_max_age_secs {
            return Err(invalid(
                "jwks_max_stale_secs",
                &format!(
                "jwks_max_stale_secs ({}) must be at least jwks_max_age_secs ({}): health should degrade before tokens are refused",
                config.jwks_max_stale_secs, config.jwks_max_age_secs
            ),
            ));
        }
        let millis = |secs: u64| i64::try_from(secs).map_or(i64::MAX, |s| s.saturating_mul(1000));
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(invalid(
                "jwks_url",
                "jwks_url must be an http:// or https:// URL",
            ));
        }
        #[cfg(not(feature = "jwks"))]
        {
            let _ = (algorithms, clock, millis);
            Err(invalid(
                "jwks_url",
                "jwks_url needs the `jwks` cargo feature of rocket-revoke-core, which this build lacks",
            ))
        }
        #[cfg(feature = "jwks")]
        {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| invalid("jwks_url", &format!("jwks_url is not a valid URL ({e})")))?;
            let shown_url = crate::redact_url(url);
            let allow_http = config.jwks_allow_insecure_http;
            if parsed.scheme() == "http" && !is_loopback(parsed.host_str().unwrap_or("")) {
                if !allow_http {
                    return Err(invalid(
                        "jwks_url",
                        &format!(
                        "jwks_url {shown_url} uses plain http to a host that is not this machine: whoever can alter the response can forge tokens. Use https, or set jwks_allow_insecure_http = true to accept that risk"
                    )));
                }
                tracing::warn!(url = %shown_url, "jwks_url uses plain http (jwks_allow_insecure_http is set): whoever can alter the response can forge tokens; use https");
            }
            let timeout = Duration::from_secs(config.jwks_timeout_secs);
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(redirect_policy(allow_http))
                .user_agent(concat!("rocket-revoke-core/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| {
                    invalid(
                        "jwks_url",
                        &format!("jwks_url: cannot set up the HTTP client ({e})"),
                    )
                })?;
            Ok(RemoteJwks {
                url: url.to_owned(),
                shown_url,
                algorithms: algorithms.to_vec(),
                refresh_every: Duration::from_secs(config.jwks_refresh_secs),
                min_interval: Duration::from_secs(config.jwks_min_refresh_interval_secs),
                clock,
                max_age_ms: millis(config.jwks_max_age_secs),
                max_stale_ms: millis(config.jwks_max_stale_secs),
                last_success_ms: AtomicI64::new(NEVER),
                keys: ArcSwap::from_pointee(FetchedKeys {
                    cache_id: Arc::new(()),
                    keys: Vec::new(),
                    body_hash: None,
                }),
                wanted: AtomicBool::new(false),
                wake: Notify::new(),
                throttled: AtomicBool::new(false),
                running: AtomicBool::new(false),
                refreshes: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                unknown_kid_refreshes: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                progress: Mutex::new(Progress::default()),
                fetching: tokio::sync::Mutex::new(()),
                client,
                timeout,
            })
        }
    }

    /// [`RemoteJwks::refresh`] as the verifier reports it: a failure is
    /// [`KeyError::JwksFetch`] naming the (masked) URL.
    pub(crate) async fn fetch_now(&self) -> Result<(), KeyError> {
        self.refresh().await.map_err(|reason| KeyError::JwksFetch {
            url: self.masked_url().to_owned(),
            reason,
        })
    }

    /// The URL for messages (password masked).
    pub(crate) fn masked_url(&self) -> &str {
        &self.shown_url
    }

    /// The current key set: the one `ArcSwap` load of a verification.
    #[inline]
    pub(crate) fn current(&self) -> Guard<Arc<FetchedKeys>> {
        self.keys.load()
    }

    /// Called on the request path when a token names an unknown `kid`: flags a fetch and
    /// wakes the refresher, unless one is already pending (then it only counts). No
    /// allocation; only the request that flags a fetch touches the `Notify` (which may take
    /// its internal lock briefly to wake the waiting refresher).
    pub(crate) fn request_refresh(&self) {
        if self.wanted.load(Ordering::Relaxed) || self.wanted.swap(true, Ordering::AcqRel) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.wake.notify_one();
    }

    /// Whether the key set is older than `jwks_max_stale_secs` at `now` (seconds since the
    /// epoch): then its keys verify nothing. One atomic load; `false` before the first
    /// successful fetch (the set is empty then anyway).
    #[inline]
    pub(crate) fn expired_at(&self, now: i64) -> bool {
        let last = self.last_success_ms.load(Ordering::Acquire);
        last != NEVER && now.saturating_mul(1000).saturating_sub(last) > self.max_stale_ms
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The status for [`crate::Verifier::jwks_status`].
    pub(crate) fn status(&self) -> JwksStatus {
        let current = self.keys.load();
        let progress = self.progress();
        let last = self.last_success_ms.load(Ordering::Acquire);
        let age_ms = (last != NEVER).then(|| self.clock.now_ms().saturating_sub(last).max(0));
        JwksStatus {
            url: self.shown_url.clone(),
            keys: current.keys.len(),
            kids: current.keys.iter().filter_map(|k| k.kid.clone()).collect(),
            last_success: (last != NEVER).then(|| last.div_euclid(1000)),
            age_secs: age_ms.map(|ms| ms / 1000),
            stale: age_ms.is_some_and(|ms| ms > self.max_age_ms),
            expired: age_ms.is_some_and(|ms| ms > self.max_stale_ms),
            last_attempt: progress.last_attempt,
            last_error: progress.last_error.clone(),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            unknown_kid_refreshes: self.unknown_kid_refreshes.load(Ordering::Relaxed),
            unknown_kid_refreshes_skipped: self.skipped.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            refresher_running: self.running.load(Ordering::Relaxed),
        }
    }

    /// Starts the refresher task, unless one already runs for this set.
    pub(crate) fn spawn(self: &Arc<Self>) -> Option<JwksRefresher> {
        let runtime = tokio::runtime::Handle::current();
        if self.running.swap(true, Ordering::AcqRel) {
            return None;
        }
        let running = Running(Arc::clone(self));
        let task = runtime.spawn(async move {
            let running = running;
            running.0.run().await;
        });
        Some(JwksRefresher { task })
    }

    /// The refresher loop: see [`JwksRefresher`] for the policy.
    async fn run(&self) {
        loop {
            let due = {
                let progress = self.progress();
                let wait = if progress.last_ok {
                    self.refresh_every
                } else {
                    self.refresh_every
                        .min(RETRY_AFTER_FAILURE.max(self.min_interval))
                };
                progress
                    .attempt_started
                    .map_or_else(Instant::now, |started| started + wait)
            };
            let on_demand = tokio::select! {
                () = tokio::time::sleep_until(due) => false,
                () = self.wake.notified() => true,
            };
            if on_demand {
                if !self.wanted.load(Ordering::Acquire) {
                    continue;
                }
                let last = self.progress().attempt_started;
                if let Some(last) = last {
                    let earliest = (last + self.min_interval).min(due);
                    if Instant::now() < earliest {
                        self.throttled.store(true, Ordering::Relaxed);
                        tokio::time::sleep_until(earliest).await;
                        self.throttled.store(false, Ordering::Relaxed);
                    }
                }
            }
            // Cleared before the fetch: a kid seen after this point asks for the next one.
            if self.wanted.swap(false, Ordering::AcqRel) {
                self.unknown_kid_refreshes.fetch_add(1, Ordering::Relaxed);
            }
            // Recorded in the status and logged by `refresh`.
            let _ = self.refresh().await;
        }
    }

    /// One fetch: installs the new set, or keeps the current one and records why not.
    pub(crate) async fn refresh(&self) -> Result<(), String> {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let mut progress = self.progress();
            progress.attempt_started = Some(Instant::now());
            progress.last_attempt = Some(self.clock.now_secs());
        }
        let result = match self.fetch().await {
            Ok(body) => self.install(&body),
            Err(e) => Err(e),
        };
        let result = result.map_err(|e| shorten(&e));
        let mut progress = self.progress();
        progress.last_ok = result.is_ok();
        match &result {
            Ok(()) => {
                self.last_success_ms
                    .store(self.clock.now_ms(), Ordering::Release);
                progress.last_error = None;
                self.refreshes.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                progress.last_error = Some(e.clone());
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %self.shown_url, error = %e, "JWKS fetch failed; the previous keys stay in use");
            }
        }
        result
    }

    /// Parses a fetched document and makes it the current set, unless it is the current one.
    fn install(&self, body: &[u8]) -> Result<(), String> {
        let hash = xxhash_rust::xxh3::xxh3_64(body);
        if self.keys.load().body_hash == Some(hash) {
            return Ok(());
        }
        let provider = CryptoProvider::try_get_default().ok_or("no JWT crypto backend")?;
        let loaded = parse_jwks(body, &self.shown_url, false)?;
        let keys = usable_keys(provider, &self.algorithms, loaded);
        if keys.is_empty() {
            return Err("no key usable with the allowed algorithms".into());
        }
        let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        tracing::info!(url = %self.shown_url, keys = keys.len(), kids = ?kids, "JWKS key set loaded");
        self.keys.store(Arc::new(FetchedKeys {
            cache_id: Arc::new(()),
            keys,
            body_hash: Some(hash),
        }));
        Ok(())
    }

    /// The response body of a GET on the URL: a 2xx status and at most [`MAX_JWKS_BYTES`].
    #[cfg(feature = "jwks")]
    async fn fetch(&self) -> Result<Vec<u8>, String> {
        let describe = |e: reqwest::Error| describe_error(&e, self.timeout);
        let mut response = self
            .client
            .get(&self.url)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(describe)?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP status {}", status.as_u16()));
        }
        let too_large = || format!("response larger than {MAX_JWKS_BYTES} bytes");
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Without the `jwks` feature no `RemoteJwks` is ever built.
    #[cfg(not(feature = "jwks"))]
    async fn fetch(&self) -> Result<Vec<u8>, String> {
        Err("built without the `jwks` feature".into())
    }
}

/// Marks the refresher as running while its task (future) exists.
struct Running(Arc<RemoteJwks>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.throttled.store(false, Ordering::Relaxed);
        self.0.running.store(false, Ordering::Release);
    }
}

/// Follows a few redirects, never from `https` to anything else, and never to plain `http` on
/// another host unless `allow_http` (`jwks_allow_insecure_http`).
#[cfg(feature = "jwks")]
fn redirect_policy(allow_http: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let from_https = attempt
            .previous()
            .first()
            .is_some_and(|u| u.scheme() == "https");
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if from_https && attempt.url().scheme() != "https" {
            attempt.error("redirect from https to another scheme refused")
        } else if attempt.url().scheme() == "http"
            && !allow_http
            && !is_loopback(attempt.url().host_str().unwrap_or(""))
        {
            attempt.error("redirect to plain http on another host refused (jwks_allow_insecure_http is not set)")
        } else {
            attempt.follow()
        }
    })
}

/// A short description of a failed request: its kind and root cause, without the URL.
#[cfg(feature = "jwks")]
fn describe_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {} s", timeout.as_secs());
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    };
    let mut root: &dyn std::error::Error = e;
    while let Some(source) = root.source() {
        root = source;
    }
    if std::ptr::addr_eq(root, e) {
        kind.to_owned()
    } else {
        format!("{kind}: {root}")
    }
}

/// Cuts an error text to [`MAX_ERROR_LEN`] characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_LEN) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// Whether a URL host is this machine (plain http to it is no risk).
#[cfg(feature = "jwks")]
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_shortened() {
        assert_eq!(shorten("short"), "short");
        let long = "é".repeat(MAX_ERROR_LEN + 10);
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_LEN + 3);
    }

    #[cfg(feature = "jwks")]
    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["idp.example", "10.0.0.1", ""] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
