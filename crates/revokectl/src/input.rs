//! Input: terminal key and mouse events become [`Action`]s, given what is on screen (the
//! open popup, the search box, the [`Hitmap`](crate::hitmap::Hitmap) of the last frame).
//! The mapping only reads the [`App`]; [`App::update`] applies what it returns.

use crate::action::Action;
use crate::app::App;
use crate::popup::{Popup, MENUS};
use crate::view::{StatusFilter, View};
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use rocket_revoke_core::Scope;

impl App {
    /// Turns a terminal event into an action, given what is on screen.
    pub fn map_event(&self, ev: &Event) -> Option<Action> {
        match ev {
            Event::Resize(..) => Some(Action::Resize),
            Event::Key(k) => self.map_key(k),
            Event::Mouse(m) => self.map_mouse(m),
            _ => None,
        }
    }

    /// Maps and applies a terminal event.
    pub fn on_event(&mut self, ev: &Event) {
        if let Some(a) = self.map_event(ev) {
            self.update(a);
        }
    }

    fn map_key(&self, k: &KeyEvent) -> Option<Action> {
        if k.kind != KeyEventKind::Press {
            return None;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        if ctrl && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('C')) {
            return Some(Action::Quit);
        }
        if alt {
            if let KeyCode::Char(c) = k.code {
                let c = c.to_ascii_lowercase();
                if let Some(i) = MENUS
                    .iter()
                    .position(|m| m.title.to_ascii_lowercase().starts_with(c))
                {
                    return Some(Action::OpenMenu(i));
                }
            }
        }
        match &self.popup {
            Some(Popup::Help) => return Some(Action::ToggleHelp),
            Some(Popup::Menu(_)) => {
                return match k.code {
                    KeyCode::Left => Some(Action::MenuSwitch(-1)),
                    KeyCode::Right => Some(Action::MenuSwitch(1)),
                    KeyCode::Up => Some(Action::MenuMove(-1)),
                    KeyCode::Down => Some(Action::MenuMove(1)),
                    KeyCode::Enter => Some(Action::MenuActivate),
                    KeyCode::Esc | KeyCode::F(10) => Some(Action::CloseMenu),
                    _ => None,
                }
            }
            Some(Popup::Dialog(_)) => {
                return match k.code {
                    KeyCode::Esc => Some(Action::DialogCancel),
                    KeyCode::Enter => Some(Action::DialogEnter),
                    KeyCode::Tab | KeyCode::BackTab => Some(Action::DialogFocus),
                    KeyCode::Backspace => Some(Action::DialogBackspace),
                    KeyCode::Char(c) if !ctrl => Some(Action::DialogInput(c)),
                    _ => None,
                }
            }
            None => {}
        }
        if self.searching {
            match k.code {
                KeyCode::Char(c) if !ctrl => return Some(Action::SearchInput(c)),
                KeyCode::Backspace => return Some(Action::SearchBackspace),
                KeyCode::Enter => return Some(Action::SearchKeep),
                KeyCode::Esc => return Some(Action::SearchClear),
                _ => {}
            }
        }
        Some(match k.code {
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Up | KeyCode::Char('k') => Action::Move(-1),
            KeyCode::Down | KeyCode::Char('j') => Action::Move(1),
            KeyCode::PageUp => Action::PageUp,
            KeyCode::PageDown => Action::PageDown,
            KeyCode::Home | KeyCode::Char('g') => Action::Home,
            KeyCode::End | KeyCode::Char('G') => Action::End,
            KeyCode::Tab => Action::NextFilter,
            KeyCode::BackTab => Action::PrevFilter,
            KeyCode::Char('/') | KeyCode::F(3) => Action::StartSearch,
            KeyCode::Enter | KeyCode::F(4) if self.view == View::Tokens => Action::ToggleDetails,
            KeyCode::F(4) => Action::ShowTokens,
            KeyCode::Esc if self.details_open => Action::CloseDetails,
            KeyCode::Esc if !self.search.is_empty() => Action::SearchClear,
            KeyCode::Esc if self.view == View::Events => Action::ShowTokens,
            KeyCode::F(2) | KeyCode::Char('o') => Action::SortNext,
            KeyCode::Char('O') => Action::SortReverse,
            KeyCode::Char('r') => Action::AskRevoke(Scope::Jti),
            KeyCode::Char('f') => Action::AskRevoke(Scope::Family),
            KeyCode::Char('s') => Action::AskRevoke(Scope::Subject),
            KeyCode::Char('u') => Action::AskRestore,
            KeyCode::Char('e') | KeyCode::F(6) => Action::ToggleEvents,
            KeyCode::F(5) => Action::Refresh,
            KeyCode::F(1) | KeyCode::Char('?') => Action::ToggleHelp,
            KeyCode::F(10) => Action::OpenMenu(0),
            _ => return None,
        })
    }

    fn map_mouse(&self, m: &MouseEvent) -> Option<Action> {
        let p = Position::new(m.column, m.row);
        let hit = |r: &Rect| r.contains(p);
        match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                if self.popup.is_some() {
                    return None;
                }
                let d = if m.kind == MouseEventKind::ScrollUp {
                    -3
                } else {
                    3
                };
                return Some(Action::Move(d));
            }
            MouseEventKind::Down(MouseButton::Left) => {}
            _ => return None,
        }
        match &self.popup {
            Some(Popup::Help) => return Some(Action::ToggleHelp),
            Some(Popup::Dialog(_)) => {
                return match self.hits.buttons.iter().position(hit) {
                    Some(0) => Some(Action::DialogConfirm),
                    Some(_) => Some(Action::DialogCancel),
                    None => None,
                };
            }
            Some(Popup::Menu(_)) => {
                if let Some(i) = self.hits.menu_items.iter().position(hit) {
                    return Some(Action::MenuPick(i));
                }
                if let Some(i) = self.hits.menu_titles.iter().position(hit) {
                    return Some(Action::OpenMenu(i));
                }
                return Some(Action::CloseMenu);
            }
            None => {}
        }
        if let Some(i) = self.hits.menu_titles.iter().position(hit) {
            return Some(Action::OpenMenu(i));
        }
        if let Some(i) = self.hits.tabs.iter().position(hit) {
            return Some(Action::SetFilter(StatusFilter::ALL[i]));
        }
        if hit(&self.hits.search) {
            return Some(Action::StartSearch);
        }
        if let Some((_, c)) = self.hits.headers.iter().find(|(r, _)| hit(r)) {
            return Some(Action::SortBy(*c));
        }
        if let Some((_, cmd)) = self.hits.hints.iter().find(|(r, _)| hit(r)) {
            return Some(Action::Run(*cmd));
        }
        if hit(&self.hits.body) {
            let i = self.hits.first_row + usize::from(m.row - self.hits.body.y);
            let n = match self.view {
                View::Tokens => self.rows.len(),
                View::Events => self.events.len(),
            };
            if i < n {
                return Some(match self.view {
                    View::Tokens => Action::Click(i),
                    View::Events => Action::Move(i as isize - self.event_selected as isize),
                });
            }
        }
        None
    }
}
