//! The configuration reference (docs/CONFIGURATION.md) names every key `RevokeConfig` reads.

use rocket_revoke::RevokeConfig;

#[test]
fn every_config_key_is_documented() {
    let doc = include_str!("../../../docs/CONFIGURATION.md");
    let defaults = serde_json::to_value(RevokeConfig::default()).expect("serialize");
    let keys: Vec<&String> = defaults.as_object().expect("a table").keys().collect();
    assert!(keys.len() >= 25, "expected every key, got {keys:?}");
    let missing: Vec<&&String> = keys
        .iter()
        .filter(|k| !doc.contains(&format!("| `{k}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/CONFIGURATION.md: {missing:?}"
    );
}
