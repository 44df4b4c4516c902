//! Optional routes: RFC 7009 revocation and RFC 7662 introspection, and health.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rocket::form::{Form, FromForm, Lenient};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::serde::json::serde_json::{self, Map, Value};
use rocket::{get, post, Route};
use rocket_revoke_core::{Claims, TokenKind};

use crate::error::{AuthError, Error};
use crate::revoker::{Health, PublicHealth, Revoker};

/// The OAuth routes, to mount at `/oauth`:
///
/// - `POST /oauth/revoke`: RFC 7009 token revocation. Form fields `token` (required) and
///   `token_type_hint` (`access_token` or `refresh_token`; accepted and not needed, since
///   tokens say their kind). Holding a validly signed token is the authority to revoke it:
///   no client credentials are asked for. An access token's `jti` is revoked; a refresh
///   token's whole session family is revoked (RFC 7009 §2.1: the access tokens of the same
///   grant should go too). Answers 200 with an empty body for unknown, expired, forged or
///   already revoked tokens alike (RFC 7009 §2.2); 400 `invalid_request` without `token`;
///   503 `temporarily_unavailable` when the database cannot commit.
/// - `POST /oauth/introspect`: RFC 7662 introspection, for the client configured with
///   `revoke.client_id` / `revoke.client_secret` (HTTP Basic, RFC 6749 §2.3.1). Form field
///   `token`. Answers `{"active": false}` for an invalid, expired, revoked or spent token,
///   and `{"active": true, "token_type": "Bearer", ...claims}` otherwise. Wrong or missing
///   client credentials: 401 `invalid_client` with a `Basic` challenge.
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
///         .mount("/oauth", rocket_revoke::oauth_routes())
/// }
/// ```
pub fn oauth_routes() -> Vec<Route> {
    rocket::routes![revoke, introspect]
}

/// The health routes, to mount at `/`:
///
/// - `GET /health`: public, for load balancers and uptime checks:
///   [`PublicHealth`](crate::PublicHealth), `{"status":"ok"|"degraded","staleness_ms":…}`.
/// - `GET /health/details`: everything [`Health`](crate::Health) holds (sync errors with
///   their database text, JWKS URL and `kid`s, set sizes), for the client configured with
///   `revoke.client_id` / `revoke.client_secret` (HTTP Basic, as introspection); 401 with a
///   `Basic` challenge otherwise. The same figures, without text, are in the metrics.
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
///         .mount("/", rocket_revoke::health_routes())
/// }
/// ```
pub fn health_routes() -> Vec<Route> {
    rocket::routes![health, health_details]
}

#[get("/health")]
fn health(revoker: Revoker) -> PublicHealth {
    revoker.public_health()
}

#[get("/health/details")]
fn health_details(
    revoker: Revoker,
    client: Result<IntrospectionClient, ()>,
) -> Result<Health, OAuthJson> {
    if client.is_err() {
        return Err(invalid_client(&revoker));
    }
    Ok(revoker.health())
}

/// 401 `invalid_client` with a `Basic` challenge (RFC 6749 §5.2).
fn invalid_client(revoker: &Revoker) -> OAuthJson {
    let mut res = OAuthJson::error(
        Status::Unauthorized,
        "invalid_client",
        "client authentication failed",
    );
    res.challenge = Some(format!("Basic realm=\"{}\"", revoker.realm()));
    res
}

/// The form of both OAuth routes.
#[derive(Debug, FromForm)]
struct TokenForm<'r> {
    token: Option<&'r str>,
    token_type_hint: Option<&'r str>,
}

/// A JSON answer with a status, `Cache-Control: no-store` and optional challenge.
struct OAuthJson {
    status: Status,
    body: Option<Value>,
    challenge: Option<String>,
}

impl OAuthJson {
    fn ok(body: Option<Value>) -> Self {
        OAuthJson {
            status: Status::Ok,
            body,
            challenge: None,
        }
    }

    fn error(status: Status, error: &str, description: &str) -> Self {
        OAuthJson {
            status,
            body: Some(serde_json::json!({ "error": error, "error_description": description })),
            challenge: None,
        }
    }
}

impl<'r> Responder<'r, 'static> for OAuthJson {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.status(self.status)
            .header(Header::new("Cache-Control", "no-store"))
            .header(Header::new("Pragma", "no-cache"));
        if let Some(challenge) = self.challenge {
            res.header(Header::new("WWW-Authenticate", challenge));
        }
        if let Some(body) = self.body {
            let body = body.to_string();
            res.header(ContentType::JSON)
                .sized_body(body.len(), std::io::Cursor::new(body));
        }
        Ok(res.finalize())
    }
}

fn token_of<'r>(form: &Option<Form<Lenient<TokenForm<'r>>>>) -> Option<&'r str> {
    form.as_ref()
        .and_then(|f| f.token)
        .filter(|t| !t.is_empty())
}

#[post("/revoke", data = "<form>")]
async fn revoke(revoker: Revoker, form: Option<Form<Lenient<TokenForm<'_>>>>) -> OAuthJson {
    let Some(token) = token_of(&form) else {
        return OAuthJson::error(
            Status::BadRequest,
            "invalid_request",
            "the `token` parameter is required",
        );
    };
    if let Some(hint) = form.as_ref().and_then(|f| f.token_type_hint) {
        tracing::trace!(
            hint,
            "token_type_hint (not needed: tokens carry their kind)"
        );
    }
    match revoker
        .revoke_token(
            token,
            false,
            Some("revoked by its holder (RFC 7009)"),
            Some("oauth"),
        )
        .await
    {
        Ok(_) | Err(Error::Token(_)) => OAuthJson::ok(None),
        Err(e) => {
            tracing::error!(error = %e, "RFC 7009 revocation failed");
            OAuthJson::error(
                Status::ServiceUnavailable,
                "temporarily_unavailable",
                "the revocation could not be recorded; retry",
            )
        }
    }
}

/// HTTP Basic client credentials, checked against the configuration: the introspection
/// client, which also reads the health details.
struct IntrospectionClient;

/// Equal-time comparison (the time does not depend on where the inputs differ).
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

fn form_decode(s: &str) -> Option<String> {
    rocket::http::RawStr::new(s)
        .url_decode()
        .ok()
        .map(|c| c.into_owned())
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for IntrospectionClient {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some(revoker) = Revoker::fetch(req.rocket()) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let config = revoker.config();
        let (Some(id), Some(secret)) = (&config.client_id, &config.client_secret) else {
            return Outcome::Error((Status::Unauthorized, ()));
        };
        let mut values = req.headers().get("Authorization");
        let (Some(value), None) = (values.next(), values.next()) else {
            return Outcome::Error((Status::Unauthorized, ()));
        };
        let ok = value
            .trim()
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| {
                let (u, p) = pair.split_once(':')?;
                Some((form_decode(u)?, form_decode(p)?))
            })
            .is_some_and(|(u, p)| {
                // Both compared, always.
                let user_ok = same(u.as_bytes(), id.as_bytes());
                let pass_ok = same(p.as_bytes(), secret.as_bytes());
                user_ok & pass_ok
            });
        if ok {
            Outcome::Success(IntrospectionClient)
        } else {
            Outcome::Error((Status::Unauthorized, ()))
        }
    }
}

#[post("/introspect", data = "<form>")]
async fn introspect(
    revoker: Revoker,
    client: Result<IntrospectionClient, ()>,
    form: Option<Form<Lenient<TokenForm<'_>>>>,
) -> OAuthJson {
    if client.is_err() {
        return invalid_client(&revoker);
    }
    let Some(token) = token_of(&form) else {
        return OAuthJson::error(
            Status::BadRequest,
            "invalid_request",
            "the `token` parameter is required",
        );
    };
    let inactive = || OAuthJson::ok(Some(serde_json::json!({ "active": false })));
    let claims: Claims<Map<String, Value>> = match revoker.authenticate(token) {
        Ok(c) => c,
        // The set is too old to vouch for the token: fail closed, as the guard does.
        Err(AuthError::Stale) => {
            return OAuthJson::error(
                Status::ServiceUnavailable,
                "temporarily_unavailable",
                "the revocation set is stale; retry",
            )
        }
        Err(_) => return inactive(),
    };
    if claims.kind == Some(TokenKind::Refresh) {
        // A spent refresh token is no longer usable; ask the registry.
        if let Some(jti) = claims.jti.as_deref() {
            match revoker
                .store()
                .token(jti, revoker.engine().now_secs())
                .await
            {
                Ok(Some(info)) if info.spent_at.is_some() => return inactive(),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "introspection: registry lookup failed");
                    return OAuthJson::error(
                        Status::ServiceUnavailable,
                        "temporarily_unavailable",
                        "the token registry is unavailable; retry",
                    );
                }
            }
        }
    }
    let mut body = match serde_json::to_value(&claims) {
        Ok(Value::Object(map)) => map,
        _ => return inactive(),
    };
    body.insert("active".into(), Value::Bool(true));
    body.insert("token_type".into(), Value::String("Bearer".into()));
    OAuthJson::ok(Some(Value::Object(body)))
}
