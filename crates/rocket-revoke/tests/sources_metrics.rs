//! Token sources (header, cookie, query) and the Prometheus metrics route, over HTTP with
//! Rocket's local client on SQLite (neither depends on the backend).

mod common;

use common::TestDb;
use jsonwebtoken::{EncodingKey, Header as JwtHeader};
use rocket::figment::Figment;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};
use rocket::{get, routes};
use rocket_db_pools::{sqlx, Database};
use rocket_revoke::{Authenticated, Revoke, RevokeRequest, Revoker};
use rocket_revoke_core::now_secs;

const SECRET: &str = "sources-test-secret-0123456789abcdef";

#[derive(Database)]
#[database("revoke")]
struct Db(sqlx::SqlitePool);

#[get("/me")]
fn me(user: Authenticated) -> String {
    user.sub.clone().unwrap_or_default()
}

fn token(sub: &str) -> String {
    let now = now_secs();
    let claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": sub,
        "iat": now,
        "exp": now + 600,
    });
    jsonwebtoken::encode(
        &JwtHeader::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).expect("key"),
    )
    .expect("sign")
}

async fn client(db: &TestDb, extra: Value) -> Client {
    let mut table = json!({ "secret": SECRET, "poll_interval_ms": 20 });
    if let (Some(table), Some(extra)) = (table.as_object_mut(), extra.as_object()) {
        table.extend(extra.clone());
    }
    let figment: Figment = db.figment().merge(("revoke", table));
    let rocket = rocket::custom(figment)
        .attach(Db::init())
        .attach(Revoke::<Db>::fairing())
        .mount("/", routes![me])
        .mount("/", rocket_revoke::metrics_route());
    Client::tracked(rocket).await.expect("valid rocket")
}

async fn status_and_body(req: rocket::local::asynchronous::LocalRequest<'_>) -> (Status, String) {
    let res = req.dispatch().await;
    let status = res.status();
    (status, res.into_string().await.unwrap_or_default())
}

#[rocket::async_test]
async fn cookie_and_query_are_ignored_unless_configured() {
    let db = TestDb::sqlite().await;
    let client = client(&db, json!({})).await;
    let t = token("alice");
    let (status, _) = status_and_body(
        client
            .get("/me")
            .cookie(Cookie::new("access_token", t.clone())),
    )
    .await;
    assert_eq!(
        status,
        Status::Unauthorized,
        "cookie read without token_cookie"
    );
    let (status, _) = status_and_body(client.get(format!("/me?access_token={t}"))).await;
    assert_eq!(
        status,
        Status::Unauthorized,
        "query read without token_query"
    );
    let (status, body) = status_and_body(
        client
            .get("/me")
            .header(Header::new("Authorization", format!("Bearer {t}"))),
    )
    .await;
    assert_eq!((status, body.as_str()), (Status::Ok, "alice"));
    db.cleanup().await;
}

#[rocket::async_test]
async fn a_configured_cookie_carries_the_token_and_is_checked_like_a_header() {
    let db = TestDb::sqlite().await;
    let client = client(&db, json!({ "token_cookie": "access_token" })).await;
    let t = token("bob");
    let (status, body) = status_and_body(
        client
            .get("/me")
            .cookie(Cookie::new("access_token", t.clone())),
    )
    .await;
    assert_eq!((status, body.as_str()), (Status::Ok, "bob"));

    // Another cookie name, an empty cookie and a forged cookie are all 401s with the
    // RFC 6750 challenge, never a 5xx.
    for (name, value, expected) in [
        ("other", t.clone(), "bearer token required"),
        ("access_token", String::new(), "bearer token required"),
        ("access_token", "not.a.jwt".to_owned(), "malformed token"),
        ("access_token", format!("{t}x"), "invalid signature"),
    ] {
        let res = client
            .get("/me")
            .cookie(Cookie::new(name, value))
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Unauthorized, "{name}");
        let challenge = res
            .headers()
            .get_one("WWW-Authenticate")
            .unwrap_or_default();
        assert!(challenge.starts_with("Bearer realm="), "{challenge}");
        let body: Value = res.into_json().await.expect("json body");
        assert_eq!(body["error_description"], expected, "{name}");
    }

    // The header wins over the cookie: a bad header is not rescued by a good cookie.
    let res = client
        .get("/me")
        .header(Header::new("Authorization", "Bearer forged.token.here"))
        .cookie(Cookie::new("access_token", t.clone()))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Unauthorized);

    // A revoked token is refused from the cookie too.
    let revoker = client.rocket().state::<Revoker>().expect("revoker").clone();
    revoker
        .revoke(RevokeRequest::subject("bob").actor("test"))
        .await
        .expect("revoke");
    let res = client
        .get("/me")
        .cookie(Cookie::new("access_token", t))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Unauthorized);
    let body: Value = res.into_json().await.expect("json body");
    assert_eq!(body["error_description"], "token revoked (subject)");
    db.cleanup().await;
}

#[rocket::async_test]
async fn a_configured_query_parameter_carries_the_token_once() {
    let db = TestDb::sqlite().await;
    let client = client(&db, json!({ "token_query": "access_token" })).await;
    let t = token("carol");
    let (status, body) = status_and_body(client.get(format!("/me?access_token={t}"))).await;
    assert_eq!((status, body.as_str()), (Status::Ok, "carol"));
    let (status, body) =
        status_and_body(client.get(format!("/me?access_token={t}&access_token={t}"))).await;
    // RFC 6750 §3.1: a repeated parameter is an invalid request.
    assert_eq!(status, Status::BadRequest, "{body}");
    assert!(
        body.contains("invalid_request") && body.contains("several"),
        "{body}"
    );
    let (status, _) = status_and_body(client.get(format!("/me?token={t}"))).await;
    assert_eq!(status, Status::Unauthorized);
    db.cleanup().await;
}

#[rocket::async_test]
async fn bad_source_names_fail_the_launch_naming_the_key() {
    let db = TestDb::sqlite().await;
    for (key, value) in [
        ("token_cookie", "bad name"),
        ("token_cookie", ""),
        ("token_query", "a=b"),
    ] {
        let figment = db
            .figment()
            .merge(("revoke", json!({ "secret": SECRET, key: value })));
        let launched = rocket::custom(figment)
            .attach(Db::init())
            .attach(Revoke::<Db>::fairing())
            .ignite()
            .await
            // Reading a launch error marks it handled (Rocket panics on dropping an unread one).
            .map_err(|e| e.to_string());
        assert!(launched.is_err(), "{key} = {value:?} must fail the launch");
        let config = rocket_revoke::RevokeConfig::from_figment(
            &Figment::new().merge(("revoke", json!({ "secret": SECRET, key: value }))),
        );
        let message = config.expect_err("invalid").to_string();
        assert!(message.contains(key), "{message}");
    }
    db.cleanup().await;
}

/// The value of the first sample line of `metric` with `labels` (e.g. `{reason="expired"}`).
fn sample(text: &str, metric: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{metric}{labels} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[rocket::async_test]
async fn metrics_count_checks_rejections_revocations_and_sync() {
    let db = TestDb::sqlite().await;
    let client = client(&db, json!({})).await;
    let good = token("dave");
    for _ in 0..3 {
        let res = client
            .get("/me")
            .header(Header::new("Authorization", format!("Bearer {good}")))
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Ok);
    }
    assert_eq!(
        client.get("/me").dispatch().await.status(),
        Status::Unauthorized
    );
    let res = client
        .get("/me")
        .header(Header::new("Authorization", "Bearer a.b.c"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Unauthorized);
    let revoker = client.rocket().state::<Revoker>().expect("revoker").clone();
    revoker
        .revoke(RevokeRequest::subject("dave"))
        .await
        .expect("revoke");
    let res = client
        .get("/me")
        .header(Header::new("Authorization", format!("Bearer {good}")))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Unauthorized);

    let res = client.get("/metrics").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    let content_type = res.content_type().expect("content type");
    assert_eq!(
        (content_type.top().as_str(), content_type.sub().as_str()),
        ("application", "openmetrics-text")
    );
    assert_ne!(content_type, ContentType::JSON);
    let text = res.into_string().await.expect("body");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        sample(&text, "revoke_checks_total", ""),
        Some(6.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "revoke_rejections_total", "{reason=\"missing\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "revoke_rejections_total", "{reason=\"malformed\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "revoke_rejections_total",
            "{reason=\"revoked_subject\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "revoke_rejections_total", "{reason=\"expired\"}"),
        Some(0.0),
        "every reason is exported from the start: {text}"
    );
    assert_eq!(
        sample(&text, "revoke_revocations_total", "{scope=\"subject\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "revoke_set_entries", "{scope=\"subject\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "revoke_sync_cursor", "").is_some_and(|c| c >= 1.0),
        "{text}"
    );
    assert!(text.contains("revoke_sync_lag_seconds_bucket"), "{text}");
    assert!(text.contains("revoke_sync_errors_total"), "{text}");
    // Nothing a client sent is in the metrics.
    assert!(!text.contains(&good), "token leaked into metrics");
    assert_eq!(revoker.metrics().checks(), 6);
    assert_eq!(revoker.metrics().rejections("revoked_subject"), 1);
    db.cleanup().await;
}

#[rocket::async_test]
async fn sync_lag_is_observed_for_revocations_made_elsewhere() {
    let db = TestDb::sqlite().await;
    let client = client(&db, json!({})).await;
    // Another process (here: another engine on the same file) revokes; this instance's
    // sync applies it and records the lag.
    let other = rocket_revoke_core::store::SqliteStore::connect(&db.url())
        .await
        .expect("connect");
    let engine = rocket_revoke_core::Engine::new(std::sync::Arc::new(other), Default::default())
        .await
        .expect("engine");
    engine
        .revoke(rocket_revoke_core::RevokeRequest::jti("elsewhere"))
        .await
        .expect("revoke");
    let revoker = client.rocket().state::<Revoker>().expect("revoker").clone();
    let applied = common::eventually(std::time::Duration::from_secs(5), || {
        let revoker = revoker.clone();
        async move { revoker.status().applied >= 1 }
    })
    .await;
    assert!(applied, "{:?}", revoker.status());
    let text = client
        .get("/metrics")
        .dispatch()
        .await
        .into_string()
        .await
        .expect("body");
    assert_eq!(
        sample(&text, "revoke_sync_lag_seconds_count", ""),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "revoke_sync_errors_total", ""),
        Some(0.0),
        "{text}"
    );
    db.cleanup().await;
}
