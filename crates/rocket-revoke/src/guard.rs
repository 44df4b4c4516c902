//! Request guards: [`Authenticated`] and [`Verified`].

use std::ops::Deref;

use revoke_core::{Claims, NoExtra, TokenKind};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::de::DeserializeOwned;

use crate::{AuthError, Revoker};

/// The rejection of this request, kept so the fairing can turn Rocket's 401 into the RFC
/// 6750 response (guards cannot build responses themselves).
pub(crate) struct Rejection(pub(crate) Option<AuthError>);

/// A request guard for a verified, unrevoked access token: `Authorization: Bearer <jwt>`.
///
/// It verifies the token (signature, algorithm allow-list, `exp`/`nbf`, `iss`/`aud`,
/// required claims), refuses refresh tokens (`"kind": "refresh"`), checks the in-memory
/// revocation set (no I/O), and queues a last-seen sighting. Any failure is a 401 with an
/// RFC 6750 `WWW-Authenticate` header and a JSON body; see [`AuthError`].
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
                crate::fairing::missing(rocket, stringify!($t))
            }
        }
    };
}

claims_wrapper!(Authenticated);
claims_wrapper!(Verified);

/// The bearer token of `req`, or why there is none usable.
fn bearer<'r>(req: &'r Request<'_>) -> Result<&'r str, AuthError> {
    let mut values = req.headers().get("Authorization");
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::Ambiguous);
    }
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
    if token.is_empty() || token.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

/// Verifies the request's token; checks revocation when `check` is set.
fn authenticate<E: DeserializeOwned>(
    req: &Request<'_>,
    check: bool,
) -> Result<Claims<E>, AuthError> {
    let revoker = req
        .rocket()
        .state::<Revoker>()
        .ok_or(AuthError::NotAttached)?;
    let token = bearer(req)?;
    let claims = revoker.verifier().verify::<E>(token)?;
    if claims.kind == Some(TokenKind::Refresh) {
        return Err(AuthError::RefreshToken);
    }
    if check {
        if let Some(scope) = revoker.check(&claims) {
            return Err(AuthError::Revoked(scope));
        }
    }
    revoker.seen(&claims);
    Ok(claims)
}

fn outcome<T>(req: &Request<'_>, result: Result<T, AuthError>) -> Outcome<T, AuthError> {
    match result {
        Ok(v) => Outcome::Success(v),
        Err(e) => {
            match &e {
                AuthError::NotAttached => {
                    tracing::error!("rocket-revoke guard used without the Revoke fairing")
                }
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
            authenticate(req, true).map(|claims| Authenticated { claims }),
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
        outcome(
            req,
            authenticate(req, false).map(|claims| Verified { claims }),
        )
    }
}

/// Whether this request was rejected by one of the guards (and how).
pub(crate) fn rejection<'a>(req: &'a Request<'_>) -> Option<&'a AuthError> {
    req.local_cache(|| Rejection(None)).0.as_ref()
}
