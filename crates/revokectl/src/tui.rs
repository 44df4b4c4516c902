//! The terminal side: raw mode, the alternate screen and mouse capture (restored on every
//! exit path, panics included), the input thread, and the event loop.

use crate::action::Action;
use crate::app::App;
use crate::ui;
use crate::worker::{self, Msg};
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;
use rocket_revoke_core::{now_secs, Engine};
use std::io::{self, IsTerminal, Stdout};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

type Term = Terminal<CrosstermBackend<Stdout>>;

/// Puts the terminal back as it was. Safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

fn init() -> io::Result<Term> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        hook(info);
    }));
    enable_raw_mode()?;
    if let Err(e) = execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture) {
        restore();
        return Err(e);
    }
    match Terminal::new(CrosstermBackend::new(io::stdout())) {
        Ok(t) => Ok(t),
        Err(e) => {
            restore();
            Err(e)
        }
    }
}

/// True when stdin and stdout are a terminal.
pub fn is_terminal() -> bool {
    io::stdout().is_terminal() && io::stdin().is_terminal()
}

/// Runs the TUI until the user quits.
pub fn run(
    rt: &tokio::runtime::Runtime,
    engine: Engine,
    backend: String,
    actor: String,
) -> io::Result<()> {
    let (tx, rx) = mpsc::channel::<Msg>();
    {
        let _guard = rt.enter();
        engine.start_sync();
    }
    let requests = worker::spawn(rt.handle(), engine, tx.clone());
    let mut terminal = init()?;
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if tx.send(Msg::Input(ev)).is_err() {
                break;
            }
        }
    });
    let mut app = App::new(backend, actor, now_secs());
    let result = event_loop(&mut terminal, &mut app, &rx, &requests);
    restore();
    result
}

fn event_loop(
    terminal: &mut Term,
    app: &mut App,
    rx: &mpsc::Receiver<Msg>,
    requests: &tokio::sync::mpsc::UnboundedSender<Request>,
) -> io::Result<()> {
    // First frame before the first query, so the table knows its height.
    draw(terminal, app)?;
    app.start();
    let mut last_tick = Instant::now();
    loop {
        for req in app.take_requests() {
            if requests.send(req).is_err() {
                return Err(io::Error::other("the database worker stopped"));
            }
        }
        if app.quit {
            return Ok(());
        }
        draw(terminal, app)?;
        let handle = |app: &mut App, msg: Msg| match msg {
            Msg::Input(ev) => app.on_event(&ev),
            Msg::Action(a) => app.update(*a),
        };
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(msg) => {
                handle(app, msg);
                // Drain what else is queued before drawing again.
                while let Ok(msg) = rx.try_recv() {
                    handle(app, msg);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        if last_tick.elapsed() >= Duration::from_millis(50) {
            last_tick = Instant::now();
            app.update(Action::Tick {
                at: Instant::now(),
                now: now_secs(),
            });
        }
    }
}

use crate::action::Request;

fn draw(terminal: &mut Term, app: &mut App) -> io::Result<()> {
    let mut hits = None;
    terminal.draw(|f| hits = Some(ui::render(app, f)))?;
    if let Some(h) = hits {
        let resized = h.body != app.hits.body;
        app.hits = h;
        if resized {
            app.update(Action::Resize);
        }
    }
    Ok(())
}
