//! The app `cargo xtask bench` measures: one Rocket app, the same tokens, four ways to guard
//! a route, so that the only difference between them is how revocation is checked.
//!
//! | route | guard |
//! | --- | --- |
//! | `GET /open` | none |
//! | `GET /me` | rocket-revoke's `Authenticated` (in-memory set, no I/O) |
//! | `GET /me/sql` | verify with the same `Verifier`, then `SELECT 1 FROM revoke_revocations WHERE scope='jti' AND key=$1 AND iss=''` on the same pool |
//! | `GET /me/redis` | verify with the same `Verifier`, then a Redis `GET revoked:jti:<jti>` (127.0.0.1:6379, `ConnectionManager`) |
//!
//! Helpers for the benchmark: `POST /auth/login` (as the demo: `{"username","password"}`),
//! `POST /bench/revoke` (revokes a fresh random jti: write throughput), `DELETE /auth/token`
//! (revokes the presented token), `GET /health`.
//!
//! Run from the repository root (it reads `Rocket.toml`; the backend follows the scheme of
//! `databases.revoke.url`):
//!
//! ```sh
//! cargo build --release -p revoke-tests --bin bench_app
//! ROCKET_PORT=8100 ./target/release/bench_app
//! # propagation while something else writes: A revokes, B is polled until it answers 401
//! ./target/release/bench_app probe --a http://127.0.0.1:8100 --b http://127.0.0.1:8101
//! ```
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use rocket::fairing::AdHoc;
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{json, Json, Value};
use rocket::{delete, get, post, routes, Build, Rocket};
use rocket_db_pools::{sqlx, Database};
use rocket_revoke::{AuthError, Authenticated, Health, RevokeRequest, Revoker};
use rocket_revoke_core::{Claims, NoExtra, TokenKind};
use serde::Deserialize;

// The same `revoke` database types as the demo, so both pick the backend the same way.
use revoke_demo::{PgDb, SqliteDb};

/// The Redis connection of the `/me/redis` guard (absent when Redis was unreachable).
struct RedisConn(redis::aio::ConnectionManager);

#[derive(Parser)]
/// Benchmark app (no subcommand: serve) and propagation probe.
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Times revocation propagation: log in on A, revoke on A, poll `/me` on B until 401.
    /// Prints one JSON line.
    Probe {
        /// Instance that revokes.
        #[arg(long)]
        a: String,
        /// Instance that is polled.
        #[arg(long)]
        b: String,
        /// How many revocations to time.
        #[arg(long, default_value_t = 100)]
        samples: usize,
        /// Give up on one sample after this many milliseconds.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        /// Wait a random 0..this many milliseconds between samples, so that samples do not
        /// phase-lock to B's poll interval (SQLite).
        #[arg(long, default_value_t = 250)]
        jitter_ms: u64,
    },
}

fn app(rocket: Rocket<Build>) -> Rocket<Build> {
    revoke_demo::attach_database(rocket)
        .attach(AdHoc::on_ignite("redis", |rocket| async move {
            let url = std::env::var("BENCH_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
            let conn = match redis::Client::open(url) {
                Ok(client) => redis::aio::ConnectionManager::new(client).await.ok(),
                Err(_) => None,
            };
            match conn {
                Some(conn) => rocket.manage(RedisConn(conn)),
                None => {
                    rocket::warn!("bench_app: Redis unreachable; /me/redis answers 503");
                    rocket
                }
            }
        }))
        .mount(
            "/",
            routes![
                open,
                me,
                me_sql,
                me_redis,
                login,
                revoke_random,
                delete_token,
                health
            ],
        )
}

/// The body every route answers with (the unguarded one with fixed values), so that the
/// routes differ only in their guard.
fn body<E>(claims: &Claims<E>) -> Json<Value> {
    Json(json!({ "sub": claims.sub, "jti": claims.jti, "fid": claims.fid, "exp": claims.exp }))
}

#[get("/open")]
fn open() -> Json<Value> {
    body(&Claims::<NoExtra> {
        sub: Some("anonymous".into()),
        jti: Some("00000000-0000-0000-0000-000000000000".into()),
        fid: Some("00000000-0000-0000-0000-000000000000".into()),
        exp: Some(0),
        ..Claims::default()
    })
}

#[get("/me")]
fn me(user: Authenticated) -> Json<Value> {
    body(user.claims())
}

#[get("/me/sql")]
fn me_sql(user: SqlChecked) -> Json<Value> {
    body(&user.0)
}

#[get("/me/redis")]
fn me_redis(user: RedisChecked) -> Json<Value> {
    body(&user.0)
}

/// Verifies the request's bearer token exactly as `Authenticated` does (same header rules,
/// same `Verifier`, refresh tokens refused), without the revocation check.
fn verified(req: &Request<'_>) -> Result<(Claims<NoExtra>, String), (Status, AuthError)> {
    let unauthorized = |e: AuthError| (Status::Unauthorized, e);
    let revoker = req
        .rocket()
        .state::<Revoker>()
        .ok_or((Status::InternalServerError, AuthError::NotAttached))?;
    let mut values = req.headers().get("Authorization");
    let value = values.next().ok_or(unauthorized(AuthError::Missing))?;
    if values.next().is_some() {
        return Err(unauthorized(AuthError::Ambiguous));
    }
    let token = Authenticated::bearer_token(value).map_err(unauthorized)?;
    let claims = revoker
        .verifier()
        .verify::<NoExtra>(token)
        .map_err(|e| unauthorized(e.into()))?;
    if claims.kind == Some(TokenKind::Refresh) {
        return Err(unauthorized(AuthError::RefreshToken));
    }
    let jti = claims.jti.clone().unwrap_or_default();
    Ok((claims, jti))
}

/// Baseline 1: a per-request SQL lookup on the app's pool.
struct SqlChecked(Claims<NoExtra>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SqlChecked {
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, AuthError> {
        let (claims, jti) = match verified(req) {
            Ok(v) => v,
            Err(e) => return Outcome::Error(e),
        };
        let found = if let Some(db) = SqliteDb::fetch(req.rocket()) {
            sqlx::query(
                "SELECT 1 FROM revoke_revocations WHERE scope = 'jti' AND key = ?1 AND iss = ''",
            )
            .bind(&jti)
            .fetch_optional(&**db)
            .await
            .map(|row| row.is_some())
        } else if let Some(db) = PgDb::fetch(req.rocket()) {
            sqlx::query(
                "SELECT 1 FROM revoke_revocations WHERE scope = 'jti' AND key = $1 AND iss = ''",
            )
            .bind(&jti)
            .fetch_optional(&**db)
            .await
            .map(|row| row.is_some())
        } else {
            return Outcome::Error((Status::InternalServerError, AuthError::NotAttached));
        };
        match found {
            Ok(false) => Outcome::Success(SqlChecked(claims)),
            Ok(true) => Outcome::Error((
                Status::Unauthorized,
                AuthError::Revoked(rocket_revoke_core::Scope::Jti),
            )),
            Err(_) => Outcome::Error((Status::ServiceUnavailable, AuthError::Stale)),
        }
    }
}

/// Baseline 2: a per-request Redis `GET`.
struct RedisChecked(Claims<NoExtra>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RedisChecked {
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, AuthError> {
        let (claims, jti) = match verified(req) {
            Ok(v) => v,
            Err(e) => return Outcome::Error(e),
        };
        let Some(RedisConn(conn)) = req.rocket().state::<RedisConn>() else {
            return Outcome::Error((Status::ServiceUnavailable, AuthError::Stale));
        };
        let mut conn = conn.clone();
        let found: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
            .arg(format!("revoked:jti:{jti}"))
            .query_async(&mut conn)
            .await;
        match found {
            Ok(None) => Outcome::Success(RedisChecked(claims)),
            Ok(Some(_)) => Outcome::Error((
                Status::Unauthorized,
                AuthError::Revoked(rocket_revoke_core::Scope::Jti),
            )),
            Err(_) => Outcome::Error((Status::ServiceUnavailable, AuthError::Stale)),
        }
    }
}

#[derive(Deserialize)]
struct Login<'r> {
    username: &'r str,
    password: &'r str,
}

#[post("/auth/login", data = "<body>")]
async fn login(revoker: Revoker, body: Json<Login<'_>>) -> Result<Json<Value>, Status> {
    if body.password != "password" {
        return Err(Status::Unauthorized);
    }
    let pair = revoker
        .issue(body.username, Some("bench"))
        .await
        .map_err(|_| Status::ServiceUnavailable)?;
    Ok(Json(json!(pair)))
}

/// Revokes a fresh random jti (one committed revocation per request).
#[post("/bench/revoke")]
async fn revoke_random(revoker: Revoker) -> Status {
    let jti = uuid::Uuid::new_v4().to_string();
    let req = RevokeRequest::jti(jti)
        .reason("bench")
        .expires_at(rocket_revoke_core::now_secs() + 3600);
    match revoker.revoke(req).await {
        Ok(_) => Status::NoContent,
        Err(_) => Status::ServiceUnavailable,
    }
}

#[delete("/auth/token")]
async fn delete_token(user: Authenticated, revoker: Revoker) -> Status {
    let Some(jti) = user.jti.as_deref() else {
        return Status::BadRequest;
    };
    let mut req = RevokeRequest::jti(jti).reason("logout");
    if let Some(exp) = user.exp {
        req = req.expires_at(exp);
    }
    match revoker.revoke(req).await {
        Ok(_) => Status::NoContent,
        Err(_) => Status::ServiceUnavailable,
    }
}

#[get("/health")]
fn health(revoker: Revoker) -> Health {
    revoker.health()
}

/// Propagation from `a` to `b`, `samples` times; prints a JSON line of quantiles (ms).
async fn probe(a: &str, b: &str, samples: usize, timeout_ms: u64, jitter_ms: u64) -> Result<()> {
    use revoke_tests::{login, me_status, quantile};
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let mut times = Vec::with_capacity(samples);
    let mut timeouts = 0usize;
    for i in 0..samples {
        let (access, _) = login(&client, a, ["alice", "bob", "carol"][i % 3]).await?;
        if me_status(&client, b, &access).await? != 200 {
            bail!("instance B rejected a fresh token");
        }
        let r = client
            .delete(format!("{a}/auth/token"))
            .bearer_auth(&access)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("revocation on A failed: {}", r.status());
        }
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_millis(timeout_ms);
        loop {
            if me_status(&client, b, &access).await? == 401 {
                times.push(t0.elapsed());
                break;
            }
            if Instant::now() > deadline {
                timeouts += 1;
                break;
            }
        }
        // Random phase against B's poll interval (SQLite): without it every sample starts
        // right after B's previous poll and measures the worst case.
        if jitter_ms > 0 {
            let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(jitter_ms)) as u64;
            tokio::time::sleep(Duration::from_millis(jitter)).await;
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{}",
        serde_json::json!({
            "samples": times.len(),
            "timeouts": timeouts,
            "p50_ms": ms(quantile(&times, 0.5)),
            "p90_ms": ms(quantile(&times, 0.9)),
            "p99_ms": ms(quantile(&times, 0.99)),
            "max_ms": ms(times.last().copied().unwrap_or_default()),
        })
    );
    Ok(())
}

#[rocket::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Probe {
            a,
            b,
            samples,
            timeout_ms,
            jitter_ms,
        }) => probe(&a, &b, samples, timeout_ms, jitter_ms).await,
        None => {
            app(rocket::build()).launch().await?;
            Ok(())
        }
    }
}
