//! The attack matrix: crafted, forged and malformed tokens and Authorization headers
//! against the demo service, on SQLite and PostgreSQL. Every one must be a 401 with the
//! RFC 6750 challenge and a JSON body, never a 5xx, answered fast, and the service must keep
//! serving valid tokens afterwards.
//!
//! Tokens are built by hand (base64url and HMAC-SHA256 below) so that every byte of the
//! header, payload and signature is under the test's control.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::TestDb;
use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};

const REALM: &str = "revoke-demo";
const SECRET: &str = "attack-test-secret-0123456789abcdef0123";

fn keys_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rocket-revoke-core/tests/keys")
}

fn figment(db: &TestDb) -> Figment {
    db.figment().merge((
        "revoke",
        json!({
            "secret": SECRET,
            "access_ttl": 300,
            "refresh_ttl": 3600,
            "realm": REALM,
            "poll_interval_ms": 20,
        }),
    ))
}

/// The demo configured for RS256 only (public key to verify, private key to mint).
fn rs256_figment(db: &TestDb) -> Figment {
    db.figment().merge((
        "revoke",
        json!({
            "algorithms": ["RS256"],
            "public_key_pem": [keys_dir().join("rsa_public.pem")],
            "private_key_pem": keys_dir().join("rsa_private.pem"),
            "access_ttl": 300,
            "refresh_ttl": 3600,
            "realm": REALM,
            "poll_interval_ms": 20,
        }),
    ))
}

async fn client(figment: Figment) -> Client {
    Client::tracked(revoke_demo::app(rocket::custom(figment)))
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

// ---------------------------------------------------------------------------------------
// Token building: base64url and HMAC-SHA256 (FIPS 180-4, RFC 2104), test-only.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn b64_decode(s: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c).expect("base64url") as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.iter().map(|x| x ^ byte).collect::<Vec<u8>>();
    let mut inner = pad(0x36);
    inner.extend_from_slice(message);
    let mut outer = pad(0x5c);
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

/// `b64(header).b64(payload).b64(HMAC-SHA256(key, signing input))`, raw bytes.
fn sign_raw(header: &[u8], payload: &[u8], key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = hmac_sha256(key, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// A token signed with `key`, from JSON values.
fn sign(header: &Value, claims: &Value, key: &[u8]) -> String {
    sign_raw(
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
        key,
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Claims that would pass with the right signature.
fn good_claims() -> Value {
    json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": "alice",
        "iat": now(),
        "exp": now() + 300,
        "kind": "access",
    })
}

fn hs256() -> Value {
    json!({ "alg": "HS256", "typ": "JWT" })
}

#[test]
fn hand_rolled_crypto_matches_known_answers() {
    // FIPS 180-2 and RFC 4231 test case 2.
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(b64(b"any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw");
    assert_eq!(b64_decode("YW55IGNhcm5hbCBwbGVhcw"), b"any carnal pleas");
}

// ---------------------------------------------------------------------------------------
// Assertions.

/// One request with these Authorization header values (none, one or several).
async fn get_me(client: &Client, headers: &[String]) -> (Status, Option<String>, Value, Duration) {
    let started = Instant::now();
    let mut req = client.get("/me");
    for h in headers {
        req = req.header(Header::new("Authorization", h.clone()));
    }
    let res = req.dispatch().await;
    let status = res.status();
    let challenge = res.headers().get_one("WWW-Authenticate").map(str::to_owned);
    let body = res.into_json::<Value>().await.unwrap_or(Value::Null);
    (status, challenge, body, started.elapsed())
}

/// The request must be a 401 with `error="invalid_token"` in the challenge and the body,
/// and `description` (when given) as the reason; answered within `limit`.
async fn assert_rejected(
    client: &Client,
    case: &str,
    headers: &[String],
    description: Option<&str>,
) {
    let (status, challenge, body, took) = get_me(client, headers).await;
    assert_eq!(status, Status::Unauthorized, "{case}: {body}");
    let challenge = challenge.unwrap_or_else(|| panic!("{case}: no WWW-Authenticate"));
    let prefix = format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"");
    assert!(
        challenge.starts_with(&prefix) && challenge.ends_with('"'),
        "{case}: {challenge}"
    );
    assert_eq!(body["error"], "invalid_token", "{case}: {body}");
    if let Some(description) = description {
        assert_eq!(body["error_description"], description, "{case}");
        assert!(challenge.contains(description), "{case}: {challenge}");
    }
    assert!(
        took < Duration::from_secs(2),
        "{case}: took {took:?} to reject"
    );
}

/// The request must be a 400 with `error="invalid_request"` in the challenge and the body
/// (RFC 6750 §3.1: a malformed or repeated `Authorization` header), `description` as the
/// reason.
async fn assert_bad_request(client: &Client, case: &str, headers: &[String], description: &str) {
    let (status, challenge, body, took) = get_me(client, headers).await;
    assert_eq!(status, Status::BadRequest, "{case}: {body}");
    assert_eq!(
        challenge.as_deref(),
        Some(
            format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_request\", error_description=\"{description}\""
            )
            .as_str()
        ),
        "{case}"
    );
    assert_eq!(body["error"], "invalid_request", "{case}: {body}");
    assert_eq!(body["error_description"], description, "{case}");
    assert!(took < Duration::from_secs(2), "{case}: took {took:?}");
}

/// The request offered no bearer token (another scheme, or a value that is no scheme at
/// all): a 401 with the bare challenge, no error code (RFC 6750 §3.1).
async fn assert_not_bearer(client: &Client, case: &str, headers: &[String]) {
    let (status, challenge, body, took) = get_me(client, headers).await;
    assert_eq!(status, Status::Unauthorized, "{case}: {body}");
    assert_eq!(
        challenge.as_deref(),
        Some(format!("Bearer realm=\"{REALM}\"").as_str()),
        "{case}"
    );
    assert_eq!(body["error"], "unauthorized", "{case}: {body}");
    assert_eq!(
        body["error_description"], "authorization scheme is not bearer",
        "{case}"
    );
    assert!(took < Duration::from_secs(2), "{case}: took {took:?}");
}

async fn assert_token_rejected(
    client: &Client,
    case: &str,
    token: &str,
    description: Option<&str>,
) {
    assert_rejected(client, case, &[format!("Bearer {token}")], description).await;
}

async fn assert_accepted(client: &Client, case: &str, token: &str) -> Value {
    let (status, _, body, _) = get_me(client, &[format!("Bearer {token}")]).await;
    assert_eq!(status, Status::Ok, "{case}: {body}");
    body
}

/// The service still works: a fresh login's access token is accepted, health answers.
async fn assert_still_serving(client: &Client) {
    let pair = login(client, "bob").await;
    let token = pair["access_token"].as_str().expect("token");
    assert_eq!(
        assert_accepted(client, "after the attacks", token).await["sub"],
        "bob"
    );
    let res = client.get("/health").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
}

// ---------------------------------------------------------------------------------------
// The matrix.

/// `alg: none` in every letter case, with and without a signature, and algorithms that are
/// not allowed (or do not exist).
async fn alg_none_and_unlisted_algorithms(db: &TestDb) {
    let client = client(figment(db)).await;
    let claims = good_claims();
    // Control: the same claims signed properly are accepted, so only the header is at fault.
    assert_accepted(
        &client,
        "control",
        &sign(&hs256(), &claims, SECRET.as_bytes()),
    )
    .await;
    for alg in ["none", "None", "NONE", "nOnE", "NoNe", "none "] {
        let header = json!({ "alg": alg, "typ": "JWT" });
        let unsigned = format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let case = format!("alg {alg:?}, no signature");
        assert_token_rejected(&client, &case, &unsigned, None).await;
        let signed = sign(&header, &claims, SECRET.as_bytes());
        let case = format!("alg {alg:?}, HMAC signature");
        assert_token_rejected(&client, &case, &signed, Some("algorithm not allowed")).await;
        // Two-part form.
        let two = unsigned.trim_end_matches('.').to_owned();
        assert_token_rejected(&client, &format!("alg {alg:?}, two parts"), &two, None).await;
    }
    for alg in [
        "HS384", "HS512", "RS256", "ES256", "EdDSA", "hs256", "HS256 ", "", "XYZ",
    ] {
        let token = sign(&json!({ "alg": alg }), &claims, SECRET.as_bytes());
        assert_token_rejected(
            &client,
            &format!("alg {alg:?}"),
            &token,
            Some("algorithm not allowed"),
        )
        .await;
    }
    for header in [
        json!({}),
        json!({ "alg": null }),
        json!({ "alg": 256 }),
        json!({ "alg": ["HS256"] }),
    ] {
        let token = sign(&header, &claims, SECRET.as_bytes());
        assert_token_rejected(
            &client,
            &format!("header {header}"),
            &token,
            Some("malformed token"),
        )
        .await;
    }
    assert_still_serving(&client).await;
}

/// RS256 configured: an HS256 token whose HMAC key is the RSA public key (the classic
/// confusion attack) is refused, whatever form of the PEM is used as the secret.
async fn algorithm_confusion_rsa_public_key_as_hmac_secret(db: &TestDb) {
    let client = client(rs256_figment(db)).await;
    let pem = std::fs::read(keys_dir().join("rsa_public.pem")).expect("pem");
    let pem_text = String::from_utf8(pem.clone()).expect("utf-8");
    let der_b64: String = pem_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let claims = good_claims();
    let secrets: [&[u8]; 4] = [
        &pem,
        pem_text.trim_end().as_bytes(),
        der_b64.as_bytes(),
        &b64_decode(&der_b64.replace('+', "-").replace('/', "_").replace('=', "")),
    ];
    for (i, secret) in secrets.iter().enumerate() {
        for alg in ["HS256", "HS384", "HS512"] {
            let token = sign(&json!({ "alg": alg, "typ": "JWT" }), &claims, secret);
            let case = format!("{alg} signed with public key form #{i}");
            assert_token_rejected(&client, &case, &token, Some("algorithm not allowed")).await;
        }
        // An RS256 header with an HMAC signature: the RSA check fails.
        let token = sign(&json!({ "alg": "RS256" }), &claims, secret);
        assert_token_rejected(
            &client,
            &format!("RS256 header, HMAC #{i}"),
            &token,
            Some("invalid signature"),
        )
        .await;
    }
    // A real RS256 token from this app works before and after.
    assert_still_serving(&client).await;

    // Both families allowed (RS256 key and an HMAC secret): an HS256 token keyed with the
    // public key still fails, since HMAC verification only ever uses the configured secret.
    let both = client_both(db).await;
    for (i, secret) in secrets.iter().enumerate() {
        let token = sign(&hs256(), &claims, secret);
        assert_token_rejected(
            &both,
            &format!("HS256+RS256 app, key form #{i}"),
            &token,
            Some("invalid signature"),
        )
        .await;
    }
    assert_still_serving(&both).await;
}

async fn client_both(db: &TestDb) -> Client {
    client(rs256_figment(db).merge((
        "revoke",
        json!({ "algorithms": ["RS256", "HS256"], "secret": SECRET }),
    )))
    .await
}

/// `kid` values that would hurt a server that looked keys up by path or SQL; signed with the
/// key such a lookup would produce (empty file, the injected string).
async fn hostile_kid(db: &TestDb) {
    let client = client(figment(db)).await;
    let claims = good_claims();
    let cases: [(&str, &[u8]); 8] = [
        ("unknown-key-id", b"some other secret 0123456789abcdef"),
        ("../../../../../../dev/null", b""),
        ("/dev/null", b""),
        (
            "../../../../etc/passwd",
            b"root:x:0:0:root:/root:/bin/bash\n",
        ),
        ("x' UNION SELECT 'attacker-key' --", b"attacker-key"),
        ("1; DROP TABLE revoke_revocations; --", b""),
        ("%00", b"\0"),
        ("\u{0000}\n\r", b""),
    ];
    for (kid, key) in cases {
        let token = sign(&json!({ "alg": "HS256", "kid": kid }), &claims, key);
        assert_token_rejected(
            &client,
            &format!("kid {kid:?}"),
            &token,
            Some("invalid signature"),
        )
        .await;
    }
    for kid in [json!(1), json!({"a": 1}), json!(["k"]), json!(true)] {
        let token = sign(
            &json!({ "alg": "HS256", "kid": kid }),
            &claims,
            SECRET.as_bytes(),
        );
        assert_token_rejected(
            &client,
            &format!("kid {kid}"),
            &token,
            Some("malformed token"),
        )
        .await;
    }
    // The tables are intact: a revocation still works end to end.
    let pair = login(&client, "carol").await;
    let token = pair["access_token"].as_str().expect("token").to_owned();
    let res = client
        .delete("/auth/token")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_token_rejected(
        &client,
        "revoked after kid attacks",
        &token,
        Some("token revoked (jti)"),
    )
    .await;
    assert_still_serving(&client).await;
}

/// `jku`, `x5u`, `jwk` and `x5c` headers carrying the attacker's key: never fetched, never
/// trusted. A listener stands in for the attacker's key server and must see no connection.
async fn embedded_and_remote_keys_are_ignored(db: &TestDb) {
    let client = client(figment(db)).await;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let attacker_key = b"attacker-chosen-hmac-key-0123456789abcdef";
    let jwk = json!({ "kty": "oct", "k": b64(attacker_key), "alg": "HS256" });
    let claims = good_claims();
    let headers = [
        json!({ "alg": "HS256", "jku": url }),
        json!({ "alg": "HS256", "x5u": url }),
        json!({ "alg": "HS256", "jwk": jwk }),
        json!({ "alg": "HS256", "jku": url, "kid": "attacker", "jwk": jwk }),
        json!({ "alg": "HS256", "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"] }),
    ];
    for header in &headers {
        let token = sign(header, &claims, attacker_key);
        assert_token_rejected(
            &client,
            &format!("header {header}"),
            &token,
            Some("invalid signature"),
        )
        .await;
    }
    rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the server connected to a URL from a token header"
    );
    assert_still_serving(&client).await;
}

/// `crit` (validly signed): no extension is understood, so any `crit` is refused.
async fn unknown_crit_is_refused(db: &TestDb) {
    let client = client(figment(db)).await;
    let claims = good_claims();
    for header in [
        json!({ "alg": "HS256", "crit": ["exp"] }),
        json!({ "alg": "HS256", "crit": ["x-custom"], "x-custom": 1 }),
        json!({ "alg": "HS256", "crit": ["b64"], "b64": true }),
        json!({ "alg": "HS256", "crit": [] }),
        json!({ "alg": "HS256", "crit": "x" }),
    ] {
        let token = sign(&header, &claims, SECRET.as_bytes());
        assert_token_rejected(
            &client,
            &format!("header {header}"),
            &token,
            Some("unsupported critical header"),
        )
        .await;
    }
    // Unencoded payload (RFC 7797) without crit: refused too.
    let token = sign(
        &json!({ "alg": "HS256", "b64": false }),
        &claims,
        SECRET.as_bytes(),
    );
    assert_token_rejected(&client, "b64 false", &token, Some("malformed token")).await;
    assert_still_serving(&client).await;
}

/// A real token with its payload or signature changed.
async fn tampered_payload_and_signature(db: &TestDb) {
    let client = client(figment(db)).await;
    let pair = login(&client, "alice").await;
    let token = pair["access_token"].as_str().expect("token").to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let mut claims: Value = serde_json::from_slice(&b64_decode(p)).expect("claims");

    claims["sub"] = json!("admin");
    let forged = format!("{h}.{}.{s}", b64(claims.to_string().as_bytes()));
    assert_token_rejected(&client, "sub changed", &forged, Some("invalid signature")).await;
    claims["sub"] = json!("alice");
    claims["exp"] = json!(now() + 10 * 365 * 86400);
    let forged = format!("{h}.{}.{s}", b64(claims.to_string().as_bytes()));
    assert_token_rejected(&client, "exp extended", &forged, Some("invalid signature")).await;

    let mut sig = b64_decode(s);
    sig[0] ^= 1;
    assert_token_rejected(
        &client,
        "bit flip",
        &format!("{h}.{p}.{}", b64(&sig)),
        Some("invalid signature"),
    )
    .await;
    let truncated = &s[..s.len() - 2];
    assert_token_rejected(
        &client,
        "truncated signature",
        &format!("{h}.{p}.{truncated}"),
        None,
    )
    .await;
    assert_token_rejected(&client, "empty signature", &format!("{h}.{p}."), None).await;
    assert_token_rejected(
        &client,
        "doubled signature",
        &format!("{h}.{p}.{s}{s}"),
        None,
    )
    .await;
    let other = login(&client, "bob").await;
    let other_sig = other["access_token"]
        .as_str()
        .expect("t")
        .rsplit('.')
        .next()
        .expect("sig")
        .to_owned();
    assert_token_rejected(
        &client,
        "another token's signature",
        &format!("{h}.{p}.{other_sig}"),
        Some("invalid signature"),
    )
    .await;
    // Header changed (typ), signature kept.
    let header = b64(br#"{"alg":"HS256","typ":"at+jwt"}"#);
    assert_token_rejected(
        &client,
        "header changed",
        &format!("{header}.{p}.{s}"),
        Some("invalid signature"),
    )
    .await;
    // The original is untouched.
    assert_accepted(&client, "original", &token).await;
    assert_still_serving(&client).await;
}

/// Bad base64 (standard alphabet, padding, non-canonical trailing bits, stray characters)
/// and a wrong number of parts.
async fn bad_base64_and_padding(db: &TestDb) {
    let client = client(figment(db)).await;
    let pair = login(&client, "alice").await;
    let token = pair["access_token"].as_str().expect("token").to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    // A 32-byte signature is 43 characters; the last holds 4 bits and 2 zero bits: setting
    // one of those gives another spelling of the same bytes, which must not be accepted.
    let last = s.as_bytes()[s.len() - 1];
    let idx = B64.iter().position(|&x| x == last).expect("b64");
    let non_canonical = format!("{}{}", &s[..s.len() - 1], char::from(B64[idx ^ 1]));
    let cases = vec![
        ("padded signature", format!("{h}.{p}.{s}=")),
        ("padded header", format!("{h}=.{p}.{s}")),
        ("padded payload", format!("{h}.{p}==.{s}")),
        (
            "non-canonical signature",
            format!("{h}.{p}.{non_canonical}"),
        ),
        (
            "standard alphabet",
            format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/") + "+/"),
        ),
        ("stray character", format!("{h}.{p}!.{s}")),
        ("percent-encoded", format!("{h}.{p}.{s}%3D")),
        ("one part", h.to_owned()),
        ("two parts", format!("{h}.{p}")),
        ("four parts", format!("{h}.{p}.{s}.{s}")),
        ("empty parts", "..".to_owned()),
        ("empty header", format!(".{p}.{s}")),
        ("empty payload", format!("{h}..{s}")),
        ("dots only", ".....".to_owned()),
        ("length 1 mod 4", format!("{h}.{p}x.{s}")),
        ("unicode", format!("{h}.{p}é.{s}")),
    ];
    for (case, bad) in cases {
        assert_token_rejected(&client, case, &bad, None).await;
    }
    assert_accepted(&client, "original", &token).await;
    assert_still_serving(&client).await;
}

/// Header and payload that are not UTF-8, not JSON, or not a JSON object, validly signed.
async fn non_utf8_and_non_json_segments(db: &TestDb) {
    let client = client(figment(db)).await;
    let claims = good_claims().to_string();
    let header = hs256().to_string();
    let key = SECRET.as_bytes();
    let mut bad_utf8_claims = claims.clone().into_bytes();
    let at = bad_utf8_claims.iter().position(|&b| b == b'a').expect("a");
    bad_utf8_claims[at] = 0xff;
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "header not UTF-8",
            b"{\"alg\":\"HS256\xff\"}".to_vec(),
            claims.clone().into_bytes(),
        ),
        (
            "header latin-1",
            b"{\"alg\":\"HS256\",\"x\":\"\xe9\"}".to_vec(),
            claims.clone().into_bytes(),
        ),
        (
            "payload not UTF-8",
            header.clone().into_bytes(),
            bad_utf8_claims,
        ),
        (
            "header not JSON",
            b"alg=HS256".to_vec(),
            claims.clone().into_bytes(),
        ),
        (
            "payload not JSON",
            header.clone().into_bytes(),
            b"sub=alice".to_vec(),
        ),
        (
            "payload array",
            header.clone().into_bytes(),
            b"[1,2,3]".to_vec(),
        ),
        (
            "payload null",
            header.clone().into_bytes(),
            b"null".to_vec(),
        ),
        (
            "payload string",
            header.clone().into_bytes(),
            b"\"alice\"".to_vec(),
        ),
        ("payload empty", header.clone().into_bytes(), Vec::new()),
        (
            "header array",
            b"[\"HS256\"]".to_vec(),
            claims.clone().into_bytes(),
        ),
        (
            "trailing garbage",
            header.clone().into_bytes(),
            format!("{claims}x").into_bytes(),
        ),
        (
            "two objects",
            header.clone().into_bytes(),
            format!("{claims}{claims}").into_bytes(),
        ),
        (
            "BOM",
            header.clone().into_bytes(),
            format!("\u{feff}{claims}").into_bytes(),
        ),
        (
            "NUL inside",
            header.clone().into_bytes(),
            format!("{claims}\0").into_bytes(),
        ),
        (
            "lone surrogate escape",
            header.clone().into_bytes(),
            br#"{"jti":"\ud800","exp":9999999999}"#.to_vec(),
        ),
        (
            "deep nesting",
            header.clone().into_bytes(),
            format!("{{\"a\":{}{}}}", "[".repeat(3000), "]".repeat(3000)).into_bytes(),
        ),
        (
            "deep header",
            format!(
                "{{\"alg\":\"HS256\",\"x\":{}{}}}",
                "[".repeat(3000),
                "]".repeat(3000)
            )
            .into_bytes(),
            claims.clone().into_bytes(),
        ),
    ];
    for (case, header, payload) in cases {
        let token = sign_raw(&header, &payload, key);
        assert_token_rejected(&client, case, &token, None).await;
    }
    assert_still_serving(&client).await;
}

/// Duplicate names. Forged tokens are refused whatever they repeat. For validly signed ones,
/// the verifier follows RFC 7519 §4 with its second option (the lexically last member
/// wins, consistently everywhere: the revocation check sees the same `jti` the app sees).
async fn duplicate_claims(db: &TestDb) {
    let client = client(figment(db)).await;
    let exp = now() + 300;
    let iat = now();
    let revoked = uuid::Uuid::new_v4().to_string();
    let fresh = uuid::Uuid::new_v4().to_string();
    // Revoke `revoked` through the app (a token carrying it, signed properly).
    let holder = sign(
        &hs256(),
        &json!({ "jti": revoked, "sub": "alice", "iat": iat, "exp": exp }),
        SECRET.as_bytes(),
    );
    let res = client
        .delete("/auth/token")
        .header(Header::new("Authorization", format!("Bearer {holder}")))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);

    let payload = |first: &str, last: &str| {
        format!(r#"{{"jti":"{first}","sub":"alice","iat":{iat},"exp":{exp},"jti":"{last}"}}"#)
    };
    let header = hs256().to_string();
    // Forged (wrong key): refused.
    for (first, last) in [(&revoked, &fresh), (&fresh, &revoked)] {
        let token = sign_raw(
            header.as_bytes(),
            payload(first, last).as_bytes(),
            b"wrong key",
        );
        assert_token_rejected(
            &client,
            "forged duplicate jti",
            &token,
            Some("invalid signature"),
        )
        .await;
    }
    let forged = sign_raw(
        br#"{"alg":"none","alg":"HS256"}"#,
        payload(&fresh, &fresh).as_bytes(),
        b"wrong key",
    );
    assert_token_rejected(
        &client,
        "forged duplicate alg",
        &forged,
        Some("invalid signature"),
    )
    .await;
    let none_last = sign_raw(
        br#"{"alg":"HS256","alg":"none"}"#,
        payload(&fresh, &fresh).as_bytes(),
        SECRET.as_bytes(),
    );
    assert_token_rejected(
        &client,
        "duplicate alg, none last",
        &none_last,
        Some("algorithm not allowed"),
    )
    .await;
    // Signed: the revoked jti last is refused; and the jti the app sees is the one checked.
    let token = sign_raw(
        header.as_bytes(),
        payload(&fresh, &revoked).as_bytes(),
        SECRET.as_bytes(),
    );
    assert_token_rejected(
        &client,
        "duplicate jti, revoked last",
        &token,
        Some("token revoked (jti)"),
    )
    .await;
    let token = sign_raw(
        header.as_bytes(),
        payload(&revoked, &fresh).as_bytes(),
        SECRET.as_bytes(),
    );
    let body = assert_accepted(&client, "duplicate jti, fresh last", &token).await;
    assert_eq!(
        body["jti"],
        json!(fresh),
        "the app and the revocation check disagree"
    );
    assert_still_serving(&client).await;
}

/// Tokens and header values far beyond any real size: rejected before decoding, fast.
async fn huge_tokens_and_headers(db: &TestDb) {
    let client = client(figment(db)).await;
    let pair = login(&client, "alice").await;
    let token = pair["access_token"].as_str().expect("token").to_owned();
    let claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(), "sub": "alice", "iat": now(), "exp": now() + 300,
        "pad": "x".repeat(9000),
    });
    let big_signed = sign(&hs256(), &claims, SECRET.as_bytes());
    let cases = vec![
        ("just over 8 KiB, validly signed", big_signed),
        ("1 MiB of base64", "A".repeat(1 << 20)),
        ("1 MiB of dots", ".".repeat(1 << 20)),
        (
            "1 MiB token-like",
            format!(
                "{}.{}.{}",
                "e".repeat(1 << 19),
                "e".repeat(1 << 19),
                "e".repeat(64)
            ),
        ),
    ];
    for (case, bad) in &cases {
        let started = Instant::now();
        assert_token_rejected(&client, case, bad, None).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{case}: {:?}",
            started.elapsed()
        );
    }
    let (_, _, body, _) = get_me(&client, &[format!("Bearer {}", "A".repeat(1 << 20))]).await;
    assert_eq!(body["error_description"], "token too large");
    // A huge header value that is not even a bearer token, and a huge scheme.
    assert_not_bearer(
        &client,
        "1 MiB basic",
        &[format!("Basic {}", "A".repeat(1 << 20))],
    )
    .await;
    assert_not_bearer(&client, "1 MiB scheme", &["B".repeat(1 << 20)]).await;
    // Lots of other headers do not get in the way.
    let mut req = client
        .get("/me")
        .header(Header::new("Authorization", format!("Bearer {token}")));
    for i in 0..500 {
        req = req.header(Header::new(format!("X-Filler-{i}"), "y".repeat(100)));
    }
    assert_eq!(req.dispatch().await.status(), Status::Ok);
    assert_still_serving(&client).await;
}

/// `jti`: empty, not a string, very long (forged and signed).
async fn jti_edge_cases(db: &TestDb) {
    let client = client(figment(db)).await;
    let base = good_claims();
    let with_jti = |jti: Value| {
        let mut c = base.clone();
        c["jti"] = jti;
        c
    };
    let cases = [
        ("empty", json!("")),
        ("number", json!(123)),
        ("float", json!(1.5)),
        ("array", json!(["a", "b"])),
        ("object", json!({ "id": "a" })),
        ("bool", json!(true)),
        ("null (jti required)", Value::Null),
    ];
    for (case, jti) in cases {
        let token = sign(&hs256(), &with_jti(jti), SECRET.as_bytes());
        assert_token_rejected(&client, &format!("jti {case}"), &token, None).await;
    }
    let mut missing = base.clone();
    missing.as_object_mut().expect("object").remove("jti");
    let token = sign(&hs256(), &missing, SECRET.as_bytes());
    assert_token_rejected(
        &client,
        "jti missing",
        &token,
        Some("missing required claim"),
    )
    .await;
    // Very long: forged is refused; past the size bound refused before decoding.
    let long = "j".repeat(6000);
    let forged = sign(&hs256(), &with_jti(json!(long)), b"wrong");
    assert_token_rejected(
        &client,
        "long jti, forged",
        &forged,
        Some("invalid signature"),
    )
    .await;
    let too_long = sign(
        &hs256(),
        &with_jti(json!("j".repeat(9000))),
        SECRET.as_bytes(),
    );
    assert_token_rejected(
        &client,
        "jti past the size bound",
        &too_long,
        Some("token too large"),
    )
    .await;
    // A long jti that a trusted issuer signed within the bound is a real token: it can be
    // revoked, and then it is refused.
    let signed = sign(&hs256(), &with_jti(json!(long)), SECRET.as_bytes());
    assert_accepted(&client, "long jti, signed", &signed).await;
    let res = client
        .delete("/auth/token")
        .header(Header::new("Authorization", format!("Bearer {signed}")))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_token_rejected(
        &client,
        "long jti, revoked",
        &signed,
        Some("token revoked (jti)"),
    )
    .await;
    // Control characters and SQL in a signed jti are data, not code.
    let sqlish = sign(
        &hs256(),
        &with_jti(json!("'); DELETE FROM revoke_revocations; --")),
        SECRET.as_bytes(),
    );
    assert_accepted(&client, "SQL-looking jti", &sqlish).await;
    assert_token_rejected(
        &client,
        "long jti still revoked",
        &signed,
        Some("token revoked (jti)"),
    )
    .await;
    assert_still_serving(&client).await;
}

/// `exp`, `nbf`, `iat`: floats, negatives, huge values, strings; validly signed.
async fn numeric_edge_cases(db: &TestDb) {
    let client = client(figment(db)).await;
    let now = now();
    let with = |name: &str, v: Value| {
        let mut c = good_claims();
        c[name] = v;
        c
    };
    let big = Value::from(u64::MAX);
    let mut cases: Vec<(String, Value)> = Vec::new();
    for name in ["exp", "nbf", "iat"] {
        for v in [
            json!((now + 100) as f64 + 0.5),
            json!(1e300),
            json!(-1e300),
            json!(f64::MIN_POSITIVE),
            json!(format!("{}", now + 100)),
            json!(true),
            json!([now + 100]),
            json!({ "$date": now }),
            big.clone(),
            json!(i128::from(i64::MAX) + 1),
        ] {
            cases.push((format!("{name} = {v}"), with(name, v)));
        }
        // Raw JSON numbers serde_json would otherwise print differently.
    }
    cases.push(("exp = -1".into(), with("exp", json!(-1))));
    cases.push(("exp = 0".into(), with("exp", json!(0))));
    cases.push(("exp = i64::MIN".into(), with("exp", json!(i64::MIN))));
    cases.push(("exp = null".into(), with("exp", Value::Null)));
    cases.push(("exp in the past".into(), with("exp", json!(now - 3600))));
    cases.push(("nbf = i64::MAX".into(), with("nbf", json!(i64::MAX))));
    cases.push(("nbf in an hour".into(), with("nbf", json!(now + 3600))));
    cases.push(("iat = i64::MAX".into(), with("iat", json!(i64::MAX))));
    cases.push(("iat in an hour".into(), with("iat", json!(now + 3600))));
    for (case, claims) in &cases {
        let token = sign(&hs256(), claims, SECRET.as_bytes());
        assert_token_rejected(&client, case, &token, None).await;
    }
    for raw in [
        "1e3",
        "1.0e10",
        "-0",
        "0x10",
        "1_000",
        "NaN",
        "Infinity",
        "99999999999999999999999",
    ] {
        let payload = format!(
            r#"{{"jti":"{}","sub":"alice","iat":{now},"exp":{raw}}}"#,
            uuid::Uuid::new_v4()
        );
        let token = sign_raw(
            hs256().to_string().as_bytes(),
            payload.as_bytes(),
            SECRET.as_bytes(),
        );
        assert_token_rejected(&client, &format!("raw exp {raw}"), &token, None).await;
    }
    // Extreme but well-typed values that verify do not overflow anything. A token that
    // never expires (exp = i64::MAX) or was issued at the dawn of time (iat = i64::MIN)
    // would outlive every revocation that covers it: refused for its lifetime.
    let forever = sign(&hs256(), &with("exp", json!(i64::MAX)), SECRET.as_bytes());
    assert_token_rejected(
        &client,
        "exp = i64::MAX",
        &forever,
        Some("token lifetime exceeds the maximum"),
    )
    .await;
    let ancient = sign(&hs256(), &with("iat", json!(i64::MIN)), SECRET.as_bytes());
    assert_token_rejected(
        &client,
        "iat = i64::MIN",
        &ancient,
        Some("token lifetime exceeds the maximum"),
    )
    .await;
    // nbf = i64::MIN: far in the past, accepted; a subject revocation (cut-off now)
    // catches it.
    let ancient = sign(&hs256(), &with("nbf", json!(i64::MIN)), SECRET.as_bytes());
    assert_accepted(&client, "nbf = i64::MIN", &ancient).await;
    let pair = login(&client, "alice").await;
    let res = client
        .delete("/auth/sessions")
        .header(Header::new(
            "Authorization",
            format!("Bearer {}", pair["access_token"].as_str().expect("t")),
        ))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_token_rejected(
        &client,
        "nbf = i64::MIN after logout everywhere",
        &ancient,
        Some("token revoked (subject)"),
    )
    .await;
    assert_still_serving(&client).await;
}

/// Several Authorization headers, odd schemes and spacing. `bearer` in any case is the
/// Bearer scheme (RFC 7235 §2.1: schemes are case-insensitive) and is accepted.
async fn authorization_header_forms(db: &TestDb) {
    let client = client(figment(db)).await;
    let pair = login(&client, "alice").await;
    let token = pair["access_token"].as_str().expect("token").to_owned();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, _, body, _) = get_me(&client, &[format!("{scheme} {token}")]).await;
        assert_eq!(status, Status::Ok, "{scheme}: {body}");
    }
    let (status, _, _, _) = get_me(&client, &[format!("Bearer   {token}  ")]).await;
    assert_eq!(status, Status::Ok, "extra spaces");

    let several = "several authorization headers";
    for (case, headers) in [
        (
            "same token twice",
            [format!("Bearer {token}"), format!("Bearer {token}")],
        ),
        (
            "valid then forged",
            [format!("Bearer {token}"), "Bearer x.y.z".into()],
        ),
        (
            "forged then valid",
            ["Bearer x.y.z".into(), format!("Bearer {token}")],
        ),
        (
            "basic then bearer",
            ["Basic YTpi".into(), format!("Bearer {token}")],
        ),
    ] {
        assert_bad_request(&client, case, &headers, several).await;
    }
    // A malformed bearer credential is the request's fault (400 invalid_request); another
    // scheme is no bearer token at all (bare 401); a well-formed one that does not verify
    // is the token's fault (401 invalid_token).
    enum Expect {
        Malformed,
        NotBearer,
        Refused,
    }
    use Expect::{Malformed, NotBearer, Refused};
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "comma-joined",
            format!("Bearer {token}, Bearer {token}"),
            Malformed,
        ),
        ("two tokens", format!("Bearer {token} {token}"), Malformed),
        ("scheme only", "Bearer".into(), Malformed),
        ("scheme and space", "Bearer ".into(), Malformed),
        ("tab separator", format!("Bearer\t{token}"), NotBearer),
        ("no separator", format!("Bearer{token}"), NotBearer),
        ("basic", "Basic YWxpY2U6cGFzc3dvcmQ=".into(), NotBearer),
        ("token only", token.clone(), NotBearer),
        ("JWT scheme", format!("JWT {token}"), NotBearer),
        ("Bearer: colon", format!("Bearer: {token}"), NotBearer),
        ("empty", String::new(), NotBearer),
        (
            "control character",
            format!("Bearer {token}\u{7}"),
            Malformed,
        ),
        (
            "newline inside",
            format!("Bearer {}\n{}", &token[..10], &token[10..]),
            Malformed,
        ),
        ("non-ASCII", format!("Bearer {token}é"), Refused),
        ("quoted", format!("Bearer \"{token}\""), Refused),
        ("token68 padding", format!("Bearer {token}=="), Refused),
    ];
    for (case, value, expect) in cases {
        let headers = [value];
        match expect {
            Malformed => {
                assert_bad_request(&client, case, &headers, "malformed authorization header").await
            }
            NotBearer => assert_not_bearer(&client, case, &headers).await,
            Refused => assert_rejected(&client, case, &headers, None).await,
        }
    }
    assert_accepted(&client, "after header forms", &token).await;
    assert_still_serving(&client).await;
}

/// Everything above, interleaved with valid traffic and concurrent: no 5xx, valid tokens
/// keep working throughout.
async fn concurrent_garbage_does_not_disturb_valid_traffic(db: &TestDb) {
    let client = client(figment(db)).await;
    let pair = login(&client, "alice").await;
    let token = pair["access_token"].as_str().expect("token").to_owned();
    let garbage = [
        "Bearer x.y.z".to_owned(),
        format!("Bearer {}", "A".repeat(100_000)),
        format!(
            "bearer {}",
            sign(&json!({"alg":"none"}), &good_claims(), b"")
        ),
        format!("Bearer {}", sign(&hs256(), &good_claims(), b"wrong")),
        "Basic Zm9vOmJhcg==".into(),
    ];
    let mut tasks = Vec::new();
    for i in 0..200 {
        let value = if i % 4 == 0 {
            format!("Bearer {token}")
        } else {
            garbage[i % garbage.len()].clone()
        };
        let client = &client;
        tasks.push(async move {
            let res = client
                .get("/me")
                .header(Header::new("Authorization", value))
                .dispatch()
                .await;
            (i % 4 == 0, res.status())
        });
    }
    for (valid, status) in futures_join(tasks).await {
        assert!(!status.class().is_server_error(), "{status}");
        assert_eq!(status == Status::Ok, valid, "{status}");
    }
    assert_still_serving(&client).await;
}

/// Polls every future to completion concurrently (no extra dependency).
async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

both_backends!(
    alg_none_and_unlisted_algorithms,
    algorithm_confusion_rsa_public_key_as_hmac_secret,
    hostile_kid,
    embedded_and_remote_keys_are_ignored,
    unknown_crit_is_refused,
    tampered_payload_and_signature,
    bad_base64_and_padding,
    non_utf8_and_non_json_segments,
    duplicate_claims,
    huge_tokens_and_headers,
    jti_edge_cases,
    numeric_edge_cases,
    authorization_header_forms,
    concurrent_garbage_does_not_disturb_valid_traffic,
);
