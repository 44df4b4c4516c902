//! Store, sync and issuer behaviour; every test body runs on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestDb;
use rocket_revoke_core::store::{ListQuery, TokenRecord, TokenStatus};
use rocket_revoke_core::{
    now_secs, Engine, EngineConfig, EventKind, Issuer, IssuerConfig, IssuerError, RefreshError,
    RevokeRequest, Scope, TokenKind, TokenRef, Verifier,
};
use std::collections::HashSet;
use std::time::Duration;

both_backends!(
    registry_lists_filters_and_pages,
    dense_and_sparse_searches_both_return_newest_first,
    revocations_of_every_scope_are_stored_applied_and_restorable,
    failed_write_is_an_error_and_changes_nothing,
    observe_registers_unknown_tokens_and_moves_last_seen,
    refresh_rotates_once_and_reuse_revokes_the_family,
    concurrent_refreshes_of_one_token_let_exactly_one_through,
    reuse_detection_racing_revocations_of_its_family_never_deadlocks,
    prune_drops_expired_entries_from_database_and_set,
    revocations_survive_a_restart,
    concurrent_writers_and_two_syncing_sets_agree_with_the_database,
    sync_applies_other_instances_revocations_and_restores,
    concurrent_revokes_on_one_engine_each_get_their_own_committed_event,
    repeated_keys_in_one_batch_behave_as_one_after_the_other,
    a_failed_batch_fails_every_caller_and_writes_nothing,
);

fn fast() -> EngineConfig {
    EngineConfig {
        poll_interval_ms: 20,
        ..EngineConfig::default()
    }
}

fn token(
    jti: &str,
    sub: &str,
    fid: Option<&str>,
    kind: TokenKind,
    iat: i64,
    exp: i64,
) -> TokenRecord {
    TokenRecord {
        jti: jti.into(),
        sub: sub.into(),
        fid: fid.map(Into::into),
        kind,
        iat,
        exp,
        label: Some(format!("{sub}'s laptop")),
    }
}

fn r<'a>(jti: &'a str, sub: &'a str, fid: Option<&'a str>, iat: i64) -> TokenRef<'a> {
    TokenRef {
        jti: Some(jti),
        sub: Some(sub),
        fid,
        iat: Some(iat),
        iss: None,
    }
}

async fn engine(db: &TestDb) -> Engine {
    Engine::new(db.store().await, fast()).await.expect("engine")
}

async fn registry_lists_filters_and_pages(db: &TestDb) {
    let store = db.store().await;
    let now = now_secs();
    let mut toks = Vec::new();
    for i in 0..30 {
        let sub = if i % 3 == 0 { "alice" } else { "bob" };
        let exp = if i < 5 { now - 10 } else { now + 3600 };
        toks.push(token(
            &format!("jti-{i:03}"),
            sub,
            Some("fam-1"),
            TokenKind::Access,
            now - 100 + i,
            exp,
        ));
    }
    store.register(&toks).await.unwrap();
    // Registering again is a no-op, not an error.
    store.register(&toks[..2]).await.unwrap();

    let all = store.list(&ListQuery::default(), now).await.unwrap();
    assert_eq!(all.len(), 30);
    assert_eq!(all[0].token.jti, "jti-029", "newest first");
    assert_eq!(
        all.iter()
            .filter(|t| t.status == TokenStatus::Expired)
            .count(),
        5
    );

    let alice = ListQuery {
        subject: Some("alice".into()),
        ..Default::default()
    };
    assert_eq!(store.list(&alice, now).await.unwrap().len(), 10);

    let prefix = ListQuery {
        jti_prefix: Some("jti-01".into()),
        ..Default::default()
    };
    let got: Vec<_> = store
        .list(&prefix, now)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.token.jti)
        .collect();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|j| j.starts_with("jti-01")));

    let text = ListQuery {
        text: Some("ali".into()),
        ..Default::default()
    };
    assert_eq!(store.list(&text, now).await.unwrap().len(), 10);
    let label = ListQuery {
        text: Some("bob's".into()),
        ..Default::default()
    };
    assert_eq!(store.list(&label, now).await.unwrap().len(), 20);
    let pattern = ListQuery {
        text: Some("%".into()),
        ..Default::default()
    };
    assert!(
        store.list(&pattern, now).await.unwrap().is_empty(),
        "pattern characters are literal"
    );

    // Keyset paging visits every row exactly once.
    let mut seen = Vec::new();
    let mut q = ListQuery {
        limit: 7,
        ..Default::default()
    };
    loop {
        let page = store.list(&q, now).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        q.after = Some((last.token.iat, last.token.jti.clone()));
        seen.extend(page.into_iter().map(|t| t.token.jti));
    }
    assert_eq!(seen.len(), 30);
    let offset = ListQuery {
        limit: 5,
        offset: 25,
        ..Default::default()
    };
    assert_eq!(store.list(&offset, now).await.unwrap().len(), 5);

    let one = store.token("jti-007", now).await.unwrap().unwrap();
    assert_eq!(one.token.sub, "bob");
    assert_eq!(one.status, TokenStatus::Active);
    assert!(store.token("nope", now).await.unwrap().is_none());

    let stats = store.stats(now).await.unwrap();
    assert_eq!(
        (stats.tokens, stats.active, stats.expired, stats.revoked),
        (30, 25, 5, 0)
    );
}

async fn revocations_of_every_scope_are_stored_applied_and_restorable(db: &TestDb) {
    let e = engine(db).await;
    let now = now_secs();
    let store = e.store().clone();
    store
        .register(&[
            token(
                "t-jti",
                "u1",
                Some("f1"),
                TokenKind::Access,
                now - 5,
                now + 600,
            ),
            token(
                "t-sub",
                "u2",
                Some("f2"),
                TokenKind::Access,
                now - 5,
                now + 600,
            ),
            token(
                "t-fam",
                "u3",
                Some("f3"),
                TokenKind::Refresh,
                now - 5,
                now + 600,
            ),
            token(
                "t-new",
                "u2",
                Some("f4"),
                TokenKind::Access,
                now + 5,
                now + 600,
            ),
        ])
        .await
        .unwrap();

    let ev = e
        .revoke(RevokeRequest::jti("t-jti").reason("stolen").actor("ops"))
        .await
        .unwrap()
        .expect("a new revocation");
    assert_eq!((ev.kind, ev.scope), (EventKind::Revoke, Scope::Jti));
    assert_eq!(
        ev.expires_at,
        Some(now + 600 + e.bounds().grace_secs()),
        "a known jti stays in force past its token's exp by the leeway and the skew margin"
    );
    e.revoke(RevokeRequest::subject("u2").cutoff(now))
        .await
        .unwrap();
    e.revoke(RevokeRequest::family("f3")).await.unwrap();

    assert_eq!(
        e.check(&r("t-jti", "u1", Some("f1"), now - 5)),
        Some(Scope::Jti)
    );
    assert_eq!(
        e.check(&r("t-sub", "u2", Some("f2"), now - 5)),
        Some(Scope::Subject)
    );
    assert_eq!(
        e.check(&r("t-new", "u2", Some("f4"), now + 5)),
        None,
        "issued after the cut-off"
    );
    assert_eq!(
        e.check(&r("t-fam", "u3", Some("f3"), now - 5)),
        Some(Scope::Family)
    );
    assert_eq!(e.check(&r("other", "u9", None, now)), None);

    let revoked = store
        .list(
            &ListQuery {
                status: Some(TokenStatus::Revoked),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    let mut jtis: Vec<_> = revoked.iter().map(|t| t.token.jti.as_str()).collect();
    jtis.sort();
    assert_eq!(jtis, ["t-fam", "t-jti", "t-sub"]);
    let info = store
        .token("t-jti", now)
        .await
        .unwrap()
        .unwrap()
        .revocation
        .unwrap();
    assert_eq!(
        (info.scope, info.reason.as_deref(), info.actor.as_deref()),
        (Scope::Jti, Some("stolen"), Some("ops"))
    );
    let active = store
        .list(
            &ListQuery {
                status: Some(TokenStatus::Active),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].token.jti, "t-new");

    // A revoke never moves a cut-off backwards: a weaker one writes nothing and succeeds.
    let weaker = e
        .revoke(RevokeRequest::subject("u2").cutoff(now - 100))
        .await
        .unwrap();
    assert!(weaker.is_none(), "{weaker:?}");
    assert_eq!(
        e.check(&r("t-sub", "u2", Some("f2"), now - 5)),
        Some(Scope::Subject)
    );

    // Global cut-off.
    e.revoke(RevokeRequest::global_before(now + 10).reason("key leak"))
        .await
        .unwrap();
    assert_eq!(
        e.check(&r("anything", "u9", None, now)),
        Some(Scope::Global)
    );
    assert_eq!(
        e.check(&TokenRef {
            jti: Some("x"),
            ..TokenRef::default()
        }),
        Some(Scope::Global),
        "no iat fails closed"
    );
    assert_eq!(store.stats(now).await.unwrap().revoked, 4);

    // Restore each.
    for (scope, key) in [
        (Scope::Global, ""),
        (Scope::Jti, "t-jti"),
        (Scope::Subject, "u2"),
        (Scope::Family, "f3"),
    ] {
        let ev = e
            .restore(scope, key, Some("mistake"), Some("ops"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((ev.kind, ev.scope), (EventKind::Restore, scope));
    }
    assert!(
        e.restore(Scope::Jti, "t-jti", None, None)
            .await
            .unwrap()
            .is_none(),
        "nothing left to restore"
    );
    assert_eq!(e.check(&r("t-jti", "u1", Some("f1"), now - 5)), None);
    assert_eq!(e.check(&r("t-sub", "u2", Some("f2"), now - 5)), None);
    assert_eq!(e.check(&r("t-fam", "u3", Some("f3"), now - 5)), None);
    assert_eq!(store.stats(now).await.unwrap().revoked, 0);
    assert_eq!(
        e.set().len().jtis + e.set().len().subjects + e.set().len().families,
        0
    );

    // The audit trail has everything, newest first.
    let trail = store.recent_events(None, 100).await.unwrap();
    assert_eq!(
        trail.len(),
        8,
        "4 revokes (the weaker cut-off wrote nothing) and 4 restores"
    );
    assert_eq!(trail[0].kind, EventKind::Restore);
    assert!(trail.windows(2).all(|w| w[0].id > w[1].id));
    let older = store.recent_events(Some(trail[4].id), 100).await.unwrap();
    assert_eq!(older.len(), 3);

    // Revoking a jti the registry has never seen still works.
    e.revoke(RevokeRequest::jti("foreign-token")).await.unwrap();
    assert_eq!(
        e.check(&TokenRef {
            jti: Some("foreign-token"),
            ..TokenRef::default()
        }),
        Some(Scope::Jti)
    );
}

async fn failed_write_is_an_error_and_changes_nothing(db: &TestDb) {
    let e = engine(db).await;
    let err = e.revoke(RevokeRequest::jti("  ")).await.unwrap_err();
    assert!(err.to_string().contains("needs a key"), "{err}");
    let before = e.store().stats(now_secs()).await.unwrap();

    // A database that is gone: the write fails, the set is unchanged.
    let broken_store = db.store().await;
    let broken = Engine::new(broken_store.clone(), fast()).await.unwrap();
    broken_store.close().await;
    let err = broken.revoke(RevokeRequest::jti("never")).await;
    assert!(err.is_err(), "a write on a closed pool must fail");
    assert_eq!(
        broken.check(&TokenRef {
            jti: Some("never"),
            ..TokenRef::default()
        }),
        None
    );
    assert_eq!(e.store().stats(now_secs()).await.unwrap(), before);
}

async fn observe_registers_unknown_tokens_and_moves_last_seen(db: &TestDb) {
    let store = db.store().await;
    let now = now_secs();
    let t = token(
        "ext-1",
        "idp-user",
        None,
        TokenKind::External,
        now - 10,
        now + 60,
    );
    store.observe(&[(t.clone(), now - 5)]).await.unwrap();
    store.observe(&[(t.clone(), now)]).await.unwrap();
    store.observe(&[(t, now - 100)]).await.unwrap();
    let info = store.token("ext-1", now).await.unwrap().unwrap();
    assert_eq!(info.last_seen, Some(now), "last_seen only moves forward");
    assert_eq!(info.token.kind, TokenKind::External);
}

/// Building an issuer fails with a start-up error that names the setting at fault, not with
/// one of the run-time errors.
#[tokio::test]
async fn issuer_start_up_errors_name_the_setting() {
    let store = rocket_revoke_core::store::SqliteStore::connect("sqlite::memory:")
        .await
        .unwrap();
    rocket_revoke_core::store::Store::migrate(&store)
        .await
        .unwrap();
    let e = Engine::new(std::sync::Arc::new(store), EngineConfig::default())
        .await
        .unwrap();
    let build = |cfg: IssuerConfig| Issuer::new(cfg, e.clone()).unwrap_err();

    let err = build(IssuerConfig {
        secret: None,
        ..IssuerConfig::default()
    });
    assert!(matches!(err, IssuerError::MissingSecret), "{err:?}");
    assert_eq!(err.key(), "secret");
    let err = build(IssuerConfig {
        secret: Some(String::new()),
        ..IssuerConfig::default()
    });
    assert!(matches!(err, IssuerError::EmptySecret), "{err:?}");
    assert_eq!(err.key(), "secret");
    let err = build(IssuerConfig {
        algorithm: jsonwebtoken::Algorithm::RS256,
        ..IssuerConfig::default()
    });
    assert!(
        matches!(
            err,
            IssuerError::MissingPrivateKey(jsonwebtoken::Algorithm::RS256)
        ),
        "{err:?}"
    );
    assert_eq!(err.key(), "private_key_pem");
    let err = build(IssuerConfig {
        algorithm: jsonwebtoken::Algorithm::RS256,
        private_key_pem: Some("/nonexistent/issuer-key.pem".into()),
        ..IssuerConfig::default()
    });
    assert!(matches!(err, IssuerError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/issuer-key.pem"),
        "{err}"
    );
    assert_eq!(err.key(), "private_key_pem");
}

fn issuer(e: &Engine) -> (Issuer, Verifier) {
    let cfg = IssuerConfig {
        secret: Some("test-secret-test-secret-test-secret".into()),
        ..IssuerConfig::default()
    };
    (
        Issuer::new(cfg, e.clone()).unwrap(),
        Verifier::hs256(b"test-secret-test-secret-test-secret"),
    )
}

async fn refresh_rotates_once_and_reuse_revokes_the_family(db: &TestDb) {
    let e = engine(db).await;
    let (iss, ver) = issuer(&e);
    let pair = iss.issue("alice", Some("cli")).await.unwrap();
    let fid = pair.access.fid.clone().unwrap();
    let access: rocket_revoke_core::Claims = ver.verify(&pair.access_token).unwrap();
    assert_eq!(access.kind, Some(TokenKind::Access));
    assert!(uuid::Uuid::parse_str(access.jti.as_deref().unwrap()).is_ok());

    // An access token cannot be used to refresh.
    assert!(matches!(
        iss.refresh(&ver, &pair.access_token).await,
        Err(RefreshError::NotRefresh)
    ));

    let next = iss.refresh(&ver, &pair.refresh_token).await.unwrap();
    assert_eq!(
        next.access.fid.as_deref(),
        Some(fid.as_str()),
        "same family"
    );
    assert_ne!(next.refresh_token, pair.refresh_token);
    let old = e
        .store()
        .token(pair.refresh.jti.as_deref().unwrap(), now_secs())
        .await
        .unwrap()
        .unwrap();
    assert!(old.spent_at.is_some());

    // Reuse of the spent token: refused, and the whole family (including `next`) is revoked.
    assert!(matches!(
        iss.refresh(&ver, &pair.refresh_token).await,
        Err(RefreshError::Reused)
    ));
    let next_claims: rocket_revoke_core::Claims = ver.verify(&next.access_token).unwrap();
    assert_eq!(e.check(&next_claims.token_ref()), Some(Scope::Family));
    assert!(matches!(
        iss.refresh(&ver, &next.refresh_token).await,
        Err(RefreshError::Revoked(Scope::Family))
    ));
    let trail = e.store().recent_events(None, 10).await.unwrap();
    assert!(trail
        .iter()
        .any(|ev| ev.kind == EventKind::ReuseDetected && ev.key == fid));

    // Another login of the same user is unaffected.
    let other = iss.issue("alice", None).await.unwrap();
    let c: rocket_revoke_core::Claims = ver.verify(&other.access_token).unwrap();
    assert_eq!(e.check(&c.token_ref()), None);
}

async fn concurrent_refreshes_of_one_token_let_exactly_one_through(db: &TestDb) {
    let e = engine(db).await;
    let (iss, ver) = issuer(&e);
    let pair = iss.issue("bob", None).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (iss, ver, tok) = (iss.clone(), ver.clone(), pair.refresh_token.clone());
        tasks.push(tokio::spawn(async move { iss.refresh(&ver, &tok).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(RefreshError::Reused | RefreshError::Revoked(_)) => {}
            Err(other) => panic!("unexpected refresh error: {other}"),
        }
    }
    assert_eq!(ok, 1, "exactly one rotation wins");
    let c: rocket_revoke_core::Claims = ver.verify(&pair.access_token).unwrap();
    assert_eq!(
        e.check(&c.token_ref()),
        Some(Scope::Family),
        "the family is revoked after reuse"
    );
}

/// A rotation that detects reuse holds the event lock and then writes its family's row; a
/// revocation batch, a restore and raised bounds touching that row at the same moment must
/// all take the lock first (PostgreSQL reported a deadlock and failed one of them, a 503 in
/// the soak, when a batch locked the row before the lock).
async fn reuse_detection_racing_revocations_of_its_family_never_deadlocks(db: &TestDb) {
    let e = engine(db).await;
    let (iss, ver) = issuer(&e);
    for round in 0..12 {
        let pair = iss.issue("dora", None).await.unwrap();
        let fid = ver
            .verify::<rocket_revoke_core::Claims>(&pair.access_token)
            .unwrap()
            .fid
            .unwrap();
        iss.refresh(&ver, &pair.refresh_token).await.unwrap();
        let mut tasks = Vec::new();
        for k in 0..4 {
            let (iss, ver, spent) = (iss.clone(), ver.clone(), pair.refresh_token.clone());
            tasks.push(tokio::spawn(async move {
                match iss.refresh(&ver, &spent).await {
                    Err(RefreshError::Reused | RefreshError::Revoked(_)) => Ok(()),
                    other => Err(format!("reuse {k}: {other:?}")),
                }
            }));
            let (e2, fid2) = (e.clone(), fid.clone());
            tasks.push(tokio::spawn(async move {
                let family = RevokeRequest::family(&fid2).reason("racing");
                let subject = RevokeRequest::subject("dora").reason("racing");
                e2.revoke_many(vec![subject, family])
                    .await
                    .map(drop)
                    .map_err(|err| format!("batch {k}: {err}"))
            }));
        }
        let e3 = e.clone();
        tasks.push(tokio::spawn(async move {
            e3.restore(Scope::Subject, "dora", Some("racing"), None)
                .await
                .map(drop)
                .map_err(|err| format!("restore: {err}"))
        }));
        let e4 = e.clone();
        tasks.push(tokio::spawn(async move {
            let mut raised = e4.bounds();
            raised.max_token_ttl_secs += 1 + round;
            e4.store()
                .publish_settings(&raised)
                .await
                .map(drop)
                .map_err(|err| format!("raise bounds: {err}"))
        }));
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let family_only = TokenRef {
            fid: Some(&fid),
            ..TokenRef::default()
        };
        assert_eq!(
            e.check(&family_only),
            Some(Scope::Family),
            "round {round}: the family stays revoked whoever won"
        );
    }
}

async fn prune_drops_expired_entries_from_database_and_set(db: &TestDb) {
    let e = engine(db).await;
    let now = now_secs();
    // Its token expired longer ago than the leeway and skew margin: no longer in force.
    let grace = e.bounds().grace_secs();
    e.revoke(RevokeRequest::jti("old").expires_at(now - 1 - grace))
        .await
        .unwrap();
    e.revoke(RevokeRequest::jti("live").expires_at(now + 600))
        .await
        .unwrap();
    e.store()
        .register(&[token(
            "ancient",
            "u",
            None,
            TokenKind::Access,
            now - 900_000,
            now - 800_000,
        )])
        .await
        .unwrap();
    assert_eq!(e.set().len().jtis, 2);
    let report = e.prune().await.unwrap();
    assert_eq!(report.revocations, 1);
    assert_eq!(report.tokens, 1, "registry rows past retention go");
    assert_eq!(e.set().len().jtis, 1);
    assert_eq!(
        e.check(&TokenRef {
            jti: Some("live"),
            ..TokenRef::default()
        }),
        Some(Scope::Jti)
    );
    assert_eq!(e.store().stats(now).await.unwrap().revocations, 1);
    // A fresh engine loads only what is left.
    let again = engine(db).await;
    assert_eq!(again.set().len().jtis, 1);
}

async fn revocations_survive_a_restart(db: &TestDb) {
    let now = now_secs();
    {
        let e = engine(db).await;
        e.revoke(RevokeRequest::jti("a")).await.unwrap();
        e.revoke(RevokeRequest::subject("s").cutoff(now))
            .await
            .unwrap();
        e.revoke(RevokeRequest::family("f")).await.unwrap();
        e.revoke(RevokeRequest::jti("b")).await.unwrap();
        e.restore(Scope::Jti, "b", None, None).await.unwrap();
    }
    let e = engine(db).await;
    assert_eq!(
        e.check(&TokenRef {
            jti: Some("a"),
            ..TokenRef::default()
        }),
        Some(Scope::Jti)
    );
    assert_eq!(e.check(&r("x", "s", None, now - 1)), Some(Scope::Subject));
    assert_eq!(e.check(&r("x", "t", Some("f"), now)), Some(Scope::Family));
    assert_eq!(
        e.check(&TokenRef {
            jti: Some("b"),
            ..TokenRef::default()
        }),
        None
    );
    assert_eq!(e.status().cursor, 5);
}

async fn sync_applies_other_instances_revocations_and_restores(db: &TestDb) {
    let a = engine(db).await;
    let b = engine(db).await;
    b.start_sync();
    let t = TokenRef {
        jti: Some("shared"),
        ..TokenRef::default()
    };
    a.revoke(RevokeRequest::jti("shared")).await.unwrap();
    wait_until(|| b.check(&t) == Some(Scope::Jti)).await;
    a.restore(Scope::Jti, "shared", None, None).await.unwrap();
    wait_until(|| b.check(&t).is_none()).await;
    let status = b.status();
    assert!(status.last_success_ms.is_some() && status.last_error.is_none());
    assert!(status.cursor >= 2);
    b.stop_sync().await;
}

async fn wait_until(mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn concurrent_writers_and_two_syncing_sets_agree_with_the_database(db: &TestDb) {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 1_000;
    for round in 0..3 {
        let readers = [engine(db).await, engine(db).await];
        for r in &readers {
            r.start_sync();
        }
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let e = engine(db).await;
            tasks.push(tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    let key = format!("r{round}-w{w}-{i}");
                    let req = match i % 50 {
                        0 => RevokeRequest::subject(format!("user-{w}-{i}")),
                        1 => RevokeRequest::family(key.clone()),
                        _ => RevokeRequest::jti(uuid::Uuid::new_v4().to_string()),
                    };
                    e.revoke(req).await.expect("revoke");
                    if i % 10 == 9 {
                        // Restores interleave with revokes: order matters for the result.
                        let prev = format!("r{round}-w{w}-{}", i - 8);
                        e.restore(Scope::Family, &prev, None, None)
                            .await
                            .expect("restore");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let last = readers[0]
            .store()
            .stats(now_secs())
            .await
            .unwrap()
            .last_event_id;
        for r in &readers {
            wait_until(|| r.status().cursor >= last).await;
            r.stop_sync().await;
        }
        let snap = readers[0].store().snapshot(now_secs()).await.unwrap();
        let fresh = rocket_revoke_core::RevocationSet::new();
        fresh.replace_all(snap.revocations.iter());
        for r in &readers {
            assert_eq!(
                r.set().len(),
                fresh.len(),
                "round {round}: set differs from database"
            );
            for rev in &snap.revocations {
                let t = match rev.scope {
                    Scope::Jti => TokenRef {
                        jti: Some(&rev.key),
                        ..TokenRef::default()
                    },
                    Scope::Subject => TokenRef {
                        sub: Some(&rev.key),
                        iat: rev.cutoff,
                        ..TokenRef::default()
                    },
                    Scope::Family => TokenRef {
                        fid: Some(&rev.key),
                        iat: Some(0),
                        ..TokenRef::default()
                    },
                    Scope::Global => continue,
                };
                assert_eq!(
                    r.check(&t),
                    Some(rev.scope),
                    "round {round}: {} {} missing",
                    rev.scope,
                    rev.key
                );
            }
        }
    }
}

async fn dense_and_sparse_searches_both_return_newest_first(db: &TestDb) {
    // More matches than the store's density threshold (10,000) takes the newest-first scan
    // plan on SQLite; a rare prefix takes the index-and-sort plan. Both must agree on order.
    let store = db.store().await;
    let now = now_secs();
    let toks: Vec<_> = (0..10_050)
        .map(|i| {
            token(
                &format!("d{i:05}"),
                "dense-user",
                None,
                TokenKind::Access,
                now - 20_000 + i,
                now + 60,
            )
        })
        .chain(std::iter::once(token(
            "rare-1",
            "rare-user",
            None,
            TokenKind::Access,
            now,
            now + 60,
        )))
        .collect();
    store.register(&toks).await.unwrap();
    let dense = store
        .list(
            &ListQuery {
                text: Some("dense".into()),
                limit: 3,
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    let got: Vec<_> = dense.iter().map(|t| t.token.jti.as_str()).collect();
    assert_eq!(got, ["d10049", "d10048", "d10047"]);
    let by_jti = store
        .list(
            &ListQuery {
                text: Some("d1004".into()),
                limit: 2,
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    let got: Vec<_> = by_jti.iter().map(|t| t.token.jti.as_str()).collect();
    assert_eq!(got, ["d10049", "d10048"]);
    let rare = store
        .list(
            &ListQuery {
                text: Some("rare".into()),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(rare.len(), 1);
}

/// A token that one revocation of `scope` and `key` covers.
fn covered<'a>(scope: Scope, key: &'a str, cutoff: Option<i64>) -> TokenRef<'a> {
    match scope {
        Scope::Jti => TokenRef {
            jti: Some(key),
            ..TokenRef::default()
        },
        Scope::Subject => TokenRef {
            sub: Some(key),
            iat: cutoff,
            ..TokenRef::default()
        },
        Scope::Family => TokenRef {
            fid: Some(key),
            iat: Some(0),
            ..TokenRef::default()
        },
        Scope::Global => TokenRef {
            iat: cutoff,
            ..TokenRef::default()
        },
    }
}

async fn concurrent_revokes_on_one_engine_each_get_their_own_committed_event(db: &TestDb) {
    // More callers at once than one batch takes (256).
    const TASKS: usize = 300;
    const PER_TASK: usize = 2;
    let writer = engine(db).await;
    let readers = [engine(db).await, engine(db).await];
    for r in &readers {
        r.start_sync();
    }
    let now = now_secs();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let e = writer.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..PER_TASK {
                let req = match (t + i) % 16 {
                    // Many tasks revoke the same subject and family at once: repeated keys
                    // inside one batch.
                    0 => RevokeRequest::subject("shared-user").cutoff(now - (t as i64)),
                    1 => RevokeRequest::family("shared-family"),
                    2 => RevokeRequest::subject(format!("user-{t}-{i}")),
                    _ => RevokeRequest::jti(format!("jti-{t}-{i}")).expires_at(now + 600),
                };
                let (scope, key) = (req.scope, req.key.clone());
                let ev = e.revoke(req).await.expect("revoke");
                out.push((scope, key, ev));
            }
            out
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.unwrap());
    }
    assert_eq!(results.len(), TASKS * PER_TASK);
    let mut ids = HashSet::new();
    for (scope, key, ev) in &results {
        let Some(ev) = ev else {
            // Only a repeated key can already be in force; it is revoked all the same.
            assert!(key.starts_with("shared-"), "{scope} {key} wrote nothing");
            assert!(writer
                .check(&covered(*scope, key, Some(now - 200)))
                .is_some());
            continue;
        };
        assert!(ids.insert(ev.id), "event id {} given twice", ev.id);
        assert_eq!(
            (ev.kind, ev.scope, &ev.key),
            (EventKind::Revoke, *scope, key)
        );
        // Written through before the call returned.
        assert_eq!(
            writer.check(&covered(*scope, key, ev.cutoff)),
            Some(*scope),
            "{scope} {key} not in the writer's set"
        );
    }
    // The repeated subject ends at its latest cut-off; no event moved it backwards.
    let mut shared: Vec<_> = results
        .iter()
        .filter(|(s, k, _)| *s == Scope::Subject && k == "shared-user")
        .filter_map(|(_, _, ev)| ev.as_ref().map(|ev| (ev.id, ev.cutoff.unwrap())))
        .collect();
    shared.sort();
    assert!(shared.windows(2).all(|w| w[0].1 <= w[1].1), "{shared:?}");

    // The database has every event and every revocation.
    let store = writer.store();
    let stats = store.stats(now).await.unwrap();
    let written = results.iter().filter(|(_, _, ev)| ev.is_some()).count();
    assert_eq!(stats.events, written as i64);
    assert_eq!(
        stats.last_event_id,
        *ids.iter().max().unwrap(),
        "the callers hold the newest event"
    );
    let snap = store.snapshot(now).await.unwrap();
    let in_db: HashSet<(Scope, &str)> = snap
        .revocations
        .iter()
        .map(|r| (r.scope, r.key.as_str()))
        .collect();
    for (scope, key, _) in &results {
        assert!(
            in_db.contains(&(*scope, key.as_str())),
            "{scope} {key} not in the database"
        );
    }
    let subject = snap
        .revocations
        .iter()
        .find(|r| r.scope == Scope::Subject && r.key == "shared-user")
        .unwrap();
    assert_eq!(subject.cutoff, Some(shared.last().unwrap().1));

    // Syncing instances converge to the same set.
    let fresh = rocket_revoke_core::RevocationSet::new();
    fresh.replace_all(snap.revocations.iter());
    for r in &readers {
        wait_until(|| r.status().cursor >= stats.last_event_id).await;
        r.stop_sync().await;
        assert_eq!(r.set().len(), fresh.len());
        assert_eq!(writer.set().len(), fresh.len());
        for rev in &snap.revocations {
            assert_eq!(
                r.check(&covered(rev.scope, &rev.key, rev.cutoff)),
                Some(rev.scope)
            );
        }
    }
}

/// Holds the database's write path so that revocations queue up behind it and the next batch
/// takes them all: SQLite's write lock, or PostgreSQL's event lock.
enum Gate {
    Sqlite(sqlx::SqliteConnection),
    Postgres(Box<sqlx::PgConnection>),
}

impl Gate {
    async fn close(db: &TestDb) -> Gate {
        use sqlx::Connection;
        match db {
            TestDb::Sqlite { url, .. } => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                Gate::Sqlite(c)
            }
            TestDb::Postgres { url, .. } => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(rocket_revoke_core::store::EVENT_LOCK)
                    .execute(&mut c)
                    .await
                    .unwrap();
                Gate::Postgres(Box::new(c))
            }
        }
    }

    async fn open(self) {
        use sqlx::Connection;
        match self {
            Gate::Sqlite(mut c) => {
                sqlx::query("COMMIT").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            Gate::Postgres(mut c) => {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(rocket_revoke_core::store::EVENT_LOCK)
                    .execute(&mut *c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

/// Revokes `first` while the write path is held, so the writer blocks on it, then `reqs` (in
/// order: they queue behind it and go into the next batch together), then lets the writes
/// through. Returns the outcome of `first` and of each of `reqs`.
async fn in_one_batch(
    db: &TestDb,
    e: &Engine,
    first: RevokeRequest,
    reqs: Vec<RevokeRequest>,
) -> (
    rocket_revoke_core::Result<Option<rocket_revoke_core::Event>>,
    Vec<rocket_revoke_core::Result<Option<rocket_revoke_core::Event>>>,
) {
    let gate = Gate::close(db).await;
    let e1 = e.clone();
    let first = tokio::spawn(async move { e1.revoke(first).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e2 = e.clone();
    // join_all polls in order, so the requests are queued in this order.
    let rest = tokio::spawn(async move {
        futures_util::future::join_all(reqs.into_iter().map(|r| {
            let e = e2.clone();
            async move { e.revoke(r).await }
        }))
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.open().await;
    (first.await.unwrap(), rest.await.unwrap())
}

async fn repeated_keys_in_one_batch_behave_as_one_after_the_other(db: &TestDb) {
    let e = engine(db).await;
    let now = now_secs();
    e.revoke(RevokeRequest::subject("u").cutoff(now - 150))
        .await
        .unwrap();
    let (first, rest) = in_one_batch(
        db,
        &e,
        RevokeRequest::jti("gate").expires_at(now + 60),
        vec![
            RevokeRequest::subject("u").cutoff(now - 100).reason("r1"),
            RevokeRequest::jti("k").expires_at(now + 100),
            // Backwards: must not move the cut-off or the expiry back.
            RevokeRequest::subject("u").cutoff(now - 200).reason("r2"),
            RevokeRequest::jti("k").expires_at(now + 50),
            RevokeRequest::subject("u").cutoff(now - 50).reason("r3"),
            RevokeRequest::jti("k").expires_at(now + 300),
            RevokeRequest::jti("other").expires_at(now + 10),
        ],
    )
    .await;
    let gate = first.unwrap().expect("gate is new");
    let outcomes: Vec<_> = rest.into_iter().map(Result::unwrap).collect();
    // A revocation weaker than the one in force writes nothing and still succeeds.
    let written: Vec<bool> = outcomes.iter().map(Option::is_some).collect();
    assert_eq!(written, [true, true, false, false, true, true, true]);
    let events: Vec<_> = outcomes.into_iter().flatten().collect();
    // One transaction (on SQLite, the first one's too): one timestamp, ids after the first
    // one's, in request order.
    assert!(events.iter().all(|ev| ev.at_ms == events[0].at_ms));
    assert!(events[0].id > gate.id);
    assert!(
        events.windows(2).all(|w| w[0].id + 1 == w[1].id),
        "{events:?}"
    );
    let got: Vec<_> = events
        .iter()
        .map(|ev| (ev.scope, ev.key.as_str(), ev.cutoff, ev.expires_at))
        .collect();
    let b = e.bounds();
    let until = |cutoff: i64| Some(b.issued_until(cutoff));
    assert_eq!(
        got,
        [
            (Scope::Subject, "u", Some(now - 100), until(now - 100)),
            (Scope::Jti, "k", None, Some(b.jti_until(now + 100))),
            (Scope::Subject, "u", Some(now - 50), until(now - 50)),
            (Scope::Jti, "k", None, Some(b.jti_until(now + 300))),
            (Scope::Jti, "other", None, Some(b.jti_until(now + 10))),
        ]
    );
    let reasons: Vec<_> = events.iter().map(|ev| ev.reason.as_deref()).collect();
    assert_eq!(reasons[2], Some("r3"));

    // The database and a fresh load agree with the events, and with this engine's set.
    let snap = e.store().snapshot(now).await.unwrap();
    let u = snap
        .revocations
        .iter()
        .find(|r| r.scope == Scope::Subject && r.key == "u")
        .unwrap();
    assert_eq!((u.cutoff, u.expires_at), (Some(now - 50), until(now - 50)));
    let k = snap
        .revocations
        .iter()
        .find(|r| r.scope == Scope::Jti && r.key == "k")
        .unwrap();
    assert_eq!(k.expires_at, Some(b.jti_until(now + 300)));
    let info = e.store().token("k", now).await.unwrap();
    assert!(info.is_none(), "k was never registered");
    let fresh = engine(db).await;
    for eng in [&e, &fresh] {
        assert_eq!(
            eng.check(&r("x", "u", None, now - 50)),
            Some(Scope::Subject)
        );
        assert_eq!(eng.check(&r("x", "u", None, now - 49)), None);
        assert_eq!(eng.check(&covered(Scope::Jti, "k", None)), Some(Scope::Jti));
    }
    assert_eq!(e.set().len(), fresh.set().len());
}

async fn a_failed_batch_fails_every_caller_and_writes_nothing(db: &TestDb) {
    // The database rejects one revocation mid-way through the batch's upsert.
    match db {
        TestDb::Sqlite { url, .. } => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(
                "CREATE TRIGGER reject_poison BEFORE INSERT ON revoke_revocations \
                 WHEN NEW.key = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned revocation'); END",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        TestDb::Postgres { url, schema } => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(&format!(
                "CREATE FUNCTION {schema}.reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.key = 'poison' THEN RAISE EXCEPTION 'poisoned revocation'; END IF; \
                 RETURN NEW; END $$"
            ))
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(&format!(
                "CREATE TRIGGER reject_poison BEFORE INSERT ON {schema}.revoke_revocations \
                 FOR EACH ROW EXECUTE FUNCTION {schema}.reject_poison()"
            ))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
    }
    let e = engine(db).await;
    let observer = engine(db).await;
    observer.start_sync();
    let now = now_secs();
    let batch = vec![
        RevokeRequest::jti("a1").expires_at(now + 60),
        RevokeRequest::subject("s1"),
        RevokeRequest::jti("poison").expires_at(now + 60),
        RevokeRequest::jti("a2").expires_at(now + 60),
        RevokeRequest::family("f1"),
    ];
    let n = batch.len();
    let (first, rest) = in_one_batch(
        db,
        &e,
        RevokeRequest::jti("gate").expires_at(now + 60),
        batch,
    )
    .await;
    assert_eq!(rest.len(), n);
    for r in &rest {
        let err = r.as_ref().unwrap_err();
        assert!(
            err.to_string().contains("poisoned revocation"),
            "every caller gets the database's error: {err}"
        );
    }
    // The first revocation was written before the others queued up (PostgreSQL: its
    // transaction was open and blocked on the event lock), or they joined its transaction
    // while it was being opened (SQLite: blocked on BEGIN IMMEDIATE) and it failed with them.
    let gate = match first {
        Ok(ev) => Some(ev.expect("gate is new")),
        Err(err) => {
            assert!(err.to_string().contains("poisoned revocation"), "{err}");
            None
        }
    };
    let written = i64::from(gate.is_some());
    // Nothing of the batch is in the database, the set, or a syncing instance's set.
    let stats = e.store().stats(now).await.unwrap();
    assert_eq!((stats.revocations, stats.events), (written, written));
    let last = gate.as_ref().map_or(0, |g| g.id);
    assert_eq!(stats.last_event_id, last);
    wait_until(|| observer.status().cursor >= last).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    observer.stop_sync().await;
    for eng in [&e, &observer] {
        assert_eq!(
            eng.check(&covered(Scope::Jti, "gate", None)),
            gate.as_ref().map(|_| Scope::Jti)
        );
        for (scope, key) in [
            (Scope::Jti, "a1"),
            (Scope::Subject, "s1"),
            (Scope::Jti, "a2"),
            (Scope::Family, "f1"),
        ] {
            assert_eq!(eng.check(&covered(scope, key, Some(now - 1))), None);
        }
        assert_eq!(eng.set().len().jtis, written as usize);
    }
    // The writer carries on: the same revocations without the poison go through.
    let ev = e
        .revoke(RevokeRequest::jti("a1").expires_at(now + 60))
        .await
        .unwrap()
        .expect("a1 is new");
    assert!(ev.id > last);
    assert_eq!(e.check(&covered(Scope::Jti, "a1", None)), Some(Scope::Jti));
}

/// sqlx 0.7 steps a failed statement once more after reporting its error. A `BEGIN IMMEDIATE`
/// that timed out waiting for the write lock can thus succeed behind the caller's back when
/// the lock is released just then, leaving a pooled connection inside a transaction that
/// holds the lock for good. Every later write must still go through.
#[tokio::test]
async fn sqlite_write_recovers_when_the_lock_is_released_right_after_a_busy_failure() {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    use sqlx::{Connection, Executor};
    use std::str::FromStr;

    let db = TestDb::sqlite().await;
    let TestDb::Sqlite { url, .. } = &db else {
        unreachable!("a SQLite database")
    };
    let opts = SqliteConnectOptions::from_str(url)
        .unwrap()
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_millis(300));
    // One connection: the write after the failure lands on the connection that failed.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    let store = std::sync::Arc::new(
        rocket_revoke_core::store::SqliteStore::new(pool)
            .await
            .unwrap(),
    );
    let e = Engine::new(store, fast()).await.unwrap();

    let mut locker = sqlx::SqliteConnection::connect(url).await.unwrap();
    locker.execute("BEGIN IMMEDIATE").await.unwrap();
    let err = e.revoke(RevokeRequest::jti("while-locked")).await;
    assert!(err.is_err(), "a write must fail while the lock is held");
    locker.execute("ROLLBACK").await.unwrap();

    let started = std::time::Instant::now();
    e.revoke(RevokeRequest::jti("after"))
        .await
        .expect("a write after the lock is released");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Nothing holds the write lock any more: another connection can write.
    locker.execute("BEGIN IMMEDIATE").await.unwrap();
    locker.execute("ROLLBACK").await.unwrap();
    let stats = e.store().stats(now_secs()).await.unwrap();
    assert_eq!(stats.revocations, 1, "only the write made after the lock");
    assert_eq!(
        e.check(&TokenRef {
            jti: Some("while-locked"),
            ..TokenRef::default()
        }),
        None
    );
}
