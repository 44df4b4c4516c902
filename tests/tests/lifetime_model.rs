//! The whole life of revocations, model-based: random sequences of logins, refreshes,
//! revocations in every scope (through the app's routes and through revokectl's engine),
//! repeated revocations, restores, clock jumps past `exp`, the leeway, the maximum lifetime
//! and the retention, prunes of the set and of the database, restarts, and a second
//! instance syncing. After every step, every token ever issued gets the same answer from
//! every instance's guard path as from the model: accepted exactly when it is within its
//! lifetime (plus leeway) and covered by no revocation the model still holds. The model
//! never forgets a revocation; the system prunes them, so the test proves that pruning
//! only ever drops revocations whose tokens can no longer be accepted anyway.
//!
//! The clock is a `ManualClock` handed to the apps (`RevokeClock`), so no step sleeps.
//! Runs on SQLite and PostgreSQL with fixed case counts (`MODEL_CASES` overrides both).

mod common;

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::Db;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};
use rocket_revoke::{RevokeClock, Revoker};
use rocket_revoke_core::store::{PgStore, SqliteStore, Store};
use rocket_revoke_core::{Engine, ManualClock, NoExtra, RevokeRequest, Scope};

const SECRET: &str = "model-test-secret-0123456789abcdef0123";
const ACCESS_TTL: i64 = 120;
const REFRESH_TTL: i64 = 600;
const MAX_TTL: i64 = 600;
const LEEWAY: i64 = 30;
const SKEW: i64 = 60;
const RETENTION: i64 = 1800;
const USERS: [&str; 3] = ["alice", "bob", "carol"];
/// Instances of the app on one database.
const APPS: usize = 2;

fn figment(db: &Db) -> rocket::figment::Figment {
    db.figment().merge((
        "revoke",
        json!({
            "secret": SECRET,
            "access_ttl": ACCESS_TTL,
            "refresh_ttl": REFRESH_TTL,
            "max_token_ttl_secs": MAX_TTL,
            "leeway": LEEWAY,
            "clock_skew_secs": SKEW,
            "retention_secs": RETENTION,
            "poll_interval_ms": 50,
        }),
    ))
}

async fn start_app(db: &Db, clock: &ManualClock) -> Client {
    let rocket = rocket::custom(figment(db)).manage(RevokeClock(clock.shared()));
    Client::tracked(revoke_demo::app(rocket))
        .await
        .expect("the demo launches")
}

fn revoker(client: &Client) -> &Revoker {
    client
        .rocket()
        .state::<Revoker>()
        .expect("fairing attached")
}

/// revokectl's engine: it reads the bounds the apps recorded and never records its own.
async fn ctl_engine(db: &Db, clock: &ManualClock) -> Engine {
    let store: std::sync::Arc<dyn Store> = if db.is_postgres() {
        std::sync::Arc::new(
            PgStore::connect(&db.url())
                .await
                .expect("pg")
                .with_clock(clock.shared()),
        )
    } else {
        std::sync::Arc::new(
            SqliteStore::connect(&db.url())
                .await
                .expect("sqlite")
                .with_clock(clock.shared()),
        )
    };
    revokectl::open_engine(store, rocket_revoke_core::EngineConfig::default())
        .await
        .expect("revokectl's engine")
}

/// A token as the model knows it.
#[derive(Debug, Clone)]
struct Tok {
    raw: String,
    refresh: bool,
    jti: String,
    sub: String,
    fid: String,
    iat: i64,
    exp: i64,
    spent: bool,
}

impl Tok {
    fn parse(raw: &str) -> Tok {
        let payload = raw.split('.').nth(1).expect("three parts");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        let s = |k: &str| claims[k].as_str().expect(k).to_owned();
        Tok {
            raw: raw.to_owned(),
            refresh: claims["kind"] == "refresh",
            jti: s("jti"),
            sub: s("sub"),
            fid: s("fid"),
            iat: claims["iat"].as_i64().expect("iat"),
            exp: claims["exp"].as_i64().expect("exp"),
            spent: false,
        }
    }
}

/// What should hold: every revocation ever made and not restored, forever.
#[derive(Debug, Default)]
struct Model {
    tokens: Vec<Tok>,
    jtis: HashSet<String>,
    families: HashSet<String>,
    subjects: HashMap<String, i64>,
    global: Option<i64>,
}

impl Model {
    fn valid(t: &Tok, now: i64) -> bool {
        t.exp + LEEWAY > now
    }

    fn covered(&self, t: &Tok) -> bool {
        self.jtis.contains(&t.jti)
            || self.families.contains(&t.fid)
            || self.subjects.get(&t.sub).is_some_and(|c| t.iat <= *c)
            || self.global.is_some_and(|c| t.iat <= c)
    }

    fn accepted(&self, t: &Tok, now: i64) -> bool {
        Self::valid(t, now) && !self.covered(t)
    }

    fn cut(&mut self, sub: &str, at: i64) {
        let c = self.subjects.entry(sub.to_owned()).or_insert(at);
        *c = (*c).max(at);
    }

    /// Indexes of tokens of one kind.
    fn of_kind(&self, refresh: bool) -> Vec<usize> {
        (0..self.tokens.len())
            .filter(|&i| self.tokens[i].refresh == refresh)
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Login {
        user: usize,
        on: usize,
    },
    Refresh {
        pick: usize,
        on: usize,
    },
    /// `DELETE /auth/token[?family=true]` with an access token.
    Logout {
        pick: usize,
        family: bool,
        on: usize,
    },
    /// `DELETE /auth/sessions` with an access token: log out everywhere.
    LogoutEverywhere {
        pick: usize,
        on: usize,
    },
    /// RFC 7009 with any token (refresh tokens revoke their family too).
    OAuthRevoke {
        pick: usize,
        on: usize,
    },
    /// revokectl: revoke the picked token's jti, family or subject, or a global cut-off.
    Ctl {
        scope: Scope,
        pick: usize,
    },
    /// revokectl: restore the same.
    CtlRestore {
        scope: Scope,
        pick: usize,
    },
    Advance(i64),
    PruneSet {
        on: usize,
    },
    /// `on == APPS` is revokectl's `prune`.
    PruneDb {
        on: usize,
    },
    Restart {
        on: usize,
    },
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::Jti),
        Just(Scope::Family),
        Just(Scope::Subject),
        Just(Scope::Global)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let on = 0..APPS;
    let pick = any::<usize>();
    prop_oneof![
        4 => (0..USERS.len(), on.clone()).prop_map(|(user, on)| Op::Login { user, on }),
        3 => (pick, on.clone()).prop_map(|(pick, on)| Op::Refresh { pick, on }),
        2 => (pick, any::<bool>(), on.clone())
            .prop_map(|(pick, family, on)| Op::Logout { pick, family, on }),
        2 => (pick, on.clone()).prop_map(|(pick, on)| Op::LogoutEverywhere { pick, on }),
        1 => (pick, on.clone()).prop_map(|(pick, on)| Op::OAuthRevoke { pick, on }),
        3 => (scope(), pick).prop_map(|(scope, pick)| Op::Ctl { scope, pick }),
        1 => (scope(), pick).prop_map(|(scope, pick)| Op::CtlRestore { scope, pick }),
        4 => prop_oneof![
            Just(1_i64),
            Just(LEEWAY - 1),
            Just(LEEWAY + 1),
            Just(ACCESS_TTL),
            Just(LEEWAY + SKEW + 1),
            Just(MAX_TTL),
            Just(RETENTION + 1),
        ]
        .prop_map(Op::Advance),
        1 => on.clone().prop_map(|on| Op::PruneSet { on }),
        1 => (0..=APPS).prop_map(|on| Op::PruneDb { on }),
        1 => on.prop_map(|on| Op::Restart { on }),
    ]
}

fn bearer(raw: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {raw}"))
}

struct World {
    db: Db,
    clock: ManualClock,
    apps: Vec<Client>,
    ctl: Engine,
    model: Model,
}

impl World {
    async fn new(db: Db) -> World {
        let clock = ManualClock::starting_now();
        let mut apps = Vec::new();
        for _ in 0..APPS {
            apps.push(start_app(&db, &clock).await);
        }
        let ctl = ctl_engine(&db, &clock).await;
        World {
            db,
            clock,
            apps,
            ctl,
            model: Model::default(),
        }
    }

    fn now(&self) -> i64 {
        rocket_revoke_core::Clock::now_secs(&self.clock)
    }

    fn pick(&self, pick: usize, refresh: Option<bool>) -> Option<usize> {
        let pool: Vec<usize> = match refresh {
            Some(r) => self.model.of_kind(r),
            None => (0..self.model.tokens.len()).collect(),
        };
        (!pool.is_empty()).then(|| pool[pick % pool.len()])
    }

    fn add_pair(&mut self, body: &Value) -> (usize, usize) {
        let access = Tok::parse(body["access_token"].as_str().expect("access"));
        let refresh = Tok::parse(body["refresh_token"].as_str().expect("refresh"));
        self.model.tokens.push(access);
        self.model.tokens.push(refresh);
        (self.model.tokens.len() - 2, self.model.tokens.len() - 1)
    }

    async fn apply(&mut self, op: &Op) {
        let now = self.now();
        match *op {
            Op::Login { user, on } => {
                let res = self.apps[on]
                    .post("/auth/login")
                    .header(ContentType::JSON)
                    .body(json!({"username": USERS[user], "password": "password"}).to_string())
                    .dispatch()
                    .await;
                assert_eq!(res.status(), Status::Ok, "a login always works");
                let body: Value = res.into_json().await.expect("pair");
                let (a, r) = self.add_pair(&body);
                for i in [a, r] {
                    assert!(
                        !self.model.covered(&self.model.tokens[i]),
                        "a standing cut-off covers a token just minted: {:?}",
                        self.model.tokens[i]
                    );
                }
            }
            Op::Refresh { pick, on } => {
                let Some(i) = self.pick(pick, Some(true)) else {
                    return;
                };
                let t = self.model.tokens[i].clone();
                let res = self.apps[on]
                    .post("/auth/refresh")
                    .header(ContentType::JSON)
                    .body(json!({ "refresh_token": t.raw }).to_string())
                    .dispatch()
                    .await;
                let status = res.status();
                if !Model::valid(&t, now) || self.model.covered(&t) {
                    assert_eq!(status, Status::Unauthorized, "refresh of {t:?}");
                } else if t.spent {
                    assert_eq!(status, Status::Unauthorized, "reuse of {t:?}");
                    self.model.families.insert(t.fid.clone());
                } else {
                    assert_eq!(status, Status::Ok, "rotation of {t:?}");
                    self.model.tokens[i].spent = true;
                    let body: Value = res.into_json().await.expect("pair");
                    let (a, r) = self.add_pair(&body);
                    for j in [a, r] {
                        assert_eq!(self.model.tokens[j].fid, t.fid, "rotation keeps the family");
                        assert!(!self.model.covered(&self.model.tokens[j]));
                    }
                }
            }
            Op::Logout { pick, family, on } => {
                let Some(i) = self.pick(pick, Some(false)) else {
                    return;
                };
                let t = self.model.tokens[i].clone();
                let uri = if family {
                    "/auth/token?family=true"
                } else {
                    "/auth/token"
                };
                let res = self.apps[on]
                    .delete(uri)
                    .header(bearer(&t.raw))
                    .dispatch()
                    .await;
                if self.model.accepted(&t, now) {
                    assert_eq!(res.status(), Status::Ok);
                    self.model.jtis.insert(t.jti.clone());
                    if family {
                        self.model.families.insert(t.fid.clone());
                    }
                } else {
                    assert_eq!(res.status(), Status::Unauthorized);
                }
            }
            Op::LogoutEverywhere { pick, on } => {
                let Some(i) = self.pick(pick, Some(false)) else {
                    return;
                };
                let t = self.model.tokens[i].clone();
                let res = self.apps[on]
                    .delete("/auth/sessions")
                    .header(bearer(&t.raw))
                    .dispatch()
                    .await;
                if self.model.accepted(&t, now) {
                    assert_eq!(res.status(), Status::Ok);
                    self.model.cut(&t.sub, now);
                } else {
                    assert_eq!(res.status(), Status::Unauthorized);
                }
            }
            Op::OAuthRevoke { pick, on } => {
                let Some(i) = self.pick(pick, None) else {
                    return;
                };
                let t = self.model.tokens[i].clone();
                let res = self.apps[on]
                    .post("/oauth/revoke")
                    .header(ContentType::Form)
                    .body(format!("token={}", t.raw))
                    .dispatch()
                    .await;
                assert_eq!(res.status(), Status::Ok, "RFC 7009 answers 200");
                // An expired token is not revoked (nothing to do); a live one is, even if
                // already revoked (then nothing is written).
                if Model::valid(&t, now) {
                    self.model.jtis.insert(t.jti.clone());
                    if t.refresh {
                        self.model.families.insert(t.fid.clone());
                    }
                }
            }
            Op::Ctl { scope, pick } => {
                let Some(i) = self.pick(pick, None) else {
                    return;
                };
                let t = self.model.tokens[i].clone();
                let req = match scope {
                    Scope::Jti => RevokeRequest::jti(&t.jti),
                    Scope::Family => RevokeRequest::family(&t.fid),
                    Scope::Subject => RevokeRequest::subject(&t.sub),
                    Scope::Global => RevokeRequest::global_before(now),
                };
                self.ctl
                    .revoke(req.actor("operator").reason("model"))
                    .await
                    .expect("revokectl revoke");
                match scope {
                    Scope::Jti => {
                        self.model.jtis.insert(t.jti);
                    }
                    Scope::Family => {
                        self.model.families.insert(t.fid);
                    }
                    Scope::Subject => self.model.cut(&t.sub, now),
                    Scope::Global => {
                        self.model.global = Some(self.model.global.map_or(now, |g| g.max(now)))
                    }
                }
            }
            Op::CtlRestore { scope, pick } => {
                let Some(i) = self.pick(pick, None) else {
                    return;
                };
                let t = self.model.tokens[i].clone();
                let key = match scope {
                    Scope::Jti => t.jti.clone(),
                    Scope::Family => t.fid.clone(),
                    Scope::Subject => t.sub.clone(),
                    Scope::Global => String::new(),
                };
                self.ctl
                    .restore(scope, &key, Some("model"), Some("operator"))
                    .await
                    .expect("revokectl restore");
                match scope {
                    Scope::Jti => {
                        self.model.jtis.remove(&key);
                    }
                    Scope::Family => {
                        self.model.families.remove(&key);
                    }
                    Scope::Subject => {
                        self.model.subjects.remove(&key);
                    }
                    Scope::Global => self.model.global = None,
                }
            }
            Op::Advance(secs) => self.clock.advance_secs(secs),
            Op::PruneSet { on } => {
                revoker(&self.apps[on]).engine().prune_memory_only(now);
            }
            Op::PruneDb { on } => {
                let engine = match self.apps.get(on) {
                    Some(app) => revoker(app).engine().clone(),
                    None => self.ctl.clone(),
                };
                engine.prune().await.expect("prune");
            }
            Op::Restart { on } => {
                let fresh = start_app(&self.db, &self.clock).await;
                let old = std::mem::replace(&mut self.apps[on], fresh);
                // Shutdown fairings: sync and last-seen stop, the pool closes.
                old.terminate().await;
            }
        }
    }

    /// Every instance answers every token as the model does.
    async fn check(&self, after: &Op) {
        for app in &self.apps {
            revoker(app).engine().sync_now().await.expect("sync");
        }
        let now = self.now();
        for (n, app) in self.apps.iter().enumerate() {
            for t in &self.model.tokens {
                let want = self.model.accepted(t, now);
                let got = if t.refresh {
                    // The guard refuses refresh tokens by kind; its check is `authenticate`.
                    revoker(app).authenticate::<NoExtra>(&t.raw).is_ok()
                } else {
                    let res = app.get("/me").header(bearer(&t.raw)).dispatch().await;
                    assert!(
                        matches!(res.status(), Status::Ok | Status::Unauthorized),
                        "{}",
                        res.status()
                    );
                    res.status() == Status::Ok
                };
                assert_eq!(
                    got, want,
                    "instance {n} after {after:?} at +{}s: {t:?}\nmodel: {:?}",
                    now, self.model.subjects
                );
            }
        }
    }

    async fn close(self) {
        for app in self.apps {
            app.terminate().await;
        }
        self.ctl.store().close().await;
        self.db.cleanup().await;
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(postgres: bool, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut runner = TestRunner::new(Config {
        cases,
        // Shrinking replays whole lives against fresh databases; keep it bounded.
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        rt.block_on(async {
            let db = if postgres {
                match Db::postgres().await {
                    Some(db) => db,
                    None => return,
                }
            } else {
                Db::sqlite().await
            };
            let mut world = World::new(db).await;
            for op in &ops {
                world.apply(op).await;
                world.check(op).await;
            }
            world.close().await;
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn sqlite_every_token_answers_as_the_model_over_whole_lives() {
    run(false, cases(64));
}

#[test]
fn postgres_every_token_answers_as_the_model_over_whole_lives() {
    run(true, cases(48));
}
