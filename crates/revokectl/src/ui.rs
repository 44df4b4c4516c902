//! Rendering: a pure function of the [`App`]; it returns where the clickable things are.

use crate::action::Command;
use crate::app::App;
use crate::hitmap::Hitmap;
use crate::popup::{self, Popup, MENUS};
use crate::timefmt;
use crate::view::{Column, StatusFilter, View};
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;
use rocket_revoke_core::store::{TokenInfo, TokenStatus};

const BAR: Style = Style::new().fg(Color::Black).bg(Color::Cyan);

/// F-key hints of the bottom line.
const HINTS: [(&str, &str, Command); 8] = [
    ("F1", "Help", Command::Help),
    ("F2", "Sort", Command::SortNext),
    ("F3", "Search", Command::Search),
    ("F4", "Details", Command::Details),
    ("F5", "Refresh", Command::Refresh),
    ("F6", "Events", Command::ViewEvents),
    ("F10", "Menu", Command::Menu),
    ("q", "Quit", Command::Quit),
];

/// Draws the whole screen.
pub fn render(app: &App, f: &mut Frame) -> Hitmap {
    let mut hits = Hitmap::default();
    let [menu, tabs, main, msg, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    render_menu_bar(app, f, menu, &mut hits);
    render_tabs(app, f, tabs, &mut hits);
    match app.view {
        View::Tokens if app.details_open => {
            let [table, details] =
                Layout::horizontal([Constraint::Min(40), Constraint::Length(58)]).areas(main);
            render_table(app, f, table, &mut hits);
            render_details(app, f, details);
            hits.details = details;
        }
        View::Tokens => render_table(app, f, main, &mut hits),
        View::Events => render_events(app, f, main, &mut hits),
    }
    render_message(app, f, msg);
    render_status(app, f, status);
    render_hints(f, hints, &mut hits);
    match &app.popup {
        Some(Popup::Menu(m)) => popup::render_menu(m, f, &mut hits),
        Some(Popup::Dialog(d)) => popup::render_dialog(d, f, &mut hits),
        Some(Popup::Help) => popup::render_help(f, &mut hits),
        None => {}
    }
    hits
}

fn render_menu_bar(app: &App, f: &mut Frame, area: Rect, hits: &mut Hitmap) {
    f.render_widget(Paragraph::new("").style(BAR), area);
    let open = match &app.popup {
        Some(Popup::Menu(m)) => Some(m.menu),
        _ => None,
    };
    let mut x = area.x + 1;
    for (i, m) in MENUS.iter().enumerate() {
        let w = m.title.len() as u16 + 2;
        let r = Rect::new(x, area.y, w, 1).intersection(area);
        let (first, rest) = m.title.split_at(1);
        let base = if open == Some(i) {
            Style::new().fg(Color::Cyan).bg(Color::Black)
        } else {
            BAR
        };
        let line = Line::from(vec![
            Span::styled(" ", base),
            Span::styled(
                first,
                base.add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
            ),
            Span::styled(format!("{rest} "), base),
        ]);
        f.render_widget(Paragraph::new(line), r);
        hits.menu_titles.push(r);
        x += w + 1;
    }
    let title = Span::styled("revokectl ", BAR.add_modifier(Modifier::BOLD));
    f.render_widget(Paragraph::new(title).right_aligned(), area);
}

fn status_count(app: &App, f: StatusFilter) -> Option<i64> {
    let s = app.stats?;
    Some(match f {
        StatusFilter::All => s.tokens,
        StatusFilter::Active => s.active,
        StatusFilter::Revoked => s.revoked,
        StatusFilter::Expired => s.expired,
    })
}

fn render_tabs(app: &App, f: &mut Frame, area: Rect, hits: &mut Hitmap) {
    let mut x = area.x + 1;
    for filter in StatusFilter::ALL {
        let label = match status_count(app, filter) {
            Some(n) => format!(" {} {} ", filter.label(), group(n)),
            None => format!(" {} ", filter.label()),
        };
        let w = label.chars().count() as u16;
        let r = Rect::new(x, area.y, w, 1).intersection(area);
        let style = if filter == app.filter {
            Style::new().fg(Color::Black).bg(Color::Yellow).bold()
        } else {
            Style::new().fg(Color::Gray)
        };
        f.render_widget(Paragraph::new(label).style(style), r);
        hits.tabs.push(r);
        x += w + 1;
    }
    let search_w = 40u16.min(area.width.saturating_sub(x - area.x));
    let r = Rect::new(area.right().saturating_sub(search_w), area.y, search_w, 1);
    let cursor = if app.searching { "█" } else { "" };
    let text = if app.search.is_empty() && !app.searching {
        Line::from(vec![
            Span::styled(" / ", Style::new().bold()),
            Span::styled(
                "search subject, jti, label",
                Style::new().fg(Color::DarkGray),
            ),
        ])
    } else {
        Line::from(vec![
            Span::styled(" / ", Style::new().bold()),
            Span::raw(format!("{}{cursor}", app.search)),
        ])
    };
    let style = if app.searching {
        Style::new().bg(Color::DarkGray).fg(Color::White)
    } else {
        Style::new()
    };
    f.render_widget(Paragraph::new(text).style(style), r);
    hits.search = r;
}

fn status_style(s: TokenStatus) -> Style {
    match s {
        TokenStatus::Active => Style::new().fg(Color::Green),
        TokenStatus::Revoked => Style::new().fg(Color::Red).bold(),
        TokenStatus::Expired => Style::new().fg(Color::DarkGray),
    }
}

/// Column widths for a table `total` cells wide: the subject takes what is left; the jti
/// shrinks (cut at the end) when the details pane leaves little room.
fn widths(total: u16) -> [Constraint; 7] {
    let fixed = 8 + 8 + 16 + 9 + 9 + 6;
    let jti = total.saturating_sub(fixed + 12).clamp(8, 36);
    [
        Constraint::Length(8),
        Constraint::Fill(1),
        Constraint::Length(jti),
        Constraint::Length(8),
        Constraint::Length(16),
        Constraint::Length(9),
        Constraint::Length(9),
    ]
}

/// `1234567` as `1,234,567`.
pub fn group(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn render_table(app: &App, f: &mut Frame, area: Rect, hits: &mut Hitmap) {
    let loaded = if app.more {
        format!("{}+", group(app.rows.len() as i64))
    } else {
        group(app.rows.len() as i64)
    };
    let mut title = format!(" Tokens · {} · {loaded} loaded ", app.filter.label());
    if !app.search.is_empty() {
        title.push_str(&format!("· \"{}\" ", app.search));
    }
    if app.loading {
        title.push_str("· loading… ");
    }
    let block = Block::bordered().title(title.bold());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [header, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let cols = Layout::horizontal(widths(inner.width))
        .flex(Flex::Legacy)
        .spacing(1)
        .split(header);
    let mut header_cells = Vec::new();
    for (c, r) in Column::ALL.iter().zip(cols.iter()) {
        let mark = if app.sort.column == *c {
            if app.sort.descending {
                " ▼"
            } else {
                " ▲"
            }
        } else {
            ""
        };
        header_cells.push(Cell::from(format!("{}{mark}", c.title())));
        hits.headers.push((*r, *c));
    }
    let h = usize::from(body.height);
    let first = app.scroll.min(app.rows.len().saturating_sub(1));
    let rows: Vec<Row> = app
        .rows
        .iter()
        .enumerate()
        .skip(first)
        .take(h)
        .map(|(i, t)| token_row(app, t, i == app.selected))
        .collect();
    hits.body = body;
    hits.first_row = first;
    let table = Table::new(rows, widths(inner.width))
        .header(Row::new(header_cells).style(Style::new().bold().underlined()))
        .flex(Flex::Legacy)
        .column_spacing(1);
    f.render_widget(table, inner);
    if app.rows.is_empty() && !app.loading {
        let msg = if app.search.is_empty() {
            "no tokens".to_owned()
        } else {
            format!("no token matches \"{}\"", app.search)
        };
        let r = Rect::new(body.x, body.y + 1, body.width, 1).intersection(body);
        f.render_widget(Paragraph::new(msg).centered().fg(Color::DarkGray), r);
    }
}

fn token_row<'a>(app: &App, t: &'a TokenInfo, selected: bool) -> Row<'a> {
    let seen = t
        .last_seen
        .map(|s| timefmt::relative(s, app.now))
        .unwrap_or_else(|| "never".into());
    let row = Row::new(vec![
        Cell::from(t.status.as_str()).style(status_style(t.status)),
        Cell::from(t.token.sub.as_str()),
        Cell::from(t.token.jti.as_str()),
        Cell::from(t.token.kind.as_str()),
        Cell::from(timefmt::short(t.token.iat)),
        Cell::from(timefmt::relative(t.token.exp, app.now)),
        Cell::from(seen),
    ]);
    if selected {
        row.style(Style::new().bg(Color::Blue).fg(Color::White))
    } else {
        row
    }
}

fn kv(k: &str, v: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!(" {k:<10}"), Style::new().fg(Color::Yellow)),
        Span::raw(v.into()),
    ])
}

fn render_details(app: &App, f: &mut Frame, area: Rect) {
    let block = Block::bordered().title(" Details ".bold());
    let mut lines = Vec::new();
    let token = app
        .details
        .as_ref()
        .filter(|d| app.selected_token().is_some_and(|t| t.token.jti == d.jti))
        .and_then(|d| d.token.clone())
        .or_else(|| app.selected_token().cloned());
    let Some(t) = token else {
        f.render_widget(Paragraph::new(" no token selected").block(block), area);
        return;
    };
    lines.push(Line::from(" Claims".bold()));
    lines.push(kv("jti", t.token.jti.clone()));
    lines.push(kv("sub", t.token.sub.clone()));
    lines.push(kv("fid", t.token.fid.clone().unwrap_or_else(|| "-".into())));
    lines.push(kv("kind", t.token.kind.as_str()));
    lines.push(kv(
        "iat",
        format!(
            "{} ({})",
            timefmt::long(t.token.iat),
            timefmt::relative(t.token.iat, app.now)
        ),
    ));
    lines.push(kv(
        "exp",
        format!(
            "{} ({})",
            timefmt::long(t.token.exp),
            timefmt::relative(t.token.exp, app.now)
        ),
    ));
    if let Some(l) = &t.token.label {
        lines.push(kv("label", l.clone()));
    }
    lines.push(kv(
        "last seen",
        t.last_seen
            .map(|s| format!("{} ({})", timefmt::long(s), timefmt::relative(s, app.now)))
            .unwrap_or_else(|| "never".into()),
    ));
    if let Some(s) = t.spent_at {
        lines.push(kv("spent", timefmt::long(s)));
    }
    lines.push(Line::from(vec![
        Span::styled(format!(" {:<10}", "status"), Style::new().fg(Color::Yellow)),
        Span::styled(t.status.as_str().to_uppercase(), status_style(t.status)),
    ]));
    lines.push(Line::default());
    lines.push(Line::from(" Revocation".bold()));
    match &t.revocation {
        Some(r) => {
            lines.push(kv("scope", r.scope.as_str()));
            lines.push(kv("at", timefmt::long(r.revoked_at)));
            lines.push(kv("by", r.actor.clone().unwrap_or_else(|| "-".into())));
            lines.push(kv("reason", r.reason.clone().unwrap_or_else(|| "-".into())));
        }
        None => lines.push(Line::from(" none").fg(Color::DarkGray)),
    }
    lines.push(Line::default());
    match app.details.as_ref().filter(|d| d.jti == t.token.jti) {
        Some(d) => {
            let others: Vec<_> = d
                .family
                .iter()
                .filter(|o| o.token.jti != t.token.jti)
                .collect();
            lines.push(Line::from(
                format!(" Family ({} other tokens)", others.len()).bold(),
            ));
            for o in others {
                lines.push(Line::from(vec![
                    Span::styled(format!(" {:<8}", o.status.as_str()), status_style(o.status)),
                    Span::raw(format!("{:<8} {}", o.token.kind.as_str(), o.token.jti)),
                ]));
            }
        }
        None if t.token.fid.is_some() => lines.push(Line::from(" Family: loading…".bold())),
        None => lines.push(Line::from(" Family: none".bold())),
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_events(app: &App, f: &mut Frame, area: Rect, hits: &mut Hitmap) {
    let block = Block::bordered().title(" Event log (audit trail) · newest first ".bold());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [_, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let h = usize::from(body.height);
    let first = app.event_scroll.min(app.events.len().saturating_sub(1));
    hits.body = body;
    hits.first_row = first;
    let rows: Vec<Row> = app
        .events
        .iter()
        .enumerate()
        .skip(first)
        .take(h)
        .map(|(i, e)| {
            let kind_style = match e.kind {
                rocket_revoke_core::EventKind::Revoke => Style::new().fg(Color::Red),
                rocket_revoke_core::EventKind::Restore => Style::new().fg(Color::Green),
                rocket_revoke_core::EventKind::ReuseDetected => {
                    Style::new().fg(Color::Magenta).bold()
                }
            };
            let key = if e.key.is_empty() {
                "*"
            } else {
                e.key.as_str()
            };
            let row = Row::new(vec![
                Cell::from(e.id.to_string()),
                Cell::from(timefmt::long(e.at_ms.div_euclid(1000))),
                Cell::from(e.kind.as_str()).style(kind_style),
                Cell::from(e.scope.as_str()),
                Cell::from(key.to_owned()),
                Cell::from(e.cutoff.map(timefmt::short).unwrap_or_default()),
                Cell::from(e.actor.clone().unwrap_or_default()),
                Cell::from(e.reason.clone().unwrap_or_default()),
            ]);
            if i == app.event_selected {
                row.style(Style::new().bg(Color::Blue).fg(Color::White))
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(7),
        Constraint::Length(19),
        Constraint::Length(14),
        Constraint::Length(7),
        Constraint::Length(36),
        Constraint::Length(16),
        Constraint::Length(12),
        Constraint::Fill(1),
    ];
    let header = Row::new([
        "#",
        "When (UTC)",
        "What",
        "Scope",
        "Key",
        "Cut-off",
        "Who",
        "Why",
    ])
    .style(Style::new().bold().underlined());
    let table = Table::new(rows, widths)
        .header(header)
        .flex(Flex::Legacy)
        .column_spacing(1);
    f.render_widget(table, inner);
    if app.events.is_empty() {
        let r = Rect::new(body.x, body.y + 1, body.width, 1).intersection(body);
        f.render_widget(
            Paragraph::new("no events").centered().fg(Color::DarkGray),
            r,
        );
    }
}

fn render_message(app: &App, f: &mut Frame, area: Rect) {
    let (text, style) = match &app.message {
        Some(m) if m.error => (format!(" ✗ {}", m.text), Style::new().fg(Color::Red).bold()),
        Some(m) => (format!(" {}", m.text), Style::new().fg(Color::Green)),
        None => (String::new(), Style::new()),
    };
    f.render_widget(Paragraph::new(text).style(style), area);
    if let Some(t) = app.query_time {
        let q = format!("page in {} ms ", t.as_millis());
        f.render_widget(Paragraph::new(q).right_aligned().fg(Color::DarkGray), area);
    }
}

fn render_status(app: &App, f: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    match app.stats {
        Some(s) => {
            spans.push(Span::styled(
                format!(" ● {} active ", group(s.active)),
                Style::new().fg(Color::Green),
            ));
            spans.push(Span::styled(
                format!("● {} revoked ", group(s.revoked)),
                Style::new().fg(Color::Red),
            ));
            spans.push(Span::styled(
                format!("● {} expired ", group(s.expired)),
                Style::new().fg(Color::DarkGray),
            ));
        }
        None => spans.push(Span::raw(" counting… ")),
    }
    spans.push(Span::raw("│ "));
    spans.push(Span::raw(format!("{} ", app.backend)));
    spans.push(Span::raw("│ "));
    let s = &app.sync;
    let mut sync = format!("sync #{}", s.cursor);
    if let Some(lag) = s.lag_ms {
        sync.push_str(&format!(" lag {lag} ms"));
    }
    if s.listening {
        sync.push_str(" (notify)");
    }
    match &s.last_error {
        Some(e) => {
            spans.push(Span::styled(
                format!("{sync} ERROR: {e}"),
                Style::new().fg(Color::Red).bold(),
            ));
        }
        None if app.synced => spans.push(Span::styled(
            format!("{sync} ✓"),
            Style::new().fg(Color::Green),
        )),
        None => spans.push(Span::raw("sync starting…")),
    }
    f.render_widget(
        Paragraph::new(Line::from(spans)).style(Style::new().bg(Color::Black)),
        area,
    );
}

fn render_hints(f: &mut Frame, area: Rect, hits: &mut Hitmap) {
    f.render_widget(Paragraph::new("").style(BAR), area);
    let mut x = area.x;
    for (key, label, cmd) in HINTS {
        let w = (key.len() + label.len() + 3) as u16;
        let r = Rect::new(x, area.y, w, 1).intersection(area);
        let line = Line::from(vec![
            Span::styled(
                format!(" {key}"),
                Style::new().fg(Color::White).bg(Color::Black).bold(),
            ),
            Span::styled(format!(" {label}"), BAR),
        ]);
        f.render_widget(Paragraph::new(line), r);
        hits.hints.push((r, cmd));
        x += w + 1;
    }
}
