//! An app that only verifies tokens from an identity provider: keys from a JWKS URL (served
//! here on 127.0.0.1), family by the provider's `sid` claim. Such tokens are accepted,
//! registered when first seen, revocable by jti, subject, family and cut-off, and the key set
//! shows in `/health` and the metrics; a rotated key is picked up on its first use.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, TestDb};
use jsonwebtoken::{Algorithm, EncodingKey, Header as JwtHeader};
use revoke_core::{now_secs, Scope, TokenKind};
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};
use rocket::{get, routes};
use rocket_db_pools::{sqlx, Database};
use rocket_revoke::{Authenticated, Revoke, Revoker};
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
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../revoke-core/tests/keys")
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
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
    let jti = uuid::Uuid::new_v4().to_string();
    let now = now_secs();
    let claims = json!({
        "jti": jti, "sub": sub, "sid": sid, "iss": ISSUER,
        "iat": now, "exp": now + 300, "typ": "Bearer",
    });
    let pem = std::fs::read(keys_dir().join(key)).expect("pem");
    let mut header = JwtHeader::new(Algorithm::RS256);
    header.kid = Some(kid.into());
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
        .revoke_family("session-a", Some("logout at the provider"), None)
        .await
        .expect("revoke family");
    let (s, body) = status(&client, &token).await;
    assert_eq!(s, Status::Unauthorized);
    assert!(body.contains("token revoked (family)"), "{body}");
    let (other, _) = provider_token("rsa_private.pem", "rsa-1", "erin", "session-b");
    assert_eq!(status(&client, &other).await.0, Status::Ok);
    revoker
        .revoke_subject("erin", None, None)
        .await
        .expect("revoke subject");
    assert_eq!(status(&client, &other).await.0, Status::Unauthorized);
    let (third, third_jti) = provider_token("rsa_private.pem", "rsa-1", "frank", "session-c");
    assert_eq!(status(&client, &third).await.0, Status::Ok);
    revoker
        .revoke_jti(&third_jti, None, None)
        .await
        .expect("revoke jti");
    let claims = revoker
        .verifier()
        .verify::<revoke_core::NoExtra>(&third)
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
