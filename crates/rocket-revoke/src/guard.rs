//! Request guards: [`Authenticated`] and [`Verified`], and the response of their
//! rejection ([`AuthError`] as a `Responder`).

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::{Arc, Weak};

use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::{Ignite, Rocket, Sentinel};
use rocket_revoke_core::{Claims, NoExtra, TokenKind};
use serde::de::DeserializeOwned;

use crate::error::{AuthError, Rejection};
use crate::revoker::{self, Revoker};

/// A request guard for a verified, unrevoked access token: `Authorization: Bearer <jwt>`
/// (or, when configured, a cookie or query parameter: see
/// [`RevokeConfig::token_cookie`](crate::RevokeConfig::token_cookie)).
///
/// It verifies the token (signature, algorithm allow-list, `exp`/`nbf`, `iss`/`aud`,
/// required claims), refuses refresh tokens (`"kind": "refresh"`), checks the in-memory
/// revocation set (no I/O), and queues a last-seen sighting. A token this worker thread has
/// verified before skips the signature check, never the rest (see
/// [`VerifierConfig::verified_cache`](rocket_revoke_core::VerifierConfig::verified_cache)).
/// A refused token is a 401 with an RFC 6750 `WWW-Authenticate` header and a JSON body, a
/// malformed or repeated `Authorization` header a 400 `invalid_request`; see [`AuthError`].
/// The one exception is a set older than `max_staleness_ms` (see
/// [`RevokeConfig`](crate::RevokeConfig), off by default): then an unrevoked token gets a
/// 503 ([`AuthError::Stale`]).
///
/// `E` is the app's own claims (flattened beside the registered ones); it defaults to
/// [`NoExtra`]. The guard dereferences to [`Claims<E>`].
///
/// Use `Option<Authenticated>` for routes that also serve anonymous callers, and
/// `Result<Authenticated, AuthError>` to see why a token was refused (`AuthError` is a
/// `Responder` with the same 401).
///
/// How the 401 gets its header and body: a guard cannot build a response, so it keeps the
/// rejection in the request-local cache and the fairing's response hook rewrites the 401
/// (whatever catcher produced it) into the RFC 6750 answer. A 401 that already carries a
/// `WWW-Authenticate` header is left as it is.
///
/// ```rust
/// # use rocket::get;
/// use rocket_revoke::Authenticated;
///
/// #[derive(serde::Deserialize)]
/// struct Roles { #[serde(default)] roles: Vec<String> }
///
/// #[get("/admin")]
/// fn admin(user: Authenticated<Roles>) -> Option<String> {
///     user.extra.roles.iter().any(|r| r == "admin").then(|| format!("hello {:?}", user.sub))
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated<E = NoExtra> {
    claims: Claims<E>,
}

/// Like [`Authenticated`], but skips the revocation check: for routes that must work with a
/// revoked token (for example an endpoint that reports a session's state). The token must
/// still verify and must not be a refresh token.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified<E = NoExtra> {
    claims: Claims<E>,
}

macro_rules! claims_wrapper {
    ($t:ident) => {
        impl<E> $t<E> {
            /// The token's claims.
            pub fn claims(&self) -> &Claims<E> {
                &self.claims
            }

            /// Takes the claims out.
            pub fn into_claims(self) -> Claims<E> {
                self.claims
            }
        }

        impl<E> Deref for $t<E> {
            type Target = Claims<E>;

            fn deref(&self) -> &Claims<E> {
                &self.claims
            }
        }

        impl<E> Sentinel for $t<E> {
            fn abort(rocket: &Rocket<Ignite>) -> bool {
                revoker::missing(rocket, stringify!($t))
            }
        }
    };
}

claims_wrapper!(Authenticated);
claims_wrapper!(Verified);

impl Authenticated {
    /// The token in one `Authorization` header value, exactly as the guards read it:
    /// `Bearer <token>` with the scheme in any letter case (RFC 7235 §2.1), one or more
    /// spaces after it, and a token without whitespace or control characters. For code that
    /// receives credentials outside a request guard (and for the fuzz targets).
    ///
    /// ```
    /// use rocket_revoke::{AuthError, Authenticated};
    ///
    /// assert_eq!(Authenticated::bearer_token("bearer a.b.c"), Ok("a.b.c"));
    /// assert_eq!(Authenticated::bearer_token("Basic abc"), Err(AuthError::Scheme));
    /// ```
    pub fn bearer_token(header_value: &str) -> Result<&str, AuthError> {
        bearer_token(header_value)
    }
}

/// The token of `req`, or why there is none usable: the `Authorization` header; without
/// one, the configured cookie, then the configured query parameter.
fn credentials<'r>(req: &'r Request<'_>, revoker: &Revoker) -> Result<&'r str, AuthError> {
    let mut values = req.headers().get("Authorization");
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err(AuthError::Ambiguous);
        }
        return bearer_token(value);
    }
    let config = revoker.config();
    if let Some(name) = &config.token_cookie {
        // An empty cookie is a logged-out browser, not a token.
        if let Some(cookie) = req.cookies().get(name).filter(|c| !c.value().is_empty()) {
            return Ok(cookie.value());
        }
    }
    if let Some(name) = &config.token_query {
        let mut values = req.query_fields().filter(|f| f.name == name.as_str());
        if let Some(field) = values.next() {
            // `a=x&a=y`: refuse to guess which one the client meant.
            if values.next().is_some() {
                return Err(AuthError::Ambiguous);
            }
            return Ok(field.value);
        }
    }
    Err(AuthError::Missing)
}

/// The token of one `Authorization` header value (`Bearer <token>`), as the guards read it.
fn bearer_token(value: &str) -> Result<&str, AuthError> {
    // RFC 7235: `scheme 1*SP token68`; the scheme is case-insensitive.
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = match value.split_once(' ') {
        Some(parts) => parts,
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Scheme);
    }
    let token = rest.trim_start_matches(' ');
    // Whitespace or control characters: for ASCII exactly the bytes up to 0x20 and 0x7f
    // (checked bytewise, the common case); otherwise the Unicode definitions.
    let bad = if token.is_ascii() {
        token.bytes().any(|b| b <= b' ' || b == 0x7f)
    } else {
        token.contains(|c: char| c.is_whitespace() || c.is_control())
    };
    if token.is_empty() || bad {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

/// Slots of the per-thread table of recent sightings (see [`seen`]).
const RECENT_SLOTS: usize = 256;

/// A sighting this thread queued: which app (its [`Revoker`]), which token, which second.
struct Recent {
    owner: Weak<revoker::Inner>,
    jti: String,
    sec: i64,
}

thread_local! {
    static RECENT: RefCell<Vec<Option<Recent>>> = const { RefCell::new(Vec::new()) };
}

/// Queues a last-seen sighting, at most once per token, app, thread and second: the
/// registry keeps seconds, so a repeat within the same second adds nothing, and queueing
/// one costs allocations and a wake-up of the writer task on every request.
fn seen<E>(revoker: &Revoker, claims: &Claims<E>, now: i64) {
    let Some(jti) = claims.jti.as_deref() else {
        return revoker.seen(claims);
    };
    let app = revoker.app_id();
    let fresh = RECENT.with(|recent| {
        let Ok(mut recent) = recent.try_borrow_mut() else {
            return true;
        };
        if recent.is_empty() {
            recent.resize_with(RECENT_SLOTS, || None);
        }
        // FNV-1a of the jti picks the slot.
        let hash = jti.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let slot = &mut recent[(hash % RECENT_SLOTS as u64) as usize];
        match slot {
            Some(r) if r.sec == now && r.jti == jti && r.owner.as_ptr() == Arc::as_ptr(app) => {
                false
            }
            Some(r) => {
                r.jti.clear();
                r.jti.push_str(jti);
                r.sec = now;
                if r.owner.as_ptr() != Arc::as_ptr(app) {
                    r.owner = Arc::downgrade(app);
                }
                true
            }
            None => {
                *slot = Some(Recent {
                    owner: Arc::downgrade(app),
                    jti: jti.to_owned(),
                    sec: now,
                });
                true
            }
        }
    });
    if fresh {
        revoker.seen(claims);
    }
}

/// Verifies the request's token; checks revocation when `check` is set.
fn authenticate<E: DeserializeOwned>(
    req: &Request<'_>,
    revoker: &Revoker,
    check: bool,
) -> Result<Claims<E>, AuthError> {
    let token = credentials(req, revoker)?;
    // One clock read per check, shared by verification and the sighting.
    let now = revoker.engine().now_secs();
    let claims = revoker.verifier().verify_at::<E>(token, now)?;
    if claims.kind == Some(TokenKind::Refresh) {
        return Err(AuthError::RefreshToken);
    }
    if check {
        if let Some(scope) = revoker.check(&claims) {
            return Err(AuthError::Revoked(scope));
        }
        // Not revoked as far as this instance knows; fail closed when that knowledge is
        // older than the configured bound.
        if revoker.too_stale() {
            return Err(AuthError::Stale);
        }
    }
    seen(revoker, &claims, now);
    Ok(claims)
}

/// Runs the check, counted in the metrics and, when `trace_requests` is on, in a span.
fn guarded<E: DeserializeOwned>(req: &Request<'_>, check: bool) -> Result<Claims<E>, AuthError> {
    let Some(revoker) = Revoker::fetch(req.rocket()) else {
        return Err(AuthError::NotAttached);
    };
    let metrics = revoker.metrics();
    metrics.checked();
    let result = if revoker.config().trace_requests {
        let span = tracing::debug_span!("revoke.guard", check);
        let _entered = span.enter();
        authenticate(req, revoker, check)
    } else {
        authenticate(req, revoker, check)
    };
    if let Err(e) = &result {
        metrics.rejected(e);
    }
    result
}

fn outcome<T>(req: &Request<'_>, result: Result<T, AuthError>) -> Outcome<T, AuthError> {
    match result {
        Ok(v) => Outcome::Success(v),
        Err(e) => {
            match &e {
                AuthError::NotAttached => {
                    tracing::error!("rocket-revoke guard used without the Revoke fairing")
                }
                AuthError::Stale => tracing::debug!(
                    "revocation set older than `max_staleness_ms`: failing closed with 503"
                ),
                e => tracing::debug!(error = %e, "bearer token rejected"),
            }
            let status = e.status();
            req.local_cache(|| Rejection(Some(e.clone())));
            Outcome::Error((status, e))
        }
    }
}

#[rocket::async_trait]
impl<'r, E> FromRequest<'r> for Authenticated<E>
where
    E: DeserializeOwned + Send + Sync + 'static,
{
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, AuthError> {
        outcome(
            req,
            guarded(req, true).map(|claims| Authenticated { claims }),
        )
    }
}

#[rocket::async_trait]
impl<'r, E> FromRequest<'r> for Verified<E>
where
    E: DeserializeOwned + Send + Sync + 'static,
{
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, AuthError> {
        outcome(req, guarded(req, false).map(|claims| Verified { claims }))
    }
}

// Beside the guards rather than in `error.rs`: the realm comes from the `Revoker`, and
// `revoker.rs` imports `error.rs`, which therefore imports nothing of this crate.

/// Responds with the status (401, or 400 for a malformed request), the RFC 6750 challenge
/// and the JSON body, so a handler taking
/// `Result<Authenticated, AuthError>` can return the error as is.
impl<'r> Responder<'r, 'static> for AuthError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let realm = Revoker::fetch(req.rocket())
            .map(|r| r.realm().to_owned())
            .unwrap_or_else(|| "api".to_owned());
        let mut res = Response::new();
        self.apply(&realm, &mut res);
        Ok(res)
    }
}
