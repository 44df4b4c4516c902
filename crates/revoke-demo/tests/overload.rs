//! A full revocation write queue (`write_queue`) is a `503` with `Retry-After`, and nothing is
//! written for the refused requests; on SQLite and PostgreSQL. The writer is held up by
//! holding the only connection of the pool.

mod common;

use std::time::Duration;

use common::{eventually, TestDb};
use rocket::futures::future::join_all;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};
use rocket_db_pools::Database;

both_backends!(a_full_write_queue_is_a_503_with_retry_after_and_writes_nothing);

async fn client(db: &TestDb) -> Client {
    // One connection for the app's queries (PostgreSQL: one more, which LISTEN keeps), so
    // the test can take it and hold the writer up.
    let connections = if db.is_postgres() { 2 } else { 1 };
    let figment = db
        .figment()
        .merge(("databases.revoke.max_connections", connections))
        .merge((
            "revoke",
            json!({
                "secret": "demo-test-secret-0123456789abcdef0123",
                "poll_interval_ms": 20,
                "write_queue": 1,
            }),
        ));
    Client::tracked(revoke_demo::app(rocket::custom(figment)))
        .await
        .expect("valid rocket")
}

fn bearer(token: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {token}"))
}

async fn a_full_write_queue_is_a_503_with_retry_after_and_writes_nothing(db: &TestDb) {
    let client = client(db).await;
    let mut tokens = Vec::new();
    for _ in 0..8 {
        let res = client
            .post("/auth/login")
            .header(ContentType::JSON)
            .body(json!({ "username": "alice", "password": "password" }).to_string())
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Ok);
        let pair: Value = res.into_json().await.expect("pair");
        tokens.push(pair["access_token"].as_str().expect("token").to_owned());
    }
    let revoker = client
        .rocket()
        .state::<rocket_revoke::Revoker>()
        .expect("revoker");
    if db.is_postgres() {
        // LISTEN has its connection: the one left is the one the test takes.
        assert!(
            eventually(Duration::from_secs(10), || async {
                revoker.status().listening
            })
            .await
        );
    }
    // Taking the pool's only free connection stalls the writer (and sync) until released.
    let held: Box<dyn std::any::Any + Send> = if db.is_postgres() {
        let pool = revoke_demo::PgDb::fetch(client.rocket()).expect("pool");
        Box::new(pool.acquire().await.expect("connection"))
    } else {
        let pool = revoke_demo::SqliteDb::fetch(client.rocket()).expect("pool");
        Box::new(pool.acquire().await.expect("connection"))
    };
    let logouts = tokens.iter().map(|t| async {
        let res = client
            .delete("/auth/token")
            .header(bearer(t))
            .dispatch()
            .await;
        let status = res.status();
        let retry_after = res.headers().get_one("Retry-After").map(str::to_owned);
        let body: Value = res.into_json().await.expect("json");
        (status, retry_after, body)
    });
    // The queue of one fills at once; the refused requests answer while the writer is held.
    let (answers, ()) = rocket::tokio::join!(join_all(logouts), async {
        rocket::tokio::time::sleep(Duration::from_millis(500)).await;
        drop(held);
    });
    let mut refused = 0;
    for (token, (status, retry_after, body)) in tokens.iter().zip(&answers) {
        let me = client.get("/me").header(bearer(token)).dispatch().await;
        match *status {
            Status::Ok => {
                assert_eq!(body["revoked"], json!(["jti"]));
                assert_eq!(me.status(), Status::Unauthorized, "revoked");
            }
            Status::ServiceUnavailable => {
                refused += 1;
                assert_eq!(retry_after.as_deref(), Some("1"));
                assert_eq!(body["error"], "temporarily_unavailable", "{body}");
                let description = body["error_description"].as_str().unwrap_or_default();
                assert!(description.contains("retry"), "{body}");
                // Nothing was written: the token still works.
                assert_eq!(me.status(), Status::Ok, "not revoked");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // The writer takes one batch, the queue holds one more: the rest are refused.
    assert!(refused >= tokens.len() - 3, "{answers:?}");
    let stats = revoker
        .store()
        .stats(revoker.engine().now_secs())
        .await
        .expect("stats");
    assert_eq!(stats.revocations, (tokens.len() - refused) as i64);
}
