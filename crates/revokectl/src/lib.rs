//! The parts of `revokectl` that touch neither a terminal nor a database: the TUI's state
//! ([`app`]), its rendering ([`ui`], [`popup`]) and time formatting ([`timefmt`]). The binary
//! (`main.rs`) adds the CLI, the database worker and the terminal loop on top.
//!
//! This library target exists so that benchmarks (`benches/render.rs`) can drive the
//! renderer; it is not a stable API.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod popup;
pub mod timefmt;
pub mod ui;

#[cfg(test)]
mod tests;
