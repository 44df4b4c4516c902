//! The hit map: where the last frame drew each clickable thing, filled in by the renderer
//! ([`crate::ui`], [`crate::popup`]) and read by the mouse mapping ([`crate::input`]).

use crate::action::Command;
use crate::view::Column;
use ratatui::layout::Rect;

/// Clickable places of the last frame, for mouse hit-testing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hitmap {
    /// Menu bar titles, by menu.
    pub menu_titles: Vec<Rect>,
    /// Items of the open menu.
    pub menu_items: Vec<Rect>,
    /// Status filter tabs, in [`StatusFilter::ALL`](crate::view::StatusFilter::ALL) order.
    pub tabs: Vec<Rect>,
    /// The search box.
    pub search: Rect,
    /// Column headers of the token table.
    pub headers: Vec<(Rect, Column)>,
    /// Rows area of the token table or the event log.
    pub body: Rect,
    /// Index of the first row drawn in `body`.
    pub first_row: usize,
    /// The details pane.
    pub details: Rect,
    /// The open dialog or overlay.
    pub dialog: Rect,
    /// Dialog buttons: confirm, cancel.
    pub buttons: Vec<Rect>,
    /// F-key hints in the bottom line.
    pub hints: Vec<(Rect, Command)>,
}
