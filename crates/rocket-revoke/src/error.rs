//! Errors: per-request ([`AuthError`], the guards' rejection, and the request-local
//! [`Rejection`] the fairing reads back) and per-operation ([`Error`]).
//!
//! A leaf: nothing else of this crate is imported here.

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::Response;
use rocket_revoke_core::{RefreshError, Scope, VerifyError};

/// Why a request guard rejected a request.
///
/// Every variant but [`AuthError::NotAttached`] and [`AuthError::Stale`] is the client's
/// fault. A token that does not verify, or is revoked, answers `401 Unauthorized` with an
/// RFC 6750 challenge and a JSON body:
///
/// ```text
/// WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="token revoked (family)"
/// {"error":"invalid_token","error_description":"token revoked (family)"}
/// ```
///
/// A malformed request, one `Authorization` header that is not `Bearer <token>` or several
/// of them ([`AuthError::MalformedHeader`], [`AuthError::Ambiguous`]), answers
/// `400 Bad Request` with `error="invalid_request"` (RFC 6750 §3.1) in the challenge and
/// the body.
///
/// A request without credentials, or with another scheme such as `Basic`
/// ([`AuthError::Missing`], [`AuthError::Scheme`]), gets the bare challenge
/// `Bearer realm="api"` (RFC 6750 §3.1: no error code when the client did not try a bearer
/// token) and `{"error":"unauthorized", ...}`.
///
/// [`AuthError::Stale`] is the server's state, not the token's: `503 Service Unavailable`
/// with `Retry-After` and `{"error":"temporarily_unavailable", ...}`, no challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header.
    Missing,
    /// More than one `Authorization` header (or, with `token_query`, more than one token
    /// parameter).
    Ambiguous,
    /// The `Authorization` header uses a scheme other than `Bearer`.
    Scheme,
    /// `Bearer` without a single well-formed token after it.
    MalformedHeader,
    /// The token did not verify.
    Invalid(VerifyError),
    /// A refresh token was presented where an access token is required.
    RefreshToken,
    /// The token is revoked; holds the scope that matched.
    Revoked(Scope),
    /// The `Revoke` fairing is not attached (a server fault; the guards' `Sentinel`
    /// normally stops such an app from launching).
    NotAttached,
    /// The token verifies and is not in the revocation set, but the set has not been synced
    /// with the database for longer than `max_staleness_ms`: the guard fails closed (503).
    Stale,
}

const STALE: &str =
    "revocation data is stale: the database has been unreachable for too long; retry later";

fn revoked_description(scope: Scope) -> &'static str {
    match scope {
        Scope::Jti => "token revoked (jti)",
        Scope::Subject => "token revoked (subject)",
        Scope::Family => "token revoked (family)",
        Scope::Global => "token revoked (global)",
    }
}

/// The [`description`](AuthError::description): each message is written once.
impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for AuthError {}

impl From<VerifyError> for AuthError {
    fn from(e: VerifyError) -> Self {
        AuthError::Invalid(e)
    }
}

impl AuthError {
    /// The HTTP status: 401; 400 for a malformed or repeated `Authorization` header, 500
    /// for [`AuthError::NotAttached`], 503 for [`AuthError::Stale`].
    pub fn status(&self) -> Status {
        match self {
            AuthError::Ambiguous | AuthError::MalformedHeader => Status::BadRequest,
            AuthError::NotAttached => Status::InternalServerError,
            AuthError::Stale => Status::ServiceUnavailable,
            _ => Status::Unauthorized,
        }
    }

    /// The RFC 6750 error code: `invalid_request` for a malformed request, `invalid_token`
    /// for a token that is refused; `None` when no bearer token was offered at all, and for
    /// the server-side failures.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing | AuthError::Scheme | AuthError::NotAttached | AuthError::Stale => {
                None
            }
            AuthError::Ambiguous | AuthError::MalformedHeader => Some("invalid_request"),
            _ => Some("invalid_token"),
        }
    }

    /// Short text safe to show the client (never echoes token content).
    pub fn description(&self) -> &'static str {
        match self {
            AuthError::Missing => "bearer token required",
            AuthError::Ambiguous => "several authorization headers",
            AuthError::Scheme => "authorization scheme is not bearer",
            AuthError::MalformedHeader => "malformed authorization header",
            AuthError::Invalid(e) => e.description(),
            AuthError::RefreshToken => "refresh token not accepted here",
            AuthError::Revoked(scope) => revoked_description(*scope),
            AuthError::NotAttached => "token checking is not configured",
            AuthError::Stale => STALE,
        }
    }

    /// The `WWW-Authenticate` value for `realm`.
    pub fn challenge(&self, realm: &str) -> String {
        match self.code() {
            None => format!("Bearer realm=\"{realm}\""),
            Some(code) => format!(
                "Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{}\"",
                self.description()
            ),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let error = match self {
            AuthError::NotAttached => "server_error",
            AuthError::Stale => "temporarily_unavailable",
            _ => self.code().unwrap_or("unauthorized"),
        };
        serde_json::json!({ "error": error, "error_description": self.description() }).to_string()
    }

    /// Rewrites `res` into this rejection: status, challenge, JSON body.
    pub(crate) fn apply(&self, realm: &str, res: &mut Response<'_>) {
        let body = self.body();
        res.set_status(self.status());
        if matches!(self.status(), Status::Unauthorized | Status::BadRequest) {
            res.set_header(Header::new("WWW-Authenticate", self.challenge(realm)));
        }
        if self.status() == Status::ServiceUnavailable {
            res.set_header(Header::new("Retry-After", "1"));
        }
        res.set_header(ContentType::JSON);
        res.set_header(Header::new("Cache-Control", "no-store"));
        res.set_sized_body(body.len(), Cursor::new(body));
    }
}

/// The rejection of this request, kept so the fairing can turn Rocket's 401 (or 400) into
/// the RFC 6750 response (guards cannot build responses themselves).
pub(crate) struct Rejection(pub(crate) Option<AuthError>);

/// Whether this request was rejected by one of the guards (and how).
pub(crate) fn rejection<'a>(req: &'a Request<'_>) -> Option<&'a AuthError> {
    req.local_cache(|| Rejection(None)).0.as_ref()
}

/// An error from a [`Revoker`](crate::Revoker) operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token given to [`Revoker::revoke_token`](crate::Revoker::revoke_token) did not verify.
    #[error("invalid token: {0}")]
    Token(#[from] VerifyError),
    /// No signing key is configured, so the app cannot mint tokens.
    #[error("no token issuer configured: set `revoke.secret` (HS*) or `revoke.private_key_pem`")]
    NoIssuer,
    /// A refresh was refused.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// The store or engine failed; nothing was changed.
    #[error(transparent)]
    Engine(#[from] rocket_revoke_core::Error),
    /// The revocation set has not been synced for longer than `max_staleness_ms`: refresh
    /// and introspection fail closed, as the guard does (answer 503).
    #[error("{}", STALE)]
    Stale,
}

impl Error {
    /// For a server-side condition that passes on its own, the seconds a client should wait
    /// before sending the same request again: the write queue is full
    /// ([`rocket_revoke_core::Error::Overloaded`], see `write_queue`) or the set is stale
    /// ([`Error::Stale`]). Answer such an error `503 Service Unavailable` with this as
    /// `Retry-After` and `{"error":"temporarily_unavailable",...}`. `None` for every other
    /// error.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Error::Engine(rocket_revoke_core::Error::Overloaded { .. }) | Error::Stale => Some(1),
            _ => None,
        }
    }
}
