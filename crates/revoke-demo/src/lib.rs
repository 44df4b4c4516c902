//! The rocket-revoke demo service: log in, call `/me`, log out, and see the old token
//! rejected.
//!
//! | method, path | what |
//! | --- | --- |
//! | `POST /auth/login` `{"username","password"}` | a token pair; users `alice`, `bob`, `carol`, password `password` |
//! | `POST /auth/refresh` `{"refresh_token"}` | rotates the pair; reusing a spent refresh token revokes the session (401) |
//! | `GET /me` (Bearer) | `{"sub","jti","fid","exp"}` |
//! | `DELETE /auth/token[?family=true]` (Bearer) | revokes the presented token (and its session family) |
//! | `DELETE /auth/sessions` (Bearer) | revokes every token of the caller |
//! | `POST /oauth/revoke` | RFC 7009 |
//! | `POST /oauth/introspect` | RFC 7662 (HTTP Basic client from `revoke.client_id`) |
//! | `GET /health` | public: `{"status","staleness_ms"}` |
//! | `GET /health/details` | sync, set, JWKS details (HTTP Basic client from `revoke.client_id`) |
//! | `GET /metrics` | OpenMetrics; **internal only**: keep it off the public listener (see the README) |
//!
//! The backend follows the scheme of `databases.revoke.url`: `rocket_db_pools` needs one
//! `Database` type per pool type, so there are two ([`SqliteDb`], [`PgDb`]), both named
//! `revoke`, and [`app`] attaches the one that fits the configured URL.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use rocket::fairing::AdHoc;
use rocket::http::Status;
use rocket::response::status::Custom;
use rocket::serde::json::{json, Json, Value};
use rocket::{catch, catchers, delete, get, post, routes, Build, Request, Rocket};
use rocket_db_pools::{sqlx, Database};
use rocket_revoke::{Authenticated, Error, Revoke, Revoker};
use serde::Deserialize;

/// The database on SQLite (any URL that does not start with `postgres`).
#[derive(Database)]
#[database("revoke")]
pub struct SqliteDb(sqlx::SqlitePool);

/// The database on PostgreSQL (`postgres://` or `postgresql://` URLs).
#[derive(Database)]
#[database("revoke")]
pub struct PgDb(sqlx::PgPool);

/// The demo users; every password is `password`.
pub const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// The service, configured from `Rocket.toml` and `ROCKET_*` variables.
pub fn rocket() -> Rocket<Build> {
    app(rocket::build())
}

/// Attaches the `revoke` database whose pool type matches the scheme of
/// `databases.revoke.url` (PostgreSQL or SQLite), and the rocket-revoke fairing on it.
pub fn attach_database(rocket: Rocket<Build>) -> Rocket<Build> {
    let url = rocket
        .figment()
        .extract_inner::<String>("databases.revoke.url")
        .unwrap_or_default();
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        rocket
            .attach(PgDb::init())
            .attach(Revoke::<PgDb>::fairing())
    } else {
        // Also when the URL is missing: the SQLite fairing then fails the launch naming it.
        rocket
            .attach(SqliteDb::init())
            .attach(Revoke::<SqliteDb>::fairing())
    }
}

/// The secrets `Rocket.toml` ships for debug builds: published in this repository, so no
/// other profile may launch with them ([`refuse_published_secrets`]).
pub const PUBLISHED_SECRETS: [&str; 2] = [
    "revoke-demo-secret-change-me-0123456789abcdef",
    "demo-gateway-secret",
];

/// Refuses to launch a profile other than `debug` (a release build's is `release`) with a
/// secret of [`PUBLISHED_SECRETS`], as Rocket does with a known `secret_key`: the error
/// says how to set one.
pub fn refuse_published_secrets(figment: &rocket::figment::Figment) -> Result<(), String> {
    let profile = figment.profile().as_str().as_str();
    if profile.eq_ignore_ascii_case(rocket::Config::DEBUG_PROFILE.as_str().as_str()) {
        return Ok(());
    }
    for key in ["secret", "client_secret"] {
        let value = figment
            .extract_inner::<String>(&format!("revoke.{key}"))
            .unwrap_or_default();
        if PUBLISHED_SECRETS.contains(&value.as_str()) {
            return Err(format!(
                "`revoke.{key}` is the demo's published one (Rocket.toml `[debug.revoke]`), which the `{profile}` profile refuses: set your own from the environment, ROCKET_REVOKE='{{secret=\"...\",client_id=\"...\",client_secret=\"...\"}}', with at least 32 random bytes each (for example `openssl rand -base64 48`)"
            ));
        }
    }
    Ok(())
}

/// Attaches the database, the rocket-revoke fairing and the routes to `rocket` (tests pass
/// `rocket::custom(figment)`).
pub fn app(rocket: Rocket<Build>) -> Rocket<Build> {
    let rocket = rocket.attach(AdHoc::try_on_ignite("published secrets", |rocket| async {
        match refuse_published_secrets(rocket.figment()) {
            Ok(()) => Ok(rocket),
            Err(message) => {
                rocket::error!("{message}");
                Err(rocket)
            }
        }
    }));
    attach_database(rocket)
        .mount(
            "/",
            routes![login, refresh, me, delete_token, delete_sessions],
        )
        .mount("/", rocket_revoke::health_routes())
        .mount("/", rocket_revoke::metrics_route())
        .mount("/oauth", rocket_revoke::oauth_routes())
        .register("/", catchers![default_catcher])
}

/// An error answer: a status and `{"error","error_description"}`, with `Retry-After` when
/// the same request may succeed a moment later.
struct JsonError {
    body: Custom<Json<Value>>,
    retry_after: Option<u32>,
}

impl<'r> rocket::response::Responder<'r, 'static> for JsonError {
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'static> {
        let mut res = self.body.respond_to(req)?;
        if let Some(secs) = self.retry_after {
            res.set_raw_header("Retry-After", secs.to_string());
        }
        Ok(res)
    }
}

/// A token response (or its error): never cached (RFC 6749 §5.1).
struct NoStore<R>(R);

impl<'r, 'o: 'r, R: rocket::response::Responder<'r, 'o>> rocket::response::Responder<'r, 'o>
    for NoStore<R>
{
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'o> {
        let mut res = self.0.respond_to(req)?;
        res.set_raw_header("Cache-Control", "no-store");
        res.set_raw_header("Pragma", "no-cache");
        Ok(res)
    }
}

/// Compares in time that depends on the lengths only, so a wrong password takes as long
/// wherever it differs.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

fn error(status: Status, error: &str, description: &str) -> JsonError {
    JsonError {
        body: Custom(
            status,
            Json(json!({ "error": error, "error_description": description })),
        ),
        retry_after: None,
    }
}

fn server_error(e: &Error) -> JsonError {
    rocket::error!("revoke-demo: {}", e);
    let description = match e {
        Error::Engine(rocket_revoke_core::Error::Overloaded { .. }) => {
            "too many revocations are waiting to be written; retry in a moment"
        }
        _ => "the token store is unavailable; retry",
    };
    JsonError {
        retry_after: e.retry_after(),
        ..error(
            Status::ServiceUnavailable,
            "temporarily_unavailable",
            description,
        )
    }
}

#[derive(Deserialize)]
struct Login<'r> {
    username: &'r str,
    password: &'r str,
}

#[post("/auth/login", data = "<body>")]
async fn login(revoker: Revoker, body: Json<Login<'_>>) -> NoStore<Result<Json<Value>, JsonError>> {
    NoStore(login_pair(&revoker, &body).await)
}

async fn login_pair(revoker: &Revoker, body: &Login<'_>) -> Result<Json<Value>, JsonError> {
    // Both checks always run: the answer's timing does not tell a known user apart.
    let known = USERS.iter().fold(false, |k, u| k | same(u, body.username));
    let password_ok = same(body.password, "password");
    if !(known & password_ok) {
        return Err(error(
            Status::Unauthorized,
            "invalid_grant",
            "invalid username or password",
        ));
    }
    let pair = revoker
        .issue(body.username, Some("revoke-demo login"))
        .await
        .map_err(|e| server_error(&e))?;
    Ok(Json(json!(pair)))
}

#[derive(Deserialize)]
struct Refresh<'r> {
    refresh_token: &'r str,
}

#[post("/auth/refresh", data = "<body>")]
async fn refresh(
    revoker: Revoker,
    body: Json<Refresh<'_>>,
) -> NoStore<Result<Json<Value>, JsonError>> {
    NoStore(match revoker.refresh(body.refresh_token).await {
        Ok(pair) => Ok(Json(json!(pair))),
        Err(Error::Refresh(rocket_revoke_core::RefreshError::Store(e))) => {
            Err(server_error(&Error::Engine(e)))
        }
        Err(Error::Refresh(e)) => Err(error(Status::Unauthorized, "invalid_grant", &e.to_string())),
        Err(e) => Err(server_error(&e)),
    })
}

#[get("/me")]
fn me(user: Authenticated) -> Json<Value> {
    Json(json!({ "sub": user.sub, "jti": user.jti, "fid": user.fid, "exp": user.exp }))
}

#[delete("/auth/token?<family>")]
async fn delete_token(
    user: Authenticated,
    revoker: Revoker,
    family: Option<bool>,
) -> Result<Json<Value>, JsonError> {
    let actor = user.sub.as_deref();
    let mut revoked = Vec::new();
    if let Some(jti) = user.jti.as_deref() {
        let mut req = rocket_revoke::RevokeRequest::jti(jti).reason("logout");
        if let Some(exp) = user.exp {
            req = req.expires_at(exp);
        }
        if let Some(actor) = actor {
            req = req.actor(actor);
        }
        revoker.revoke(req).await.map_err(|e| server_error(&e))?;
        revoked.push("jti");
    }
    if family == Some(true) {
        if let Some(fid) = user.fid.as_deref() {
            let mut req = rocket_revoke::RevokeRequest::family(fid).reason("logout (session)");
            if let Some(actor) = actor {
                req = req.actor(actor);
            }
            revoker.revoke(req).await.map_err(|e| server_error(&e))?;
            revoked.push("family");
        }
    }
    Ok(Json(json!({ "revoked": revoked })))
}

#[delete("/auth/sessions")]
async fn delete_sessions(user: Authenticated, revoker: Revoker) -> Result<Json<Value>, JsonError> {
    let sub = user.sub.as_deref().unwrap_or_default();
    revoker
        .revoke(
            rocket_revoke::RevokeRequest::subject(sub)
                .reason("logout everywhere")
                .actor(sub),
        )
        .await
        .map_err(|e| server_error(&e))?;
    Ok(Json(json!({ "revoked": ["subject"] })))
}

#[catch(default)]
fn default_catcher(status: Status, _req: &Request<'_>) -> JsonError {
    let reason = status.reason_lossy();
    error(status, &reason.to_lowercase().replace(' ', "_"), reason)
}
