//! The secrets `Rocket.toml` ships serve the debug profile only: a release launch (the
//! profile a release build selects) with a published secret, or with an HMAC secret under
//! 32 bytes, fails with a message that says how to set one, while `cargo run -p
//! revoke-demo` (debug) keeps working.

use std::path::PathBuf;

use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket::local::asynchronous::Client;
use rocket_revoke::RevokeConfig;

fn rocket_toml() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../Rocket.toml")
}

/// What `rocket::build()` reads from the workspace's `Rocket.toml` in `profile`, on a fresh
/// SQLite database.
fn figment(profile: &str) -> Figment {
    let db = std::env::temp_dir().join(format!("revoke-profile-{}.db", uuid::Uuid::new_v4()));
    Figment::from(rocket::Config::default())
        .merge(Toml::file(rocket_toml()).nested())
        .merge(("log_level", "off"))
        .merge((
            "databases.revoke.url",
            format!("sqlite://{}?mode=rwc", db.display()),
        ))
        .select(profile)
}

async fn launches(figment: Figment) -> bool {
    // Rocket's error must be looked at (it panics when dropped unread).
    Client::tracked(revoke_demo::app(rocket::custom(figment)))
        .await
        .map_err(|e| e.to_string())
        .is_ok()
}

const OWN_SECRET: &str = "a-deployment-secret-0123456789abcdef-0123";

#[test]
fn the_published_secrets_are_exactly_those_of_rocket_toml() {
    let debug = figment("debug");
    let shipped: Vec<String> = ["revoke.secret", "revoke.client_secret"]
        .iter()
        .map(|k| debug.extract_inner::<String>(k).expect(k))
        .collect();
    assert_eq!(shipped, revoke_demo::PUBLISHED_SECRETS);
    // The release profile inherits none of them.
    let release = figment("release");
    assert!(release.extract_inner::<String>("revoke.secret").is_err());
    assert!(release
        .extract_inner::<String>("revoke.client_secret")
        .is_err());
}

#[rocket::async_test]
async fn the_debug_profile_launches_with_the_shipped_secrets() {
    assert!(launches(figment("debug")).await);
}

#[rocket::async_test]
async fn a_release_launch_refuses_published_secrets_and_says_how_to_set_one() {
    // Nothing set: no key for HS256.
    assert!(!launches(figment("release")).await);
    for (key, value) in [
        ("revoke.secret", revoke_demo::PUBLISHED_SECRETS[0]),
        ("revoke.client_secret", revoke_demo::PUBLISHED_SECRETS[1]),
    ] {
        let f = figment("release")
            .merge(("revoke.secret", OWN_SECRET))
            .merge((key, value));
        let err = revoke_demo::refuse_published_secrets(&f).expect_err(key);
        assert!(err.contains(key) && err.contains("ROCKET_REVOKE"), "{err}");
        assert!(!launches(f).await, "{key}");
    }
    // Its own secret: launches.
    let own = figment("release").merge(("revoke.secret", OWN_SECRET));
    assert_eq!(revoke_demo::refuse_published_secrets(&own), Ok(()));
    assert!(launches(own).await);
}

#[rocket::async_test]
async fn a_short_hmac_secret_is_refused_outside_the_debug_profile() {
    let short = "only-twenty-bytes-ab";
    assert_eq!(short.len(), 20);
    for profile in ["release", "staging"] {
        let f = figment(profile).merge(("revoke.secret", short));
        let err = RevokeConfig::from_figment(&f)
            .expect_err(profile)
            .to_string();
        assert!(
            err.contains("secret") && err.contains("32") && err.contains("ROCKET_REVOKE"),
            "{profile}: {err}"
        );
        assert!(!launches(f).await, "{profile}");
    }
    // 32 bytes is enough; debug accepts a short one (with a warning).
    let exactly = "x".repeat(32);
    let f = figment("release").merge(("revoke.secret", exactly.as_str()));
    assert!(RevokeConfig::from_figment(&f).is_ok());
    assert!(launches(figment("debug").merge(("revoke.secret", short))).await);
}
