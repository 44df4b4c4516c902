//! Bytes no HTTP client library would send, written straight to a real `revoke-demo`
//! socket: non-UTF-8 and control bytes in the Authorization header, oversized headers,
//! several headers. Each must be refused where the request reaches the guard (401 for a
//! refused token, 400 for a malformed or repeated header), a 400 where the HTTP layer
//! refuses it first, never a 5xx, and the server must keep serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{demo_binary, Db};
use revoke_tests::{free_port, login, me_status, workspace_root, Demo};

/// Sends `request` as is and returns the status code of the answer.
fn raw(base: &str, request: &[u8]) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request).expect("write");
    let mut answer = Vec::new();
    let mut buf = [0_u8; 4096];
    // Read until the status line is in (the server may keep the connection open).
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {line:?}"))
}

fn get_me(headers: &[&[u8]]) -> Vec<u8> {
    let mut req = b"GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".to_vec();
    for h in headers {
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

#[tokio::test]
async fn hostile_header_bytes_are_refused_without_a_5xx() {
    let db = Db::sqlite().await;
    let demo = Demo::start(
        &demo_binary(),
        &workspace_root(),
        free_port().expect("port"),
        &db.url(),
    )
    .await
    .expect("start demo");
    let http = reqwest::Client::new();
    let (token, _) = login(&http, &demo.base, "alice").await.expect("login");

    let huge = format!("Authorization: Bearer {}", "a".repeat(64 * 1024));
    let good_then_junk = [format!("Authorization: Bearer {token}").as_bytes(), b"\xff"].concat();
    // (what, request, expected status). 401 wherever the request reaches the guard with a
    // token it refuses (a 64 KiB token is refused by its length before any decoding); 400
    // from the guard for a malformed or repeated header (RFC 6750 §3.1); the HTTP layer
    // (hyper) itself answers 400 to control bytes in a header value, before the app sees it.
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "latin-1 bytes",
            get_me(&[b"Authorization: Bearer \xff\xfe\xfd.\xe9.\x80"]),
            401,
        ),
        (
            "invalid UTF-8 after a valid token",
            get_me(&[&good_then_junk]),
            401,
        ),
        (
            "UTF-8 in the token",
            get_me(&["Authorization: Bearer \u{e9}.\u{e9}.\u{e9}".as_bytes()]),
            401,
        ),
        (
            "non-UTF-8 scheme",
            get_me(&[b"Authorization: B\xe9arer abc"]),
            401,
        ),
        (
            "tab inside",
            get_me(&[b"Authorization: Bearer a.b\t.c"]),
            400,
        ),
        (
            "two headers",
            get_me(&[
                format!("Authorization: Bearer {token}").as_bytes(),
                b"Authorization: Bearer x.y.z",
            ]),
            400,
        ),
        ("header without a value", get_me(&[b"Authorization:"]), 401),
        (
            "lower-case name and scheme",
            get_me(&[b"authorization: bearer x.y.z"]),
            401,
        ),
        (
            "NUL byte",
            get_me(&[b"Authorization: Bearer a\x00b.c.d"]),
            400,
        ),
        ("DEL byte", get_me(&[b"authorization: bearer \x7f"]), 400),
        ("64 KiB header", get_me(&[huge.as_bytes()]), 401),
    ];
    let mut got = Vec::new();
    for (name, request, _) in &cases {
        let base = demo.base.clone();
        let request = request.clone();
        let status = tokio::task::spawn_blocking(move || raw(&base, &request))
            .await
            .expect("join");
        // Still serving, and still accepting the good token.
        assert_eq!(
            me_status(&http, &demo.base, &token).await.expect("me"),
            200,
            "after {name}"
        );
        got.push((*name, status));
    }
    let expected: Vec<(&str, u16)> = cases.iter().map(|(n, _, s)| (*n, *s)).collect();
    assert_eq!(got, expected);
    assert!(
        got.iter().all(|(_, s)| (400..500).contains(s)),
        "never a 5xx"
    );
    drop(demo);
    db.cleanup().await;
}
