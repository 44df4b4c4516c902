//! Keys fetched from a JWKS URL: every key type through the URL, rotation, the unknown-`kid`
//! rate limit, failed refreshes, scheduled refreshes, start-up errors, `alg` pinning and
//! algorithm confusion. The JWKS is served by a tiny HTTP/1.1 responder on 127.0.0.1 written
//! here, which counts the requests it gets and can be told to change its document or fail.
#![cfg(feature = "jwks")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{encode, Algorithm, DecodingKey, EncodingKey, Header};
use rocket_revoke_core::MAX_JWKS_BYTES;
use rocket_revoke_core::MAX_KEYS_PER_TOKEN;
use rocket_revoke_core::{
    Claims, Clock, JwksStatus, KeyError, ManualClock, NoExtra, Verifier, VerifierConfig,
    VerifyError,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const SECRET: &str = "test-secret-0123456789abcdef-0123456789abcdef";

// ---------------------------------------------------------------- keys and tokens

fn key_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

fn read_key(name: &str) -> Vec<u8> {
    std::fs::read(key_path(name)).unwrap()
}

/// The private key of a fixture pair (`rsa`, `rsa2`, `ec`, `ed25519`).
fn signing_key(pair: &str) -> EncodingKey {
    let pem = read_key(&format!("{pair}_private.pem"));
    match pair {
        "rsa" | "rsa2" => EncodingKey::from_rsa_pem(&pem),
        "ec" => EncodingKey::from_ec_pem(&pem),
        "ed25519" => EncodingKey::from_ed_pem(&pem),
        _ => panic!("no fixture pair {pair}"),
    }
    .unwrap()
}

/// The public half of a fixture pair as a JWK with `kid`, `use: sig` and an optional `alg`.
fn jwk(kid: &str, pair: &str, alg: Option<Algorithm>) -> Value {
    let pem = read_key(&format!("{pair}_public.pem"));
    let key = match pair {
        "rsa" | "rsa2" => DecodingKey::from_rsa_pem(&pem),
        "ec" => DecodingKey::from_ec_pem(&pem),
        "ed25519" => DecodingKey::from_ed_pem(&pem),
        _ => panic!("no fixture pair {pair}"),
    }
    .unwrap();
    let mut jwk = Jwk::from_decoding_key(&key, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    serde_json::to_value(jwk).unwrap()
}

/// The fixture JWKS file: `rsa-1` (rsa) and `rsa-2` (rsa2), both pinned to RS256.
fn fixture_jwks() -> Value {
    serde_json::from_slice(&read_key("jwks.json")).unwrap()
}

/// The fixture JWKS with only the key named `kid`.
fn fixture_jwks_only(kid: &str) -> Value {
    let mut doc = fixture_jwks();
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] == kid);
    assert_eq!(doc["keys"].as_array().unwrap().len(), 1);
    doc
}

fn claims() -> Value {
    let now = rocket_revoke_core::now_secs();
    json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
    })
}

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims(), key).unwrap()
}

/// A token whose signature is never looked at: verification stops at the unknown `kid`.
fn unsigned_with_kid(kid: &str) -> String {
    let header = json!({"alg": "RS256", "kid": kid}).to_string();
    let payload = claims().to_string();
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// A token signed by hand with HMAC `secret` (for algorithm confusion attempts).
fn hs256_with_kid(kid: &str, secret: &[u8]) -> String {
    let key = EncodingKey::from_secret(secret).unwrap();
    sign(Algorithm::HS256, kid, &key)
}

fn verify(verifier: &Verifier, token: &str) -> Result<Claims, VerifyError> {
    verifier.verify::<NoExtra>(token)
}

// ---------------------------------------------------------------- the JWKS server

/// What the server answers.
#[derive(Clone)]
enum Reply {
    /// 200 with this JSON document.
    Json(String),
    /// This status, empty body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a body over the size cap, without `Content-Length`.
    Huge,
    /// Reads the request and never answers.
    Hang,
    /// 302 to this URL.
    Redirect(String),
}

struct ServerState {
    reply: Mutex<Reply>,
    /// When each complete request arrived.
    requests: Mutex<Vec<Instant>>,
    /// The request line of each.
    request_lines: Mutex<Vec<String>>,
}

/// A one-route HTTP/1.1 server on 127.0.0.1 (any path gets the current reply).
struct JwksServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(jwks: &Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState {
            reply: Mutex::new(Reply::Json(jwks.to_string())),
            requests: Mutex::new(Vec::new()),
            request_lines: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = respond(&mut socket, &state).await;
                });
            }
        });
        JwksServer { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    fn serve(&self, jwks: &Value) {
        self.reply(Reply::Json(jwks.to_string()));
    }

    fn reply(&self, reply: Reply) {
        *self.state.reply.lock().unwrap() = reply;
    }

    fn requests(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    fn request_times(&self) -> Vec<Instant> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Stops listening: later connections are refused.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn respond(socket: &mut TcpStream, state: &ServerState) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0_u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await?;
        if n == 0 || request.len() > 64 * 1024 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&request)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    state.request_lines.lock().unwrap().push(line);
    state.requests.lock().unwrap().push(Instant::now());
    let reply = state.reply.lock().unwrap().clone();
    let mut location = None;
    let (status, body, length) = match reply {
        Reply::Json(doc) => ("200 OK".to_owned(), doc.into_bytes(), true),
        Reply::Status(code) => (format!("{code} Failure"), Vec::new(), true),
        Reply::Garbage => ("200 OK".to_owned(), b"<html>not json</html>".to_vec(), true),
        Reply::Huge => {
            let mut doc = br#"{"keys": []"#.to_vec();
            doc.resize(MAX_JWKS_BYTES + 4096, b' ');
            doc.push(b'}');
            ("200 OK".to_owned(), doc, false)
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return Ok(());
        }
        Reply::Redirect(to) => {
            location = Some(to);
            ("302 Found".to_owned(), Vec::new(), true)
        }
    };
    let mut head =
        format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n");
    if length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if let Some(to) = location {
        head.push_str(&format!("Location: {to}\r\n"));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&body).await?;
    socket.shutdown().await
}

// ---------------------------------------------------------------- helpers

fn url_config(url: &str, algorithms: &[Algorithm]) -> VerifierConfig {
    VerifierConfig {
        algorithms: algorithms.to_vec(),
        jwks_url: Some(url.to_owned()),
        jwks_refresh_secs: 300,
        jwks_min_refresh_interval_secs: 1,
        jwks_timeout_secs: 2,
        ..VerifierConfig::default()
    }
}

fn status(verifier: &Verifier) -> JwksStatus {
    verifier.jwks_status().unwrap()
}

/// Polls `check` every 10 ms until it yields a value; fails after `limit`.
async fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- every key type

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_pss_ec_and_ed_tokens_verify_through_the_url() {
    let doc = json!({"keys": [
        jwk("rs", "rsa", Some(Algorithm::RS256)),
        jwk("ps", "rsa2", Some(Algorithm::PS256)),
        jwk("ec", "ec", Some(Algorithm::ES256)),
        jwk("ed", "ed25519", Some(Algorithm::EdDSA)),
        // No `alg`: serves every allowed RSA algorithm.
        jwk("rsa-any", "rsa2", None),
    ]});
    let server = JwksServer::start(&doc).await;
    let algorithms = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ];
    let verifier = Verifier::from_config(&url_config(&server.url(), &algorithms))
        .await
        .unwrap();

    let cases = [
        (Algorithm::RS256, "rs", "rsa"),
        (Algorithm::PS256, "ps", "rsa2"),
        (Algorithm::ES256, "ec", "ec"),
        (Algorithm::EdDSA, "ed", "ed25519"),
        (Algorithm::RS384, "rsa-any", "rsa2"),
        (Algorithm::RS512, "rsa-any", "rsa2"),
        (Algorithm::PS384, "rsa-any", "rsa2"),
        (Algorithm::PS512, "rsa-any", "rsa2"),
    ];
    for (alg, kid, pair) in cases {
        let token = sign(alg, kid, &signing_key(pair));
        let claims = verify(&verifier, &token).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims.sub.as_deref(), Some("alice"));
    }
    // The kid picks the key: a token signed by another key under that kid fails.
    let forged = sign(Algorithm::RS256, "rs", &signing_key("rsa2"));
    assert_eq!(
        verify(&verifier, &forged),
        Err(VerifyError::InvalidSignature)
    );

    let st = status(&verifier);
    assert_eq!(st.keys, 5);
    assert_eq!(st.kids, ["rs", "ps", "ec", "ed", "rsa-any"]);
    assert_eq!(st.refreshes, 1);
    assert_eq!(st.failures, 0);
    assert_eq!(server.requests(), 1, "verifications never fetch");
    let lines = server.state.request_lines.lock().unwrap().clone();
    assert_eq!(lines, ["GET /jwks.json HTTP/1.1"]);
}

// ---------------------------------------------------------------- rotation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_key_is_rejected_once_then_verifies_and_the_old_kid_is_gone() {
    let server = JwksServer::start(&fixture_jwks_only("rsa-1")).await;
    let verifier = Verifier::from_config(&url_config(&server.url(), &[Algorithm::RS256]))
        .await
        .unwrap();
    let refresher = verifier.spawn_jwks_refresh().unwrap();
    // Clones share the key set.
    let clone = verifier.clone();
    let old = sign(Algorithm::RS256, "rsa-1", &signing_key("rsa"));
    let new = sign(Algorithm::RS256, "rsa-2", &signing_key("rsa2"));
    // Twice: the second answer comes from this thread's verified-token cache, which the
    // rotation below must invalidate.
    assert!(verify(&verifier, &old).is_ok());
    assert!(verify(&verifier, &old).is_ok());

    server.serve(&fixture_jwks_only("rsa-2"));
    assert_eq!(verify(&clone, &new), Err(VerifyError::UnknownKey));
    // The refresh happens in the background; the request path never waits for it.
    eventually("the on-demand refresh", WAIT, || {
        (status(&verifier).refreshes == 2).then_some(())
    })
    .await;
    assert_eq!(server.requests(), 2);
    verify(&verifier, &new).unwrap();
    assert!(verify(&clone, &new).is_ok());
    assert_eq!(verify(&verifier, &old), Err(VerifyError::UnknownKey));

    let st = status(&verifier);
    assert_eq!(st.kids, ["rsa-2"]);
    assert_eq!(st.refreshes, 2);
    assert_eq!(st.unknown_kid_refreshes, 1, "{st:?}");
    refresher.stop().await;
}

// ---------------------------------------------------------------- rate limit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_bogus_kids_inside_the_rate_limit_window_fetches_nothing() {
    let server = JwksServer::start(&fixture_jwks()).await;
    let config = VerifierConfig {
        jwks_min_refresh_interval_secs: 60,
        ..url_config(&server.url(), &[Algorithm::RS256])
    };
    let verifier = Verifier::from_config(&config).await.unwrap();
    let _refresher = verifier.spawn_jwks_refresh().unwrap();
    assert_eq!(server.requests(), 1);

    for i in 0..1000 {
        let token = unsigned_with_kid(&format!("bogus-{i}"));
        assert_eq!(verify(&verifier, &token), Err(VerifyError::UnknownKey));
    }
    // The refresher took the wake-up and waits for the window (60 s after the start-up
    // fetch) to end: the provider saw nothing more.
    let st = eventually("the refresher to throttle", WAIT, || {
        let st = status(&verifier);
        st.throttled.then_some(st)
    })
    .await;
    assert_eq!(server.requests(), 1);
    assert_eq!(st.unknown_kid_refreshes_skipped, 999);
    assert_eq!(st.unknown_kid_refreshes, 0);
    // Known keys still work meanwhile.
    let token = sign(Algorithm::RS256, "rsa-1", &signing_key("rsa"));
    assert!(verify(&verifier, &token).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_bogus_kids_costs_one_fetch_now_and_one_per_interval() {
    let server = JwksServer::start(&fixture_jwks()).await;
    let config = VerifierConfig {
        jwks_min_refresh_interval_secs: 1,
        ..url_config(&server.url(), &[Algorithm::RS256])
    };
    let verifier = Verifier::from_config(&config).await.unwrap();
    let _refresher = verifier.spawn_jwks_refresh().unwrap();
    // Out of the window of the start-up fetch.
    let first = server.request_times()[0];
    tokio::time::sleep_until(first + Duration::from_millis(1100)).await;

    // First half: the first bogus kid gets an immediate fetch.
    for i in 0..500 {
        let token = unsigned_with_kid(&format!("bogus-{i}"));
        assert_eq!(verify(&verifier, &token), Err(VerifyError::UnknownKey));
    }
    eventually("the on-demand fetch", WAIT, || {
        (server.requests() == 2).then_some(())
    })
    .await;
    let st = eventually("its end", WAIT, || {
        let st = status(&verifier);
        (st.refreshes == 2).then_some(st)
    })
    .await;
    assert_eq!(st.unknown_kid_refreshes, 1);

    // Second half, inside the window: one deferred fetch at its end, whatever the count.
    for i in 500..1000 {
        let token = unsigned_with_kid(&format!("bogus-{i}"));
        assert_eq!(verify(&verifier, &token), Err(VerifyError::UnknownKey));
    }
    eventually("the refresher to throttle", WAIT, || {
        status(&verifier).throttled.then_some(())
    })
    .await;
    assert_eq!(server.requests(), 2, "nothing fetched inside the window");
    eventually("the deferred fetch", WAIT, || {
        (server.requests() == 3).then_some(())
    })
    .await;
    let times = server.request_times();
    assert!(
        times[2] - times[1] >= Duration::from_millis(900),
        "fetches {:?} apart",
        times[2] - times[1]
    );
    let st = eventually("the deferred fetch to end", WAIT, || {
        let st = status(&verifier);
        (st.refreshes == 3).then_some(st)
    })
    .await;
    assert!(!st.throttled);
    assert_eq!(
        st.unknown_kid_refreshes + st.unknown_kid_refreshes_skipped,
        1000,
        "{st:?}"
    );
    assert!(st.unknown_kid_refreshes_skipped >= 990, "{st:?}");
    assert_eq!(server.requests(), 3);
}

// ---------------------------------------------------------------- failures

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_refreshes_keep_the_last_good_keys_and_are_reported() {
    let server = JwksServer::start(&fixture_jwks()).await;
    let verifier = Verifier::from_config(&url_config(&server.url(), &[Algorithm::RS256]))
        .await
        .unwrap();
    let token = sign(Algorithm::RS256, "rsa-1", &signing_key("rsa"));
    assert!(verify(&verifier, &token).is_ok());
    let good = status(&verifier);
    assert_eq!(good.last_error, None);
    assert!(good.last_success.is_some());

    let oct_only = json!({"keys": [{"kty": "oct", "kid": "sym", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]});
    let cases = [
        (Reply::Status(500), "HTTP status 500"),
        (Reply::Status(404), "HTTP status 404"),
        (Reply::Garbage, "not valid JSON"),
        (
            Reply::Json(r#"{"keys": []}"#.into()),
            "no usable signing key",
        ),
        (Reply::Json(r#"{"kes": []}"#.into()), "no \"keys\" array"),
        (Reply::Json(oct_only.to_string()), "no usable signing key"),
        (Reply::Huge, "larger than"),
    ];
    for (i, (reply, expected)) in cases.into_iter().enumerate() {
        server.reply(reply);
        let err = verifier.refresh_jwks().await.unwrap_err();
        let KeyError::JwksFetch { reason, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
        let st = status(&verifier);
        assert_eq!(st.failures, i as u64 + 1);
        assert_eq!(st.last_error.as_deref(), Some(reason.as_str()));
        assert_eq!(st.kids, ["rsa-1", "rsa-2"], "the last good set stays");
        assert_eq!(st.last_success, good.last_success);
        assert!(verify(&verifier, &token).is_ok());
    }

    // Recovery clears the error.
    server.serve(&fixture_jwks());
    verifier.refresh_jwks().await.unwrap();
    let st = status(&verifier);
    assert_eq!(st.last_error, None);
    assert_eq!(st.refreshes, 2);

    // Connection refused.
    server.stop().await;
    let err = verifier.refresh_jwks().await.unwrap_err();
    assert!(err.to_string().contains("connection failed"), "{err}");
    let st = status(&verifier);
    assert_eq!(st.failures, 8);
    assert!(st.last_error.unwrap().contains("connection failed"));
    assert!(verify(&verifier, &token).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_times_out() {
    let server = JwksServer::start(&fixture_jwks()).await;
    let config = VerifierConfig {
        jwks_timeout_secs: 1,
        ..url_config(&server.url(), &[Algorithm::RS256])
    };
    let verifier = Verifier::from_config(&config).await.unwrap();
    server.reply(Reply::Hang);
    let started = Instant::now();
    let err = verifier.refresh_jwks().await.unwrap_err();
    assert!(err.to_string().contains("timed out after 1 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status(&verifier).keys, 2);
}

// ---------------------------------------------------------------- scheduled refresh

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_refresh_picks_up_new_keys_and_records_failures() {
    let server = JwksServer::start(&fixture_jwks_only("rsa-1")).await;
    let config = VerifierConfig {
        jwks_refresh_secs: 1,
        ..url_config(&server.url(), &[Algorithm::RS256])
    };
    let verifier = Verifier::from_config(&config).await.unwrap();
    let refresher = verifier.spawn_jwks_refresh().unwrap();
    assert!(status(&verifier).refresher_running);

    // No token asks for it: the schedule alone brings the new set.
    server.serve(&fixture_jwks_only("rsa-2"));
    eventually("the scheduled refresh", WAIT, || {
        (status(&verifier).kids == ["rsa-2"]).then_some(())
    })
    .await;
    let token = sign(Algorithm::RS256, "rsa-2", &signing_key("rsa2"));
    assert!(verify(&verifier, &token).is_ok());
    assert_eq!(status(&verifier).unknown_kid_refreshes, 0);

    // A failing provider: scheduled attempts fail, the keys stay.
    server.reply(Reply::Status(503));
    let st = eventually("a failed scheduled refresh", WAIT, || {
        let st = status(&verifier);
        (st.failures >= 1).then_some(st)
    })
    .await;
    assert_eq!(st.last_error.as_deref(), Some("HTTP status 503"));
    assert!(verify(&verifier, &token).is_ok());

    // Stopped: the status says so, and a second refresher may start.
    assert!(refresher.is_running());
    assert!(
        verifier.spawn_jwks_refresh().is_none(),
        "one refresher at a time"
    );
    refresher.stop().await;
    assert!(!status(&verifier).refresher_running);
    let again = verifier.spawn_jwks_refresh();
    assert!(again.is_some());
}

// ---------------------------------------------------------------- start-up

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_fails_clearly_when_the_first_fetch_fails() {
    let server = JwksServer::start(&fixture_jwks()).await;
    let config = url_config(&server.url(), &[Algorithm::RS256]);

    server.reply(Reply::Status(500));
    let err = Verifier::from_config(&config).await.unwrap_err();
    assert!(
        matches!(&err, KeyError::JwksFetch { url, reason }
        if *url == server.url() && reason == "HTTP status 500"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "cannot load the JWKS from {}: HTTP status 500",
            server.url()
        )
    );

    server.reply(Reply::Garbage);
    let err = Verifier::from_config(&config).await.unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");

    // Nothing listens there any more.
    let url = server.url();
    server.stop().await;
    let err = Verifier::from_config(&url_config(&url, &[Algorithm::RS256]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_checks_each_allowed_algorithm_against_the_fetched_keys() {
    let server = JwksServer::start(&fixture_jwks()).await;
    // Only RSA keys are served.
    let err = Verifier::from_config(&url_config(
        &server.url(),
        &[Algorithm::RS256, Algorithm::ES256],
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(err, KeyError::NoKeyForAlgorithm(Algorithm::ES256)),
        "{err:?}"
    );
    // HMAC keys never come from a URL: HS256 needs the secret, before any fetch.
    let err = Verifier::new(&url_config(
        &server.url(),
        &[Algorithm::RS256, Algorithm::HS256],
    ))
    .unwrap_err();
    assert!(
        matches!(err, KeyError::NoKeyForAlgorithm(Algorithm::HS256)),
        "{err:?}"
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_does_not_fetch_and_the_refresher_makes_the_first_fetch() {
    let server = JwksServer::start(&fixture_jwks()).await;
    let verifier = Verifier::new(&url_config(&server.url(), &[Algorithm::RS256])).unwrap();
    let token = sign(Algorithm::RS256, "rsa-1", &signing_key("rsa"));
    assert_eq!(verify(&verifier, &token), Err(VerifyError::UnknownKey));
    let st = status(&verifier);
    assert_eq!((st.keys, st.last_attempt, st.refreshes), (0, None, 0));
    assert!(!st.refresher_running);
    assert_eq!(server.requests(), 0);

    let _refresher = verifier.spawn_jwks_refresh().unwrap();
    eventually("the first fetch", WAIT, || verify(&verifier, &token).ok()).await;
    assert_eq!(status(&verifier).keys, 2);
}

#[test]
fn jwks_settings_have_documented_defaults_and_are_checked() {
    let defaults = VerifierConfig::default();
    assert_eq!(defaults.jwks_url, None);
    assert_eq!(defaults.jwks_refresh_secs, 300);
    assert_eq!(defaults.jwks_min_refresh_interval_secs, 10);
    assert_eq!(defaults.jwks_timeout_secs, 5);

    let config: VerifierConfig = serde_json::from_value(json!({
        "algorithms": ["RS256"],
        "jwks_url": "https://idp.example/realms/x/protocol/openid-connect/certs",
        "jwks_refresh_secs": 60,
    }))
    .unwrap();
    assert_eq!(config.jwks_refresh_secs, 60);
    assert_eq!(config.jwks_min_refresh_interval_secs, 10);
    assert!(serde_json::from_value::<VerifierConfig>(json!({"jwks_urls": "x"})).is_err());

    // `new` checks everything without a runtime and without fetching.
    assert!(Verifier::new(&config).is_ok());
    let bad = |config: VerifierConfig| match Verifier::new(&config) {
        Err(KeyError::InvalidConfig { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    let base = url_config("https://idp.example/jwks", &[Algorithm::RS256]);
    let reason = bad(VerifierConfig {
        jwks_url: Some("ftp://idp.example/jwks".into()),
        ..base.clone()
    });
    assert!(reason.contains("http:// or https://"), "{reason}");
    let reason = bad(VerifierConfig {
        jwks_url: Some("https://bad host/jwks".into()),
        ..base.clone()
    });
    assert!(reason.contains("not a valid URL"), "{reason}");
    for (name, config) in [
        (
            "jwks_refresh_secs",
            VerifierConfig {
                jwks_refresh_secs: 0,
                ..base.clone()
            },
        ),
        (
            "jwks_min_refresh_interval_secs",
            VerifierConfig {
                jwks_min_refresh_interval_secs: 0,
                ..base.clone()
            },
        ),
        (
            "jwks_timeout_secs",
            VerifierConfig {
                jwks_timeout_secs: 0,
                ..base.clone()
            },
        ),
    ] {
        assert!(bad(config).contains(name));
    }
}

#[tokio::test]
async fn a_verifier_without_url_has_no_jwks_machinery() {
    let config = VerifierConfig {
        secret: Some(SECRET.into()),
        ..VerifierConfig::default()
    };
    let verifier = Verifier::from_config(&config).await.unwrap();
    assert!(verifier.jwks_status().is_none());
    assert!(verifier.spawn_jwks_refresh().is_none());
    assert!(matches!(
        verifier.refresh_jwks().await,
        Err(KeyError::InvalidConfig { .. })
    ));
    let token = hs256_with_kid("any", SECRET.as_bytes());
    assert!(verify(&verifier, &token).is_ok());
}

// ---------------------------------------------------------------- alg rules

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_pinned_in_the_jwks_still_applies() {
    let mut doc = fixture_jwks();
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .push(jwk("ps-1", "rsa2", Some(Algorithm::PS256)));
    let server = JwksServer::start(&doc).await;
    let verifier = Verifier::from_config(&url_config(
        &server.url(),
        &[Algorithm::RS256, Algorithm::PS256],
    ))
    .await
    .unwrap();
    let rsa = signing_key("rsa");
    assert!(verify(&verifier, &sign(Algorithm::RS256, "rsa-1", &rsa)).is_ok());
    assert!(verify(
        &verifier,
        &sign(Algorithm::PS256, "ps-1", &signing_key("rsa2"))
    )
    .is_ok());
    // rsa-1 is pinned to RS256: a PS256 token under its kid finds no key.
    assert_eq!(
        verify(&verifier, &sign(Algorithm::PS256, "rsa-1", &rsa)),
        Err(VerifyError::UnknownKey)
    );
    // And ps-1 is pinned to PS256.
    assert_eq!(
        verify(
            &verifier,
            &sign(Algorithm::RS256, "ps-1", &signing_key("rsa2"))
        ),
        Err(VerifyError::UnknownKey)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_tokens_never_verify_with_jwks_keys() {
    let oct_secret = b"published-secret-0123456789abcdef-0123456789";
    let mut doc = fixture_jwks();
    doc["keys"].as_array_mut().unwrap().push(json!({
        "kty": "oct", "kid": "sym", "use": "sig", "k": URL_SAFE_NO_PAD.encode(oct_secret),
    }));
    let server = JwksServer::start(&doc).await;
    let config = VerifierConfig {
        secret: Some(SECRET.into()),
        ..url_config(&server.url(), &[Algorithm::HS256, Algorithm::RS256])
    };
    let verifier = Verifier::from_config(&config).await.unwrap();
    assert_eq!(
        status(&verifier).kids,
        ["rsa-1", "rsa-2"],
        "oct keys are skipped"
    );

    // The configured secret works (so the rejections below are about the key, not HS256).
    assert!(verify(&verifier, &hs256_with_kid("mine", SECRET.as_bytes())).is_ok());
    // HMAC with the RSA public key's PEM bytes, its DER-ish modulus, or the published oct
    // secret, under the JWKS kids: never accepted.
    let modulus = URL_SAFE_NO_PAD
        .decode(fixture_jwks()["keys"][0]["n"].as_str().unwrap())
        .unwrap();
    for (kid, secret) in [
        ("rsa-1", read_key("rsa_public.pem")),
        ("rsa-1", modulus),
        ("sym", oct_secret.to_vec()),
    ] {
        let token = hs256_with_kid(kid, &secret);
        assert_eq!(
            verify(&verifier, &token),
            Err(VerifyError::InvalidSignature),
            "kid {kid}"
        );
    }

    // With HS256 not allowed at all, the algorithm is refused before any key is looked at.
    let rs_only = Verifier::from_config(&url_config(&server.url(), &[Algorithm::RS256]))
        .await
        .unwrap();
    let token = hs256_with_kid("rsa-1", &read_key("rsa_public.pem"));
    assert_eq!(
        verify(&rs_only, &token),
        Err(VerifyError::AlgorithmNotAllowed)
    );
}

// ---------------------------------------------------------------- status

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_serializes_for_health_and_masks_a_password_in_the_url() {
    let server = JwksServer::start(&fixture_jwks()).await;
    let url = format!("http://user:hunter2@{}/jwks.json", server.addr);
    let verifier = Verifier::from_config(&url_config(&url, &[Algorithm::RS256]))
        .await
        .unwrap();
    let st = status(&verifier);
    assert_eq!(st.url, format!("http://user:***@{}/jwks.json", server.addr));
    let now = rocket_revoke_core::now_secs();
    assert!(st.last_success.is_some_and(|t| (now - t).abs() <= 5));
    assert_eq!(st.last_attempt.map(|t| t <= now), Some(true));

    let value = serde_json::to_value(&st).unwrap();
    let mut fields: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "age_secs",
            "expired",
            "failures",
            "keys",
            "kids",
            "last_attempt",
            "last_error",
            "last_success",
            "refresher_running",
            "refreshes",
            "stale",
            "throttled",
            "unknown_kid_refreshes",
            "unknown_kid_refreshes_skipped",
            "url",
        ]
    );
    assert!(!value.to_string().contains("hunter2"));
    let back: JwksStatus = serde_json::from_value(value).unwrap();
    assert_eq!(back, st);

    server.reply(Reply::Status(500));
    let err = verifier.refresh_jwks().await.unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

// ---------------------------------------------------------------- key trust

/// The reason of a [`KeyError::InvalidConfig`] from [`Verifier::new`].
fn config_error(config: &VerifierConfig) -> String {
    match Verifier::new(config) {
        Err(KeyError::InvalidConfig { reason, .. }) => reason,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_another_host_is_refused_unless_opted_in() {
    for url in [
        "http://idp.example/jwks",
        "http://10.0.0.1/jwks",
        "http://[2001:db8::1]/jwks",
        "HTTP://idp.example/jwks",
    ] {
        let config = url_config(url, &[Algorithm::RS256]);
        let reason = config_error(&config);
        assert!(reason.starts_with("jwks_url"), "{reason}");
        assert!(reason.contains("plain http"), "{reason}");
        assert!(
            reason.contains("jwks_allow_insecure_http = true"),
            "says how to opt in: {reason}"
        );
        let opted_in = VerifierConfig {
            jwks_allow_insecure_http: true,
            ..config
        };
        assert!(Verifier::new(&opted_in).is_ok(), "{url} with the opt-in");
    }
    // This machine, and https anywhere, need no opt-in.
    for url in [
        "http://localhost:8080/jwks",
        "http://LOCALHOST/jwks",
        "http://127.0.0.1/jwks",
        "http://127.8.9.10:9000/jwks",
        "http://[::1]:8080/jwks",
        "https://idp.example/jwks",
    ] {
        assert!(
            Verifier::new(&url_config(url, &[Algorithm::RS256])).is_ok(),
            "{url}"
        );
    }
    // A loopback endpoint may not redirect to plain http elsewhere either.
    let server = JwksServer::start(&fixture_jwks()).await;
    server.reply(Reply::Redirect("http://idp.example/jwks".into()));
    let err = Verifier::from_config(&url_config(&server.url(), &[Algorithm::RS256]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redirect refused"), "{err}");
    // ...and to this machine it may.
    let target = JwksServer::start(&fixture_jwks()).await;
    server.reply(Reply::Redirect(target.url()));
    let verifier = Verifier::from_config(&url_config(&server.url(), &[Algorithm::RS256]))
        .await
        .unwrap();
    assert_eq!(status(&verifier).keys, 2);
    assert_eq!(target.requests(), 1);
}

#[test]
fn key_set_age_bounds_have_documented_defaults_and_are_ordered() {
    let defaults = VerifierConfig::default();
    assert!(!defaults.jwks_allow_insecure_http);
    assert_eq!(defaults.jwks_max_age_secs, 3600);
    assert_eq!(defaults.jwks_max_stale_secs, 86_400);

    let base = url_config("https://idp.example/jwks", &[Algorithm::RS256]);
    assert!(Verifier::new(&base).is_ok());
    // Just before a successful scheduled fetch lands, the set is refresh + timeout old.
    let reason = config_error(&VerifierConfig {
        jwks_max_age_secs: 301,
        ..base.clone()
    });
    assert!(reason.starts_with("jwks_max_age_secs"), "{reason}");
    assert!(
        Verifier::new(&VerifierConfig {
            jwks_max_age_secs: 302,
            jwks_max_stale_secs: 302,
            ..base.clone()
        })
        .is_ok(),
        "refresh + timeout, and max_stale = max_age, are allowed"
    );
    let reason = config_error(&VerifierConfig {
        jwks_max_stale_secs: 3599,
        ..base.clone()
    });
    assert!(reason.starts_with("jwks_max_stale_secs"), "{reason}");
    let parsed: VerifierConfig = serde_json::from_value(json!({
        "jwks_allow_insecure_http": true,
        "jwks_max_age_secs": 600,
        "jwks_max_stale_secs": 7200,
    }))
    .unwrap();
    assert!(parsed.jwks_allow_insecure_http);
    assert_eq!(
        (parsed.jwks_max_age_secs, parsed.jwks_max_stale_secs),
        (600, 7200)
    );
}

/// A token signed by fixture pair `pair`, with `kid` (or none), valid for two days from
/// `now` (a manual clock's time).
fn sign_at(pair: &str, kid: Option<&str>, now: i64) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": "alice",
        "iat": now,
        "exp": now + 2 * 86_400,
    });
    encode(&header, &claims, &signing_key(pair)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_key_set_goes_stale_then_stops_verifying_until_a_fetch_succeeds() {
    let clock = ManualClock::starting_now();
    let server = JwksServer::start(&fixture_jwks()).await;
    let config = url_config(&server.url(), &[Algorithm::RS256]);
    let verifier = Verifier::from_config_with_clock(&config, clock.shared())
        .await
        .unwrap();
    let token = sign_at("rsa", Some("rsa-1"), clock.now_secs());
    let kidless = sign_at("rsa2", None, clock.now_secs());
    assert!(verify(&verifier, &token).is_ok(), "and now in the cache");
    assert!(verify(&verifier, &kidless).is_ok());
    let st = status(&verifier);
    assert_eq!((st.age_secs, st.stale, st.expired), (Some(0), false, false));
    assert_eq!(
        st.last_success,
        Some(clock.now_secs()),
        "on the verifier's clock"
    );

    // The provider fails; an hour later the set is stale (for health), still trusted.
    server.reply(Reply::Status(503));
    assert!(verifier.refresh_jwks().await.is_err());
    clock.advance_secs(3600);
    assert!(!status(&verifier).stale, "not past max_age yet");
    clock.advance_secs(1);
    let st = status(&verifier);
    assert_eq!(
        (st.age_secs, st.stale, st.expired),
        (Some(3601), true, false)
    );
    assert!(verify(&verifier, &token).is_ok());

    // A day later its keys verify nothing: neither a cached token nor a fresh one.
    clock.advance_secs(86_400 - 3601);
    assert!(verify(&verifier, &token).is_ok(), "not past max_stale yet");
    clock.advance_secs(1);
    let st = status(&verifier);
    assert_eq!((st.stale, st.expired), (true, true));
    assert_eq!(verify(&verifier, &token), Err(VerifyError::StaleKeys));
    assert_eq!(verify(&verifier, &kidless), Err(VerifyError::StaleKeys));
    let fresh = sign_at("rsa", Some("rsa-1"), clock.now_secs());
    assert_eq!(verify(&verifier, &fresh), Err(VerifyError::StaleKeys));
    assert_eq!(
        VerifyError::StaleKeys.description(),
        "signing keys are stale"
    );
    // Another failed fetch changes nothing.
    assert!(verifier.refresh_jwks().await.is_err());
    assert_eq!(verify(&verifier, &fresh), Err(VerifyError::StaleKeys));

    // One successful fetch (of the very same document) restores both.
    server.serve(&fixture_jwks());
    verifier.refresh_jwks().await.unwrap();
    let st = status(&verifier);
    assert_eq!((st.age_secs, st.stale, st.expired), (Some(0), false, false));
    assert!(verify(&verifier, &token).is_ok());
    assert!(verify(&verifier, &fresh).is_ok());
    assert!(verify(&verifier, &kidless).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_key_set_leaves_configured_keys_working() {
    let clock = ManualClock::starting_now();
    let server = JwksServer::start(&fixture_jwks_only("rsa-2")).await;
    let config = VerifierConfig {
        public_key_pem: vec![key_path("rsa_public.pem")],
        ..url_config(&server.url(), &[Algorithm::RS256])
    };
    let verifier = Verifier::from_config_with_clock(&config, clock.shared())
        .await
        .unwrap();
    server.reply(Reply::Status(503));
    clock.advance_secs(86_401);
    let pem_signed = sign_at("rsa", None, clock.now_secs());
    assert!(verify(&verifier, &pem_signed).is_ok());
    let url_signed = sign_at("rsa2", Some("rsa-2"), clock.now_secs());
    assert_eq!(verify(&verifier, &url_signed), Err(VerifyError::StaleKeys));
}

/// A JWKS of `n` RS256 keys `k0`..: the even ones are pair `rsa`, the odd ones `rsa2`.
fn jwks_of(n: usize) -> Value {
    let keys: Vec<Value> = (0..n)
        .map(|i| {
            let pair = if i % 2 == 0 { "rsa" } else { "rsa2" };
            jwk(&format!("k{i}"), pair, Some(Algorithm::RS256))
        })
        .collect();
    json!({ "keys": keys })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_kid_is_tried_against_a_bounded_number_of_keys() {
    assert_eq!(MAX_KEYS_PER_TOKEN, 4);
    // Signed by `rsa2`: the last key of a set of MAX_KEYS_PER_TOKEN, the second of more.
    let kidless = sign_at("rsa2", None, rocket_revoke_core::now_secs());
    let with_kid = sign_at("rsa2", Some("k1"), rocket_revoke_core::now_secs());

    let server = JwksServer::start(&jwks_of(MAX_KEYS_PER_TOKEN)).await;
    let verifier = Verifier::from_config(&url_config(&server.url(), &[Algorithm::RS256]))
        .await
        .unwrap();
    assert!(verify(&verifier, &kidless).is_ok(), "within the cap");
    assert!(verify(&verifier, &with_kid).is_ok());

    server.serve(&jwks_of(MAX_KEYS_PER_TOKEN + 1));
    verifier.refresh_jwks().await.unwrap();
    assert_eq!(status(&verifier).keys, MAX_KEYS_PER_TOKEN + 1);
    assert_eq!(verify(&verifier, &kidless), Err(VerifyError::KidRequired));
    assert!(verify(&verifier, &with_kid).is_ok(), "a kid still selects");
    assert_eq!(
        VerifyError::KidRequired.description(),
        "token names no signing key (kid)"
    );
    // Keys of other algorithms do not count.
    let mut mixed = jwks_of(MAX_KEYS_PER_TOKEN);
    mixed["keys"]
        .as_array_mut()
        .unwrap()
        .push(jwk("ec-1", "ec", Some(Algorithm::ES256)));
    server.serve(&mixed);
    let verifier = Verifier::from_config(&url_config(
        &server.url(),
        &[Algorithm::RS256, Algorithm::ES256],
    ))
    .await
    .unwrap();
    assert!(verify(&verifier, &kidless).is_ok());

    // More configured keys without a kid than a token may try: a start-up error.
    let pems = vec![key_path("rsa_public.pem"); MAX_KEYS_PER_TOKEN + 1];
    let reason = config_error(&VerifierConfig {
        algorithms: vec![Algorithm::RS256],
        public_key_pem: pems.clone(),
        ..VerifierConfig::default()
    });
    assert!(reason.starts_with("public_key_pem"), "{reason}");
    assert!(Verifier::new(&VerifierConfig {
        algorithms: vec![Algorithm::RS256],
        public_key_pem: pems[..MAX_KEYS_PER_TOKEN].to_vec(),
        ..VerifierConfig::default()
    })
    .is_ok());
}
