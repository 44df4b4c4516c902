//! Command-line arguments and the scripting subcommands.

use crate::timefmt;
use clap::{ArgGroup, Args, Parser, Subcommand};
use rocket_revoke_core::store::{EventQuery, ListQuery, TokenInfo, TokenStatus};
use rocket_revoke_core::{Engine, Event, RevokeRequest, Scope, TokenRef};
use serde::Serialize;
use std::path::PathBuf;

/// Admin TUI and scripting CLI for rocket-revoke. With no subcommand it opens the TUI.
#[derive(Debug, Parser)]
#[command(name = "revokectl", version, about, long_about = None)]
pub struct Cli {
    /// Database URL (sqlite://PATH or postgres://...). Default: $REVOKE_DATABASE_URL, else
    /// [default.databases.revoke].url in Rocket.toml. Prefer the variables to the flag: argv
    /// is visible to every local user.
    #[arg(
        long,
        global = true,
        env = "REVOKECTL_DATABASE_URL",
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Rocket.toml to read the database URL from (and, when no app has recorded lifetime
    /// bounds in the database, the [revoke] bounds). Default: ./Rocket.toml (or
    /// $ROCKET_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do; none opens the TUI.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The scripting subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lists tokens, newest first.
    List(ListArgs),
    /// Lists tokens whose subject, jti or label starts with TEXT.
    Search {
        /// The prefix to look for.
        text: String,
        /// Filters.
        #[command(flatten)]
        args: ListArgs,
    },
    /// Shows one token, its revocation and its history: the events of its jti, family,
    /// subject and the global cut-off, newest first.
    Show {
        /// The token's jti.
        jti: String,
    },
    /// Reads the audit trail, newest first.
    Events(EventsArgs),
    /// Revokes a token, a subject, a family, or everything issued before a time.
    Revoke(RevokeArgs),
    /// Lifts a revocation.
    Restore(RestoreArgs),
    /// Prints counts by status and table sizes.
    Stats,
    /// Removes expired revocations, and registry rows and events older than the retention
    /// the apps recorded in the database.
    Prune,
    /// Creates or upgrades the schema (creates a missing SQLite file).
    Migrate,
}

/// Filters for `list` and `search`.
#[derive(Debug, Args, Default)]
pub struct ListArgs {
    /// Only tokens in this state: active, revoked or expired.
    #[arg(long)]
    pub status: Option<TokenStatus>,
    /// Tokens whose subject, jti or label starts with this.
    #[arg(long)]
    pub search: Option<String>,
    /// Only tokens of exactly this subject.
    #[arg(long)]
    pub subject: Option<String>,
    /// Only tokens of this session family.
    #[arg(long)]
    pub family: Option<String>,
    /// At most this many tokens.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// Filters for `events`.
#[derive(Debug, Args, Default)]
pub struct EventsArgs {
    /// Only events of exactly this key (jti, subject or family id; "" for global).
    #[arg(long)]
    pub key: Option<String>,
    /// Only events of this scope: jti, subject, family or global.
    #[arg(long)]
    pub scope: Option<Scope>,
    /// Only events of revocations scoped to exactly this issuer ("" for the unscoped ones).
    #[arg(long, value_name = "ISS")]
    pub issuer: Option<String>,
    /// Only events by exactly this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events written at or after TIME (RFC 3339, unix seconds or milliseconds).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// What to revoke, and why.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["jti", "subject", "family", "before"])))]
pub struct RevokeArgs {
    /// The jti of one token (it need not be in the registry).
    pub jti: Option<String>,
    /// Every token of this subject issued up to now.
    #[arg(long)]
    pub subject: Option<String>,
    /// Every token of this session family.
    #[arg(long)]
    pub family: Option<String>,
    /// Global cut-off: every token issued at or before TIME (RFC 3339, unix seconds or
    /// milliseconds, or `now`); not in the future.
    #[arg(long, value_name = "TIME")]
    pub before: Option<String>,
    /// Only tokens of this issuer (their `iss` claim): for an app that accepts several
    /// identity providers, where subject "42" at one is not subject "42" at another. Without
    /// it, the revocation applies to tokens of every issuer.
    #[arg(long, value_name = "ISS")]
    pub issuer: Option<String>,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: Option<String>,
    /// Who (default: $USER, or "revokectl").
    #[arg(long)]
    pub actor: Option<String>,
}

/// What to restore, and why.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["jti", "subject", "family", "global"])))]
pub struct RestoreArgs {
    /// The jti whose revocation to lift.
    pub jti: Option<String>,
    /// Lift a subject revocation.
    #[arg(long)]
    pub subject: Option<String>,
    /// Lift a family revocation.
    #[arg(long)]
    pub family: Option<String>,
    /// Lift the global cut-off.
    #[arg(long)]
    pub global: bool,
    /// Lift the revocation scoped to this issuer (made with `revoke --issuer`); without it,
    /// the unscoped one.
    #[arg(long, value_name = "ISS")]
    pub issuer: Option<String>,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: Option<String>,
    /// Who (default: $USER, or "revokectl").
    #[arg(long)]
    pub actor: Option<String>,
}

/// The operator's name for the audit trail.
pub fn default_actor() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "revokectl".into())
}

/// A token as `list --json` and `show --json` print it.
#[derive(Debug, Serialize)]
pub struct TokenJson {
    jti: String,
    sub: String,
    fid: Option<String>,
    kind: String,
    status: TokenStatus,
    label: Option<String>,
    issued_at: String,
    expires_at: String,
    last_seen: Option<String>,
    spent_at: Option<String>,
    iat: i64,
    exp: i64,
    revoked_by: Option<Scope>,
    revoked_at: Option<String>,
    reason: Option<String>,
    actor: Option<String>,
}

impl From<&TokenInfo> for TokenJson {
    fn from(t: &TokenInfo) -> Self {
        let r = t.revocation.as_ref();
        Self {
            jti: t.token.jti.clone(),
            sub: t.token.sub.clone(),
            fid: t.token.fid.clone(),
            kind: t.token.kind.as_str().to_owned(),
            status: t.status,
            label: t.token.label.clone(),
            issued_at: timefmt::rfc3339(t.token.iat),
            expires_at: timefmt::rfc3339(t.token.exp),
            last_seen: t.last_seen.map(timefmt::rfc3339),
            spent_at: t.spent_at.map(timefmt::rfc3339),
            iat: t.token.iat,
            exp: t.token.exp,
            revoked_by: r.map(|r| r.scope),
            revoked_at: r.map(|r| timefmt::rfc3339(r.revoked_at)),
            reason: r.and_then(|r| r.reason.clone()),
            actor: r.and_then(|r| r.actor.clone()),
        }
    }
}

/// An event as the CLI prints it.
#[derive(Debug, Serialize)]
pub struct EventJson {
    id: i64,
    at: String,
    kind: String,
    scope: Scope,
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    cutoff: Option<String>,
    expires_at: Option<String>,
    reason: Option<String>,
    actor: Option<String>,
}

impl From<&Event> for EventJson {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id,
            at: timefmt::rfc3339(e.at_ms.div_euclid(1000)),
            kind: e.kind.as_str().to_owned(),
            scope: e.scope,
            key: e.key.clone(),
            issuer: e.issuer.clone(),
            cutoff: e.cutoff.map(timefmt::rfc3339),
            expires_at: e.expires_at.map(timefmt::rfc3339),
            reason: e.reason.clone(),
            actor: e.actor.clone(),
        }
    }
}

/// A failed operation: exit code 1 unless `usage` (exit code 2).
#[derive(Debug)]
pub struct Failure {
    /// The one-line message.
    pub message: String,
    /// Bad input rather than a failed operation.
    pub usage: bool,
}

impl Failure {
    fn op(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            usage: false,
        }
    }
    fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            usage: true,
        }
    }
}

impl From<rocket_revoke_core::Error> for Failure {
    /// The engine refusing a request (blank key, cut-off in the future) is bad input: exit
    /// code 2. Anything else is a failed operation.
    fn from(e: rocket_revoke_core::Error) -> Self {
        match e {
            rocket_revoke_core::Error::Invalid(m) => Failure::usage(format!("refused: {m}")),
            // Every other variant is the server's or the database's fault (see
            // `Error::is_caller_fault`): a failed operation, not a usage error.
            e => Failure::op(e.to_string()),
        }
    }
}

fn print_json<T: Serialize>(v: &T) -> Result<(), Failure> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Failure::op(e.to_string()))?;
    // JSON escapes control characters itself.
    println!("{s}");
    Ok(())
}

fn list_query(args: &ListArgs, search: Option<&str>) -> ListQuery {
    ListQuery {
        status: args.status,
        subject: args.subject.clone(),
        family: args.family.clone(),
        text: search.map(str::to_owned).or_else(|| args.search.clone()),
        limit: args.limit.max(1),
        ..ListQuery::default()
    }
}

fn print_tokens(rows: &[TokenInfo], now: i64) {
    revokectl::say!(
        "{:<8} {:<24} {:<36} {:<8} {:<17} {:<10}",
        "STATUS",
        "SUBJECT",
        "JTI",
        "KIND",
        "ISSUED (UTC)",
        "EXPIRES"
    );
    for t in rows {
        revokectl::say!(
            "{:<8} {:<24} {:<36} {:<8} {:<17} {:<10}",
            t.status.as_str(),
            t.token.sub,
            t.token.jti,
            t.token.kind.as_str(),
            timefmt::short(t.token.iat),
            timefmt::relative(t.token.exp, now)
        );
    }
}

/// Runs a subcommand other than `migrate` against a loaded engine.
pub async fn run(engine: &Engine, cmd: Command, json: bool) -> Result<(), Failure> {
    let now = rocket_revoke_core::now_secs();
    let store = engine.store();
    match cmd {
        Command::List(args) => {
            let rows = store.list(&list_query(&args, None), now).await?;
            if json {
                print_json(&rows.iter().map(TokenJson::from).collect::<Vec<_>>())
            } else {
                print_tokens(&rows, now);
                Ok(())
            }
        }
        Command::Search { text, args } => {
            let rows = store.list(&list_query(&args, Some(&text)), now).await?;
            if json {
                print_json(&rows.iter().map(TokenJson::from).collect::<Vec<_>>())
            } else {
                print_tokens(&rows, now);
                Ok(())
            }
        }
        Command::Show { jti } => show(engine, &jti, now, json).await,
        Command::Events(args) => events(engine, args, json).await,
        Command::Revoke(args) => revoke(engine, args, json).await,
        Command::Restore(args) => restore(engine, args, json).await,
        Command::Stats => {
            let stats = store.stats(now).await?;
            if json {
                print_json(&stats)
            } else {
                revokectl::say!("tokens       {}", stats.tokens);
                revokectl::say!("active       {}", stats.active);
                revokectl::say!("revoked      {}", stats.revoked);
                revokectl::say!("expired      {}", stats.expired);
                revokectl::say!("revocations  {}", stats.revocations);
                revokectl::say!("events       {}", stats.events);
                revokectl::say!("last event   {}", stats.last_event_id);
                Ok(())
            }
        }
        Command::Prune => {
            let recorded = bounds_or_warn(engine).await?;
            let retention = engine.bounds().retention_secs;
            let report = engine.prune().await?;
            if json {
                print_json(&serde_json::json!({
                    "revocations": report.revocations,
                    "tokens": report.tokens,
                    "events": report.events,
                    "retention_secs": retention,
                    "bounds_recorded": recorded,
                }))
            } else {
                revokectl::say!(
                    "pruned {} revocations, {} tokens, {} events (retention {}, {})",
                    report.revocations,
                    report.tokens,
                    report.events,
                    timefmt::duration(retention),
                    if recorded {
                        "recorded in the database"
                    } else {
                        "fallback: none recorded"
                    }
                );
                Ok(())
            }
        }
        Command::Migrate => Ok(()),
    }
}

/// Events of each key that covers a token, at most this many per key.
const HISTORY_PER_KEY: u32 = 100;

/// The history of a token: the events of its jti and, when it is in the registry, of its
/// family, its subject and the global cut-off; newest first.
async fn history(
    engine: &Engine,
    jti: &str,
    token: Option<&TokenInfo>,
) -> Result<Vec<Event>, Failure> {
    let mut keys = vec![(Scope::Jti, Some(jti.to_owned()))];
    if let Some(t) = token {
        if let Some(fid) = &t.token.fid {
            keys.push((Scope::Family, Some(fid.clone())));
        }
        keys.push((Scope::Subject, Some(t.token.sub.clone())));
        keys.push((Scope::Global, None));
    }
    let mut out: Vec<Event> = Vec::new();
    for (scope, key) in keys {
        let q = EventQuery {
            scope: Some(scope),
            key,
            limit: HISTORY_PER_KEY,
            ..EventQuery::default()
        };
        out.extend(engine.store().events(&q).await?);
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.id));
    out.dedup_by_key(|e| e.id);
    Ok(out)
}

/// One event as a line of text: id, time, kind, scope, key, actor, reason.
fn event_line(e: &Event) -> String {
    let dash = |s: Option<&str>| match s {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => "-".to_owned(),
    };
    format!(
        "{:<6} {:<20} {:<14} {:<7} {:<36} {:<16} {}",
        e.id,
        timefmt::rfc3339(e.at_ms.div_euclid(1000)),
        e.kind.as_str(),
        e.scope.as_str(),
        dash(Some(&scoped_key(e))),
        dash(e.actor.as_deref()),
        dash(e.reason.as_deref())
    )
}

/// The key as the text output shows it: with its issuer scope, when it has one.
fn scoped_key(e: &Event) -> String {
    match &e.issuer {
        Some(iss) => format!("{} (iss {iss})", e.key),
        None => e.key.clone(),
    }
}

fn event_header() -> String {
    format!(
        "{:<6} {:<20} {:<14} {:<7} {:<36} {:<16} {}",
        "ID", "TIME (UTC)", "KIND", "SCOPE", "KEY", "ACTOR", "REASON"
    )
}

fn print_history(events: &[Event]) {
    if events.is_empty() {
        revokectl::say!("history     none");
        return;
    }
    revokectl::say!("history     newest first");
    revokectl::say!("  {}", event_header());
    for e in events {
        revokectl::say!("  {}", event_line(e));
    }
}

fn events_json(events: &[Event]) -> Vec<EventJson> {
    events.iter().map(EventJson::from).collect()
}

async fn show(engine: &Engine, jti: &str, now: i64, json: bool) -> Result<(), Failure> {
    match engine.store().token(jti, now).await? {
        Some(t) => {
            let history = history(engine, jti, Some(&t)).await?;
            let j = TokenJson::from(&t);
            let mut v = serde_json::to_value(&j).map_err(|e| Failure::op(e.to_string()))?;
            if json {
                if let Some(map) = v.as_object_mut() {
                    let h = serde_json::to_value(events_json(&history))
                        .map_err(|e| Failure::op(e.to_string()))?;
                    map.insert("history".into(), h);
                }
                return print_json(&v);
            }
            if let Some(map) = v.as_object() {
                for (k, v) in map {
                    if !v.is_null() {
                        let s = v
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string());
                        revokectl::say!("{k:<11} {s}");
                    }
                }
            }
            print_history(&history);
            Ok(())
        }
        None => {
            let probe = TokenRef {
                jti: Some(jti),
                ..TokenRef::default()
            };
            let revoked = engine.check(&probe) == Some(Scope::Jti);
            let history = history(engine, jti, None).await?;
            if !revoked && history.is_empty() {
                return Err(Failure::op(format!(
                    "no token with jti {jti} in the registry, and no event of it"
                )));
            }
            if json {
                print_json(&serde_json::json!({
                    "jti": jti,
                    "status": if revoked { "revoked" } else { "not_revoked" },
                    "registered": false,
                    "history": events_json(&history),
                }))
            } else {
                if revoked {
                    revokectl::say!("{jti}: not in the registry, revoked by jti");
                } else {
                    revokectl::say!("{jti}: not in the registry, not revoked by jti");
                }
                print_history(&history);
                Ok(())
            }
        }
    }
}

/// Reads a time argument; says on stderr when it was taken as milliseconds.
fn time_arg(flag: &str, s: &str) -> Result<i64, Failure> {
    let t = timefmt::parse_time_detailed(s).map_err(|e| Failure::usage(format!("{flag}: {e}")))?;
    if let Some(note) = t.note(s) {
        eprintln!("revokectl: {note}");
    }
    Ok(t.secs)
}

async fn events(engine: &Engine, a: EventsArgs, json: bool) -> Result<(), Failure> {
    let since_ms = match &a.since {
        Some(s) => Some(time_arg("--since", s)?.saturating_mul(1000)),
        None => None,
    };
    let q = EventQuery {
        scope: a.scope,
        key: a.key,
        issuer: a.issuer,
        actor: a.actor,
        since_ms,
        before_id: None,
        limit: a.limit.max(1),
    };
    let rows = engine.store().events(&q).await?;
    if json {
        return print_json(&events_json(&rows));
    }
    if rows.is_empty() {
        revokectl::say!("no events match");
        return Ok(());
    }
    revokectl::say!("{}", event_header());
    for e in &rows {
        revokectl::say!("{}", event_line(e));
    }
    Ok(())
}

/// Whether an app recorded lifetime bounds in the database; when none did, warns on stderr
/// that revokectl sizes and prunes by its fallback bounds.
async fn bounds_or_warn(engine: &Engine) -> Result<bool, Failure> {
    let recorded = revokectl::bounds_recorded(engine).await?;
    if !recorded {
        let b = engine.bounds();
        eprintln!(
            "revokectl: warning: no app has recorded its lifetime bounds in this database; using max_token_ttl_secs = {}, leeway = {}, clock_skew_secs = {}, retention_secs = {} ([revoke] of Rocket.toml, else the defaults)",
            b.max_token_ttl_secs, b.leeway_secs, b.clock_skew_secs, b.retention_secs
        );
    }
    Ok(recorded)
}

fn print_event(e: &Event, json: bool, verb: &str) -> Result<(), Failure> {
    if json {
        return print_json(&EventJson::from(e));
    }
    let mut what = if e.scope == Scope::Global {
        format!(
            "every token issued at or before {}",
            e.cutoff.map(timefmt::rfc3339).unwrap_or_default()
        )
    } else {
        format!("{} {}", e.scope, e.key)
    };
    if let Some(iss) = &e.issuer {
        what.push_str(&format!(" of issuer {iss}"));
    }
    match e.expires_at {
        Some(until) if e.kind == rocket_revoke_core::EventKind::Revoke => revokectl::say!(
            "{verb} {what} (event #{}), in force until {}",
            e.id,
            timefmt::rfc3339(until)
        ),
        _ => revokectl::say!("{verb} {what} (event #{})", e.id),
    }
    Ok(())
}

async fn revoke(engine: &Engine, a: RevokeArgs, json: bool) -> Result<(), Failure> {
    let req = if let Some(jti) = a.jti {
        RevokeRequest::jti(jti)
    } else if let Some(sub) = a.subject {
        RevokeRequest::subject(sub)
    } else if let Some(fid) = a.family {
        RevokeRequest::family(fid)
    } else if let Some(t) = a.before {
        let cutoff = time_arg("--before", &t)?;
        let now = engine.now_secs();
        if cutoff > now {
            return Err(Failure::usage(format!(
                "--before {}: the cut-off {} is {} in the future; a cut-off revokes tokens already issued, so it must not be later than now",
                t.trim(),
                timefmt::rfc3339(cutoff),
                timefmt::duration(cutoff - now)
            )));
        }
        RevokeRequest::global_before(cutoff)
    } else {
        return Err(Failure::usage("nothing to revoke"));
    };
    let mut req = req.actor(a.actor.unwrap_or_else(default_actor));
    if let Some(r) = a.reason {
        req = req.reason(r);
    }
    if let Some(iss) = a.issuer {
        req = req.issuer(iss);
    }
    if req.scope != Scope::Global && req.key.trim().is_empty() {
        return Err(Failure::usage(format!(
            "a {} revocation needs a key",
            req.scope
        )));
    }
    bounds_or_warn(engine).await?;
    match engine.revoke(req.clone()).await? {
        Some(event) => print_event(&event, json, "revoked"),
        None if json => print_json(&serde_json::json!({
            "scope": req.scope, "key": req.key, "issuer": req.issuer, "changed": false,
        })),
        None => {
            revokectl::say!(
                "{} {} was already revoked by an equal or stronger revocation; nothing changed",
                req.scope,
                req.key
            );
            Ok(())
        }
    }
}

async fn restore(engine: &Engine, a: RestoreArgs, json: bool) -> Result<(), Failure> {
    let (scope, key) = if let Some(jti) = a.jti {
        (Scope::Jti, jti)
    } else if let Some(sub) = a.subject {
        (Scope::Subject, sub)
    } else if let Some(fid) = a.family {
        (Scope::Family, fid)
    } else if a.global {
        (Scope::Global, String::new())
    } else {
        return Err(Failure::usage("nothing to restore"));
    };
    let actor = a.actor.unwrap_or_else(default_actor);
    let issuer = a.issuer.as_deref().filter(|i| !i.is_empty());
    match engine
        .restore_scoped(scope, issuer, &key, a.reason.as_deref(), Some(&actor))
        .await?
    {
        Some(e) => print_event(&e, json, "restored"),
        None if scope == Scope::Global => Err(Failure::op("there is no global cut-off to lift")),
        None => Err(Failure::op(match issuer {
            Some(iss) => format!("there is no {scope} revocation of {key} scoped to issuer {iss}"),
            None => format!("there is no {scope} revocation of {key}"),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_by_the_engine_are_usage_errors() {
        let f = Failure::from(rocket_revoke_core::Error::Invalid(
            "the cut-off is in the future".into(),
        ));
        assert!(f.usage);
        assert!(
            f.message.contains("cut-off is in the future"),
            "{}",
            f.message
        );
        let f = Failure::from(rocket_revoke_core::Error::Corrupt("bad row".into()));
        assert!(!f.usage);
    }
}
