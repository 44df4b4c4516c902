//! No token and no secret in the logs: a real `revoke-demo` at the most verbose log level
//! goes through login, refresh, refresh reuse, rejections, revocations, RFC 7009 and
//! RFC 7662; its output is then searched for every token (and each of its three parts),
//! HTTP Basic credentials and every configured secret. `jti`s may appear.
//!
//! Two exclusions: Rocket's own `debug`-level dumps of each raw request (headers included)
//! and of url-encoded form fields, which happen before any of our code runs; see
//! docs/RELIABILITY.md.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{demo_binary, Db};
use revoke_tests::{free_port, login, me_status, workspace_root};

/// From the repository's `Rocket.toml`.
const SECRETS: [&str; 2] = [
    "revoke-demo-secret-change-me-0123456789abcdef",
    "demo-gateway-secret",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_tokens_or_secrets() {
    let db = Db::sqlite().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("demo.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port().expect("port");
    let mut child = Command::new(demo_binary())
        .current_dir(workspace_root())
        .env("ROCKET_PORT", port.to_string())
        .env(
            "ROCKET_DATABASES",
            format!("{{revoke={{url=\"{}\"}}}}", db.url()),
        )
        .env("ROCKET_LOG_LEVEL", "debug")
        .env("ROCKET_CLI_COLORS", "false")
        .env("RUST_LOG", "trace")
        .stdout(log.try_clone().expect("clone"))
        .stderr(log)
        .spawn()
        .expect("start demo");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(http.get(format!("{base}/health")).send().await, Ok(r) if r.status().is_success())
    {
        assert!(Instant::now() < deadline, "demo did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut tokens = Vec::new();
    let (access, refresh) = login(&http, &base, "alice").await.expect("login");
    tokens.extend([access.clone(), refresh.clone()]);
    assert_eq!(me_status(&http, &base, &access).await.expect("me"), 200);
    // Refresh, then reuse the spent refresh token (revokes the family).
    let r = http
        .post(format!("{base}/auth/refresh"))
        .json(&serde_json::json!({ "refresh_token": refresh }))
        .send()
        .await
        .expect("refresh");
    assert!(r.status().is_success());
    let pair: serde_json::Value = r.json().await.expect("pair");
    for k in ["access_token", "refresh_token"] {
        tokens.push(pair[k].as_str().expect("token").to_owned());
    }
    let r = http
        .post(format!("{base}/auth/refresh"))
        .json(&serde_json::json!({ "refresh_token": refresh }))
        .send()
        .await
        .expect("reuse");
    assert_eq!(r.status(), 401);
    // Rejections: revoked, forged, malformed, refresh token on /me, wrong scheme.
    assert_eq!(me_status(&http, &base, &access).await.expect("me"), 401);
    let forged = format!(
        "{}.{}.{}",
        "eyJhbGciOiJIUzI1NiJ9", "eyJqdGkiOiJGT1JHRURNQVJLRVIifQ", "Zm9yZ2VkLXNpZ25hdHVyZS1tYXJrZXI"
    );
    tokens.push(forged.clone());
    assert_eq!(me_status(&http, &base, &forged).await.expect("me"), 401);
    assert_eq!(
        me_status(&http, &base, "not-a-token-MARKER")
            .await
            .expect("me"),
        401
    );
    tokens.push("not-a-token-MARKER".into());
    let r = http
        .get(format!("{base}/me"))
        .header("Authorization", "Basic c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3M=")
        .send()
        .await
        .expect("basic");
    assert_eq!(r.status(), 401);
    // Revocations: this token, a family, everything of a user, RFC 7009.
    let (a2, r2) = login(&http, &base, "bob").await.expect("login");
    let (a3, r3) = login(&http, &base, "carol").await.expect("login");
    tokens.extend([a2.clone(), r2.clone(), a3.clone(), r3.clone()]);
    for (path, token) in [
        ("/auth/token", &a2),
        ("/auth/token?family=true", &a3),
        (
            "/auth/sessions",
            &pair["access_token"].as_str().expect("t").to_owned(),
        ),
    ] {
        let r = http
            .delete(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("revoke");
        assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
    }
    let r = http
        .post(format!("{base}/oauth/revoke"))
        .form(&[("token", r2.as_str()), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .expect("rfc 7009");
    assert_eq!(r.status(), 200);
    // Introspection with the right and a wrong client secret.
    for secret in [SECRETS[1], "wrong-client-secret-MARKER"] {
        let r = http
            .post(format!("{base}/oauth/introspect"))
            .basic_auth("demo-gateway", Some(secret))
            .form(&[("token", r3.as_str())])
            .send()
            .await
            .expect("introspect");
        assert!(r.status().as_u16() < 500);
    }
    tokens.push("wrong-client-secret-MARKER".into());
    // Let the last-seen writer flush, then stop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = child.kill();
    let _ = child.wait();

    let raw = std::fs::read_to_string(&log_path).expect("read log");
    // At `debug`, Rocket itself dumps each raw request (`received request: Request {...}`,
    // headers included) and each url-encoded form field, before any fairing or guard runs:
    // that level must never be used in production (docs/RELIABILITY.md). Everything else, including every event of
    // rocket-revoke at trace level, must be clean.
    let mut output = String::new();
    let mut in_dump = false;
    let mut dumps = 0;
    for line in raw.lines() {
        if line.contains("received request: Request {") {
            in_dump = true;
            dumps += 1;
            continue;
        }
        if in_dump {
            in_dump = line != "}";
            continue;
        }
        // Rocket's form parser, at `debug`, echoes each field (RFC 7009's `token=`).
        if line.contains(">> url-encoded field:") {
            continue;
        }
        output.push_str(line);
        output.push('\n');
    }
    assert!(
        dumps > 0,
        "expected Rocket's debug request dumps; did the log level change?"
    );
    // The capture works: the requests were logged.
    assert!(
        output.contains("/auth/login"),
        "nothing captured:\n{output}"
    );
    assert!(
        output.contains("/oauth/revoke"),
        "nothing captured:\n{output}"
    );
    for (i, token) in tokens.iter().enumerate() {
        if let Some(line) = output.lines().find(|l| l.contains(token.as_str())) {
            panic!(
                "token #{i} is in the log: {}",
                line.replace(token.as_str(), "<TOKEN>")
            );
        }
        // The payload and the signature (the JOSE header is the same for every token).
        for part in token.split('.').skip(1).filter(|p| p.len() >= 16) {
            assert!(
                !output.contains(part),
                "a token part ({}…) is in the log",
                &part[..8]
            );
        }
    }
    for secret in SECRETS {
        assert!(
            !output.contains(secret),
            "a configured secret is in the log"
        );
    }
    for basic in [
        "c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3M",
        "ZGVtby1nYXRld2F5OmRlbW8tZ2F0ZXdheS1zZWNyZXQ",
    ] {
        assert!(
            !output.contains(basic),
            "HTTP Basic credentials are in the log"
        );
    }
    db.cleanup().await;
}

/// `Debug` of every public configuration and token type prints no secret and no token:
/// configurations end up in logs (`?config`), pairs in panics and test output.
#[tokio::test]
async fn debug_output_never_contains_secrets_or_tokens() {
    use rocket_revoke_core::store::{SqliteStore, Store};
    use rocket_revoke_core::{Engine, EngineConfig, Issuer, IssuerConfig, VerifierConfig};
    use std::sync::Arc;

    let secret = "debug-secret-0123456789abcdef0123456789";
    let url_secret = "url-password-42";
    let jwks_url = format!("https://user:{url_secret}@idp.example/jwks?api_key={url_secret}");
    let verifier = VerifierConfig {
        secret: Some(secret.into()),
        jwks_url: Some(jwks_url),
        ..VerifierConfig::default()
    };
    let issuer_config = IssuerConfig {
        secret: Some(secret.into()),
        ..IssuerConfig::default()
    };
    let revoke: rocket_revoke::RevokeConfig = rocket_revoke::RevokeConfig {
        verifier: verifier.clone(),
        client_secret: Some(secret.into()),
        client_id: Some("gw".into()),
        ..rocket_revoke::RevokeConfig::default()
    };
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let engine = Engine::new(Arc::new(store), EngineConfig::default())
        .await
        .expect("engine");
    let issuer = Issuer::new(issuer_config.clone(), engine).expect("issuer");
    let pair = issuer.issue("alice", None).await.expect("pair");
    let shown = [
        format!("{verifier:?}"),
        format!("{issuer_config:?}"),
        format!("{revoke:?}"),
        format!("{issuer:?}"),
        format!("{pair:?}"),
    ];
    for (i, text) in shown.iter().enumerate() {
        for needle in [secret, url_secret, &pair.access_token, &pair.refresh_token] {
            assert!(!text.contains(needle), "Debug #{i} leaks: {text}");
        }
        for part in pair.access_token.split('.').skip(1) {
            assert!(
                !text.contains(part),
                "Debug #{i} leaks a token part: {text}"
            );
        }
    }
    // Still useful: the jti identifies the token.
    let jti = pair.access.jti.as_deref().expect("jti");
    assert!(shown[4].contains(jti), "{}", shown[4]);
}
