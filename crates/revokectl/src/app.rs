//! The TUI's model: [`App`] holds every bit of state, input becomes an
//! [`Action`] ([`crate::input`]), and [`App::update`] is the only place state changes.
//! Database work is queued as [`Request`]s in an outbox that the event loop hands to the
//! worker; results come back as actions.

use crate::action::{Action, Details, Request};
use crate::hitmap::Hitmap;
use crate::popup::{Dialog, Focus, Intent, MenuState, Popup, MENUS};
use crate::timefmt;
use crate::view::{Column, Sort, StatusFilter, View};
use rocket_revoke_core::store::{ListQuery, Stats, TokenInfo};
use rocket_revoke_core::{Event as LogEvent, RevokeRequest, Scope, SyncStatus};
use std::time::{Duration, Instant};

/// Rows per page fetched from the database.
pub const PAGE: u32 = 100;
/// Events per page of the audit trail.
pub const EVENT_PAGE: u32 = 200;
/// How long typing must pause before a search query runs.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// How often counts are refreshed when nothing changed.
pub const STATS_EVERY: Duration = Duration::from_secs(15);
/// Fetch the next page when the selection is this close to the end of what is loaded.
const PREFETCH: usize = 40;

/// A line in the message bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Text.
    pub text: String,
    /// Shown in red.
    pub error: bool,
}

/// The whole state of the TUI.
#[derive(Debug)]
pub struct App {
    /// Wall clock used for relative times and "expired".
    pub now: i64,
    /// `sqlite revoke.db`, `postgres host/db`.
    pub backend: String,
    /// Name recorded as the actor of revocations.
    pub actor: String,
    /// Main view.
    pub view: View,
    /// Status filter.
    pub filter: StatusFilter,
    /// Search text.
    pub search: String,
    /// The search box has focus.
    pub searching: bool,
    /// Loaded rows, in display order.
    pub rows: Vec<TokenInfo>,
    /// Selected row.
    pub selected: usize,
    /// First visible row.
    pub scroll: usize,
    /// Sort of the loaded rows.
    pub sort: Sort,
    /// The database has more rows after the loaded ones.
    pub more: bool,
    /// A replacing query is running.
    pub loading: bool,
    /// An appending query is running.
    pub loading_more: bool,
    /// Keyset position after the last loaded row, in database order.
    pub last_key: Option<(i64, String)>,
    /// Generation of the token query.
    pub seq: u64,
    /// Time of the last page query.
    pub query_time: Option<Duration>,
    /// The details pane is open.
    pub details_open: bool,
    /// Its data.
    pub details: Option<Details>,
    /// Loaded audit trail, newest first.
    pub events: Vec<LogEvent>,
    /// Selected event.
    pub event_selected: usize,
    /// First visible event.
    pub event_scroll: usize,
    /// More events exist.
    pub events_more: bool,
    /// Generation of the event query.
    pub event_seq: u64,
    /// Counts.
    pub stats: Option<Stats>,
    /// Engine sync status.
    pub sync: SyncStatus,
    /// A sync status has been received.
    pub synced: bool,
    /// Open popup.
    pub popup: Option<Popup>,
    /// Message bar.
    pub message: Option<Message>,
    /// Clickable areas of the last frame.
    pub hits: Hitmap,
    /// Leave the event loop.
    pub quit: bool,
    /// A search query is due at this time.
    search_due: Option<Instant>,
    /// When counts were last asked for.
    stats_at: Option<Instant>,
    /// Requests for the worker.
    outbox: Vec<Request>,
}

impl App {
    /// A fresh app; call [`App::start`] to queue the first queries.
    pub fn new(backend: impl Into<String>, actor: impl Into<String>, now: i64) -> Self {
        Self {
            now,
            backend: backend.into(),
            actor: actor.into(),
            view: View::Tokens,
            filter: StatusFilter::All,
            search: String::new(),
            searching: false,
            rows: Vec::new(),
            selected: 0,
            scroll: 0,
            sort: Sort::default(),
            more: false,
            loading: false,
            loading_more: false,
            last_key: None,
            seq: 0,
            query_time: None,
            details_open: false,
            details: None,
            events: Vec::new(),
            event_selected: 0,
            event_scroll: 0,
            events_more: false,
            event_seq: 0,
            stats: None,
            sync: SyncStatus::default(),
            synced: false,
            popup: None,
            message: None,
            hits: Hitmap::default(),
            quit: false,
            search_due: None,
            stats_at: None,
            outbox: Vec::new(),
        }
    }

    /// Queues the first page, the counts and the audit trail.
    pub fn start(&mut self) {
        self.reload(false);
        self.outbox.push(Request::Stats);
        self.reload_events();
    }

    /// Takes the queued requests.
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.outbox)
    }

    /// The selected token.
    pub fn selected_token(&self) -> Option<&TokenInfo> {
        self.rows.get(self.selected)
    }

    /// Rows that fit in the table body of the last frame.
    fn page_rows(&self) -> usize {
        usize::from(self.hits.body.height).max(1)
    }

    /// The query for the current filters.
    pub fn query(&self) -> ListQuery {
        ListQuery {
            status: self.filter.status(),
            text: Some(self.search.trim().to_owned()).filter(|s| !s.is_empty()),
            limit: PAGE,
            ..ListQuery::default()
        }
    }

    /// Queues a replacing query; `keep` keeps the selection and as many rows as are loaded
    /// (a refresh), otherwise starts at the top.
    fn reload(&mut self, keep: bool) {
        self.seq += 1;
        let mut query = self.query();
        if keep {
            let n = u32::try_from(self.rows.len()).unwrap_or(u32::MAX);
            query.limit = n.clamp(PAGE, 1000);
        } else {
            self.selected = 0;
            self.scroll = 0;
        }
        self.loading = true;
        self.loading_more = false;
        self.outbox.push(Request::List {
            seq: self.seq,
            query,
            append: false,
        });
    }

    fn load_more_if_needed(&mut self) {
        if self.more
            && !self.loading
            && !self.loading_more
            && self.selected + PREFETCH >= self.rows.len()
        {
            if let Some(after) = self.last_key.clone() {
                let query = ListQuery {
                    after: Some(after),
                    ..self.query()
                };
                self.loading_more = true;
                self.outbox.push(Request::List {
                    seq: self.seq,
                    query,
                    append: true,
                });
            }
        }
    }

    fn reload_events(&mut self) {
        self.event_seq += 1;
        self.outbox.push(Request::Events {
            seq: self.event_seq,
            before: None,
        });
    }

    fn request_details(&mut self) {
        if !self.details_open {
            return;
        }
        if let Some(t) = self.selected_token() {
            let req = Request::Details {
                jti: t.token.jti.clone(),
                fid: t.token.fid.clone(),
            };
            self.outbox.push(req);
        } else {
            self.details = None;
        }
    }

    fn refresh_all(&mut self) {
        self.reload(true);
        self.outbox.push(Request::Stats);
        self.reload_events();
        self.request_details();
    }

    fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
        });
    }

    fn ensure_visible(&mut self) {
        let h = self.page_rows();
        if self.selected < self.scroll {
            self.scroll = self.selected;
        } else if self.selected >= self.scroll + h {
            self.scroll = self.selected + 1 - h;
        }
        let h = self.page_rows();
        if self.event_selected < self.event_scroll {
            self.event_scroll = self.event_selected;
        } else if self.event_selected >= self.event_scroll + h {
            self.event_scroll = self.event_selected + 1 - h;
        }
    }

    fn move_to(&mut self, target: isize) {
        match self.view {
            View::Tokens => {
                let last = self.rows.len().saturating_sub(1) as isize;
                let new = target.clamp(0, last.max(0)) as usize;
                let changed = new != self.selected;
                self.selected = new;
                self.ensure_visible();
                self.load_more_if_needed();
                if changed {
                    self.request_details();
                }
            }
            View::Events => {
                let last = self.events.len().saturating_sub(1) as isize;
                self.event_selected = target.clamp(0, last.max(0)) as usize;
                self.ensure_visible();
                if self.events_more && self.event_selected + PREFETCH >= self.events.len() {
                    if let Some(last) = self.events.last() {
                        let before = Some(last.id);
                        self.outbox.push(Request::Events {
                            seq: self.event_seq,
                            before,
                        });
                        self.events_more = false;
                    }
                }
            }
        }
    }

    fn current(&self) -> isize {
        match self.view {
            View::Tokens => self.selected as isize,
            View::Events => self.event_selected as isize,
        }
    }

    fn apply_sort(&mut self) {
        let keep = self.selected_token().map(|t| t.token.jti.clone());
        let s = self.sort;
        let server = |a: &TokenInfo, b: &TokenInfo| {
            b.token
                .iat
                .cmp(&a.token.iat)
                .then_with(|| a.token.jti.cmp(&b.token.jti))
        };
        self.rows.sort_by(|a, b| {
            let o = match s.column {
                Column::Status => a.status.as_str().cmp(b.status.as_str()),
                Column::Subject => a.token.sub.cmp(&b.token.sub),
                Column::Jti => a.token.jti.cmp(&b.token.jti),
                Column::Kind => a.token.kind.as_str().cmp(b.token.kind.as_str()),
                Column::Issued => a.token.iat.cmp(&b.token.iat),
                Column::Expires => a.token.exp.cmp(&b.token.exp),
                Column::LastSeen => a.last_seen.cmp(&b.last_seen),
            };
            let o = if s.descending { o.reverse() } else { o };
            o.then_with(|| server(a, b))
        });
        if let Some(jti) = keep {
            if let Some(i) = self.rows.iter().position(|t| t.token.jti == jti) {
                self.selected = i;
            }
        }
        self.ensure_visible();
    }

    /// Opens the dialog for a revocation of the selected token's jti, family or subject,
    /// or the global cut-off.
    fn ask_revoke(&mut self, scope: Scope) {
        if scope == Scope::Global {
            let when = timefmt::long(self.now);
            self.popup = Some(Popup::Dialog(Dialog::new(
                Intent::Global { cutoff: self.now },
                "Global cut-off",
                vec![
                    format!("Revoke EVERY token issued at or before {when} UTC."),
                    "A second confirmation follows.".into(),
                ],
            )));
            return;
        }
        let Some(t) = self.selected_token() else {
            self.error("no token selected");
            return;
        };
        let (key, title, body) = match scope {
            Scope::Jti => (
                t.token.jti.clone(),
                "Revoke token",
                vec![
                    format!("jti      {}", t.token.jti),
                    format!("subject  {}  ({})", t.token.sub, t.token.kind),
                ],
            ),
            Scope::Family => match &t.token.fid {
                Some(fid) => (
                    fid.clone(),
                    "Revoke session family",
                    vec![
                        format!("family   {fid}"),
                        format!("subject  {}: every token of this login", t.token.sub),
                    ],
                ),
                None => {
                    self.error("this token has no family");
                    return;
                }
            },
            _ => (
                t.token.sub.clone(),
                "Revoke subject",
                vec![
                    format!("subject  {}", t.token.sub),
                    "every token issued to it up to now (log out everywhere)".into(),
                ],
            ),
        };
        self.popup = Some(Popup::Dialog(Dialog::new(
            Intent::Revoke(scope, key),
            title,
            body,
        )));
    }

    fn ask_restore(&mut self) {
        let Some(t) = self.selected_token() else {
            self.error("no token selected");
            return;
        };
        let Some(r) = &t.revocation else {
            self.error(format!("{} is not revoked", t.token.jti));
            return;
        };
        let key = match r.scope {
            Scope::Jti => t.token.jti.clone(),
            Scope::Family => t.token.fid.clone().unwrap_or_default(),
            Scope::Subject => t.token.sub.clone(),
            Scope::Global => String::new(),
        };
        let what = if r.scope == Scope::Global {
            "the global cut-off (every token issued before it comes back)".to_owned()
        } else {
            format!("{} {key}", r.scope)
        };
        self.popup = Some(Popup::Dialog(Dialog::new(
            Intent::Restore(r.scope, key),
            "Restore",
            vec![
                format!("Lift the revocation of {what}."),
                format!(
                    "Revoked {} by {}: {}",
                    timefmt::long(r.revoked_at),
                    r.actor.as_deref().unwrap_or("?"),
                    r.reason.as_deref().unwrap_or("no reason")
                ),
            ],
        )));
    }

    fn confirm_dialog(&mut self) {
        let Some(Popup::Dialog(d)) = self.popup.take() else {
            return;
        };
        let reason = d
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        match d.intent {
            Intent::Revoke(scope, key) => {
                let req = match scope {
                    Scope::Jti => RevokeRequest::jti(key),
                    Scope::Family => RevokeRequest::family(key),
                    _ => RevokeRequest::subject(key),
                };
                self.send_revoke(req, reason);
            }
            Intent::Global { cutoff } => {
                self.popup = Some(Popup::Dialog(Dialog::global_confirm(
                    cutoff,
                    reason.unwrap_or_default(),
                    timefmt::long(cutoff),
                )));
            }
            Intent::GlobalConfirm { cutoff, reason } => {
                let reason = Some(reason).filter(|r| !r.is_empty());
                self.send_revoke(RevokeRequest::global_before(cutoff), reason);
            }
            Intent::Restore(scope, key) => {
                self.info(format!("restoring {scope} {key}..."));
                self.outbox.push(Request::Restore {
                    scope,
                    key,
                    reason,
                    actor: self.actor.clone(),
                });
            }
        }
    }

    fn send_revoke(&mut self, req: RevokeRequest, reason: Option<String>) {
        let mut req = req.actor(self.actor.clone());
        if let Some(r) = reason {
            req = req.reason(r);
        }
        self.info(format!("revoking {} {}...", req.scope, req.key));
        self.outbox.push(Request::Revoke(req));
    }

    fn run_menu_item(&mut self, menu: usize, item: usize) {
        self.popup = None;
        if let Some((_, _, cmd)) = MENUS.get(menu).and_then(|m| m.items.get(item)) {
            self.update(cmd.action());
        }
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
        match action {
            Action::Quit => self.quit = true,
            Action::Move(d) => self.move_to(self.current() + d),
            Action::PageUp => self.move_to(self.current() - self.page_rows() as isize),
            Action::PageDown => self.move_to(self.current() + self.page_rows() as isize),
            Action::Home => self.move_to(0),
            Action::End => self.move_to(isize::MAX / 2),
            Action::Click(i) => {
                let already = self.view == View::Tokens && i == self.selected;
                self.move_to(i as isize);
                if already && !self.details_open {
                    self.update(Action::ToggleDetails);
                }
            }
            Action::NextFilter | Action::PrevFilter | Action::SetFilter(_) => {
                self.filter = match action {
                    Action::NextFilter => self.filter.step(1),
                    Action::PrevFilter => self.filter.step(-1),
                    Action::SetFilter(f) => f,
                    _ => self.filter,
                };
                self.view = View::Tokens;
                self.reload(false);
            }
            Action::StartSearch => {
                self.view = View::Tokens;
                self.searching = true;
            }
            Action::SearchInput(c) => {
                self.searching = true;
                self.search.push(c);
                self.search_due = Some(Instant::now() + DEBOUNCE);
            }
            Action::SearchBackspace => {
                self.search.pop();
                self.search_due = Some(Instant::now() + DEBOUNCE);
            }
            Action::SearchKeep => {
                self.searching = false;
                if self.search_due.take().is_some() {
                    self.reload(false);
                }
            }
            Action::SearchClear => {
                self.searching = false;
                self.search_due = None;
                if !self.search.is_empty() {
                    self.search.clear();
                    self.reload(false);
                }
            }
            Action::ToggleDetails => {
                self.view = View::Tokens;
                self.details_open = !self.details_open;
                if self.details_open {
                    self.details = None;
                    self.request_details();
                }
            }
            Action::CloseDetails => self.details_open = false,
            Action::ToggleEvents => {
                self.view = match self.view {
                    View::Tokens => View::Events,
                    View::Events => View::Tokens,
                };
                if self.view == View::Events {
                    self.reload_events();
                }
            }
            Action::ShowTokens => self.view = View::Tokens,
            Action::Refresh => {
                self.refresh_all();
                self.info("refreshing...");
            }
            Action::SortNext => {
                self.sort = Sort {
                    column: self.sort.column.next(),
                    descending: self.sort.column.next() == Column::Issued,
                };
                self.apply_sort();
            }
            Action::SortReverse => {
                self.sort.descending = !self.sort.descending;
                self.apply_sort();
            }
            Action::SortBy(c) => {
                if self.sort.column == c {
                    self.sort.descending = !self.sort.descending;
                } else {
                    self.sort = Sort {
                        column: c,
                        descending: c == Column::Issued,
                    };
                }
                self.apply_sort();
            }
            Action::AskRevoke(scope) => self.ask_revoke(scope),
            Action::AskRestore => self.ask_restore(),
            Action::AskLiftGlobal => {
                self.popup = Some(Popup::Dialog(Dialog::new(
                    Intent::Restore(Scope::Global, String::new()),
                    "Lift global cut-off",
                    vec![
                        "Tokens issued before the cut-off will be accepted again".into(),
                        "(unless another revocation covers them).".into(),
                    ],
                )));
            }
            Action::OpenMenu(m) => {
                if m < MENUS.len() {
                    self.popup = Some(Popup::Menu(MenuState { menu: m, item: 0 }));
                }
            }
            Action::CloseMenu => {
                if matches!(self.popup, Some(Popup::Menu(_))) {
                    self.popup = None;
                }
            }
            Action::MenuSwitch(d) => {
                if let Some(Popup::Menu(m)) = &mut self.popup {
                    let n = MENUS.len() as isize;
                    m.menu = (m.menu as isize + d).rem_euclid(n) as usize;
                    m.item = 0;
                }
            }
            Action::MenuMove(d) => {
                if let Some(Popup::Menu(m)) = &mut self.popup {
                    let n = MENUS.get(m.menu).map_or(1, |x| x.items.len()) as isize;
                    m.item = (m.item as isize + d).rem_euclid(n.max(1)) as usize;
                }
            }
            Action::MenuActivate => {
                if let Some(Popup::Menu(m)) = self.popup {
                    self.run_menu_item(m.menu, m.item);
                }
            }
            Action::MenuPick(i) => {
                if let Some(Popup::Menu(m)) = self.popup {
                    self.run_menu_item(m.menu, i);
                }
            }
            Action::Run(cmd) => {
                self.popup = None;
                self.update(cmd.action());
            }
            Action::ToggleHelp => {
                self.popup = match self.popup {
                    Some(Popup::Help) => None,
                    _ => Some(Popup::Help),
                }
            }
            Action::About => self.info(concat!(
                "revokectl ",
                env!("CARGO_PKG_VERSION"),
                ": the rocket-revoke admin tool"
            )),
            Action::DialogInput(c) => {
                if let Some(Popup::Dialog(d)) = &mut self.popup {
                    match (&mut d.reason, d.focus) {
                        (Some(r), Focus::Input) => {
                            if r.chars().count() < 200 {
                                r.push(c);
                            }
                        }
                        _ => {
                            if c == 'y' || c == 'Y' {
                                self.confirm_dialog();
                            }
                        }
                    }
                }
            }
            Action::DialogBackspace => {
                if let Some(Popup::Dialog(d)) = &mut self.popup {
                    if let Some(r) = &mut d.reason {
                        r.pop();
                    }
                }
            }
            Action::DialogFocus => {
                if let Some(Popup::Dialog(d)) = &mut self.popup {
                    d.next_focus();
                }
            }
            Action::DialogEnter => {
                if let Some(Popup::Dialog(d)) = &self.popup {
                    if d.focus == Focus::Cancel {
                        self.popup = None;
                    } else {
                        self.confirm_dialog();
                    }
                }
            }
            Action::DialogConfirm => self.confirm_dialog(),
            Action::DialogCancel => {
                if matches!(self.popup, Some(Popup::Dialog(_))) {
                    self.popup = None;
                    self.info("cancelled");
                }
            }
            Action::Resize => self.ensure_visible(),
            Action::Tick { at, now } => {
                self.now = now;
                if self.search_due.is_some_and(|due| at >= due) {
                    self.search_due = None;
                    self.reload(false);
                }
                if self
                    .stats_at
                    .is_none_or(|t| at.duration_since(t) >= STATS_EVERY)
                {
                    if self.stats_at.is_some() {
                        self.outbox.push(Request::Stats);
                    }
                    self.stats_at = Some(at);
                }
            }
            Action::Page {
                seq,
                rows,
                append,
                limit,
                elapsed,
            } => {
                if seq != self.seq {
                    return;
                }
                self.more = rows.len() >= limit as usize;
                self.last_key = rows.last().map(|t| (t.token.iat, t.token.jti.clone()));
                if append {
                    self.loading_more = false;
                    self.rows.extend(rows);
                } else {
                    let keep = self.selected_token().map(|t| t.token.jti.clone());
                    self.loading = false;
                    self.query_time = Some(elapsed);
                    let old = self.selected;
                    self.rows = rows;
                    self.selected = keep
                        .and_then(|j| self.rows.iter().position(|t| t.token.jti == j))
                        .unwrap_or_else(|| old.min(self.rows.len().saturating_sub(1)));
                }
                if self.sort != Sort::default() {
                    self.apply_sort();
                }
                self.ensure_visible();
                self.load_more_if_needed();
            }
            Action::Stats(s) => self.stats = Some(s),
            Action::Details(d) => {
                if self.selected_token().map(|t| t.token.jti.as_str()) == Some(d.jti.as_str()) {
                    self.details = Some(d);
                }
            }
            Action::Events {
                seq,
                events,
                append,
            } => {
                if seq != self.event_seq {
                    return;
                }
                self.events_more = events.len() >= EVENT_PAGE as usize;
                if append {
                    self.events.extend(events);
                } else {
                    self.events = events;
                    self.event_selected =
                        self.event_selected.min(self.events.len().saturating_sub(1));
                }
                self.ensure_visible();
            }
            Action::Synced(status) => {
                let moved = self.synced && status.cursor != self.sync.cursor;
                self.sync = status;
                self.synced = true;
                if moved {
                    self.refresh_all();
                }
            }
            Action::Done(msg) => {
                self.info(msg);
                self.refresh_all();
            }
            Action::Failed(msg) => {
                self.loading = false;
                self.loading_more = false;
                self.error(msg);
            }
        }
    }
}
