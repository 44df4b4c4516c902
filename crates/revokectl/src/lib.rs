//! The library side of `revokectl`: the TUI's state ([`app`]), what can happen to it
//! ([`action`]), what it shows ([`view`]), input mapping ([`input`]), its rendering
//! ([`ui`], [`popup`]) and the clickable regions the rendering leaves ([`hitmap`]), time
//! formatting ([`timefmt`]), configuration ([`config`]) and how revokectl
//! builds its engine ([`engine_config`], [`open_engine`]). The binary (`main.rs`) adds the
//! CLI, the database worker and the terminal loop on top.
//!
//! This library target exists so that benchmarks (`benches/render.rs`) can drive the
//! renderer and tests can build an engine exactly as revokectl does; it is not a stable API.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod action;
pub mod app;
pub mod config;
pub mod hitmap;
pub mod input;
pub mod popup;
pub mod text;
pub mod timefmt;
pub mod ui;
pub mod view;

pub use config::{engine_config, ConfigError};

use rocket_revoke_core::store::Store;
use rocket_revoke_core::{Engine, EngineConfig};
use std::sync::Arc;

/// Builds revokectl's engine on `store` (migrated): with
/// [`publish_bounds`](EngineConfig::publish_bounds) and
/// [`prune_database`](EngineConfig::prune_database) forced off, whatever `fallback` says.
///
/// So the engine sizes revocations and prunes by the lifetime bounds and retention the apps
/// recorded in the database ([`Engine::bounds`]), and never records its own: an operator's
/// tool must not raise (or pretend to know) the apps' bounds. Only when no app has recorded
/// any does it use the bounds of `fallback` (see [`engine_config`], which reads them from
/// Rocket.toml); [`bounds_recorded`] tells which.
pub async fn open_engine(
    store: Arc<dyn Store>,
    fallback: EngineConfig,
) -> rocket_revoke_core::Result<Engine> {
    let config = EngineConfig {
        publish_bounds: false,
        prune_database: false,
        ..fallback
    };
    Engine::new(store, config).await
}

/// Whether an app has recorded lifetime bounds in the engine's database (else the engine
/// runs on its fallback bounds).
pub async fn bounds_recorded(engine: &Engine) -> rocket_revoke_core::Result<bool> {
    Ok(engine.store().settings().await?.is_some())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod engine_tests {
    use super::*;
    use rocket_revoke_core::store::SqliteStore;
    use rocket_revoke_core::{Bounds, RevokeRequest};

    async fn store() -> Arc<dyn Store> {
        let store = SqliteStore::connect("sqlite::memory:")
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        Arc::new(store)
    }

    #[tokio::test]
    async fn recorded_bounds_win_and_nothing_is_recorded() {
        let store = store().await;
        // A fallback that would publish and prune if it were taken as it is.
        let fallback = EngineConfig {
            max_token_ttl_secs: 3_600,
            ..EngineConfig::default()
        };
        let engine = open_engine(store.clone(), fallback.clone())
            .await
            .expect("engine");
        assert!(!engine.config().publish_bounds);
        assert!(!engine.config().prune_database);
        assert_eq!(engine.bounds(), fallback.bounds(), "nothing recorded");
        assert!(!bounds_recorded(&engine).await.expect("settings"));
        assert_eq!(store.settings().await.expect("settings"), None);

        let recorded = Bounds {
            max_token_ttl_secs: 90 * 86_400,
            leeway_secs: 45,
            clock_skew_secs: 120,
            retention_secs: 3_600,
        };
        store.publish_settings(&recorded).await.expect("publish");
        let engine = open_engine(store.clone(), fallback).await.expect("engine");
        assert_eq!(engine.bounds(), recorded);
        assert!(bounds_recorded(&engine).await.expect("settings"));
        let event = engine
            .revoke(RevokeRequest::subject("bob").cutoff(engine.now_secs() - 10))
            .await
            .expect("revoke")
            .expect("written");
        let cutoff = event.cutoff.expect("cutoff");
        assert_eq!(
            event.expires_at,
            Some(cutoff + 90 * 86_400 + 45 + 120),
            "sized by the recorded bounds"
        );
        assert_eq!(
            store.settings().await.expect("settings"),
            Some(recorded),
            "revokectl recorded nothing of its own"
        );
    }
}
