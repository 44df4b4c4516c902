//! Rocket integration for revoke-core.
