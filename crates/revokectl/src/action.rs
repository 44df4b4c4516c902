//! What can happen to the app and what it asks for: every [`Action`] (user intents, worker
//! results), the [`Command`]s of the menus and F-key hints, and the [`Request`]s queued
//! for the database worker with the [`Details`] it answers. Like gitui's `queue.rs`, the
//! vocabulary [`crate::app`], [`crate::popup`] and the input mapping share without
//! importing each other; it imports only the plain values of [`crate::view`].

use crate::view::{Column, StatusFilter};
use rocket_revoke_core::store::{ListQuery, Stats, TokenInfo};
use rocket_revoke_core::{Event as LogEvent, RevokeRequest, Scope, SyncStatus};
use std::time::{Duration, Instant};

/// Everything that can happen to the app: user intents and results from the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Move the selection by this many rows.
    Move(isize),
    /// Move one screen up.
    PageUp,
    /// Move one screen down.
    PageDown,
    /// First row.
    Home,
    /// Last loaded row (and fetch more).
    End,
    /// Select a row by index (a click).
    Click(usize),
    /// Next status filter.
    NextFilter,
    /// Previous status filter.
    PrevFilter,
    /// A status filter (a click on its tab).
    SetFilter(StatusFilter),
    /// Open the search box.
    StartSearch,
    /// A character typed into the search box.
    SearchInput(char),
    /// Backspace in the search box.
    SearchBackspace,
    /// Enter: keep the filter, close the box.
    SearchKeep,
    /// Esc: clear the filter.
    SearchClear,
    /// Open or close the details pane.
    ToggleDetails,
    /// Close the details pane.
    CloseDetails,
    /// Switch between the token table and the event log.
    ToggleEvents,
    /// Show the token table.
    ShowTokens,
    /// Reload everything visible.
    Refresh,
    /// Sort by the next column.
    SortNext,
    /// Reverse the sort.
    SortReverse,
    /// Sort by a column (a click on its header).
    SortBy(Column),
    /// Open the revoke dialog for the selected token's jti, family or subject, or the
    /// global cut-off.
    AskRevoke(Scope),
    /// Open the restore dialog for the revocation covering the selected token.
    AskRestore,
    /// Open the dialog lifting the global cut-off.
    AskLiftGlobal,
    /// Open a menu.
    OpenMenu(usize),
    /// Close the menu.
    CloseMenu,
    /// Next / previous menu.
    MenuSwitch(isize),
    /// Next / previous item.
    MenuMove(isize),
    /// Run the highlighted item.
    MenuActivate,
    /// Run an item by index (a click).
    MenuPick(usize),
    /// Run a command (a click on an F-key hint).
    Run(Command),
    /// Open or close the help overlay.
    ToggleHelp,
    /// Show the version.
    About,
    /// A character typed into the dialog.
    DialogInput(char),
    /// Backspace in the dialog.
    DialogBackspace,
    /// Next focus stop in the dialog.
    DialogFocus,
    /// Enter in the dialog: activates the focused button (confirm from the field).
    DialogEnter,
    /// Confirm (y, or a click on the confirm button).
    DialogConfirm,
    /// Esc, or a click on Cancel.
    DialogCancel,
    /// The terminal was resized.
    Resize,
    /// Time passes: debounced searches and periodic refreshes.
    Tick {
        /// Monotonic time.
        at: Instant,
        /// Wall clock, seconds since the epoch.
        now: i64,
    },
    /// A page of tokens arrived.
    Page {
        /// Its generation.
        seq: u64,
        /// The rows, newest first.
        rows: Vec<TokenInfo>,
        /// Appended or replacing.
        append: bool,
        /// The page size asked for.
        limit: u32,
        /// Query time.
        elapsed: Duration,
    },
    /// Counts arrived.
    Stats(Stats),
    /// Details arrived.
    Details(Details),
    /// A page of the audit trail arrived.
    Events {
        /// Its generation.
        seq: u64,
        /// Newest first.
        events: Vec<LogEvent>,
        /// Appended or replacing.
        append: bool,
    },
    /// The sync status of the engine.
    Synced(SyncStatus),
    /// A write succeeded.
    Done(String),
    /// Something failed.
    Failed(String),
}

/// Commands reachable from menus and the clickable F-key hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Reload the page, counts and the event log.
    Refresh,
    /// Leave.
    Quit,
    /// Show the token table.
    ViewTokens,
    /// Show the audit trail.
    ViewEvents,
    /// Next status filter.
    NextFilter,
    /// Sort by the next column.
    SortNext,
    /// Reverse the sort.
    SortReverse,
    /// Open or close the details pane.
    Details,
    /// Open the search box.
    Search,
    /// Revoke the selected token.
    RevokeToken,
    /// Revoke the selected token's family.
    RevokeFamily,
    /// Revoke every token of the selected token's subject.
    RevokeSubject,
    /// Lift the revocation covering the selected token.
    Restore,
    /// Global cut-off: revoke everything issued before now.
    RevokeGlobal,
    /// Lift the global cut-off.
    LiftGlobal,
    /// Key reference.
    Help,
    /// Version line.
    About,
    /// Open the menu bar.
    Menu,
}

impl Command {
    /// The action the command stands for.
    pub fn action(self) -> Action {
        match self {
            Command::Refresh => Action::Refresh,
            Command::Quit => Action::Quit,
            Command::ViewTokens => Action::ShowTokens,
            Command::ViewEvents => Action::ToggleEvents,
            Command::NextFilter => Action::NextFilter,
            Command::SortNext => Action::SortNext,
            Command::SortReverse => Action::SortReverse,
            Command::Details => Action::ToggleDetails,
            Command::Search => Action::StartSearch,
            Command::RevokeToken => Action::AskRevoke(Scope::Jti),
            Command::RevokeFamily => Action::AskRevoke(Scope::Family),
            Command::RevokeSubject => Action::AskRevoke(Scope::Subject),
            Command::Restore => Action::AskRestore,
            Command::RevokeGlobal => Action::AskRevoke(Scope::Global),
            Command::LiftGlobal => Action::AskLiftGlobal,
            Command::Help => Action::ToggleHelp,
            Command::About => Action::About,
            Command::Menu => Action::OpenMenu(0),
        }
    }
}

/// Work for the background worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A page of tokens.
    List {
        /// Generation: results of older generations are dropped.
        seq: u64,
        /// Filters and paging.
        query: ListQuery,
        /// Append to the loaded rows instead of replacing them.
        append: bool,
    },
    /// Counts.
    Stats,
    /// One token and its family.
    Details {
        /// The token.
        jti: String,
        /// Its family, if any.
        fid: Option<String>,
    },
    /// A page of the audit trail.
    Events {
        /// Generation.
        seq: u64,
        /// Only events with a lower id.
        before: Option<i64>,
    },
    /// A revocation.
    Revoke(RevokeRequest),
    /// Lift a revocation.
    Restore {
        /// Its scope.
        scope: Scope,
        /// Its key.
        key: String,
        /// Why.
        reason: Option<String>,
        /// Who.
        actor: String,
    },
}

/// The details pane's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// The token asked for.
    pub jti: String,
    /// Its row (`None` if it vanished).
    pub token: Option<TokenInfo>,
    /// The other tokens of its family.
    pub family: Vec<TokenInfo>,
}
