//! Snapshot tests of every screen, menu, dialog and the help overlay (TestBackend + insta),
//! and state tests driven by synthetic key and mouse events.

use crate::action::{Action, Details, Request};
use crate::app::{App, PAGE};
use crate::popup::{Focus, Intent, Popup};
use crate::ui;
use crate::view::{Column, StatusFilter, View};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};
use ratatui::layout::Rect;
use ratatui::Terminal;
use rocket_revoke_core::store::{RevocationInfo, Stats, TokenInfo, TokenRecord, TokenStatus};
use rocket_revoke_core::{Event as LogEvent, EventKind, Scope, SyncStatus, TokenKind};
use std::time::{Duration, Instant};

/// Fixed wall clock of the fixtures: 2027-01-15 08:00:00 UTC.
const NOW: i64 = 1_800_000_000;
const W: u16 = 160;
const H: u16 = 36;

fn jti(i: usize) -> String {
    format!("{i:08x}-7c1d-4e2a-9b3f-00000000{i:04x}")
}

fn token(
    i: usize,
    sub: &str,
    fid: Option<&str>,
    kind: TokenKind,
    status: TokenStatus,
) -> TokenInfo {
    let iat = NOW - 600 * i as i64;
    let exp = match status {
        TokenStatus::Expired => NOW - 60,
        _ if kind == TokenKind::Refresh => iat + 30 * 86_400,
        _ => iat + 3_600,
    };
    // Status as the store computes it: revoked wins, then expired.
    let status = match status {
        TokenStatus::Active if exp < NOW => TokenStatus::Expired,
        s => s,
    };
    TokenInfo {
        token: TokenRecord {
            jti: jti(i),
            sub: sub.into(),
            fid: fid.map(str::to_owned),
            kind,
            iat,
            exp,
            label: Some("Firefox on Linux".into()),
        },
        last_seen: (!i.is_multiple_of(3)).then_some(iat + 120),
        spent_at: None,
        status,
        revocation: (status == TokenStatus::Revoked).then(|| RevocationInfo {
            scope: Scope::Family,
            revoked_at: NOW - 300,
            reason: Some("stolen laptop".into()),
            actor: Some("ops:alice".into()),
        }),
    }
}

fn fixture_rows() -> Vec<TokenInfo> {
    let subs = ["alice", "bob", "carol", "user-000042", "user-000777"];
    (0..40)
        .map(|i| {
            let status = match i % 7 {
                3 => TokenStatus::Revoked,
                5 => TokenStatus::Expired,
                _ => TokenStatus::Active,
            };
            let kind = if i % 2 == 0 {
                TokenKind::Access
            } else {
                TokenKind::Refresh
            };
            let fid = format!("fam-{:02}", i / 4);
            token(i, subs[i % subs.len()], Some(&fid), kind, status)
        })
        .collect()
}

fn events() -> Vec<LogEvent> {
    vec![
        LogEvent {
            id: 12,
            at_ms: (NOW - 30) * 1000,
            kind: EventKind::Restore,
            scope: Scope::Jti,
            key: jti(7),
            issuer: None,
            cutoff: None,
            expires_at: None,
            reason: Some("false alarm".into()),
            actor: Some("ops:alice".into()),
        },
        LogEvent {
            id: 11,
            at_ms: (NOW - 300) * 1000,
            kind: EventKind::Revoke,
            scope: Scope::Family,
            key: "fam-00".into(),
            issuer: None,
            cutoff: None,
            expires_at: Some(NOW + 86_400),
            reason: Some("stolen laptop".into()),
            actor: Some("ops:alice".into()),
        },
        LogEvent {
            id: 10,
            at_ms: (NOW - 900) * 1000,
            kind: EventKind::ReuseDetected,
            scope: Scope::Family,
            key: "fam-03".into(),
            issuer: None,
            cutoff: None,
            expires_at: None,
            reason: Some("refresh token reused".into()),
            actor: Some("system".into()),
        },
        LogEvent {
            id: 9,
            at_ms: (NOW - 3600) * 1000,
            kind: EventKind::Revoke,
            scope: Scope::Global,
            key: String::new(),
            issuer: None,
            cutoff: Some(NOW - 86_400),
            expires_at: None,
            reason: Some("signing key rotated".into()),
            actor: Some("security-bot".into()),
        },
    ]
}

/// An app with a first page loaded, counts, and a synced status, as after start-up.
fn app() -> App {
    let mut app = App::new("sqlite revoke.db", "tester", NOW);
    app.hits.body = Rect::new(1, 4, 80, 22);
    app.start();
    app.take_requests();
    app.update(Action::Page {
        seq: app.seq,
        rows: fixture_rows(),
        append: false,
        limit: PAGE,
        elapsed: Duration::from_millis(7),
    });
    app.update(Action::Stats(Stats {
        tokens: 1_000_000,
        active: 812_345,
        revoked: 12_004,
        expired: 175_651,
        revocations: 9_000,
        events: 9_100,
        last_event_id: 12,
    }));
    app.update(Action::Events {
        seq: app.event_seq,
        events: events(),
        append: false,
    });
    app.update(Action::Synced(SyncStatus {
        cursor: 12,
        lag_ms: Some(4),
        ..SyncStatus::default()
    }));
    app.take_requests();
    draw(&mut app);
    app
}

/// Renders like the event loop does (keeping the hit map) and returns the screen.
fn draw(app: &mut App) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(W, H)).expect("terminal");
    let mut hits = None;
    term.draw(|f| hits = Some(ui::render(app, f)))
        .expect("draw");
    app.hits = hits.expect("hits");
    term
}

macro_rules! snap {
    ($name:literal, $app:expr) => {{
        let term = draw($app);
        insta::with_settings!({filters => vec![
            (r"page in \d+ ms", "page in [ms] ms"),
            (r"revokectl \d+\.\d+\.\d+", "revokectl [version]"),
        ]}, {
            insta::assert_snapshot!($name, term.backend());
        });
    }};
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ch(c: char) -> Event {
    key(KeyCode::Char(c))
}

fn type_str(app: &mut App, s: &str) {
    for c in s.chars() {
        app.on_event(&ch(c));
    }
}

fn click(app: &mut App, r: Rect) {
    app.on_event(&Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: r.x + r.width / 2,
        row: r.y + r.height / 2,
        modifiers: KeyModifiers::NONE,
    }));
    draw(app);
}

fn tick(app: &mut App) {
    app.update(Action::Tick {
        at: Instant::now() + Duration::from_secs(1),
        now: NOW,
    });
}

// ---- snapshots ------------------------------------------------------------------------

#[test]
fn snapshot_token_table() {
    snap!("token_table", &mut app());
}

#[test]
fn snapshot_search_box() {
    let mut a = app();
    a.on_event(&ch('/'));
    type_str(&mut a, "ali");
    snap!("search_box", &mut a);
}

#[test]
fn snapshot_details_pane() {
    let mut a = app();
    a.on_event(&key(KeyCode::Down));
    a.on_event(&key(KeyCode::Down));
    a.on_event(&key(KeyCode::Down));
    a.on_event(&key(KeyCode::Enter));
    let t = a.selected_token().cloned().expect("selected");
    let family = fixture_rows()
        .into_iter()
        .filter(|r| r.token.fid == t.token.fid)
        .collect();
    a.update(Action::Details(Details {
        jti: t.token.jti.clone(),
        token: Some(t),
        family,
    }));
    snap!("details_pane", &mut a);
}

#[test]
fn snapshot_revoked_filter() {
    let mut a = app();
    a.on_event(&key(KeyCode::Tab));
    a.on_event(&key(KeyCode::Tab));
    assert_eq!(a.filter, StatusFilter::Revoked);
    let rows = fixture_rows()
        .into_iter()
        .filter(|t| t.status == TokenStatus::Revoked)
        .collect();
    a.update(Action::Page {
        seq: a.seq,
        rows,
        append: false,
        limit: PAGE,
        elapsed: Duration::from_millis(3),
    });
    snap!("revoked_filter", &mut a);
}

#[test]
fn snapshot_empty_result() {
    let mut a = app();
    a.on_event(&ch('/'));
    type_str(&mut a, "nobody");
    a.on_event(&key(KeyCode::Enter));
    a.update(Action::Page {
        seq: a.seq,
        rows: vec![],
        append: false,
        limit: PAGE,
        elapsed: Duration::from_millis(2),
    });
    snap!("empty_result", &mut a);
}

#[test]
fn snapshot_event_log() {
    let mut a = app();
    a.on_event(&key(KeyCode::F(6)));
    assert_eq!(a.view, View::Events);
    a.update(Action::Events {
        seq: a.event_seq,
        events: events(),
        append: false,
    });
    snap!("event_log", &mut a);
}

#[test]
fn snapshot_menus() {
    for (i, name) in ["menu_file", "menu_view", "menu_tokens", "menu_help"]
        .into_iter()
        .enumerate()
    {
        let mut a = app();
        a.update(Action::OpenMenu(i));
        let term = draw(&mut a);
        insta::assert_snapshot!(name, term.backend());
    }
}

#[test]
fn snapshot_revoke_dialogs() {
    for (k, name) in [
        ('r', "dialog_revoke_token"),
        ('f', "dialog_revoke_family"),
        ('s', "dialog_revoke_subject"),
    ] {
        let mut a = app();
        a.on_event(&ch(k));
        type_str(&mut a, "stolen laptop");
        let term = draw(&mut a);
        insta::assert_snapshot!(name, term.backend());
    }
}

#[test]
fn snapshot_restore_dialog() {
    let mut a = app();
    a.on_event(&key(KeyCode::Down));
    a.on_event(&key(KeyCode::Down));
    a.on_event(&key(KeyCode::Down));
    a.on_event(&ch('u'));
    snap!("dialog_restore", &mut a);
}

#[test]
fn snapshot_global_cutoff_dialogs() {
    let mut a = app();
    a.update(Action::AskRevoke(Scope::Global));
    type_str(&mut a, "key leaked");
    snap!("dialog_global_1", &mut a);
    a.on_event(&key(KeyCode::Enter));
    snap!("dialog_global_2", &mut a);
}

#[test]
fn snapshot_help_overlay() {
    let mut a = app();
    a.on_event(&key(KeyCode::F(1)));
    snap!("help_overlay", &mut a);
}

#[test]
fn snapshot_error_and_sync_failure() {
    let mut a = app();
    a.update(Action::Failed(
        "revoking jti x failed: database is locked".into(),
    ));
    a.update(Action::Synced(SyncStatus {
        cursor: 12,
        last_error: Some("database error: connection refused".into()),
        ..SyncStatus::default()
    }));
    a.take_requests();
    snap!("error_and_sync_failure", &mut a);
}

// ---- state tests: keys ------------------------------------------------------------------

#[test]
fn arrows_pages_home_end_move_the_selection() {
    let mut a = app();
    a.on_event(&key(KeyCode::Down));
    assert_eq!(a.selected, 1);
    a.on_event(&key(KeyCode::PageDown));
    assert_eq!(a.selected, 1 + usize::from(a.hits.body.height));
    a.on_event(&key(KeyCode::End));
    assert_eq!(a.selected, 39);
    a.on_event(&key(KeyCode::Up));
    assert_eq!(a.selected, 38);
    a.on_event(&key(KeyCode::Home));
    assert_eq!(a.selected, 0);
    assert_eq!(a.scroll, 0);
    a.on_event(&key(KeyCode::PageUp));
    assert_eq!(a.selected, 0);
}

#[test]
fn scrolling_near_the_end_fetches_the_next_page_by_keyset() {
    let mut a = app();
    a.more = true;
    a.on_event(&key(KeyCode::End));
    let reqs = a.take_requests();
    let last = fixture_rows()
        .last()
        .map(|t| (t.token.iat, t.token.jti.clone()));
    assert!(
        reqs.iter()
            .any(|r| matches!(r, Request::List { append: true, query, .. } if query.after == last)),
        "{reqs:?}"
    );
    // A second move does not ask twice while the page is on its way.
    a.on_event(&key(KeyCode::Up));
    assert!(a
        .take_requests()
        .iter()
        .all(|r| !matches!(r, Request::List { .. })));
}

#[test]
fn tab_cycles_the_status_filter_and_queries() {
    let mut a = app();
    let order: Vec<_> = (0..4)
        .map(|_| {
            a.on_event(&key(KeyCode::Tab));
            a.filter
        })
        .collect();
    assert_eq!(
        order,
        [
            StatusFilter::Active,
            StatusFilter::Revoked,
            StatusFilter::Expired,
            StatusFilter::All
        ]
    );
    a.on_event(&key(KeyCode::BackTab));
    assert_eq!(a.filter, StatusFilter::Expired);
    let reqs = a.take_requests();
    assert!(matches!(
        reqs.last(),
        Some(Request::List { query, append: false, .. }) if query.status == Some(TokenStatus::Expired)
    ));
}

#[test]
fn search_is_debounced_kept_by_enter_and_cleared_by_esc() {
    let mut a = app();
    a.on_event(&ch('/'));
    type_str(&mut a, "alice");
    assert!(a.take_requests().is_empty(), "no query while typing");
    tick(&mut a);
    let reqs = a.take_requests();
    assert_eq!(reqs.len(), 1);
    assert!(
        matches!(&reqs[0], Request::List { query, .. } if query.text.as_deref() == Some("alice"))
    );
    a.on_event(&key(KeyCode::Enter));
    assert!(!a.searching);
    assert_eq!(a.search, "alice");
    // Keys are commands again.
    a.on_event(&ch('/'));
    a.on_event(&key(KeyCode::Esc));
    assert_eq!(a.search, "");
    let reqs = a.take_requests();
    assert!(matches!(&reqs[..], [Request::List { query, .. }] if query.text.is_none()));
}

#[test]
fn stale_pages_are_dropped() {
    let mut a = app();
    let old = a.seq;
    a.on_event(&key(KeyCode::Tab));
    a.update(Action::Page {
        seq: old,
        rows: vec![],
        append: false,
        limit: PAGE,
        elapsed: Duration::ZERO,
    });
    assert_eq!(
        a.rows.len(),
        40,
        "an old generation's page must not replace rows"
    );
}

#[test]
fn revoke_dialog_sends_reason_and_actor_on_enter() {
    let mut a = app();
    a.on_event(&ch('r'));
    assert!(
        matches!(&a.popup, Some(Popup::Dialog(d)) if d.intent == Intent::Revoke(Scope::Jti, jti(0)))
    );
    // While the dialog is open, keys go to it: 'q' is text, not quit.
    type_str(&mut a, "lost phone q");
    a.on_event(&key(KeyCode::Backspace));
    a.on_event(&key(KeyCode::Backspace));
    a.on_event(&key(KeyCode::Enter));
    assert!(!a.quit);
    assert!(a.popup.is_none());
    let reqs = a.take_requests();
    match &reqs[..] {
        [Request::Revoke(r)] => {
            assert_eq!(r.scope, Scope::Jti);
            assert_eq!(r.key, jti(0));
            assert_eq!(r.reason.as_deref(), Some("lost phone"));
            assert_eq!(r.actor.as_deref(), Some("tester"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn escape_cancels_a_revocation() {
    let mut a = app();
    a.on_event(&ch('s'));
    type_str(&mut a, "x");
    a.on_event(&key(KeyCode::Esc));
    assert!(a.popup.is_none());
    assert!(a.take_requests().is_empty());
}

#[test]
fn family_and_subject_keys_pick_the_right_key() {
    let mut a = app();
    a.on_event(&ch('f'));
    a.on_event(&key(KeyCode::Enter));
    a.on_event(&ch('s'));
    a.on_event(&key(KeyCode::Enter));
    let reqs = a.take_requests();
    let got: Vec<_> = reqs
        .iter()
        .filter_map(|r| match r {
            Request::Revoke(r) => Some((r.scope, r.key.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            (Scope::Family, "fam-00".into()),
            (Scope::Subject, "alice".into())
        ]
    );
}

#[test]
fn restore_lifts_the_covering_revocation() {
    let mut a = app();
    a.on_event(&ch('u'));
    assert!(a.popup.is_none(), "an active token has nothing to restore");
    assert!(a.message.as_ref().is_some_and(|m| m.error));
    for _ in 0..3 {
        a.on_event(&key(KeyCode::Down));
    }
    a.on_event(&ch('u'));
    a.on_event(&key(KeyCode::Enter));
    let reqs = a.take_requests();
    assert!(
        reqs.iter().any(
            |r| matches!(r, Request::Restore { scope: Scope::Family, key, .. } if key == "fam-00")
        ),
        "{reqs:?}"
    );
}

#[test]
fn global_cutoff_needs_two_confirmations_and_a_double_enter_cancels() {
    let mut a = app();
    a.update(Action::AskRevoke(Scope::Global));
    type_str(&mut a, "key leaked");
    a.on_event(&key(KeyCode::Enter));
    assert!(matches!(&a.popup, Some(Popup::Dialog(d)) if d.focus == Focus::Cancel));
    a.on_event(&key(KeyCode::Enter));
    assert!(a.popup.is_none());
    assert!(
        a.take_requests().is_empty(),
        "double Enter must not revoke everything"
    );

    a.update(Action::AskRevoke(Scope::Global));
    type_str(&mut a, "key leaked");
    a.on_event(&key(KeyCode::Enter));
    a.on_event(&ch('y'));
    match &a.take_requests()[..] {
        [Request::Revoke(r)] => {
            assert_eq!(r.scope, Scope::Global);
            assert_eq!(r.cutoff, Some(NOW));
            assert_eq!(r.reason.as_deref(), Some("key leaked"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn global_cutoff_is_only_in_the_menu() {
    let mut a = app();
    a.on_event(&key(KeyCode::F(10)));
    a.on_event(&key(KeyCode::Right));
    a.on_event(&key(KeyCode::Right));
    for _ in 0..5 {
        a.on_event(&key(KeyCode::Down));
    }
    a.on_event(&key(KeyCode::Enter));
    assert!(
        matches!(&a.popup, Some(Popup::Dialog(d)) if matches!(d.intent, Intent::Global { .. }))
    );
}

#[test]
fn alt_letters_open_menus_and_file_quit_quits() {
    let mut a = app();
    a.on_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('h'),
        KeyModifiers::ALT,
    )));
    assert!(matches!(a.popup, Some(Popup::Menu(m)) if m.menu == 3));
    a.on_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('f'),
        KeyModifiers::ALT,
    )));
    a.on_event(&key(KeyCode::Down));
    a.on_event(&key(KeyCode::Enter));
    assert!(a.quit);
}

#[test]
fn q_and_ctrl_c_quit_but_release_events_are_ignored() {
    let mut a = app();
    a.on_event(&Event::Key(KeyEvent {
        code: KeyCode::Char('q'),
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Release,
        state: KeyEventState::NONE,
    }));
    assert!(!a.quit);
    a.on_event(&ch('q'));
    assert!(a.quit);
    let mut a = app();
    a.on_event(&ch('/'));
    a.on_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(a.quit, "Ctrl+C quits even in the search box");
}

#[test]
fn help_closes_on_any_key() {
    let mut a = app();
    a.on_event(&key(KeyCode::F(1)));
    assert_eq!(a.popup, Some(Popup::Help));
    a.on_event(&ch('x'));
    assert_eq!(a.popup, None);
}

#[test]
fn sort_keys_reorder_loaded_rows_and_keep_the_selection() {
    let mut a = app();
    a.on_event(&key(KeyCode::Down));
    let sel = a.selected_token().map(|t| t.token.jti.clone());
    a.update(Action::SortBy(Column::Subject));
    assert_eq!(a.rows[0].token.sub, "alice");
    assert_eq!(a.selected_token().map(|t| t.token.jti.clone()), sel);
    a.on_event(&ch('O'));
    assert_eq!(a.rows[0].token.sub, "user-000777");
}

#[test]
fn a_sync_cursor_change_refreshes_without_a_key_press() {
    let mut a = app();
    a.update(Action::Synced(SyncStatus {
        cursor: 12,
        ..SyncStatus::default()
    }));
    assert!(a.take_requests().is_empty());
    a.update(Action::Synced(SyncStatus {
        cursor: 13,
        ..SyncStatus::default()
    }));
    let reqs = a.take_requests();
    assert!(reqs
        .iter()
        .any(|r| matches!(r, Request::List { append: false, .. })));
    assert!(reqs.iter().any(|r| matches!(r, Request::Stats)));
    assert!(reqs.iter().any(|r| matches!(r, Request::Events { .. })));
}

#[test]
fn a_refresh_keeps_the_selected_token() {
    let mut a = app();
    for _ in 0..5 {
        a.on_event(&key(KeyCode::Down));
    }
    let sel = jti(5);
    a.update(Action::Refresh);
    let mut rows = fixture_rows();
    rows.remove(0);
    a.update(Action::Page {
        seq: a.seq,
        rows,
        append: false,
        limit: PAGE,
        elapsed: Duration::ZERO,
    });
    assert_eq!(a.selected_token().map(|t| t.token.jti.clone()), Some(sel));
}

// ---- state tests: mouse ---------------------------------------------------------------

#[test]
fn clicking_tabs_rows_and_headers() {
    let mut a = app();
    let tab = a.hits.tabs[3];
    click(&mut a, tab);
    assert_eq!(a.filter, StatusFilter::Expired);
    let mut a = app();
    let body = a.hits.body;
    click(&mut a, Rect::new(body.x + 2, body.y + 4, 1, 1));
    assert_eq!(a.selected, 4);
    assert!(!a.details_open);
    click(&mut a, Rect::new(body.x + 2, body.y + 4, 1, 1));
    assert!(a.details_open, "a click on the selected row opens details");
    let header = a
        .hits
        .headers
        .iter()
        .find(|(_, c)| *c == Column::Kind)
        .map(|h| h.0);
    click(&mut a, header.expect("kind header"));
    assert_eq!(a.sort.column, Column::Kind);
}

#[test]
fn wheel_scrolls() {
    let mut a = app();
    let scroll = |down: bool| {
        Event::Mouse(MouseEvent {
            kind: if down {
                MouseEventKind::ScrollDown
            } else {
                MouseEventKind::ScrollUp
            },
            column: 10,
            row: 10,
            modifiers: KeyModifiers::NONE,
        })
    };
    a.on_event(&scroll(true));
    a.on_event(&scroll(true));
    assert_eq!(a.selected, 6);
    a.on_event(&scroll(false));
    assert_eq!(a.selected, 3);
}

#[test]
fn clicking_menus_items_and_dialog_buttons() {
    let mut a = app();
    let tokens_menu = a.hits.menu_titles[2];
    click(&mut a, tokens_menu);
    assert!(matches!(a.popup, Some(Popup::Menu(m)) if m.menu == 2));
    let revoke_item = a.hits.menu_items[1];
    click(&mut a, revoke_item);
    assert!(
        matches!(&a.popup, Some(Popup::Dialog(d)) if d.intent == Intent::Revoke(Scope::Jti, jti(0)))
    );
    let confirm = a.hits.buttons[0];
    click(&mut a, confirm);
    assert!(a.popup.is_none());
    assert!(matches!(&a.take_requests()[..], [Request::Revoke(_)]));

    a.on_event(&ch('r'));
    draw(&mut a);
    let cancel = a.hits.buttons[1];
    click(&mut a, cancel);
    assert!(a.popup.is_none());
    assert!(a.take_requests().is_empty());

    // A click outside an open menu closes it; F-key hints are clickable.
    a.update(Action::OpenMenu(0));
    draw(&mut a);
    click(&mut a, Rect::new(60, 20, 1, 1));
    assert!(a.popup.is_none());
    let help = a.hits.hints[0].0;
    click(&mut a, help);
    assert_eq!(a.popup, Some(Popup::Help));
}

#[test]
fn resize_keeps_the_selection_visible() {
    let mut a = app();
    for _ in 0..30 {
        a.on_event(&key(KeyCode::Down));
    }
    a.hits.body.height = 5;
    a.on_event(&Event::Resize(80, 12));
    assert!(a.selected >= a.scroll && a.selected < a.scroll + 5);
}
