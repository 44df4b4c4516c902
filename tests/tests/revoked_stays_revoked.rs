//! Revoked stays revoked: one regression test per way a revoked token used to be accepted
//! again (or a valid one refused), through the demo app's routes with a `ManualClock`, on
//! SQLite and PostgreSQL. Each is named for the behaviour it pins down.

mod common;

use std::time::Duration;

use common::Db;
use jsonwebtoken::{encode, EncodingKey, Header as JwtHeader};
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};
use rocket_revoke::{RevokeClock, Revoker};
use rocket_revoke_core::{Clock, ManualClock, RevokeRequest, Scope};

const SECRET: &str = "regression-secret-0123456789abcdef01234";
const ACCESS_TTL: i64 = 300;
const REFRESH_TTL: i64 = 3600;
const MAX_TTL: i64 = 7200;
const LEEWAY: i64 = 30;
const SKEW: i64 = 60;

fn figment(db: &Db, extra: Value) -> rocket::figment::Figment {
    let mut revoke = json!({
        "secret": SECRET,
        "access_ttl": ACCESS_TTL,
        "refresh_ttl": REFRESH_TTL,
        "max_token_ttl_secs": MAX_TTL,
        "leeway": LEEWAY,
        "clock_skew_secs": SKEW,
        "poll_interval_ms": 50,
        "client_id": "gw",
        "client_secret": "gw-secret",
    });
    if let (Some(r), Value::Object(extra)) = (revoke.as_object_mut(), extra) {
        r.extend(extra);
    }
    db.figment().merge(("revoke", revoke))
}

async fn app(db: &Db, clock: &ManualClock, extra: Value) -> Client {
    let rocket = rocket::custom(figment(db, extra)).manage(RevokeClock(clock.shared()));
    Client::tracked(revoke_demo::app(rocket))
        .await
        .expect("the demo launches")
}

fn revoker(client: &Client) -> &Revoker {
    client.rocket().state::<Revoker>().expect("fairing")
}

async fn login(client: &Client, user: &str) -> (String, String) {
    let res = client
        .post("/auth/login")
        .header(ContentType::JSON)
        .body(json!({ "username": user, "password": "password" }).to_string())
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok, "login of {user}");
    let v: Value = res.into_json().await.expect("pair");
    let s = |k: &str| v[k].as_str().expect(k).to_owned();
    (s("access_token"), s("refresh_token"))
}

fn bearer(token: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {token}"))
}

/// `GET /me`: status and `error_description` (empty on success).
async fn me(client: &Client, token: &str) -> (Status, String) {
    let res = client.get("/me").header(bearer(token)).dispatch().await;
    let status = res.status();
    let body: Value = res.into_json().await.unwrap_or(Value::Null);
    let why = body["error_description"].as_str().unwrap_or("").to_owned();
    (status, why)
}

async fn delete(client: &Client, uri: &str, token: &str) -> Status {
    client
        .delete(uri.to_owned())
        .header(bearer(token))
        .dispatch()
        .await
        .status()
}

async fn refresh(client: &Client, token: &str) -> Status {
    client
        .post("/auth/refresh")
        .header(ContentType::JSON)
        .body(json!({ "refresh_token": token }).to_string())
        .dispatch()
        .await
        .status()
}

/// A token signed with the app's secret, as another issuer sharing it would mint.
fn signed(claims: Value) -> String {
    encode(
        &JwtHeader::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).expect("key"),
    )
    .expect("sign")
}

async fn restart(db: &Db, clock: &ManualClock, old: Client) -> Client {
    // Shutdown fairings: sync and last-seen stop, the pool closes.
    old.terminate().await;
    app(db, clock, json!({})).await
}

/// 1. A jti revocation outlives its token by the leeway: between `exp` and `exp + leeway`
///    the verifier still accepts the token, so the revocation must still refuse it, after
///    the set and the database were pruned and after a restart.
async fn a_revoked_token_stays_refused_through_the_leeway_after_prunes_and_a_restart(db: &Db) {
    let clock = ManualClock::starting_now();
    let client = app(db, &clock, json!({})).await;
    let (access, _) = login(&client, "alice").await;
    assert_eq!(delete(&client, "/auth/token", &access).await, Status::Ok);
    // Past exp, within the leeway.
    clock.advance_secs(ACCESS_TTL + LEEWAY - 5);
    let engine = revoker(&client).engine().clone();
    engine.prune_memory_only(engine.now_secs());
    engine.prune().await.expect("prune");
    assert_eq!(
        me(&client, &access).await,
        (Status::Unauthorized, "token revoked (jti)".into())
    );
    let client = restart(db, &clock, client).await;
    assert_eq!(
        me(&client, &access).await,
        (Status::Unauthorized, "token revoked (jti)".into())
    );
    // Past the leeway it is refused for its age, and the revocation may go.
    clock.advance_secs(10 + SKEW);
    assert_eq!(
        me(&client, &access).await,
        (Status::Unauthorized, "token expired".into())
    );
    let report = revoker(&client).engine().prune().await.expect("prune");
    assert_eq!(report.revocations, 1, "{report:?}");
}

/// 2. A token that may live longer than `max_token_ttl_secs` is refused (it would outlive
///    the cut-offs that cover it), and so is one without `exp`, even though
///    `required_claims` no longer lists `exp`.
async fn tokens_that_could_outlive_their_revocations_are_refused(db: &Db) {
    let clock = ManualClock::starting_now();
    let client = app(db, &clock, json!({ "required_claims": ["jti"] })).await;
    let now = clock.now_secs();
    let long =
        signed(json!({ "jti": "long", "sub": "dave", "iat": now, "exp": now + 60 * 86_400 }));
    assert_eq!(
        me(&client, &long).await,
        (
            Status::Unauthorized,
            "token lifetime exceeds the maximum".into()
        )
    );
    let no_iat = signed(json!({ "jti": "noiat", "sub": "dave", "exp": now + MAX_TTL + 60 }));
    assert_eq!(me(&client, &no_iat).await.0, Status::Unauthorized);
    let no_exp = signed(json!({ "jti": "noexp", "sub": "dave", "iat": now }));
    assert_eq!(
        me(&client, &no_exp).await,
        (Status::Unauthorized, "missing required claim".into())
    );
    // At the bound it is accepted.
    let ok = signed(json!({ "jti": "ok", "sub": "dave", "iat": now, "exp": now + MAX_TTL }));
    assert_eq!(me(&client, &ok).await.0, Status::Ok);
    // An app whose own tokens would outlive the bound does not launch.
    let rocket = rocket::custom(figment(db, json!({ "refresh_ttl": MAX_TTL + 1 })));
    let Err(err) = Client::tracked(revoke_demo::app(rocket)).await else {
        panic!("refresh_ttl above max_token_ttl_secs must not launch");
    };
    assert!(
        matches!(err.kind(), rocket::error::ErrorKind::FailedFairings(_)),
        "{err}"
    );
}

/// 4. Keys are compared exactly as they appear in tokens: "log out everywhere" for the
///    subject "erin " revokes "erin " and leaves "erin" alone; a blank key is an error.
async fn keys_match_exactly_and_blank_keys_are_refused(db: &Db) {
    let clock = ManualClock::starting_now();
    let client = app(db, &clock, json!({})).await;
    let now = clock.now_secs();
    let token = |sub: &str, jti: &str| {
        signed(json!({ "jti": jti, "sub": sub, "iat": now - 1, "exp": now + 600 }))
    };
    let padded = token("erin ", "t-padded");
    let plain = token("erin", "t-plain");
    assert_eq!(delete(&client, "/auth/sessions", &padded).await, Status::Ok);
    assert_eq!(
        me(&client, &padded).await,
        (Status::Unauthorized, "token revoked (subject)".into())
    );
    assert_eq!(me(&client, &plain).await.0, Status::Ok, "another user");
    for blank in ["", "  ", "\t"] {
        let err = revoker(&client)
            .revoke(RevokeRequest::subject(blank))
            .await
            .expect_err("blank subject");
        assert!(err.to_string().contains("needs a key"), "{err}");
    }
}

/// 5. Rotation checks the database inside its transaction: an instance that has not synced
///    a "log out everywhere" made on another one refuses the refresh anyway.
async fn refresh_on_an_instance_that_has_not_synced_is_refused(db: &Db) {
    let clock = ManualClock::starting_now();
    let a = app(db, &clock, json!({})).await;
    let b = app(db, &clock, json!({})).await;
    let (access, refresh_token) = login(&a, "bob").await;
    // B hears nothing from now on.
    revoker(&b).engine().stop_sync().await;
    clock.advance_secs(1);
    assert_eq!(delete(&a, "/auth/sessions", &access).await, Status::Ok);
    assert_eq!(
        revoker(&b).engine().set().subject_cutoff("bob"),
        None,
        "B's set does not know yet"
    );
    assert_eq!(refresh(&b, &refresh_token).await, Status::Unauthorized);
    // Nothing was spent: the registry still has the token unspent.
    let jti = revoker(&a)
        .verifier()
        .verify_at::<rocket_revoke_core::NoExtra>(&refresh_token, clock.now_secs())
        .expect("verifies")
        .jti
        .expect("jti");
    let info = revoker(&a)
        .store()
        .token(&jti, clock.now_secs())
        .await
        .expect("read")
        .expect("registered");
    assert_eq!(info.spent_at, None);
    // The same for a family revoked elsewhere.
    let (_, refresh2) = login(&a, "carol").await;
    let claims = revoker(&a)
        .verifier()
        .verify_at::<rocket_revoke_core::NoExtra>(&refresh2, clock.now_secs())
        .expect("verifies");
    revoker(&a)
        .revoke(RevokeRequest::family(claims.fid.as_deref().expect("fid")))
        .await
        .expect("revoke family");
    assert_eq!(refresh(&b, &refresh2).await, Status::Unauthorized);
}

/// 6. "Log out everywhere", then log in again in the same second: the new login works, and
///    every token issued before, in the same second too, stays revoked.
async fn a_login_right_after_log_out_everywhere_works(db: &Db) {
    let clock = ManualClock::starting_now();
    let client = app(db, &clock, json!({})).await;
    let (old, old_refresh) = login(&client, "alice").await;
    assert_eq!(delete(&client, "/auth/sessions", &old).await, Status::Ok);
    // The clock has not moved: same second.
    let (new, new_refresh) = login(&client, "alice").await;
    assert_eq!(me(&client, &new).await.0, Status::Ok);
    assert_eq!(
        me(&client, &old).await,
        (Status::Unauthorized, "token revoked (subject)".into())
    );
    assert_eq!(refresh(&client, &old_refresh).await, Status::Unauthorized);
    assert_eq!(refresh(&client, &new_refresh).await, Status::Ok);
}

/// 7. A cut-off later than now (plus the leeway) is refused; a global cut-off ends once no
///    token it covers can be accepted, so it cannot lock everyone out for good.
async fn future_cut_offs_are_refused_and_global_cut_offs_end(db: &Db) {
    let clock = ManualClock::starting_now();
    let client = app(db, &clock, json!({})).await;
    let r = revoker(&client);
    let now = clock.now_secs();
    for cutoff in [now + LEEWAY + 1, now + 86_400, now * 1000] {
        let err = r
            .revoke(RevokeRequest::global_before(cutoff))
            .await
            .expect_err("future cut-off");
        assert!(err.to_string().contains("in the future"), "{err}");
        let err = r
            .revoke(RevokeRequest::subject("alice").cutoff(cutoff))
            .await
            .expect_err("future subject cut-off");
        assert!(err.to_string().contains("in the future"), "{err}");
    }
    assert!(
        r.engine().set().global_cutoff().is_none(),
        "nothing written"
    );
    let (before, _) = login(&client, "bob").await;
    let event = r
        .revoke(
            RevokeRequest::global_before(now)
                .reason("key leak")
                .actor("ops"),
        )
        .await
        .expect("global")
        .expect("written");
    let bounds = r.engine().bounds();
    assert_eq!(event.expires_at, Some(bounds.issued_until(now)));
    assert_eq!(
        me(&client, &before).await,
        (Status::Unauthorized, "token revoked (global)".into())
    );
    let (after, _) = login(&client, "bob").await;
    assert_eq!(me(&client, &after).await.0, Status::Ok);
    clock.advance_secs(bounds.issued_until(now) - now + 1);
    let report = r.engine().prune().await.expect("prune");
    assert_eq!(report.revocations, 1);
    assert!(r.engine().set().global_cutoff().is_none());
}

/// 9. Posting one revoked refresh token to RFC 7009 again and again writes no event and
///    wakes no instance.
async fn repeated_revocation_requests_write_nothing(db: &Db) {
    let clock = ManualClock::starting_now();
    let client = app(db, &clock, json!({})).await;
    let (_, refresh_token) = login(&client, "carol").await;
    let post = || {
        client
            .post("/oauth/revoke")
            .header(ContentType::Form)
            .body(format!("token={refresh_token}"))
            .dispatch()
    };
    assert_eq!(post().await.status(), Status::Ok);
    let store = revoker(&client).store().clone();
    let before = store.stats(clock.now_secs()).await.expect("stats");
    assert_eq!(before.events, 2, "jti and family");
    for _ in 0..200 {
        assert_eq!(post().await.status(), Status::Ok);
    }
    let after = store.stats(clock.now_secs()).await.expect("stats");
    assert_eq!(after.events, before.events);
    assert_eq!(after.last_event_id, before.last_event_id);
}

/// 10. The app prunes its own database on a schedule, and counts what it removed.
async fn the_app_prunes_its_database_on_a_schedule(db: &Db) {
    let clock = ManualClock::starting_now();
    let client = app(
        db,
        &clock,
        json!({ "prune_interval_secs": 1, "retention_secs": 0 }),
    )
    .await;
    let (access, _) = login(&client, "alice").await;
    assert_eq!(delete(&client, "/auth/token", &access).await, Status::Ok);
    // Past every token's lifetime and every revocation's time in force.
    clock.advance_secs(MAX_TTL + LEEWAY + SKEW + 10);
    let engine = revoker(&client).engine().clone();
    let mut pruned = engine.pruned();
    for _ in 0..100 {
        if pruned.tokens >= 2 && pruned.revocations >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        pruned = engine.pruned();
    }
    assert!(pruned.tokens >= 2, "{pruned:?}");
    assert!(pruned.revocations >= 1, "{pruned:?}");
    let stats = engine.store().stats(clock.now_secs()).await.expect("stats");
    assert_eq!((stats.tokens, stats.revocations), (0, 0), "{stats:?}");
}

/// 12. The set and the database match UUID jtis the same way: exactly.
async fn uuid_jtis_match_the_same_way_in_the_guard_and_the_database(db: &Db) {
    let clock = ManualClock::starting_now();
    let client = app(db, &clock, json!({})).await;
    let (access, _) = login(&client, "alice").await;
    let r = revoker(&client);
    let jti = r
        .verifier()
        .verify_at::<rocket_revoke_core::NoExtra>(&access, clock.now_secs())
        .expect("verifies")
        .jti
        .expect("jti");
    let upper = jti.to_uppercase();
    assert_ne!(upper, jti);
    r.revoke(RevokeRequest::jti(&upper)).await.expect("revoke");
    assert_eq!(me(&client, &access).await.0, Status::Ok, "another jti");
    let info = r
        .store()
        .token(&jti, clock.now_secs())
        .await
        .expect("read")
        .expect("registered");
    assert!(info.revocation.is_none(), "the database agrees: {info:?}");
    r.revoke(RevokeRequest::jti(&jti)).await.expect("revoke");
    r.restore(Scope::Jti, &upper, None, None)
        .await
        .expect("restore")
        .expect("there was one");
    assert_eq!(
        me(&client, &access).await,
        (Status::Unauthorized, "token revoked (jti)".into()),
        "restoring one spelling leaves the other"
    );
}

revoke_testkit::both_backends!(
    a_revoked_token_stays_refused_through_the_leeway_after_prunes_and_a_restart,
    tokens_that_could_outlive_their_revocations_are_refused,
    keys_match_exactly_and_blank_keys_are_refused,
    refresh_on_an_instance_that_has_not_synced_is_refused,
    a_login_right_after_log_out_everywhere_works,
    future_cut_offs_are_refused_and_global_cut_offs_end,
    repeated_revocation_requests_write_nothing,
    the_app_prunes_its_database_on_a_schedule,
    uuid_jtis_match_the_same_way_in_the_guard_and_the_database,
);
