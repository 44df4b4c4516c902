//! Popups: the drop-down menus, modal dialogs and the help overlay. While one is open it
//! takes every event; it is drawn last, over `Clear`.

use crate::action::Command;
use crate::hitmap::Hitmap;
use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};
use ratatui::Frame;
use rocket_revoke_core::Scope;

/// What an open popup is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Popup {
    /// A drop-down menu of the menu bar.
    Menu(MenuState),
    /// A modal dialog.
    Dialog(Dialog),
    /// The key reference (F1).
    Help,
}

/// One drop-down menu.
#[derive(Debug)]
pub struct Menu {
    /// Title in the bar; the first letter is its Alt+letter.
    pub title: &'static str,
    /// Label, key hint, command.
    pub items: &'static [(&'static str, &'static str, Command)],
}

/// The menu bar.
pub const MENUS: [Menu; 4] = [
    Menu {
        title: "File",
        items: &[
            ("Refresh", "F5", Command::Refresh),
            ("Quit", "q", Command::Quit),
        ],
    },
    Menu {
        title: "View",
        items: &[
            ("Tokens", "F4", Command::ViewTokens),
            ("Event log", "F6", Command::ViewEvents),
            ("Next status filter", "Tab", Command::NextFilter),
            ("Sort by next column", "F2", Command::SortNext),
            ("Reverse sort", "O", Command::SortReverse),
            ("Details pane", "Enter", Command::Details),
        ],
    },
    Menu {
        title: "Tokens",
        items: &[
            ("Search", "/", Command::Search),
            ("Revoke token", "r", Command::RevokeToken),
            ("Revoke family", "f", Command::RevokeFamily),
            ("Revoke subject", "s", Command::RevokeSubject),
            ("Restore", "u", Command::Restore),
            ("Revoke ALL issued before now...", "", Command::RevokeGlobal),
            ("Lift global cut-off...", "", Command::LiftGlobal),
        ],
    },
    Menu {
        title: "Help",
        items: &[("Keys", "F1", Command::Help), ("About", "", Command::About)],
    },
];

/// Which menu is open and which item is highlighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MenuState {
    /// Index into [`MENUS`].
    pub menu: usize,
    /// Index into its items.
    pub item: usize,
}

/// What confirming a dialog does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Revoke a jti, family or subject.
    Revoke(Scope, String),
    /// First step of the global cut-off: ask for the reason.
    Global {
        /// Revoke tokens issued at or before this.
        cutoff: i64,
    },
    /// Second step of the global cut-off.
    GlobalConfirm {
        /// Revoke tokens issued at or before this.
        cutoff: i64,
        /// From the first step.
        reason: String,
    },
    /// Lift a revocation.
    Restore(Scope, String),
}

/// Where keyboard focus is inside a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The reason field.
    Input,
    /// The confirm button.
    Confirm,
    /// The cancel button.
    Cancel,
}

/// A modal dialog: a message, an optional reason field, and two buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// What confirming does.
    pub intent: Intent,
    /// Title.
    pub title: String,
    /// Message lines.
    pub body: Vec<String>,
    /// The reason typed so far (`None`: no field).
    pub reason: Option<String>,
    /// Keyboard focus.
    pub focus: Focus,
    /// The confirm button's label.
    pub confirm: &'static str,
    /// Red, for destructive actions.
    pub danger: bool,
}

impl Dialog {
    /// The dialog asking for a reason before a revocation or restore.
    pub fn new(intent: Intent, title: impl Into<String>, body: Vec<String>) -> Self {
        let (confirm, danger) = match intent {
            Intent::Restore(..) => ("Restore", false),
            _ => ("Revoke", true),
        };
        Self {
            intent,
            title: title.into(),
            body,
            reason: Some(String::new()),
            focus: Focus::Input,
            confirm,
            danger,
        }
    }

    /// The second confirmation of the global cut-off: no field, focus on Cancel, so a
    /// doubled Enter cancels.
    pub fn global_confirm(cutoff: i64, reason: String, when: String) -> Self {
        Self {
            intent: Intent::GlobalConfirm { cutoff, reason },
            title: "Really revoke every token?".into(),
            body: vec![
                format!("Every token issued at or before {when} UTC"),
                "will be rejected by every instance: all users are".into(),
                "logged out. Press y or click the button to confirm.".into(),
            ],
            reason: None,
            focus: Focus::Cancel,
            confirm: "Revoke everything",
            danger: true,
        }
    }

    /// Moves focus to the next stop.
    pub fn next_focus(&mut self) {
        self.focus = match (self.focus, self.reason.is_some()) {
            (Focus::Input, _) => Focus::Confirm,
            (Focus::Confirm, _) => Focus::Cancel,
            (Focus::Cancel, true) => Focus::Input,
            (Focus::Cancel, false) => Focus::Confirm,
        };
    }
}

/// Centers a `w`×`h` box in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(r);
    r
}

/// Draws the open drop-down under its title.
pub fn render_menu(state: &MenuState, f: &mut Frame, hits: &mut Hitmap) {
    let Some(menu) = MENUS.get(state.menu) else {
        return;
    };
    let Some(title) = hits.menu_titles.get(state.menu).copied() else {
        return;
    };
    let label_w = menu.items.iter().map(|i| i.0.len()).max().unwrap_or(0);
    let hint_w = menu.items.iter().map(|i| i.1.len()).max().unwrap_or(0);
    let w = (label_w + hint_w + 6) as u16;
    let h = menu.items.len() as u16 + 2;
    let screen = f.area();
    let x = title.x.min(screen.width.saturating_sub(w));
    let area = Rect::new(x, title.y + 1, w, h).intersection(screen);
    f.render_widget(Clear, area);
    let block = Block::bordered().border_type(BorderType::Plain);
    let inner = block.inner(area);
    f.render_widget(block, area);
    hits.menu_items.clear();
    for (i, (label, hint, _)) in menu.items.iter().enumerate() {
        let row = Rect::new(inner.x, inner.y + i as u16, inner.width, 1).intersection(inner);
        let pad = (inner.width as usize).saturating_sub(label.len() + hint.len() + 2);
        let text = format!(" {label}{}{hint} ", " ".repeat(pad));
        let style = if i == state.item {
            Style::new().reversed()
        } else {
            Style::new()
        };
        f.render_widget(Paragraph::new(text).style(style), row);
        hits.menu_items.push(row);
    }
}

/// Draws a dialog in the middle of the screen.
pub fn render_dialog(d: &Dialog, f: &mut Frame, hits: &mut Hitmap) {
    let w = 64u16;
    let h = d.body.len() as u16 + if d.reason.is_some() { 8 } else { 5 };
    let area = centered(f.area(), w, h);
    hits.dialog = area;
    f.render_widget(Clear, area);
    let color = if d.danger { Color::Red } else { Color::Blue };
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(Style::new().fg(color))
        .title(Line::from(format!(" {} ", d.title)).bold());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut constraints = vec![
        Constraint::Length(d.body.len() as u16),
        Constraint::Length(1),
    ];
    if d.reason.is_some() {
        constraints.push(Constraint::Length(3));
    }
    constraints.push(Constraint::Length(1));
    let parts = Layout::vertical(constraints).split(inner);
    let body: Vec<Line> = d.body.iter().map(|l| Line::from(format!(" {l}"))).collect();
    f.render_widget(Paragraph::new(body).wrap(Wrap { trim: false }), parts[0]);
    let mut next = 2;
    if let Some(reason) = &d.reason {
        let focused = d.focus == Focus::Input;
        let field = Block::bordered()
            .title(" Reason ")
            .border_style(if focused {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            });
        let cursor = if focused { "█" } else { "" };
        let area = parts[2].inner(ratatui::layout::Margin::new(1, 0));
        f.render_widget(
            Paragraph::new(format!("{reason}{cursor}")).block(field),
            area,
        );
        next = 3;
    }
    let confirm = format!("[ {} ]", d.confirm);
    let cancel = "[ Cancel ]".to_string();
    let [a, b] = Layout::horizontal([
        Constraint::Length(confirm.len() as u16),
        Constraint::Length(cancel.len() as u16),
    ])
    .flex(Flex::Center)
    .spacing(4)
    .areas(parts[next]);
    let style = |focus: bool, danger: bool| {
        let s = if danger {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        if focus {
            s.reversed()
        } else {
            s
        }
    };
    f.render_widget(
        Paragraph::new(confirm).style(style(d.focus == Focus::Confirm, d.danger)),
        a,
    );
    f.render_widget(
        Paragraph::new(cancel).style(style(d.focus == Focus::Cancel, false)),
        b,
    );
    hits.buttons = vec![a, b];
}

/// The key reference.
pub const HELP: &[(&str, &str)] = &[
    ("↑ ↓ PgUp PgDn Home End", "move; wheel scrolls"),
    ("Enter / F4", "details pane (claims, revocation, family)"),
    (
        "Tab / Shift+Tab",
        "status filter: All, Active, Revoked, Expired",
    ),
    ("/ or F3", "search subject, jti or label (prefix)"),
    ("  Enter / Esc", "keep the filter / clear it"),
    ("F2 / O", "sort by next column / reverse"),
    ("r", "revoke the selected token"),
    ("f", "revoke its family (login session)"),
    ("s", "revoke its subject (log out everywhere)"),
    ("u", "restore: lift the revocation covering it"),
    ("Tokens menu", "global cut-off (asks twice)"),
    ("F6 / e", "event log (audit trail)"),
    ("F5", "refresh now"),
    ("F10, Alt+F/V/T/H", "menus; click anything"),
    ("q / Ctrl+C", "quit"),
];

/// Draws the help overlay.
pub fn render_help(f: &mut Frame, hits: &mut Hitmap) {
    let area = centered(f.area(), 72, HELP.len() as u16 + 4);
    hits.dialog = area;
    f.render_widget(Clear, area);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(" Help — keys ".bold())
        .title_bottom(Line::from(" any key closes ").alignment(Alignment::Right));
    let mut lines = vec![Line::default()];
    for (k, v) in HELP {
        lines.push(Line::from(vec![
            Span::styled(format!(" {k:<24}"), Style::new().fg(Color::Yellow)),
            Span::raw(*v),
        ]));
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}
