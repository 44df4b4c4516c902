//! An app that only verifies tokens from an identity provider: keys from a JWKS URL (served
//! here on 127.0.0.1), family by the provider's `sid` claim. Such tokens are accepted,
//! registered when first seen, revocable by jti, subject, family and cut-off, and the key set
//! shows in `/health` and the metrics; a rotated key is picked up on its first use. Key
//! trust: plain http to another host needs an opt-in, an old key set degrades health and
//! then stops verifying, a token without `kid` is tried against a bounded number of keys.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, TestDb};
use jsonwebtoken::{Algorithm, EncodingKey, Header as JwtHeader};
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};
use rocket::{get, routes};
use rocket_db_pools::{sqlx, Database};
use rocket_revoke::{Authenticated, Revoke, RevokeClock, Revoker};
use rocket_revoke_core::{now_secs, Clock, ManualClock, RevokeRequest, Scope, TokenKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ISSUER: &str = "https://sso.test/realms/main";

#[derive(Database)]
#[database("revoke")]
struct Db(sqlx::SqlitePool);

#[get("/me")]
fn me(user: Authenticated) -> String {
    user.sub.clone().unwrap_or_default()
}

#[get("/health")]
fn health(revoker: Revoker) -> rocket_revoke::Health {
    revoker.health()
}

fn keys_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rocket-revoke-core/tests/keys")
}

/// The JWKS document with the keys of the fixture whose `kid` is listed.
fn jwks(kids: &[&str]) -> String {
    let all: Value =
        serde_json::from_slice(&std::fs::read(keys_dir().join("jwks.json")).expect("jwks"))
            .expect("json");
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap_or_default()))
        .cloned()
        .collect();
    json!({ "keys": keys }).to_string()
}

/// A one-route HTTP server: answers every request with the current document.
struct Provider {
    url: String,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

async fn provider(document: String) -> Provider {
    provider_on(std::net::Ipv4Addr::LOCALHOST.into(), document).await
}

/// [`provider`] listening on `ip`.
async fn provider_on(ip: std::net::IpAddr, document: String) -> Provider {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let url = format!("http://{}/certs", listener.local_addr().expect("addr"));
    let document = Arc::new(Mutex::new(document));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (doc, count) = (document.clone(), fetches.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = doc.lock().expect("lock").clone();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0_u8; 4096];
                let _ = socket.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    Provider {
        url,
        document,
        fetches,
    }
}

/// A token as the provider would mint it: RS256, a `kid`, a session id in `sid`.
fn provider_token(key: &str, kid: &str, sub: &str, sid: &str) -> (String, String) {
    provider_token_at(key, Some(kid), sub, sid, now_secs(), 300)
}

/// [`provider_token`] issued at `now`, living `ttl` seconds, with an optional `kid`.
fn provider_token_at(
    key: &str,
    kid: Option<&str>,
    sub: &str,
    sid: &str,
    now: i64,
    ttl: i64,
) -> (String, String) {
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = json!({
        "jti": jti, "sub": sub, "sid": sid, "iss": ISSUER,
        "iat": now, "exp": now + ttl, "typ": "Bearer",
    });
    let pem = std::fs::read(keys_dir().join(key)).expect("pem");
    let mut header = JwtHeader::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(&pem).expect("key"),
    )
    .expect("sign");
    (token, jti)
}

async fn status(client: &Client, token: &str) -> (Status, String) {
    let res = client
        .get("/me")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    let status = res.status();
    (status, res.into_string().await.unwrap_or_default())
}

#[rocket::async_test]
async fn provider_tokens_verify_through_the_jwks_url_and_are_revocable() {
    let db = TestDb::sqlite().await;
    let idp = provider(jwks(&["rsa-1"])).await;
    let figment = db.figment().merge((
        "revoke",
        json!({
            "algorithms": ["RS256"],
            "jwks_url": idp.url,
            "jwks_min_refresh_interval_secs": 1,
            "issuer": [ISSUER],
            "family_claim": "sid",
            "poll_interval_ms": 20,
            "last_seen_interval_ms": 20,
        }),
    ));
    let rocket = rocket::custom(figment)
        .attach(Db::init())
        .attach(Revoke::<Db>::fairing())
        .mount("/", routes![me, health])
        .mount("/", rocket_revoke::metrics_route());
    let client = Client::tracked(rocket).await.expect("launch");
    let revoker = client.rocket().state::<Revoker>().expect("revoker").clone();
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "one fetch at launch");

    // Accepted, and registered as an external token when first seen.
    let (token, jti) = provider_token("rsa_private.pem", "rsa-1", "erin", "session-a");
    assert_eq!(status(&client, &token).await, (Status::Ok, "erin".into()));
    let store = revoker.store().clone();
    let registered = eventually(Duration::from_secs(5), || {
        let (store, jti) = (store.clone(), jti.clone());
        async move {
            matches!(store.token(&jti, now_secs()).await, Ok(Some(t)) if t.token.kind == TokenKind::External)
        }
    })
    .await;
    assert!(registered, "the provider's token is in the registry");

    // Health and metrics show the key set.
    let health: Value = client
        .get("/health")
        .dispatch()
        .await
        .into_json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["jwks"]["keys"], 1, "{health}");
    assert_eq!(health["jwks"]["kids"], json!(["rsa-1"]), "{health}");
    assert_eq!(health["jwks"]["refresher_running"], true, "{health}");
    let metrics = client
        .get("/metrics")
        .dispatch()
        .await
        .into_string()
        .await
        .expect("text");
    assert!(metrics.contains("revoke_jwks_keys 1"), "{metrics}");

    // Revocable by family (the provider's session id), subject, jti and cut-off.
    revoker
        .revoke(RevokeRequest::family("session-a").reason("logout at the provider"))
        .await
        .expect("revoke family");
    let (s, body) = status(&client, &token).await;
    assert_eq!(s, Status::Unauthorized);
    assert!(body.contains("token revoked (family)"), "{body}");
    let (other, _) = provider_token("rsa_private.pem", "rsa-1", "erin", "session-b");
    assert_eq!(status(&client, &other).await.0, Status::Ok);
    revoker
        .revoke(RevokeRequest::subject("erin"))
        .await
        .expect("revoke subject");
    assert_eq!(status(&client, &other).await.0, Status::Unauthorized);
    let (third, third_jti) = provider_token("rsa_private.pem", "rsa-1", "frank", "session-c");
    assert_eq!(status(&client, &third).await.0, Status::Ok);
    revoker
        .revoke(RevokeRequest::jti(&third_jti))
        .await
        .expect("revoke jti");
    let claims = revoker
        .verifier()
        .verify::<rocket_revoke_core::NoExtra>(&third)
        .expect("still verifies");
    assert_eq!(revoker.check(&claims), Some(Scope::Jti));

    // The provider rotates to a new key: its first token triggers a refresh (rate-limited)
    // and is accepted once the new set is in.
    *idp.document.lock().expect("lock") = jwks(&["rsa-2"]);
    let (rotated, _) = provider_token("rsa2_private.pem", "rsa-2", "gina", "session-d");
    let (s, body) = status(&client, &rotated).await;
    assert_eq!(s, Status::Unauthorized, "before the refresh");
    assert!(body.contains("unknown signing key"), "{body}");
    let picked_up = eventually(Duration::from_secs(10), || {
        let client = &client;
        let rotated = rotated.clone();
        async move { status(client, &rotated).await.0 == Status::Ok }
    })
    .await;
    assert!(
        picked_up,
        "the rotated key was fetched: {:?}",
        revoker.health().jwks
    );
    let (old, _) = provider_token("rsa_private.pem", "rsa-1", "hank", "session-e");
    assert_eq!(
        status(&client, &old).await.0,
        Status::Unauthorized,
        "the old key is gone"
    );
    assert!(
        idp.fetches.load(Ordering::SeqCst) <= 4,
        "rate-limited refreshes"
    );

    drop(client);
    db.cleanup().await;
}

#[rocket::async_test]
async fn an_unreachable_jwks_url_fails_the_launch_naming_the_key() {
    let db = TestDb::sqlite().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let table = json!({
        "algorithms": ["RS256"],
        "jwks_url": format!("http://127.0.0.1:{port}/certs"),
        "jwks_timeout_secs": 2,
    });
    let config = rocket_revoke::RevokeConfig::from_figment(
        &rocket::figment::Figment::new().merge(("revoke", table.clone())),
    )
    .expect("valid types");
    let err = config.verifier().await.expect_err("no provider");
    assert!(err.to_string().contains("revoke.jwks_url"), "{err}");
    let launched = rocket::custom(db.figment().merge(("revoke", table)))
        .attach(Db::init())
        .attach(Revoke::<Db>::fairing())
        .ignite()
        .await
        // Reading a launch error marks it handled (Rocket panics on dropping an unread one).
        .map_err(|e| e.to_string());
    assert!(launched.is_err());
    db.cleanup().await;
}

/// The `revoke` table of an app that trusts the provider at `url`.
fn provider_table(url: &str) -> Value {
    json!({
        "algorithms": ["RS256"],
        "jwks_url": url,
        "jwks_min_refresh_interval_secs": 1,
        "jwks_timeout_secs": 2,
        "issuer": [ISSUER],
        "family_claim": "sid",
        "poll_interval_ms": 20,
        "last_seen_interval_ms": 20,
    })
}

async fn provider_app(db: &TestDb, table: Value, clock: Option<&ManualClock>) -> Client {
    let mut rocket = rocket::custom(db.figment().merge(("revoke", table)))
        .attach(Db::init())
        .attach(Revoke::<Db>::fairing())
        .mount("/", routes![me, health]);
    if let Some(clock) = clock {
        rocket = rocket.manage(RevokeClock(clock.shared()));
    }
    Client::tracked(rocket).await.expect("launch")
}

/// An address of this machine that is not a loopback one, if it has any (the address the
/// system would send from; a UDP "connect" sends nothing).
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("203.0.113.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[rocket::async_test]
async fn plain_http_jwks_url_to_another_host_fails_the_launch_unless_opted_in() {
    let db = TestDb::sqlite().await;
    // Loopback over http needs no opt-in (sidecars, tests).
    let local = provider(jwks(&["rsa-1"])).await;
    let client = provider_app(&db, provider_table(&local.url), None).await;
    let (token, _) = provider_token("rsa_private.pem", "rsa-1", "erin", "s-1");
    assert_eq!(status(&client, &token).await.0, Status::Ok);
    drop(client);

    // Another host: refused at launch, naming the key and the opt-in, without a fetch.
    let ip = non_loopback_ip();
    let idp = match ip {
        Some(ip) => Some(provider_on(ip, jwks(&["rsa-1"])).await),
        None => None,
    };
    let url = idp
        .as_ref()
        .map_or_else(|| "http://idp.example/certs".to_owned(), |p| p.url.clone());
    let table = provider_table(&url);
    let config = rocket_revoke::RevokeConfig::from_figment(
        &rocket::figment::Figment::new().merge(("revoke", table.clone())),
    )
    .expect("valid types");
    let err = config.verifier().await.expect_err("plain http").to_string();
    assert!(err.contains("revoke.jwks_url"), "{err}");
    assert!(err.contains("plain http"), "{err}");
    assert!(err.contains("jwks_allow_insecure_http = true"), "{err}");
    let launched = rocket::custom(db.figment().merge(("revoke", table.clone())))
        .attach(Db::init())
        .attach(Revoke::<Db>::fairing())
        .ignite()
        .await
        .map_err(|e| e.to_string());
    assert!(launched.is_err());
    if let Some(idp) = &idp {
        assert_eq!(
            idp.fetches.load(Ordering::SeqCst),
            0,
            "refused before any fetch"
        );
    }

    // With the opt-in it launches (and the provider's tokens verify).
    let mut opted_in = table;
    opted_in["jwks_allow_insecure_http"] = json!(true);
    match &idp {
        Some(idp) => {
            let client = provider_app(&db, opted_in, None).await;
            assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
            assert_eq!(status(&client, &token).await.0, Status::Ok);
        }
        None => {
            // No other address to serve on: the opt-in at least gets past the check.
            eprintln!("no non-loopback address: checking the opt-in without a launch");
            let config = rocket_revoke::RevokeConfig::from_figment(
                &rocket::figment::Figment::new().merge(("revoke", opted_in)),
            )
            .expect("valid types");
            assert!(config.verifier.jwks_allow_insecure_http);
            rocket_revoke_core::Verifier::new(config.verifier_config()).expect("opted in");
        }
    }
    db.cleanup().await;
}

/// Waits until sync has caught up with a moved clock, then returns the health.
async fn health_after_sync(revoker: &Revoker) -> rocket_revoke::Health {
    let synced = eventually(Duration::from_secs(5), || {
        let revoker = revoker.clone();
        async move { revoker.health().staleness_ms.is_some_and(|ms| ms <= 40) }
    })
    .await;
    assert!(
        synced,
        "sync caught up: {:?}",
        revoker.health().staleness_ms
    );
    revoker.health()
}

#[rocket::async_test]
async fn an_old_jwks_key_set_degrades_health_then_its_tokens_are_refused() {
    let db = TestDb::sqlite().await;
    let clock = ManualClock::starting_now();
    let idp = provider(jwks(&["rsa-1"])).await;
    let client = provider_app(&db, provider_table(&idp.url), Some(&clock)).await;
    let revoker = client.rocket().state::<Revoker>().expect("revoker").clone();
    // Valid for two days on the app's clock.
    let (token, _) = provider_token_at(
        "rsa_private.pem",
        Some("rsa-1"),
        "erin",
        "s-1",
        clock.now_secs(),
        2 * 86_400,
    );
    assert_eq!(status(&client, &token).await.0, Status::Ok);
    let health = health_after_sync(&revoker).await;
    assert_eq!(health.status, "ok", "{health:?}");
    let jwks = health.jwks.expect("jwks");
    assert_eq!(
        (jwks.age_secs, jwks.stale, jwks.expired),
        (Some(0), false, false)
    );

    // No fetch for over jwks_max_age_secs (the refresher is not due on tokio's clock, as if
    // it had stalled): degraded, though no fetch failed; tokens still pass.
    clock.advance_secs(3601);
    let health = health_after_sync(&revoker).await;
    let jwks = health.jwks.clone().expect("jwks");
    assert_eq!(jwks.last_error, None);
    assert!(jwks.stale && !jwks.expired, "{jwks:?}");
    assert_eq!(jwks.age_secs, Some(3601));
    assert_eq!(health.status, "degraded", "{health:?}");
    let json = serde_json::to_value(&health).expect("json");
    assert_eq!(json["jwks"]["stale"], true, "{json}");
    assert_eq!(status(&client, &token).await.0, Status::Ok);

    // Past jwks_max_stale_secs: its tokens are a 401 (never a 500), health says why.
    clock.advance_secs(86_400 - 3600);
    let (s, body) = status(&client, &token).await;
    assert_eq!(s, Status::Unauthorized, "{body}");
    assert!(body.contains("signing keys are stale"), "{body}");
    let health = health_after_sync(&revoker).await;
    assert_eq!(health.status, "degraded");
    assert!(health.jwks.expect("jwks").expired);

    // One successful fetch restores both.
    revoker.verifier().refresh_jwks().await.expect("refresh");
    let health = health_after_sync(&revoker).await;
    assert_eq!(health.status, "ok", "{health:?}");
    let jwks = health.jwks.expect("jwks");
    assert_eq!(
        (jwks.age_secs, jwks.stale, jwks.expired),
        (Some(0), false, false)
    );
    assert_eq!(status(&client, &token).await.0, Status::Ok);

    drop(client);
    db.cleanup().await;
}

/// The fixture keys `rsa-1` and `rsa-2` again and again, as `k0`, `k1`, ... (`n` keys).
fn jwks_of(n: usize) -> String {
    let all: Value =
        serde_json::from_slice(&std::fs::read(keys_dir().join("jwks.json")).expect("jwks"))
            .expect("json");
    let fixture = all["keys"].as_array().expect("keys");
    let keys: Vec<Value> = (0..n)
        .map(|i| {
            let mut key = fixture[i % 2].clone();
            key["kid"] = json!(format!("k{i}"));
            key
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

#[rocket::async_test]
async fn a_token_without_kid_is_refused_against_more_keys_than_the_cap() {
    let db = TestDb::sqlite().await;
    let cap = rocket_revoke_core::MAX_KEYS_PER_TOKEN;
    let idp = provider(jwks_of(cap)).await;
    let client = provider_app(&db, provider_table(&idp.url), None).await;
    let revoker = client.rocket().state::<Revoker>().expect("revoker").clone();
    // Signed by the second fixture key: `k1`, `k3`, ...
    let (kidless, _) = provider_token_at("rsa2_private.pem", None, "erin", "s-1", now_secs(), 300);
    let (with_kid, _) = provider_token_at(
        "rsa2_private.pem",
        Some("k1"),
        "erin",
        "s-2",
        now_secs(),
        300,
    );
    assert_eq!(
        status(&client, &kidless).await.0,
        Status::Ok,
        "within the cap"
    );

    *idp.document.lock().expect("lock") = jwks_of(cap + 1);
    revoker.verifier().refresh_jwks().await.expect("refresh");
    assert_eq!(revoker.health().jwks.expect("jwks").keys, cap + 1);
    let (s, body) = status(&client, &kidless).await;
    assert_eq!(s, Status::Unauthorized, "{body}");
    assert!(body.contains("token names no signing key (kid)"), "{body}");
    assert_eq!(
        status(&client, &with_kid).await.0,
        Status::Ok,
        "a kid selects"
    );

    drop(client);
    db.cleanup().await;
}
