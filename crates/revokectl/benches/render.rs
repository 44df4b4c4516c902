//! Render time of one frame of revokectl's TUI, drawn the way the event loop draws it
//! (`Terminal::draw`: layout and widgets into the back buffer, the diff against the previous
//! frame, the backend write) into ratatui's `TestBackend`, on a 200×50 terminal:
//!
//! - `main_screen`: the token table with a page of 50 rows (mixed kinds and states, labels,
//!   last-seen times, revocations), counts, sync status, and a search being typed;
//! - `revoke_dialog`: the same screen with the revoke dialog open over it;
//! - `first_frame`: the main screen drawn into a fresh terminal (every cell differs from the
//!   empty previous frame, as after start-up or a resize).
//!
//! `cargo bench -p revokectl --bench render`
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use revokectl::action::Action;
use revokectl::app::{App, PAGE};
use revokectl::ui;
use rocket_revoke_core::store::{RevocationInfo, Stats, TokenInfo, TokenRecord, TokenStatus};
use rocket_revoke_core::{Scope, SyncStatus, TokenKind};
use std::time::Duration;

/// Fixed wall clock: 2027-01-15 08:00:00 UTC.
const NOW: i64 = 1_800_000_000;
const W: u16 = 200;
const H: u16 = 50;
const ROWS: usize = 50;

fn row(i: usize) -> TokenInfo {
    let subs = [
        "alice",
        "bob",
        "carol",
        "user-000042",
        "user-000777",
        "svc-billing",
    ];
    let labels = [
        "Firefox on Linux",
        "Safari on iPhone",
        "revokectl",
        "Chrome on Windows 11",
    ];
    let kind = match i % 5 {
        0 | 2 => TokenKind::Access,
        4 => TokenKind::External,
        _ => TokenKind::Refresh,
    };
    let iat = NOW - 437 * i as i64;
    let exp = match (i % 9, kind) {
        (5, _) => NOW - 60,
        (_, TokenKind::Refresh) => iat + 14 * 86_400,
        _ => iat + 900,
    };
    let revoked = i % 7 == 3;
    let status = if revoked {
        TokenStatus::Revoked
    } else if exp < NOW {
        TokenStatus::Expired
    } else {
        TokenStatus::Active
    };
    TokenInfo {
        token: TokenRecord {
            jti: format!(
                "{:08x}-7c1d-4e2a-9b3f-{:012x}",
                0x9e37_79b9u32.wrapping_mul(i as u32 + 1),
                i * 7919
            ),
            sub: subs[i % subs.len()].into(),
            fid: (kind != TokenKind::External).then(|| format!("fam-{:04}", i / 3)),
            kind,
            iat,
            exp,
            label: (i % 6 != 5).then(|| labels[i % labels.len()].into()),
        },
        last_seen: (!i.is_multiple_of(4)).then_some(iat + 30),
        spent_at: None,
        status,
        revocation: revoked.then(|| RevocationInfo {
            scope: if i.is_multiple_of(2) {
                Scope::Jti
            } else {
                Scope::Family
            },
            revoked_at: NOW - 120,
            reason: Some("stolen laptop".into()),
            actor: Some("ops:alice".into()),
        }),
    }
}

/// Draws like the event loop: keeps the hit map and tells the app when the body resized.
fn draw(term: &mut Terminal<TestBackend>, app: &mut App) {
    let mut hits = None;
    term.draw(|f| hits = Some(ui::render(app, f))).unwrap();
    let h = hits.unwrap();
    let resized = h.body != app.hits.body;
    app.hits = h;
    if resized {
        app.update(Action::Resize);
    }
}

/// The main screen after start-up, with a search being typed.
fn main_screen() -> App {
    let mut app = App::new("postgres db.internal/revoke", "bench", NOW);
    let mut term = Terminal::new(TestBackend::new(W, H)).unwrap();
    draw(&mut term, &mut app);
    app.start();
    app.take_requests();
    app.update(Action::Page {
        seq: app.seq,
        rows: (0..ROWS).map(row).collect(),
        append: false,
        limit: PAGE,
        elapsed: Duration::from_millis(4),
    });
    app.update(Action::Stats(Stats {
        tokens: 1_000_000,
        active: 812_345,
        revoked: 12_004,
        expired: 175_651,
        revocations: 9_000,
        events: 9_100,
        last_event_id: 9_100,
    }));
    app.update(Action::Synced(SyncStatus {
        cursor: 9_100,
        lag_ms: Some(3),
        listening: true,
        ..SyncStatus::default()
    }));
    app.update(Action::StartSearch);
    for c in "user-0".chars() {
        app.update(Action::SearchInput(c));
    }
    app.update(Action::Move(7));
    app.take_requests();
    draw(&mut term, &mut app);
    app
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("revokectl_render");

    let mut app = main_screen();
    assert_eq!(app.rows.len(), ROWS);
    let mut term = Terminal::new(TestBackend::new(W, H)).unwrap();
    draw(&mut term, &mut app);
    group.bench_function("main_screen", |b| {
        b.iter(|| {
            term.draw(|f| {
                black_box(ui::render(&app, f));
            })
            .unwrap();
        })
    });

    let mut dialog = main_screen();
    dialog.update(Action::SearchKeep);
    dialog.take_requests();
    dialog.update(Action::AskRevoke(Scope::Jti));
    assert!(dialog.popup.is_some(), "the revoke dialog is open");
    let mut term = Terminal::new(TestBackend::new(W, H)).unwrap();
    draw(&mut term, &mut dialog);
    group.bench_function("revoke_dialog", |b| {
        b.iter(|| {
            term.draw(|f| {
                black_box(ui::render(&dialog, f));
            })
            .unwrap();
        })
    });

    group.bench_function("first_frame", |b| {
        b.iter_batched(
            || Terminal::new(TestBackend::new(W, H)).unwrap(),
            |mut term| {
                term.draw(|f| {
                    black_box(ui::render(&app, f));
                })
                .unwrap();
                term
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
