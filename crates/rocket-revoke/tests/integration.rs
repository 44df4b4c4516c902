//! The fairing, guards, Revoker and OAuth routes, over HTTP with Rocket's local client, on
//! SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::{eventually, TestDb};
use jsonwebtoken::{EncodingKey, Header as JwtHeader};
use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::serde::json::{json, Value};
use rocket::{get, post, routes, Build, Rocket};
use rocket_db_pools::{sqlx, Database};
use rocket_revoke::{
    AuthError, Authenticated, Revoke, RevokeConfig, RevokeRequest, Revoker, Scope, Verified,
};
use rocket_revoke_core::{now_secs, TokenKind};
use serde::Deserialize;

const SECRET: &str = "integration-test-secret-0123456789abcdef";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "test-api";
const REALM: &str = "test";

#[derive(Database)]
#[database("revoke")]
struct SqliteDb(sqlx::SqlitePool);

#[derive(Database)]
#[database("revoke")]
struct PgDb(sqlx::PgPool);

#[get("/me")]
fn me(user: Authenticated) -> String {
    user.sub.clone().unwrap_or_default()
}

#[get("/verified")]
fn verified(user: Verified) -> String {
    user.sub.clone().unwrap_or_default()
}

#[get("/optional")]
fn optional(user: Option<Authenticated>) -> String {
    user.and_then(|u| u.sub.clone())
        .unwrap_or_else(|| "anonymous".into())
}

#[get("/result")]
fn result(user: Result<Authenticated, AuthError>) -> Result<String, AuthError> {
    Ok(user?.sub.clone().unwrap_or_default())
}

#[derive(Debug, Deserialize)]
struct Roles {
    #[serde(default)]
    roles: Vec<String>,
}

#[get("/roles")]
fn roles(user: Authenticated<Roles>) -> String {
    user.extra.roles.join(",")
}

#[post("/login/<sub>")]
async fn login(sub: &str, revoker: Revoker) -> Option<Value> {
    revoker.issue(sub, None).await.ok().map(|p| json!(p))
}

/// The `revoke` table every test app uses.
fn revoke_table() -> Value {
    json!({
        "secret": SECRET,
        "issuer": [ISSUER],
        "audience": [AUDIENCE],
        "realm": REALM,
        "leeway": 0,
        "poll_interval_ms": 20,
        "last_seen_interval_ms": 50,
        "client_id": "gateway",
        "client_secret": "s3cret",
    })
}

fn figment(db: &TestDb) -> Figment {
    db.figment().merge(("revoke", revoke_table()))
}

fn app_with(db: &TestDb, figment: Figment) -> Rocket<Build> {
    let rocket = rocket::custom(figment);
    let rocket = if db.is_postgres() {
        rocket
            .attach(PgDb::init())
            .attach(Revoke::<PgDb>::fairing())
    } else {
        rocket
            .attach(SqliteDb::init())
            .attach(Revoke::<SqliteDb>::fairing())
    };
    rocket
        .mount("/", routes![me, verified, optional, result, roles, login])
        .mount("/oauth", rocket_revoke::oauth_routes())
}

async fn client(db: &TestDb) -> Client {
    Client::tracked(app_with(db, figment(db)))
        .await
        .expect("valid rocket")
}

/// Signs arbitrary claims with `secret` (HS256).
fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &JwtHeader::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).expect("key"),
    )
    .expect("sign")
}

/// Valid access-token claims for `sub`.
fn claims(sub: &str) -> Value {
    let now = now_secs();
    json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": sub,
        "fid": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "kind": "access",
    })
}

fn with(mut c: Value, key: &str, value: Value) -> Value {
    c[key] = value;
    c
}

async fn login_pair(client: &Client, sub: &str) -> Value {
    let res = client.post(format!("/login/{sub}")).dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    res.into_json().await.expect("pair")
}

async fn get_me<'c>(client: &'c Client, token: &str) -> LocalResponse<'c> {
    client
        .get("/me")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await
}

/// Asserts the RFC 6750 rejection: 401, the challenge, the JSON body.
async fn assert_invalid_token(res: LocalResponse<'_>, description: &str) {
    assert_eq!(res.status(), Status::Unauthorized, "{description}");
    assert_eq!(
        res.headers().get_one("WWW-Authenticate"),
        Some(
            format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
            )
            .as_str()
        )
    );
    assert_eq!(res.content_type(), Some(ContentType::JSON));
    let body: Value = res.into_json().await.expect("json body");
    assert_eq!(
        body,
        json!({ "error": "invalid_token", "error_description": description })
    );
}

/// RFC 6750 §3.1: a malformed or repeated `Authorization` header is the request's fault, a
/// 400 with `error="invalid_request"` in the challenge and the body.
async fn assert_invalid_request(res: LocalResponse<'_>, description: &str) {
    assert_eq!(res.status(), Status::BadRequest, "{description}");
    assert_eq!(
        res.headers().get_one("WWW-Authenticate"),
        Some(
            format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_request\", error_description=\"{description}\""
            )
            .as_str()
        )
    );
    assert_eq!(res.content_type(), Some(ContentType::JSON));
    let body: Value = res.into_json().await.expect("json body");
    assert_eq!(
        body,
        json!({ "error": "invalid_request", "error_description": description })
    );
}

async fn valid_token_is_accepted(db: &TestDb) {
    let client = client(db).await;
    let res = get_me(&client, &sign(&claims("alice"), SECRET)).await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.into_string().await.as_deref(), Some("alice"));
}

async fn missing_header_gets_a_bare_challenge(db: &TestDb) {
    let client = client(db).await;
    let res = client.get("/me").dispatch().await;
    assert_eq!(res.status(), Status::Unauthorized);
    assert_eq!(
        res.headers().get_one("WWW-Authenticate"),
        Some("Bearer realm=\"test\"")
    );
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(
        body,
        json!({ "error": "unauthorized", "error_description": "bearer token required" })
    );
}

async fn bad_tokens_are_rejected_with_rfc6750_errors(db: &TestDb) {
    let client = client(db).await;
    let now = now_secs();
    let header = |v: String| Header::new("Authorization", v);
    let send = |h: Header<'static>| client.get("/me").header(h).dispatch();

    // Wrong scheme: no bearer token offered, so the bare challenge (RFC 6750 §3.1).
    let basic = format!("Basic {}", STANDARD.encode("alice:password"));
    let res = send(header(basic)).await;
    assert_eq!(res.status(), Status::Unauthorized);
    assert_eq!(
        res.headers().get_one("WWW-Authenticate"),
        Some(format!("Bearer realm=\"{REALM}\"").as_str())
    );
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(
        body,
        json!({ "error": "unauthorized", "error_description": "authorization scheme is not bearer" })
    );
    // Bare "Bearer", two tokens: a malformed request.
    assert_invalid_request(
        send(header("Bearer".into())).await,
        "malformed authorization header",
    )
    .await;
    assert_invalid_request(
        send(header("Bearer a b".into())).await,
        "malformed authorization header",
    )
    .await;
    assert_invalid_token(
        send(header("Bearer not-a-jwt".into())).await,
        "malformed token",
    )
    .await;
    assert_invalid_token(send(header("Bearer a.b.c".into())).await, "malformed token").await;
    // Huge header.
    assert_invalid_token(
        send(header(format!("Bearer {}", "a".repeat(64 * 1024)))).await,
        "token too large",
    )
    .await;

    // Signed with another key.
    let forged = sign(&claims("alice"), "another-secret-0123456789abcdef0123");
    assert_invalid_token(get_me(&client, &forged).await, "invalid signature").await;
    // alg: none, with and without a signature part.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims("alice").to_string());
    assert_invalid_token(
        get_me(&client, &format!("{none_header}.{payload}.")).await,
        "algorithm not allowed",
    )
    .await;
    let good = sign(&claims("alice"), SECRET);
    let sig = good.rsplit('.').next().expect("sig");
    assert_invalid_token(
        get_me(&client, &format!("{none_header}.{payload}.{sig}")).await,
        "algorithm not allowed",
    )
    .await;
    // Time.
    let expired = with(claims("alice"), "exp", json!(now - 10));
    assert_invalid_token(
        get_me(&client, &sign(&expired, SECRET)).await,
        "token expired",
    )
    .await;
    let early = with(claims("alice"), "nbf", json!(now + 3600));
    assert_invalid_token(
        get_me(&client, &sign(&early, SECRET)).await,
        "token not yet valid",
    )
    .await;
    // Issuer and audience.
    let iss = with(claims("alice"), "iss", json!("https://evil.test"));
    assert_invalid_token(get_me(&client, &sign(&iss, SECRET)).await, "invalid issuer").await;
    let aud = with(claims("alice"), "aud", json!("other-api"));
    assert_invalid_token(
        get_me(&client, &sign(&aud, SECRET)).await,
        "invalid audience",
    )
    .await;
    // Required claims.
    let mut no_jti = claims("alice");
    no_jti.as_object_mut().expect("object").remove("jti");
    assert_invalid_token(
        get_me(&client, &sign(&no_jti, SECRET)).await,
        "missing required claim",
    )
    .await;
    // A refresh token is not an access token.
    let refresh = with(claims("alice"), "kind", json!("refresh"));
    assert_invalid_token(
        get_me(&client, &sign(&refresh, SECRET)).await,
        "refresh token not accepted here",
    )
    .await;
}

async fn several_authorization_headers_are_rejected(db: &TestDb) {
    let client = client(db).await;
    let token = sign(&claims("alice"), SECRET);
    let mut req = client.get("/me");
    req.add_header(Header::new("Authorization", format!("Bearer {token}")));
    req.add_header(Header::new("Authorization", format!("Bearer {token}")));
    assert_invalid_request(req.dispatch().await, "several authorization headers").await;
}

async fn revoked_tokens_are_rejected_by_every_scope(db: &TestDb) {
    let client = client(db).await;
    let revoker = Revoker::fetch(client.rocket()).expect("revoker").clone();

    let by_jti = claims("alice");
    revoker
        .revoke(
            RevokeRequest::jti(by_jti["jti"].as_str().expect("jti"))
                .reason("test")
                .actor("tests"),
        )
        .await
        .expect("revoke jti");
    assert_invalid_token(
        get_me(&client, &sign(&by_jti, SECRET)).await,
        "token revoked (jti)",
    )
    .await;

    let by_family = claims("bob");
    revoker
        .revoke(RevokeRequest::family(
            by_family["fid"].as_str().expect("fid"),
        ))
        .await
        .expect("revoke family");
    assert_invalid_token(
        get_me(&client, &sign(&by_family, SECRET)).await,
        "token revoked (family)",
    )
    .await;

    let by_subject = claims("carol");
    revoker
        .revoke(
            RevokeRequest::subject("carol")
                .reason("log out everywhere")
                .actor("carol"),
        )
        .await
        .expect("revoke subject");
    assert_invalid_token(
        get_me(&client, &sign(&by_subject, SECRET)).await,
        "token revoked (subject)",
    )
    .await;
    let untouched = claims("dave");
    assert_eq!(
        get_me(&client, &sign(&untouched, SECRET)).await.status(),
        Status::Ok
    );
    revoker
        .revoke(
            RevokeRequest::global_before(now_secs())
                .reason("key leak")
                .actor("ops"),
        )
        .await
        .expect("global");
    assert_invalid_token(
        get_me(&client, &sign(&untouched, SECRET)).await,
        "token revoked (global)",
    )
    .await;

    // Restoring lifts it.
    revoker
        .restore(Scope::Global, "", Some("false alarm"), Some("ops"))
        .await
        .expect("restore")
        .expect("there was one");
    assert_eq!(
        get_me(&client, &sign(&untouched, SECRET)).await.status(),
        Status::Ok
    );
}

/// A token the guard has accepted (so its signature sits in the verified-token cache) is
/// refused as soon as it is revoked, with the cache on (the default) and off.
async fn a_token_accepted_before_is_refused_once_revoked(db: &TestDb) {
    for cache in [json!(512), json!(0)] {
        let mut table = revoke_table();
        table["verified_cache"] = cache.clone();
        let figment = db.figment().merge(("revoke", table));
        let client = Client::tracked(app_with(db, figment))
            .await
            .expect("valid rocket");
        let revoker = Revoker::fetch(client.rocket()).expect("revoker").clone();
        assert_eq!(json!(revoker.config().verifier.verified_cache), cache);
        let claims = claims("erin");
        let token = sign(&claims, SECRET);
        for _ in 0..3 {
            assert_eq!(
                get_me(&client, &token).await.status(),
                Status::Ok,
                "{cache}"
            );
        }
        revoker
            .revoke(RevokeRequest::jti(claims["jti"].as_str().expect("jti")))
            .await
            .expect("revoke jti");
        assert_invalid_token(get_me(&client, &token).await, "token revoked (jti)").await;
        // Another signature over the same claims is refused too, for a bad signature.
        let forged = sign(&claims, "another-secret-0123456789abcdef-0123456789");
        assert_invalid_token(get_me(&client, &forged).await, "invalid signature").await;
    }
}

async fn revoke_token_by_string_revokes_its_jti_and_family_on_request(db: &TestDb) {
    let client = client(db).await;
    let revoker = Revoker::fetch(client.rocket()).expect("revoker").clone();
    let c = claims("alice");
    let token = sign(&c, SECRET);
    let sibling = sign(&with(c.clone(), "jti", json!("sibling")), SECRET);
    let events = revoker
        .revoke_token(&token, false, Some("lost"), Some("alice"))
        .await
        .expect("revoke");
    assert_eq!(events.len(), 1);
    assert_eq!(get_me(&client, &token).await.status(), Status::Unauthorized);
    assert_eq!(get_me(&client, &sibling).await.status(), Status::Ok);
    revoker
        .revoke_token(&token, true, None, None)
        .await
        .expect("revoke family");
    assert_invalid_token(get_me(&client, &sibling).await, "token revoked (family)").await;
    // A forged token revokes nothing.
    let forged = sign(&claims("bob"), "another-secret-0123456789abcdef0123");
    assert!(matches!(
        revoker.revoke_token(&forged, true, None, None).await,
        Err(rocket_revoke::Error::Token(_))
    ));
}

async fn verified_guard_skips_the_revocation_check(db: &TestDb) {
    let client = client(db).await;
    let revoker = Revoker::fetch(client.rocket()).expect("revoker").clone();
    let c = claims("alice");
    let token = sign(&c, SECRET);
    revoker
        .revoke(RevokeRequest::jti(c["jti"].as_str().expect("jti")))
        .await
        .expect("revoke");
    let auth = Header::new("Authorization", format!("Bearer {token}"));
    let res = client
        .get("/verified")
        .header(auth.clone())
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(get_me(&client, &token).await.status(), Status::Unauthorized);
    // Still verified: a forged token is refused.
    let forged = sign(&claims("bob"), "another-secret-0123456789abcdef0123");
    let res = client
        .get("/verified")
        .header(Header::new("Authorization", format!("Bearer {forged}")))
        .dispatch()
        .await;
    assert_invalid_token(res, "invalid signature").await;
}

async fn option_and_result_forms_expose_the_rejection(db: &TestDb) {
    let client = client(db).await;
    let res = client.get("/optional").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.into_string().await.as_deref(), Some("anonymous"));
    let token = sign(&claims("alice"), SECRET);
    let res = client
        .get("/optional")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    assert_eq!(res.into_string().await.as_deref(), Some("alice"));

    let expired = sign(&with(claims("alice"), "exp", json!(now_secs() - 5)), SECRET);
    let res = client
        .get("/result")
        .header(Header::new("Authorization", format!("Bearer {expired}")))
        .dispatch()
        .await;
    assert_invalid_token(res, "token expired").await;
}

async fn extra_claims_reach_the_handler(db: &TestDb) {
    let client = client(db).await;
    let token = sign(
        &with(claims("alice"), "roles", json!(["admin", "ops"])),
        SECRET,
    );
    let res = client
        .get("/roles")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.into_string().await.as_deref(), Some("admin,ops"));
}

async fn last_seen_is_recorded_in_batches_including_foreign_tokens(db: &TestDb) {
    let client = client(db).await;
    let revoker = Revoker::fetch(client.rocket()).expect("revoker").clone();
    // A token this app never issued (no `kind`, another family).
    let mut foreign = claims("zoe");
    foreign.as_object_mut().expect("object").remove("kind");
    let jti = foreign["jti"].as_str().expect("jti").to_owned();
    let token = sign(&foreign, SECRET);
    for _ in 0..5 {
        assert_eq!(get_me(&client, &token).await.status(), Status::Ok);
    }
    let store = revoker.store().clone();
    let seen = eventually(Duration::from_secs(5), || {
        let store = store.clone();
        let jti = jti.clone();
        async move {
            matches!(store.token(&jti, now_secs()).await, Ok(Some(t)) if t.last_seen.is_some())
        }
    })
    .await;
    assert!(seen, "the sighting was written");
    let info = store
        .token(&jti, now_secs())
        .await
        .expect("token")
        .expect("registered");
    assert_eq!(info.token.kind, TokenKind::External);
    assert_eq!(info.token.sub, "zoe");
}

async fn rfc7009_revocation_endpoint(db: &TestDb) {
    let client = client(db).await;
    let pair = login_pair(&client, "alice").await;
    let access = pair["access_token"].as_str().expect("access").to_owned();
    let refresh = pair["refresh_token"].as_str().expect("refresh").to_owned();
    let form = |token: &str, hint: &str| format!("token={token}&token_type_hint={hint}");
    let revoke = |body: String| {
        client
            .post("/oauth/revoke")
            .header(ContentType::Form)
            .body(body)
            .dispatch()
    };

    // Unknown or invalid tokens: 200 all the same.
    assert_eq!(
        revoke(form("garbage", "access_token")).await.status(),
        Status::Ok
    );
    let forged = sign(&claims("alice"), "another-secret-0123456789abcdef0123");
    assert_eq!(revoke(form(&forged, "")).await.status(), Status::Ok);
    // No token: 400 invalid_request.
    let res = revoke("token_type_hint=access_token".into()).await;
    assert_eq!(res.status(), Status::BadRequest);
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");

    // An access token: revoked alone.
    assert_eq!(get_me(&client, &access).await.status(), Status::Ok);
    let res = revoke(form(&access, "access_token")).await;
    assert_eq!(res.status(), Status::Ok);
    assert_invalid_token(get_me(&client, &access).await, "token revoked (jti)").await;
    // Revoking twice is fine.
    assert_eq!(
        revoke(form(&access, "access_token")).await.status(),
        Status::Ok
    );

    // A refresh token: its whole family goes.
    let pair = login_pair(&client, "alice").await;
    let access = pair["access_token"].as_str().expect("access").to_owned();
    let refresh2 = pair["refresh_token"].as_str().expect("refresh").to_owned();
    assert_eq!(
        revoke(form(&refresh2, "refresh_token")).await.status(),
        Status::Ok
    );
    assert_invalid_token(get_me(&client, &access).await, "token revoked (family)").await;
    let revoker = Revoker::fetch(client.rocket()).expect("revoker");
    assert!(revoker.refresh(&refresh2).await.is_err());
    // The first session's refresh token is untouched.
    assert!(revoker.refresh(&refresh).await.is_ok());
}

async fn rfc7662_introspection_endpoint(db: &TestDb) {
    let client = client(db).await;
    let basic = |id: &str, secret: &str| {
        Header::new(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        )
    };
    let introspect = |auth: Option<Header<'static>>, token: &str| {
        let mut req = client
            .post("/oauth/introspect")
            .header(ContentType::Form)
            .body(format!("token={token}"));
        if let Some(auth) = auth {
            req.add_header(auth);
        }
        req.dispatch()
    };
    let pair = login_pair(&client, "alice").await;
    let access = pair["access_token"].as_str().expect("access").to_owned();
    let refresh = pair["refresh_token"].as_str().expect("refresh").to_owned();

    // Client authentication.
    for auth in [
        None,
        Some(basic("gateway", "wrong")),
        Some(basic("other", "s3cret")),
    ] {
        let res = introspect(auth, &access).await;
        assert_eq!(res.status(), Status::Unauthorized);
        assert_eq!(
            res.headers().get_one("WWW-Authenticate"),
            Some("Basic realm=\"test\"")
        );
        let body: Value = res.into_json().await.expect("json");
        assert_eq!(body["error"], "invalid_client");
    }

    let ok = || Some(basic("gateway", "s3cret"));
    let res = introspect(ok(), &access).await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.headers().get_one("Cache-Control"), Some("no-store"));
    let body: Value = res.into_json().await.expect("json");
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["kind"], "access");
    assert_eq!(body["iss"], ISSUER);
    assert!(body["exp"].is_i64() && body["jti"].is_string());

    let inactive = json!({ "active": false });
    let body: Value = introspect(ok(), "garbage")
        .await
        .into_json()
        .await
        .expect("json");
    assert_eq!(body, inactive);
    let expired = sign(&with(claims("alice"), "exp", json!(now_secs() - 5)), SECRET);
    let body: Value = introspect(ok(), &expired)
        .await
        .into_json()
        .await
        .expect("json");
    assert_eq!(body, inactive);

    // A refresh token is active until spent.
    let body: Value = introspect(ok(), &refresh)
        .await
        .into_json()
        .await
        .expect("json");
    assert_eq!(body["active"], true);
    assert_eq!(body["kind"], "refresh");
    let revoker = Revoker::fetch(client.rocket()).expect("revoker").clone();
    revoker.refresh(&refresh).await.expect("rotate");
    let body: Value = introspect(ok(), &refresh)
        .await
        .into_json()
        .await
        .expect("json");
    assert_eq!(body, inactive);

    // Revoked.
    revoker
        .revoke_token(&access, false, None, None)
        .await
        .expect("revoke");
    let body: Value = introspect(ok(), &access)
        .await
        .into_json()
        .await
        .expect("json");
    assert_eq!(body, inactive);
}

async fn revocations_persist_across_a_restart(db: &TestDb) {
    let c = claims("alice");
    let token = sign(&c, SECRET);
    {
        let client = client(db).await;
        assert_eq!(get_me(&client, &token).await.status(), Status::Ok);
        Revoker::fetch(client.rocket())
            .expect("revoker")
            .revoke(RevokeRequest::jti(c["jti"].as_str().expect("jti")))
            .await
            .expect("revoke");
        client.terminate().await;
    }
    let client = client(db).await;
    assert_invalid_token(get_me(&client, &token).await, "token revoked (jti)").await;
    client.terminate().await;
}

async fn terminate_shuts_down_cleanly(db: &TestDb) {
    let client = client(db).await;
    let token = sign(&claims("alice"), SECRET);
    assert_eq!(get_me(&client, &token).await.status(), Status::Ok);
    let rocket = rocket::tokio::time::timeout(Duration::from_secs(10), client.terminate())
        .await
        .expect("shutdown finishes");
    let revoker = Revoker::fetch(&rocket).expect("revoker");
    // Sync is stopped: the NOTIFY listener is gone.
    assert!(!revoker.status().listening);
}

async fn two_instances_on_one_database_share_revocations(db: &TestDb) {
    let a = client(db).await;
    let b = client(db).await;
    let pair = login_pair(&a, "alice").await;
    let access = pair["access_token"].as_str().expect("access").to_owned();
    assert_eq!(get_me(&b, &access).await.status(), Status::Ok);

    let res = a
        .post("/oauth/revoke")
        .header(ContentType::Form)
        .body(format!("token={access}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let started = std::time::Instant::now();
    let b_rejects = eventually(Duration::from_secs(5), || async {
        get_me(&b, &access).await.status() == Status::Unauthorized
    })
    .await;
    assert!(b_rejects, "instance B still accepts the revoked token");
    eprintln!("propagation took {:?}", started.elapsed());
    assert_invalid_token(get_me(&b, &access).await, "token revoked (jti)").await;
    drop(res);
    a.terminate().await;
    b.terminate().await;
}

async fn health_reports_backend_and_sync(db: &TestDb) {
    let client = client(db).await;
    let revoker = Revoker::fetch(client.rocket()).expect("revoker").clone();
    let ok = eventually(Duration::from_secs(5), || {
        let revoker = revoker.clone();
        async move { revoker.health().status == "ok" }
    })
    .await;
    assert!(ok, "{:?}", revoker.health());
    let health = revoker.health();
    assert_eq!(
        health.backend,
        if db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    );
}

/// With two issuers accepted, subject "42" at one is not subject "42" at the other: a
/// revocation scoped to an issuer refuses only its tokens, and revoking a token by string
/// scopes the revocation to that token's issuer. With one issuer, nothing is scoped.
async fn revocations_are_scoped_by_issuer_when_two_are_accepted(db: &TestDb) {
    const OTHER: &str = "https://other-issuer.test";
    let mut table = revoke_table();
    table["issuer"] = json!([ISSUER, OTHER]);
    let two = Client::tracked(app_with(db, db.figment().merge(("revoke", table))))
        .await
        .expect("valid rocket");
    let revoker = Revoker::fetch(two.rocket()).expect("revoker").clone();
    let ours = |iss: &str| sign(&with(claims("42"), "iss", json!(iss)), SECRET);
    let (mine, theirs) = (ours(ISSUER), ours(OTHER));
    revoker
        .revoke(rocket_revoke::RevokeRequest::subject("42").issuer(OTHER))
        .await
        .expect("revoke");
    assert_invalid_token(get_me(&two, &theirs).await, "token revoked (subject)").await;
    assert_eq!(get_me(&two, &mine).await.status(), Status::Ok);
    // The same jti at both issuers: revoking one token by string scopes it to its issuer.
    let c = claims("7");
    let at_ours = sign(&c, SECRET);
    let at_other = sign(&with(c, "iss", json!(OTHER)), SECRET);
    let events = revoker
        .revoke_token(&at_ours, true, Some("lost"), None)
        .await
        .expect("revoke token");
    assert_eq!(events.len(), 2, "jti and family");
    assert!(
        events.iter().all(|e| e.issuer.as_deref() == Some(ISSUER)),
        "{events:?}"
    );
    assert_eq!(get_me(&two, &at_ours).await.status(), Status::Unauthorized);
    assert_eq!(get_me(&two, &at_other).await.status(), Status::Ok);

    // One issuer: what is written is unscoped, as before issuer scopes existed.
    let single = client(db).await;
    let revoker = Revoker::fetch(single.rocket()).expect("revoker").clone();
    let events = revoker
        .revoke_token(&sign(&claims("8"), SECRET), true, None, None)
        .await
        .expect("revoke token");
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.issuer.is_none()), "{events:?}");
}

both_backends!(
    revocations_are_scoped_by_issuer_when_two_are_accepted,
    valid_token_is_accepted,
    missing_header_gets_a_bare_challenge,
    bad_tokens_are_rejected_with_rfc6750_errors,
    several_authorization_headers_are_rejected,
    revoked_tokens_are_rejected_by_every_scope,
    a_token_accepted_before_is_refused_once_revoked,
    revoke_token_by_string_revokes_its_jti_and_family_on_request,
    verified_guard_skips_the_revocation_check,
    option_and_result_forms_expose_the_rejection,
    extra_claims_reach_the_handler,
    last_seen_is_recorded_in_batches_including_foreign_tokens,
    rfc7009_revocation_endpoint,
    rfc7662_introspection_endpoint,
    revocations_persist_across_a_restart,
    terminate_shuts_down_cleanly,
    two_instances_on_one_database_share_revocations,
    health_reports_backend_and_sync,
);

// Launch failures: no database needed beyond a SQLite file.

async fn ignite(rocket: Rocket<Build>) -> Result<(), String> {
    rocket.ignite().await.map(|_| ()).map_err(|e| e.to_string())
}

#[rocket::async_test]
async fn guard_without_the_fairing_aborts_launch() {
    let rocket =
        rocket::custom(Figment::from(rocket::Config::debug_default()).merge(("log_level", "off")))
            .mount("/", routes![me]);
    let err = ignite(rocket).await.expect_err("sentinel aborts");
    assert!(err.contains("sentinel"), "{err}");
    let rocket =
        rocket::custom(Figment::from(rocket::Config::debug_default()).merge(("log_level", "off")))
            .mount("/", routes![optional, login]);
    assert!(ignite(rocket).await.is_err());
}

#[rocket::async_test]
async fn fairing_without_the_database_fairing_fails_launch() {
    let db = TestDb::sqlite().await;
    let rocket = rocket::custom(figment(&db)).attach(Revoke::<SqliteDb>::fairing());
    assert!(ignite(rocket).await.is_err());
}

#[rocket::async_test]
async fn bad_config_keys_and_values_fail_launch_naming_the_key() {
    let db = TestDb::sqlite().await;
    let cases: [(Value, &str); 8] = [
        (json!({ "secrett": "x" }), "secrett"),
        (
            json!({ "secret": SECRET, "leeway": "soon" }),
            "revoke.leeway",
        ),
        (
            json!({ "secret": SECRET, "algorithms": ["HS257"] }),
            "revoke.algorithms",
        ),
        (json!({}), "revoke.secret"),
        (json!({ "secret": "" }), "revoke.secret"),
        (
            json!({ "secret": SECRET, "access_ttl": 0 }),
            "revoke.access_ttl",
        ),
        (
            json!({ "secret": SECRET, "client_id": "gw" }),
            "revoke.client_secret",
        ),
        (
            json!({ "secret": SECRET, "public_key_pem": ["/nonexistent.pem"] }),
            "revoke.public_key_pem",
        ),
    ];
    for (table, key) in cases {
        let figment = db.figment().merge(("revoke", table.clone()));
        let err = match RevokeConfig::from_figment(&figment) {
            Ok(c) => c.verifier().await.map(|_| ()),
            Err(e) => Err(e),
        }
        .expect_err("invalid");
        assert!(err.to_string().contains(key), "{err} should name {key}");
        let rocket = rocket::custom(figment)
            .attach(SqliteDb::init())
            .attach(Revoke::<SqliteDb>::fairing());
        assert!(ignite(rocket).await.is_err(), "{table} launches");
    }
}

#[test]
fn config_errors_name_the_key() {
    let figment = |v: Value| Figment::new().merge(("revoke", v));
    let err =
        RevokeConfig::from_figment(&figment(json!({ "secrett": "x" }))).expect_err("unknown key");
    assert!(err.to_string().contains("secrett"), "{err}");
    let err =
        RevokeConfig::from_figment(&figment(json!({ "leeway": "soon" }))).expect_err("bad type");
    assert!(err.to_string().contains("revoke.leeway"), "{err}");
    let err =
        RevokeConfig::from_figment(&figment(json!({ "refresh_ttl": -1 }))).expect_err("bad value");
    assert!(err.to_string().contains("`revoke.refresh_ttl`"), "{err}");
    // A 1-byte secret passes only in the debug profile (any other refuses it; profiles.rs).
    let short = figment(json!({ "secret": "s" })).select(rocket::Config::DEBUG_PROFILE);
    let config = RevokeConfig::from_figment(&short).expect("ok");
    assert_eq!(config.engine.poll_interval_ms, 250);
    assert_eq!(config.realm, "api");
    assert!(
        !format!("{config:?}").contains("\"s\""),
        "the secret is redacted"
    );
}
