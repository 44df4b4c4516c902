//! `RevokeConfig`: the keys it reads, their defaults, and the errors that name them.

use super::*;
use rocket::figment::providers::{Format, Toml};
use serde_json::{json, Value};

/// The `revoke` table as it was before the verifier's and the engine's keys moved into
/// their structs: every key, with its default. The regression guard of the table's shape.
fn todays_defaults() -> Value {
    json!({
        "realm": "api",
        "algorithms": ["HS256"],
        "secret": null,
        "public_key_pem": [],
        "jwks_file": null,
        "jwks_url": null,
        "jwks_refresh_secs": 300,
        "jwks_min_refresh_interval_secs": 10,
        "jwks_timeout_secs": 5,
        "jwks_allow_insecure_http": false,
        "jwks_max_age_secs": 3600,
        "jwks_max_stale_secs": 86400,
        "issuer": [],
        "audience": [],
        "leeway": 30,
        "required_claims": ["exp", "jti"],
        "family_claim": "fid",
        "verified_cache": 512,
        "required_typ": null,
        "profile": "jwt",
        "private_key_pem": null,
        "kid": null,
        "access_ttl": 900,
        "refresh_ttl": 1_209_600,
        "poll_interval_ms": 250,
        "max_staleness_ms": null,
        "prune_interval_secs": 60,
        "max_token_ttl_secs": 2_592_000,
        "clock_skew_secs": 60,
        "retention_secs": 604_800,
        "write_queue": 4096,
        "client_id": null,
        "client_secret": null,
        "last_seen_interval_ms": 1000,
        "last_seen_capacity": 8192,
        "token_cookie": null,
        "token_query": null,
        "trace_requests": false,
    })
}

fn from_json(table: Value) -> Result<RevokeConfig, ConfigError> {
    let figment = Figment::new().merge(("revoke", table));
    RevokeConfig::from_figment(&figment.select(rocket::Config::DEBUG_PROFILE))
}

fn error(table: Value) -> String {
    match from_json(table.clone()) {
        Ok(config) => panic!("{table} is accepted: {config:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_keys_are_todays() {
    let today = todays_defaults();
    let mut expected: Vec<&str> = today
        .as_object()
        .expect("a table")
        .keys()
        .map(String::as_str)
        .collect();
    expected.sort_unstable();
    let mut known = TableKeys::keys().to_vec();
    known.sort_unstable();
    assert_eq!(known, expected, "no key lost, none added, none twice");
}

#[test]
fn defaults_are_todays_and_serialize_flat() {
    let defaults = serde_json::to_value(RevokeConfig::default()).expect("serialize");
    assert_eq!(defaults, todays_defaults());
    let read = from_json(json!({})).expect("an empty table");
    assert_eq!(read, RevokeConfig::default());
    assert_eq!(read.engine.poll_interval_ms, 250);
    assert_eq!(read.verifier.leeway, 30);
    assert_eq!(read.realm, "api");
    assert_eq!(read.engine.write_queue, 4096);
    // No `revoke` table at all reads the same.
    let none = RevokeConfig::from_figment(&Figment::new()).expect("no table");
    assert_eq!(none, RevokeConfig::default());
}

#[test]
fn every_key_of_todays_table_is_read() {
    // A value other than the default for each key, so each must reach its field.
    let mut table = todays_defaults();
    for (key, value) in [
        ("realm", json!("other")),
        ("algorithms", json!(["HS384", "RS256"])),
        ("secret", json!("a".repeat(32))),
        ("public_key_pem", json!(["/keys/a.pem"])),
        ("jwks_file", json!("/keys/jwks.json")),
        ("jwks_url", json!("https://idp.example/certs")),
        ("jwks_refresh_secs", json!(301)),
        ("jwks_min_refresh_interval_secs", json!(11)),
        ("jwks_timeout_secs", json!(6)),
        ("jwks_allow_insecure_http", json!(true)),
        ("jwks_max_age_secs", json!(3601)),
        ("jwks_max_stale_secs", json!(86401)),
        ("issuer", json!(["https://idp.example"])),
        ("audience", json!(["api"])),
        ("leeway", json!(31)),
        ("required_claims", json!(["exp"])),
        ("family_claim", json!("sid")),
        ("verified_cache", json!(513)),
        ("required_typ", json!("at+jwt")),
        // `"rfc9068"` cannot be combined with minting (validation_keeps_its_key_names
        // shows it is read).
        ("profile", json!("jwt")),
        ("private_key_pem", json!("/keys/private.pem")),
        ("kid", json!("k1")),
        ("access_ttl", json!(901)),
        ("refresh_ttl", json!(1_209_601)),
        ("poll_interval_ms", json!(251)),
        ("max_staleness_ms", json!(60_000)),
        ("prune_interval_secs", json!(61)),
        ("max_token_ttl_secs", json!(2_592_001)),
        ("clock_skew_secs", json!(61)),
        ("retention_secs", json!(604_801)),
        ("write_queue", json!(4097)),
        ("client_id", json!("gateway")),
        ("client_secret", json!("b".repeat(32))),
        ("last_seen_interval_ms", json!(1001)),
        ("last_seen_capacity", json!(8193)),
        ("token_cookie", json!("access_token")),
        ("token_query", json!("access_token")),
        ("trace_requests", json!(true)),
    ] {
        assert!(table.get(key).is_some(), "{key} is not one of today's keys");
        if key != "profile" {
            assert_ne!(
                table[key], value,
                "{key}: pick a value other than the default"
            );
        }
        table[key] = value;
    }
    let config = from_json(table.clone()).expect("every key of today's table");
    assert_eq!(serde_json::to_value(&config).expect("serialize"), table);
    assert_eq!(config.verifier.leeway, 31);
    assert_eq!(config.engine.write_queue, 4097);
    assert_eq!(config.realm, "other");
}

#[test]
fn keys_no_part_reads_are_refused_and_named() {
    for key in ["leeway_secs", "publish_bounds", "prune_database", "secrett"] {
        let value = if key == "leeway_secs" {
            json!(5)
        } else {
            json!(false)
        };
        let message = error(json!({ key: value }));
        assert!(message.contains("unknown field"), "{key}: {message}");
        assert!(
            message.contains(&format!("revoke.{key}")),
            "{key}: {message}"
        );
    }
    // Also among valid keys, whichever part they belong to.
    let message = error(json!({ "leeway": 10, "realm": "x", "write_queue": 8, "leway": 1 }));
    assert!(message.contains("revoke.leway"), "{message}");
}

#[test]
fn a_bad_type_names_the_key_in_each_part() {
    for (key, value) in [
        ("leeway", json!("soon")),
        ("algorithms", json!(5)),
        ("secret", json!(["x"])),
        ("poll_interval_ms", json!("fast")),
        ("write_queue", json!(-1)),
        ("realm", json!(5)),
        ("max_staleness_ms", json!("soon")),
    ] {
        let message = error(json!({ key: value }));
        assert!(
            message.contains(&format!("revoke.{key}")),
            "{key}: {message}"
        );
    }
}

#[test]
fn errors_name_the_source() {
    let toml = |table: &str| {
        Figment::new().merge(Toml::string(&format!("[default.revoke]\n{table}")).nested())
    };
    for table in ["leeway = \"soon\"", "write_queue = \"many\"", "secrett = 1"] {
        let message = RevokeConfig::from_figment(&toml(table))
            .expect_err(table)
            .to_string();
        assert!(message.contains("TOML"), "{table}: {message}");
    }
    let config =
        RevokeConfig::from_figment(&toml("leeway = 10\npoll_interval_ms = 500\nrealm = \"x\""))
            .expect("valid");
    assert_eq!(
        (config.verifier.leeway, config.engine.poll_interval_ms),
        (10, 500)
    );
    assert_eq!(config.realm, "x");
}

#[test]
fn validation_keeps_its_key_names() {
    for (table, key) in [
        (json!({ "leeway": 3601 }), "`revoke.leeway`"),
        (json!({ "write_queue": 0 }), "`revoke.write_queue`"),
        (
            json!({ "poll_interval_ms": 0 }),
            "`revoke.poll_interval_ms`",
        ),
        (json!({ "algorithms": [] }), "`revoke.algorithms`"),
        (
            json!({ "verified_cache": 65_537 }),
            "`revoke.verified_cache`",
        ),
        (json!({ "refresh_ttl": -1 }), "`revoke.refresh_ttl`"),
        (json!({ "client_id": "gw" }), "`revoke.client_secret`"),
        (
            json!({ "profile": "rfc9068", "secret": "s" }),
            "`revoke.profile`",
        ),
    ] {
        let message = error(table);
        assert!(message.contains(key), "{message} should name {key}");
    }
}

#[test]
fn the_engine_takes_the_verifiers_leeway_and_always_publishes_and_prunes() {
    let mut config = from_json(json!({ "leeway": 12, "poll_interval_ms": 100 })).expect("valid");
    config.engine.leeway_secs = 99;
    config.engine.publish_bounds = false;
    config.engine.prune_database = false;
    let engine = config.engine_config();
    assert_eq!(engine.leeway_secs, 12);
    assert!(engine.publish_bounds && engine.prune_database);
    assert_eq!(engine.poll_interval_ms, 100);
    assert_eq!(config.verifier_config(), &config.verifier);
}

#[test]
fn debug_redacts_the_secrets() {
    let config = from_json(json!({
        "secret": "hmac-secret-hmac-secret-hmac-secret",
        "client_id": "gw",
        "client_secret": "client-secret-value",
        "jwks_url": "https://user:url-password@idp.example/certs?api_key=url-password",
    }))
    .expect("valid");
    let shown = format!("{config:?}");
    for secret in ["hmac-secret", "client-secret-value", "url-password"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("idp.example"), "{shown}");
}

#[test]
fn deserialize_reads_only_rockets_own_keys() {
    let own: RevokeConfig =
        serde_json::from_value(json!({ "realm": "x", "access_ttl": 60 })).expect("own keys");
    assert_eq!((own.realm.as_str(), own.access_ttl), ("x", 60));
    assert!(serde_json::from_value::<RevokeConfig>(json!({ "secret": "s" })).is_err());
}

#[test]
fn fields_lists_option_fields_too() {
    let fields = keys::fields::<VerifierConfig>();
    assert!(fields.contains(&"secret") && fields.contains(&"required_typ"));
    assert!(keys::fields::<RevokeConfig>().contains(&"max_staleness_ms"));
    assert!(!keys::fields::<RevokeConfig>().contains(&"verifier"));
    assert!(keys::fields::<String>().is_empty());
}
