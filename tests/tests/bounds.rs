//! Size bounds on everything that reaches the database, through the demo app's routes on
//! SQLite and PostgreSQL. They are why RUSTSEC-2024-0363 (sqlx 0.7 mis-encodes a single
//! value or protocol message over 4 GiB) is an accepted exception in deny.toml: no value
//! the app sends comes near that size. Each test checks that an oversized input is refused
//! and that the database did not change.

mod common;

use common::Db;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::json;
use rocket_revoke::Revoker;
use rocket_revoke_core::MAX_TOKEN_LEN;
use rocket_revoke_core::{RevokeRequest, Scope};

/// The longest revocation key, reason or actor the engine writes (rocket-revoke-core's
/// `MAX_KEY_LEN`, which is the verifier's token cap).
const MAX_KEY_LEN: usize = MAX_TOKEN_LEN;

/// The largest body any of Rocket's data limits lets through (its defaults; the demo's
/// Rocket.toml sets none). A 256-row revocation batch of such values is still far below
/// 4 GiB.
const MAX_BODY: u64 = 2 * 1024 * 1024;

async fn app(db: &Db) -> Client {
    let figment = db.figment().merge((
        "revoke",
        json!({
            "secret": "bounds-secret-0123456789abcdef0123456789",
            "client_id": "gw",
            "client_secret": "gw-secret",
        }),
    ));
    Client::tracked(revoke_demo::app(rocket::custom(figment)))
        .await
        .expect("the demo launches")
}

fn revoker(client: &Client) -> &Revoker {
    client.rocket().state::<Revoker>().expect("fairing")
}

/// Rows in the registry, the revocations table and the event log.
async fn rows(client: &Client) -> (i64, i64, i64) {
    let s = revoker(client).store().stats(0).await.expect("stats");
    (s.tokens, s.revocations, s.events)
}

async fn login(client: &Client, user: &str) -> Status {
    client
        .post("/auth/login")
        .header(ContentType::JSON)
        .body(json!({ "username": user, "password": "password" }).to_string())
        .dispatch()
        .await
        .status()
}

/// A token one byte over the verifier's cap is refused by the guard (401) and by the RFC
/// 7009 route (which answers 200 as the RFC asks, and writes nothing).
async fn oversized_tokens_are_refused_before_the_database(db: &Db) {
    let client = app(db).await;
    let before = rows(&client).await;
    let token = format!("e{}", "A".repeat(MAX_TOKEN_LEN));
    assert_eq!(token.len(), MAX_TOKEN_LEN + 1);

    let res = client
        .get("/me")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Unauthorized);

    let res = client
        .post("/oauth/revoke")
        .header(ContentType::Form)
        .body(format!("token={token}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok, "RFC 7009: invalid tokens get 200");
    assert_eq!(rows(&client).await, before, "nothing was written");
}

/// Rocket's data limits are all bounded, and a body over them is refused before a route
/// runs: JSON (login) with 413, a form (RFC 7009 revoke) with the route's 400.
async fn oversized_bodies_are_refused_by_rockets_limits(db: &Db) {
    let client = app(db).await;
    let limits = &client.rocket().config().limits;
    for name in [
        "json",
        "form",
        "data-form",
        "string",
        "bytes",
        "file",
        "msgpack",
    ] {
        let limit = limits.get(name).expect(name).as_u64();
        assert!(limit <= MAX_BODY, "limit {name} is {limit} bytes");
    }
    let json_limit = limits.get("json").expect("json").as_u64() as usize;
    let form_limit = limits.get("form").expect("form").as_u64() as usize;
    let before = rows(&client).await;

    assert_eq!(
        login(&client, &"u".repeat(json_limit)).await,
        Status::PayloadTooLarge
    );
    let res = client
        .post("/oauth/revoke")
        .header(ContentType::Form)
        .body(format!("token={}", "A".repeat(form_limit)))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::BadRequest);
    assert_eq!(rows(&client).await, before, "nothing was written");
    // The same routes still work with inputs of an ordinary size.
    assert_eq!(login(&client, "alice").await, Status::Ok);
}

/// Keys, reasons and actors one byte over the engine's cap are refused by every revocation
/// and restore path a library caller (revokectl, an app's admin code) has; at the cap they
/// are written.
async fn oversized_keys_reasons_and_actors_are_refused_by_the_engine(db: &Db) {
    let client = app(db).await;
    let r = revoker(&client);
    let long = "k".repeat(MAX_KEY_LEN + 1);
    let before = rows(&client).await;

    let refused = |what: &str, e: rocket_revoke::Error| {
        let text = e.to_string();
        assert!(
            matches!(
                e,
                rocket_revoke::Error::Engine(rocket_revoke_core::Error::Invalid(_))
            ),
            "{what}: {text}"
        );
        assert!(
            text.contains(&format!("at most {MAX_KEY_LEN}")),
            "{what}: {text}"
        );
    };
    refused(
        "jti",
        r.revoke(RevokeRequest::jti(&long))
            .await
            .expect_err("refused"),
    );
    refused(
        "subject",
        r.revoke(RevokeRequest::subject(&long))
            .await
            .expect_err("refused"),
    );
    refused(
        "family",
        r.revoke(RevokeRequest::family(&long))
            .await
            .expect_err("refused"),
    );
    refused(
        "reason",
        r.revoke(RevokeRequest::jti("j").reason(&long))
            .await
            .expect_err("refused"),
    );
    refused(
        "actor",
        r.revoke(RevokeRequest::jti("j").actor(&long))
            .await
            .expect_err("refused"),
    );
    refused(
        "global reason",
        r.revoke(RevokeRequest::global_before(0).reason(long.clone()))
            .await
            .expect_err("refused"),
    );
    refused(
        "restore key",
        r.restore(Scope::Subject, &long, None, None)
            .await
            .expect_err("refused"),
    );
    refused(
        "restore reason",
        r.restore(Scope::Jti, "j", Some(&long), None)
            .await
            .expect_err("refused"),
    );
    assert_eq!(rows(&client).await, before, "nothing was written");

    let at_cap = "k".repeat(MAX_KEY_LEN);
    r.revoke(
        RevokeRequest::subject(&at_cap)
            .reason(&at_cap)
            .actor(&at_cap),
    )
    .await
    .expect("a key at the cap is written");
    assert!(r
        .restore(Scope::Subject, &at_cap, Some(&at_cap), Some(&at_cap))
        .await
        .expect("restored")
        .is_some());
}

revoke_testkit::both_backends!(
    oversized_tokens_are_refused_before_the_database,
    oversized_bodies_are_refused_by_rockets_limits,
    oversized_keys_reasons_and_actors_are_refused_by_the_engine,
);
