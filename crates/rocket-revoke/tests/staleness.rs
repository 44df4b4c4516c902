//! `max_staleness_ms`: configuration, defaults, and what the guard and `health()` report.
//! The outage itself (fail closed, then recover) is exercised against the demo in
//! `crates/revoke-demo/tests/outage.rs`, through a TCP proxy that cuts PostgreSQL.

use rocket::figment::Figment;
use rocket::serde::json::json;
use rocket_revoke::{AuthError, ConfigError, RevokeConfig};

/// In the debug profile: the tables here use a 1-byte secret, which only debug accepts.
fn config(revoke: rocket::serde::json::Value) -> Result<RevokeConfig, ConfigError> {
    let figment = Figment::new().merge(("revoke", revoke));
    RevokeConfig::from_figment(&figment.select(rocket::Config::DEBUG_PROFILE))
}

#[test]
fn off_by_default() {
    let c = config(json!({ "secret": "s" })).expect("config");
    assert_eq!(c.max_staleness_ms, None);
    assert_eq!(RevokeConfig::default().max_staleness_ms, None);
    assert!(format!("{c:?}").contains("max_staleness_ms: None"));
}

#[test]
fn must_exceed_the_poll_interval() {
    let c = config(json!({ "secret": "s", "max_staleness_ms": 60000 })).expect("config");
    assert_eq!(c.max_staleness_ms, Some(60_000));
    for bad in [0, 100, 250] {
        let e = config(json!({ "secret": "s", "max_staleness_ms": bad, "poll_interval_ms": 250 }))
            .expect_err("too small");
        let msg = e.to_string();
        assert!(msg.contains("revoke.max_staleness_ms"), "{msg}");
        assert!(msg.contains("poll_interval_ms"), "{msg}");
    }
    let e = config(json!({ "secret": "s", "max_staleness_ms": "soon" })).expect_err("type");
    assert!(e.to_string().contains("max_staleness_ms"), "{e}");
}

#[test]
fn stale_is_a_503_without_a_challenge() {
    let e = AuthError::Stale;
    assert_eq!(e.status().code, 503);
    assert_eq!(e.code(), None);
    let body: rocket::serde::json::Value = serde_json::from_str(&e.body()).expect("json body");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"]
        .as_str()
        .is_some_and(|d| d.contains("stale")));
}

/// Sizes a configuration can set are bounded, with a launch error naming the key.
#[test]
fn sizes_are_bounded_and_the_error_names_the_key() {
    for (key, bad, good) in [
        ("verified_cache", json!(65_537), json!(65_536)),
        ("last_seen_capacity", json!(1_048_577), json!(1_048_576)),
        ("last_seen_capacity", json!(0), json!(1)),
        ("write_queue", json!(65_537), json!(65_536)),
        ("write_queue", json!(0), json!(1)),
        ("leeway", json!(3_601), json!(3_600)),
        ("clock_skew_secs", json!(3_601), json!(0)),
        (
            "max_token_ttl_secs",
            json!(10 * 365 * 86_400 + 1),
            json!(2_592_000),
        ),
    ] {
        let mut table = json!({ "secret": "s" });
        table[key] = bad.clone();
        let msg = config(table.clone()).expect_err(key).to_string();
        assert!(
            msg.contains(&format!("revoke.{key}")),
            "{key} = {bad}: {msg}"
        );
        table[key] = good.clone();
        assert!(config(table).is_ok(), "{key} = {good}");
    }
}

/// A full write queue and a stale set pass on their own: both say when to retry; other
/// errors do not.
#[test]
fn overloaded_and_stale_say_when_to_retry() {
    use rocket_revoke::Error;
    let overloaded = Error::Engine(rocket_revoke_core::Error::Overloaded { capacity: 4096 });
    assert_eq!(overloaded.retry_after(), Some(1));
    assert!(
        overloaded.to_string().contains("write_queue"),
        "{overloaded}"
    );
    assert_eq!(Error::Stale.retry_after(), Some(1));
    assert_eq!(Error::NoIssuer.retry_after(), None);
    let invalid = Error::Engine(rocket_revoke_core::Error::Invalid("blank key".into()));
    assert_eq!(invalid.retry_after(), None);
}
