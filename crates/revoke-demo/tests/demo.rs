//! Every endpoint of the demo service, over HTTP with Rocket's local client, on SQLite and
//! PostgreSQL.

mod common;

use std::time::Duration;

use common::{eventually, TestDb};
use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::serde::json::{json, Value};

const REALM: &str = "revoke-demo";

fn figment(db: &TestDb) -> Figment {
    db.figment().merge((
        "revoke",
        json!({
            "secret": "demo-test-secret-0123456789abcdef0123",
            "access_ttl": 300,
            "refresh_ttl": 3600,
            "client_id": "gw",
            "client_secret": "gw-secret",
            "realm": REALM,
            "poll_interval_ms": 20,
        }),
    ))
}

async fn client(db: &TestDb) -> Client {
    Client::tracked(revoke_demo::app(rocket::custom(figment(db))))
        .await
        .expect("valid rocket")
}

async fn login(client: &Client, user: &str) -> Value {
    let res = client
        .post("/auth/login")
        .header(ContentType::JSON)
        .body(json!({ "username": user, "password": "password" }).to_string())
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    res.into_json().await.expect("pair")
}

fn bearer(token: &Value) -> Header<'static> {
    Header::new(
        "Authorization",
        format!("Bearer {}", token.as_str().expect("token")),
    )
}

async fn me<'c>(client: &'c Client, token: &Value) -> LocalResponse<'c> {
    client.get("/me").header(bearer(token)).dispatch().await
}

async fn refresh<'c>(client: &'c Client, token: &Value) -> LocalResponse<'c> {
    client
        .post("/auth/refresh")
        .header(ContentType::JSON)
        .body(json!({ "refresh_token": token }).to_string())
        .dispatch()
        .await
}

async fn assert_revoked(res: LocalResponse<'_>, description: &str) {
    assert_eq!(res.status(), Status::Unauthorized);
    let challenge = format!(
        "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
    );
    assert_eq!(
        res.headers().get_one("WWW-Authenticate"),
        Some(challenge.as_str())
    );
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(
        body,
        json!({ "error": "invalid_token", "error_description": description })
    );
}

async fn login_issues_a_pair_and_refuses_bad_credentials(db: &TestDb) {
    let client = client(db).await;
    let pair = login(&client, "alice").await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 300);
    assert!(pair["access_token"].is_string() && pair["refresh_token"].is_string());
    for (user, password) in [("alice", "wrong"), ("mallory", "password")] {
        let res = client
            .post("/auth/login")
            .header(ContentType::JSON)
            .body(json!({ "username": user, "password": password }).to_string())
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Unauthorized);
        let body: Value = res.into_json().await.expect("json");
        assert_eq!(body["error"], "invalid_grant");
    }
    // A body that is not the expected JSON: a JSON 4xx, never a 500.
    let res = client
        .post("/auth/login")
        .header(ContentType::JSON)
        .body("{not json")
        .dispatch()
        .await;
    assert!(res.status().class().is_client_error(), "{}", res.status());
    let body: Value = res.into_json().await.expect("json");
    assert!(body["error"].is_string());
}

async fn me_returns_the_callers_claims(db: &TestDb) {
    let client = client(db).await;
    let pair = login(&client, "bob").await;
    let res = me(&client, &pair["access_token"]).await;
    assert_eq!(res.status(), Status::Ok);
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(body["sub"], "bob");
    assert!(body["jti"].is_string() && body["fid"].is_string() && body["exp"].is_i64());

    // No token, or a refresh token: 401 with the challenge.
    let res = client.get("/me").dispatch().await;
    assert_eq!(res.status(), Status::Unauthorized);
    assert_eq!(
        res.headers().get_one("WWW-Authenticate"),
        Some("Bearer realm=\"revoke-demo\"")
    );
    assert_revoked(
        me(&client, &pair["refresh_token"]).await,
        "refresh token not accepted here",
    )
    .await;
    assert_revoked(me(&client, &json!("x.y.z")).await, "malformed token").await;
}

async fn delete_token_revokes_the_presented_token_only(db: &TestDb) {
    let client = client(db).await;
    let pair = login(&client, "alice").await;
    let res = client
        .delete("/auth/token")
        .header(bearer(&pair["access_token"]))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_revoked(
        me(&client, &pair["access_token"]).await,
        "token revoked (jti)",
    )
    .await;
    // The session lives on: the refresh token still works.
    let res = refresh(&client, &pair["refresh_token"]).await;
    assert_eq!(res.status(), Status::Ok);
    let next: Value = res.into_json().await.expect("pair");
    assert_eq!(
        me(&client, &next["access_token"]).await.status(),
        Status::Ok
    );
}

async fn delete_token_with_family_ends_the_session(db: &TestDb) {
    let client = client(db).await;
    let pair = login(&client, "alice").await;
    let other = login(&client, "alice").await;
    let res = client
        .delete("/auth/token?family=true")
        .header(bearer(&pair["access_token"]))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(body, json!({ "revoked": ["jti", "family"] }));
    let res = refresh(&client, &pair["refresh_token"]).await;
    assert_eq!(res.status(), Status::Unauthorized);
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    // Another login of the same user is another family.
    assert_eq!(
        me(&client, &other["access_token"]).await.status(),
        Status::Ok
    );
}

async fn delete_sessions_logs_out_everywhere(db: &TestDb) {
    let client = client(db).await;
    let first = login(&client, "carol").await;
    let second = login(&client, "carol").await;
    let bob = login(&client, "bob").await;
    let res = client
        .delete("/auth/sessions")
        .header(bearer(&second["access_token"]))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_revoked(
        me(&client, &first["access_token"]).await,
        "token revoked (subject)",
    )
    .await;
    assert_revoked(
        me(&client, &second["access_token"]).await,
        "token revoked (subject)",
    )
    .await;
    assert_eq!(
        refresh(&client, &first["refresh_token"]).await.status(),
        Status::Unauthorized
    );
    assert_eq!(me(&client, &bob["access_token"]).await.status(), Status::Ok);
}

async fn refresh_rotates_and_reuse_revokes_the_family(db: &TestDb) {
    let client = client(db).await;
    let pair = login(&client, "alice").await;
    let res = refresh(&client, &pair["refresh_token"]).await;
    assert_eq!(res.status(), Status::Ok);
    let rotated: Value = res.into_json().await.expect("pair");
    assert_ne!(rotated["refresh_token"], pair["refresh_token"]);
    assert_eq!(
        me(&client, &rotated["access_token"]).await.status(),
        Status::Ok
    );

    // The old refresh token is spent: presenting it again is reuse.
    let res = refresh(&client, &pair["refresh_token"]).await;
    assert_eq!(res.status(), Status::Unauthorized);
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("reused")),
        "{body}"
    );
    // The whole family is gone, including the rotated pair.
    assert_revoked(
        me(&client, &rotated["access_token"]).await,
        "token revoked (family)",
    )
    .await;
    assert_eq!(
        refresh(&client, &rotated["refresh_token"]).await.status(),
        Status::Unauthorized
    );
    // Garbage and access tokens are refused too.
    assert_eq!(
        refresh(&client, &json!("nope")).await.status(),
        Status::Unauthorized
    );
    let fresh = login(&client, "bob").await;
    assert_eq!(
        refresh(&client, &fresh["access_token"]).await.status(),
        Status::Unauthorized
    );
}

async fn oauth_revoke_and_introspect(db: &TestDb) {
    let client = client(db).await;
    let pair = login(&client, "alice").await;
    let access = pair["access_token"].as_str().expect("access").to_owned();
    let introspect = || {
        client
            .post("/oauth/introspect")
            .header(ContentType::Form)
            // base64("gw:gw-secret")
            .header(Header::new("Authorization", "Basic Z3c6Z3ctc2VjcmV0"))
            .body(format!("token={access}"))
            .dispatch()
    };
    let body: Value = introspect().await.into_json().await.expect("json");
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], "alice");

    let res = client
        .post("/oauth/revoke")
        .header(ContentType::Form)
        .body(format!("token={access}&token_type_hint=access_token"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let body: Value = introspect().await.into_json().await.expect("json");
    assert_eq!(body, json!({ "active": false }));
    assert_revoked(
        me(&client, &pair["access_token"]).await,
        "token revoked (jti)",
    )
    .await;
    let res = client
        .post("/oauth/revoke")
        .header(ContentType::Form)
        .body("token=not-a-token")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
}

async fn health_reports_backend_and_sync_status(db: &TestDb) {
    let client = client(db).await;
    let backend = if db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let healthy = eventually(Duration::from_secs(5), || async {
        let res = client.get("/health").dispatch().await;
        let body: Value = res.into_json().await.unwrap_or_default();
        body["status"] == "ok"
    })
    .await;
    assert!(healthy);
    let res = client
        .get("/health/details")
        .header(gateway())
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.headers().get_one("Cache-Control"), Some("no-store"));
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(body["backend"], backend);
    assert!(body["sync"]["cursor"].is_i64());
    assert!(body["sync"]["last_success_ms"].is_i64());
}

fn gateway() -> Header<'static> {
    Header::new("Authorization", "Basic Z3c6Z3ctc2VjcmV0")
}

/// The public `/health` says status and staleness, nothing else (no database error text,
/// backend, JWKS URL or `kid`s); the details need the introspection client's credentials.
async fn public_health_shows_status_and_staleness_only(db: &TestDb) {
    let client = client(db).await;
    let res = client.get("/health").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.headers().get_one("Cache-Control"), Some("no-store"));
    let body: Value = res.into_json().await.expect("json");
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["staleness_ms", "status"], "{body}");
    for credentials in [
        None,
        Some("Basic Z3c6d3Jvbmc="), // gw:wrong
        Some("Bearer x.y.z"),
    ] {
        let mut req = client.get("/health/details");
        if let Some(c) = credentials {
            req = req.header(Header::new("Authorization", c));
        }
        let res = req.dispatch().await;
        assert_eq!(res.status(), Status::Unauthorized, "{credentials:?}");
        assert_eq!(
            res.headers().get_one("WWW-Authenticate"),
            Some("Basic realm=\"revoke-demo\""),
            "{credentials:?}"
        );
        let body = res.into_string().await.unwrap_or_default();
        assert!(
            !body.contains("sync") && !body.contains("backend"),
            "{body}"
        );
    }
}

/// The demo serves its metrics (OpenMetrics text) at `/metrics`.
async fn metrics_are_mounted(db: &TestDb) {
    let client = client(db).await;
    let pair = login(&client, "alice").await;
    let res = client
        .get("/me")
        .header(bearer(&pair["access_token"]))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let res = client.get("/metrics").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    let ct = res.content_type().expect("content type");
    assert_eq!(
        (ct.top().as_str(), ct.sub().as_str()),
        ("application", "openmetrics-text")
    );
    let text = res.into_string().await.expect("text");
    assert!(text.contains("revoke_checks_total"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

async fn unknown_routes_answer_json(db: &TestDb) {
    let client = client(db).await;
    let res = client.get("/nope").dispatch().await;
    assert_eq!(res.status(), Status::NotFound);
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(body["error"], "not_found");
}

async fn state_survives_a_restart(db: &TestDb) {
    let (pair, revoked) = {
        let client = client(db).await;
        let pair = login(&client, "alice").await;
        let revoked = login(&client, "bob").await;
        let res = client
            .delete("/auth/token")
            .header(bearer(&revoked["access_token"]))
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Ok);
        drop(res);
        client.terminate().await;
        (pair, revoked)
    };
    let client = client(db).await;
    assert_eq!(
        me(&client, &pair["access_token"]).await.status(),
        Status::Ok
    );
    assert_revoked(
        me(&client, &revoked["access_token"]).await,
        "token revoked (jti)",
    )
    .await;
    // The registry remembers the refresh token: rotation works after the restart.
    assert_eq!(
        refresh(&client, &pair["refresh_token"]).await.status(),
        Status::Ok
    );
    client.terminate().await;
}

async fn terminate_shuts_down_cleanly(db: &TestDb) {
    let client = client(db).await;
    let pair = login(&client, "alice").await;
    assert_eq!(
        me(&client, &pair["access_token"]).await.status(),
        Status::Ok
    );
    rocket::tokio::time::timeout(Duration::from_secs(10), client.terminate())
        .await
        .expect("shutdown finishes in time");
}

async fn two_instances_share_logouts(db: &TestDb) {
    let a = client(db).await;
    let b = client(db).await;
    let pair = login(&a, "alice").await;
    assert_eq!(me(&b, &pair["access_token"]).await.status(), Status::Ok);
    let res = a
        .delete("/auth/token")
        .header(bearer(&pair["access_token"]))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    drop(res);
    let rejected = eventually(Duration::from_secs(5), || async {
        me(&b, &pair["access_token"]).await.status() == Status::Unauthorized
    })
    .await;
    assert!(rejected, "instance B still accepts the revoked token");
    assert_revoked(me(&b, &pair["access_token"]).await, "token revoked (jti)").await;
    a.terminate().await;
    b.terminate().await;
}

/// Token responses, and their errors, are never cached (RFC 6749 §5.1).
async fn token_responses_are_not_cached(db: &TestDb) {
    let client = client(db).await;
    let post = |uri: &'static str, body: Value| {
        client
            .post(uri)
            .header(ContentType::JSON)
            .body(body.to_string())
            .dispatch()
    };
    let ok = post(
        "/auth/login",
        json!({ "username": "alice", "password": "password" }),
    )
    .await;
    assert_eq!(ok.status(), Status::Ok);
    assert_eq!(ok.headers().get_one("Cache-Control"), Some("no-store"));
    assert_eq!(ok.headers().get_one("Pragma"), Some("no-cache"));
    let pair: Value = ok.into_json().await.expect("pair");
    let bad = post(
        "/auth/login",
        json!({ "username": "alice", "password": "passwore" }),
    )
    .await;
    assert_eq!(bad.status(), Status::Unauthorized);
    assert_eq!(bad.headers().get_one("Cache-Control"), Some("no-store"));
    let rotated = post(
        "/auth/refresh",
        json!({ "refresh_token": pair["refresh_token"] }),
    )
    .await;
    assert_eq!(rotated.status(), Status::Ok);
    assert_eq!(rotated.headers().get_one("Cache-Control"), Some("no-store"));
    let unknown = post(
        "/auth/login",
        json!({ "username": "mallory", "password": "password" }),
    )
    .await;
    assert_eq!(unknown.status(), Status::Unauthorized);
}

both_backends!(
    token_responses_are_not_cached,
    login_issues_a_pair_and_refuses_bad_credentials,
    me_returns_the_callers_claims,
    delete_token_revokes_the_presented_token_only,
    delete_token_with_family_ends_the_session,
    delete_sessions_logs_out_everywhere,
    refresh_rotates_and_reuse_revokes_the_family,
    oauth_revoke_and_introspect,
    health_reports_backend_and_sync_status,
    public_health_shows_status_and_staleness_only,
    metrics_are_mounted,
    unknown_routes_answer_json,
    state_survives_a_restart,
    terminate_shuts_down_cleanly,
    two_instances_share_logouts,
);

/// The shipped Rocket.toml (found from the crate directory, as from the repository root)
/// launches, pointed at a temporary database.
#[rocket::async_test]
async fn shipped_rocket_toml_launches() {
    let db = TestDb::sqlite().await;
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("databases.revoke.url", db.url()));
    let client = Client::tracked(revoke_demo::app(rocket::custom(figment)))
        .await
        .expect("valid rocket");
    let pair = login(&client, "carol").await;
    assert_eq!(
        me(&client, &pair["access_token"]).await.status(),
        Status::Ok
    );
    let res = client
        .post("/oauth/introspect")
        .header(ContentType::Form)
        .header(Header::new(
            "Authorization",
            // base64("demo-gateway:demo-gateway-secret")
            "Basic ZGVtby1nYXRld2F5OmRlbW8tZ2F0ZXdheS1zZWNyZXQ=",
        ))
        .body(format!(
            "token={}",
            pair["access_token"].as_str().expect("token")
        ))
        .dispatch()
        .await;
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(body["active"], true);
}

/// A URL with a postgres scheme selects the PostgreSQL pool; a bad URL fails the launch.
#[rocket::async_test]
async fn unusable_database_url_fails_launch() {
    let figment = Figment::from(rocket::Config::debug_default())
        .merge(("log_level", "off"))
        .merge(("databases.revoke.url", "postgres://nobody@127.0.0.1:1/none"))
        .merge(("databases.revoke.connect_timeout", 1))
        .merge(("revoke.secret", "demo-test-secret-0123456789abcdef0123"));
    let result = revoke_demo::app(rocket::custom(figment)).ignite().await;
    // (Rocket's error must be inspected, or it panics when dropped.)
    assert!(result.map_err(|e| e.to_string()).is_err());
}
