//! The set's API: each scope, the merge and expiry rules, reloads, and readers running
//! beside writers.
#![allow(clippy::unwrap_used)]

use super::swar_uuid::tests::{uuid_str, NIL, U};
use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Barrier;

pub(super) fn jti(j: &str) -> TokenRef<'_> {
    TokenRef {
        jti: Some(j),
        ..TokenRef::default()
    }
}

pub(super) fn rev(scope: Scope, key: &str, cutoff: Option<i64>, exp: Option<i64>) -> Revocation {
    Revocation {
        scope,
        key: key.to_owned(),
        issuer: None,
        cutoff,
        expires_at: exp,
        reason: None,
        actor: None,
        revoked_at: 42,
    }
}

#[test]
fn set_is_send_sync_and_default_empty() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RevocationSet>();
    let s = RevocationSet::default();
    assert!(s.is_empty());
    assert_eq!(s.len(), SetCounts::default());
    assert_eq!(s.check(&TokenRef::default()), None);
    assert_eq!(s.check(&jti(U)), None);
    assert!(s.heap_bytes() > 0);
    assert!(format!("{s:?}").contains("RevocationSet"));
}

#[test]
fn set_jti_uuid_matches_exactly_as_the_database_does() {
    let s = RevocationSet::new();
    s.revoke_jti(U, 100);
    assert_eq!(s.check(&jti(U)), Some(Scope::Jti));
    // Another spelling is another jti, as in the database's text comparison.
    assert_eq!(s.check(&jti(&U.to_uppercase())), None);
    assert!(!s.contains_jti(&U.to_uppercase()));
    assert_eq!(s.check(&jti("550e8400-e29b-41d4-a716-446655440001")), None);
    // The simple form is a different string.
    assert_eq!(s.check(&jti("550e8400e29b41d4a716446655440000")), None);
    s.revoke_jti(&U.to_uppercase(), 50);
    assert_eq!(s.len().jtis, 2);
    // Restoring one spelling leaves the other's entry.
    assert!(s.restore(Scope::Jti, &U.to_uppercase()));
    assert_eq!(s.check(&jti(U)), Some(Scope::Jti));
    assert!(s.restore(Scope::Jti, U));
    assert!(s.is_empty());
}

#[test]
fn set_nil_uuid_is_an_ordinary_key() {
    let s = RevocationSet::new();
    assert_eq!(s.check(&jti(NIL)), None);
    s.revoke_jti(NIL, 100);
    assert_eq!(s.check(&jti(NIL)), Some(Scope::Jti));
    assert_eq!(s.check(&jti("00000000-0000-0000-0000-000000000001")), None);
    assert_eq!(s.check(&jti("00000000-0000-0001-0000-000000000000")), None);
    // Fill so the nil key's neighbourhood has other keys; it must stay findable.
    for i in 1..=1000 {
        s.revoke_jti(&uuid_str(i), 100);
    }
    assert_eq!(s.check(&jti(NIL)), Some(Scope::Jti));
    assert!(s.restore(Scope::Jti, NIL));
    assert_eq!(s.check(&jti(NIL)), None);
    assert_eq!(s.len().jtis, 1000);
}

#[test]
fn set_non_uuid_jti() {
    let s = RevocationSet::new();
    assert_eq!(s.check(&jti("abc")), None);
    s.revoke_jti("abc", 100);
    s.revoke_jti("", 100);
    s.revoke_jti("550e8400e29b41d4a716446655440000", 100);
    assert_eq!(s.check(&jti("abc")), Some(Scope::Jti));
    assert_eq!(s.check(&jti("ABC")), None);
    assert_eq!(s.check(&jti("")), Some(Scope::Jti));
    assert_eq!(
        s.check(&jti("550e8400e29b41d4a716446655440000")),
        Some(Scope::Jti)
    );
    assert_eq!(s.check(&jti(U)), None);
    assert_eq!(s.len().jtis, 3);
    assert!(s.restore(Scope::Jti, "abc"));
    assert!(!s.restore(Scope::Jti, "abc"));
    assert_eq!(s.check(&jti("abc")), None);
    assert_eq!(s.len().jtis, 2);
}

#[test]
fn set_subject_cutoff() {
    let s = RevocationSet::new();
    let tok = |iat| TokenRef {
        sub: Some("alice"),
        iat,
        ..TokenRef::default()
    };
    s.revoke_subject("alice", 100, None);
    assert_eq!(s.check(&tok(Some(99))), Some(Scope::Subject));
    assert_eq!(s.check(&tok(Some(100))), Some(Scope::Subject));
    assert_eq!(s.check(&tok(Some(101))), None);
    assert_eq!(s.check(&tok(None)), Some(Scope::Subject));
    assert_eq!(s.subject_cutoff("alice"), Some(100));
    // Replaced, even by an earlier cut-off.
    s.revoke_subject("alice", 50, Some(10));
    assert_eq!(s.check(&tok(Some(99))), None);
    assert_eq!(s.check(&tok(Some(50))), Some(Scope::Subject));
    assert_eq!(s.len().subjects, 1);
    let bob = TokenRef {
        sub: Some("bob"),
        iat: Some(1),
        ..TokenRef::default()
    };
    assert_eq!(s.check(&bob), None);
    assert!(s.restore(Scope::Subject, "alice"));
    assert_eq!(s.check(&tok(None)), None);
    assert!(!s.restore(Scope::Subject, "alice"));
}

#[test]
fn set_family() {
    let s = RevocationSet::new();
    let tok = TokenRef {
        fid: Some("fam-1"),
        iat: Some(5),
        ..TokenRef::default()
    };
    assert_eq!(s.check(&tok), None);
    s.revoke_family("fam-1", None);
    assert_eq!(s.check(&tok), Some(Scope::Family));
    assert_eq!(s.len().families, 1);
    assert!(s.restore(Scope::Family, "fam-1"));
    assert_eq!(s.check(&tok), None);
}

#[test]
fn set_global_cutoff() {
    let s = RevocationSet::new();
    let tok = |iat| TokenRef {
        iat,
        ..TokenRef::default()
    };
    s.set_global_cutoff(Some(10));
    assert_eq!(s.check(&tok(Some(10))), Some(Scope::Global));
    assert_eq!(s.check(&tok(Some(11))), None);
    assert_eq!(s.check(&tok(None)), Some(Scope::Global));
    assert!(s.len().global);
    assert_eq!(s.global_cutoff(), Some(10));
    s.set_global_cutoff(None);
    assert_eq!(s.check(&tok(None)), None);
    s.set_global_cutoff(Some(10));
    assert!(s.restore(Scope::Global, "ignored"));
    assert!(!s.restore(Scope::Global, ""));
    assert!(s.is_empty());
}

#[test]
fn set_scope_order() {
    let s = RevocationSet::new();
    let tok = TokenRef {
        jti: Some(U),
        sub: Some("alice"),
        fid: Some("f"),
        iat: Some(5),
        iss: None,
    };
    s.revoke_jti(U, 100);
    assert_eq!(s.check(&tok), Some(Scope::Jti));
    s.revoke_family("f", None);
    assert_eq!(s.check(&tok), Some(Scope::Family));
    s.revoke_subject("alice", 5, None);
    assert_eq!(s.check(&tok), Some(Scope::Subject));
    s.set_global_cutoff(Some(5));
    assert_eq!(s.check(&tok), Some(Scope::Global));
    s.set_global_cutoff(Some(4));
    assert_eq!(s.check(&tok), Some(Scope::Subject));
}

#[test]
fn set_apply_each_scope() {
    let s = RevocationSet::new();
    s.apply(&rev(Scope::Jti, "j1", None, Some(10)));
    s.apply(&rev(Scope::Subject, "alice", Some(7), None));
    s.apply(&rev(Scope::Subject, "bob", None, None));
    s.apply(&rev(Scope::Family, "f", None, None));
    assert!(s.contains_jti("j1"));
    assert_eq!(s.subject_cutoff("alice"), Some(7));
    assert_eq!(s.subject_cutoff("bob"), Some(42));
    assert_eq!(
        s.len(),
        SetCounts {
            jtis: 1,
            subjects: 2,
            families: 1,
            global: false
        }
    );
    s.apply(&rev(Scope::Global, "", Some(3), Some(20)));
    assert_eq!(s.global_cutoff(), Some(3));
    s.apply(&rev(Scope::Global, "", None, None));
    assert_eq!(s.global_cutoff(), Some(42));
}

#[test]
fn set_prune() {
    let s = RevocationSet::new();
    s.revoke_jti(U, 10);
    s.revoke_jti("other", 20);
    s.revoke_subject("alice", 1, Some(10));
    s.revoke_subject("bob", 1, None);
    s.revoke_family("f1", Some(9));
    s.revoke_family("f2", None);
    s.apply(&rev(Scope::Global, "", Some(1), Some(10)));
    assert_eq!(s.prune(10), 1); // f1 only: expires_at < now
    assert_eq!(s.prune(11), 3); // U, alice, global
    assert_eq!(s.check(&jti(U)), None);
    assert!(s.contains_jti("other"));
    assert_eq!(s.global_cutoff(), None);
    assert_eq!(s.prune(1_000_000), 1); // "other"
    assert_eq!(
        s.len(),
        SetCounts {
            jtis: 0,
            subjects: 1,
            families: 1,
            global: false
        }
    );
    // set_global_cutoff never expires.
    s.set_global_cutoff(Some(5));
    assert_eq!(s.prune(i64::MAX), 0);
    // Re-revoking keeps the later expiry; "never" wins.
    s.revoke_family("f3", Some(100));
    s.revoke_family("f3", Some(50));
    assert_eq!(s.prune(60), 0);
    s.revoke_family("f3", None);
    assert_eq!(s.prune(1_000), 0);
    assert_eq!(s.len().families, 2);
}

#[test]
fn set_prune_shrinks_and_keeps_rest() {
    let s = RevocationSet::new();
    for i in 0..20_000 {
        s.revoke_jti(&uuid_str(i), if i % 10 == 0 { 1_000 } else { 10 });
    }
    let big = s.heap_bytes();
    assert_eq!(s.prune(11), 18_000);
    assert_eq!(s.len().jtis, 2_000);
    assert!(s.heap_bytes() < big / 4, "{} vs {big}", s.heap_bytes());
    for i in 0..20_000 {
        assert_eq!(s.contains_jti(&uuid_str(i)), i % 10 == 0, "{i}");
    }
}

#[test]
fn set_with_capacity_does_not_grow() {
    let s = RevocationSet::with_capacity(10_000);
    let before = s.uuid_table_bytes();
    for i in 0..10_000 {
        s.revoke_jti(&uuid_str(i), 10);
    }
    assert_eq!(s.uuid_table_bytes(), before);
    assert!(before / 10_000 <= 40, "{before}");
    // Pruning everything does not shrink below the reservation.
    assert_eq!(s.prune(11), 10_000);
    assert_eq!(s.uuid_table_bytes(), before);
}

#[test]
fn set_restore_then_revoke_again_and_compaction() {
    let s = RevocationSet::new();
    for round in 0..5 {
        for i in 0..2_000 {
            s.revoke_jti(&uuid_str(i), 10);
        }
        assert_eq!(s.len().jtis, 2_000, "round {round}");
        for i in (0..2_000).step_by(2) {
            assert!(s.restore(Scope::Jti, &uuid_str(i)));
        }
        for i in 0..2_000 {
            assert_eq!(s.contains_jti(&uuid_str(i)), i % 2 == 1);
        }
    }
    // Tombstones were compacted away along the way; the table did not balloon.
    assert!(s.uuid_table_bytes() < 2_000 * 80);
}

#[test]
fn set_replace_all() {
    let s = RevocationSet::new();
    s.revoke_jti(U, 10);
    s.revoke_subject("alice", 1, None);
    s.set_global_cutoff(Some(1));
    let revs = vec![
        rev(Scope::Jti, NIL, None, Some(5)),
        rev(Scope::Jti, "plain", None, None),
        rev(Scope::Subject, "bob", Some(9), None),
        rev(Scope::Subject, "bob", Some(3), None),
        rev(Scope::Family, "f", None, None),
    ];
    s.replace_all(&revs);
    assert_eq!(s.check(&jti(U)), None);
    assert_eq!(s.subject_cutoff("alice"), None);
    assert_eq!(s.global_cutoff(), None);
    assert!(s.contains_jti(NIL));
    assert!(s.contains_jti("plain"));
    assert_eq!(s.subject_cutoff("bob"), Some(3));
    assert_eq!(
        s.len(),
        SetCounts {
            jtis: 2,
            subjects: 1,
            families: 1,
            global: false
        }
    );
    s.replace_all([&rev(Scope::Global, "", Some(7), None)]);
    assert_eq!(
        s.len(),
        SetCounts {
            global: true,
            ..SetCounts::default()
        }
    );
    s.replace_all(std::iter::empty());
    assert!(s.is_empty());
    // Large reload, then more inserts.
    let many: Vec<Revocation> = (0..5_000)
        .map(|i| rev(Scope::Jti, &uuid_str(i), None, Some(10)))
        .collect();
    s.replace_all(&many);
    s.revoke_jti(U, 10);
    assert_eq!(s.len().jtis, 5_001);
    assert!((0..5_000).all(|i| s.contains_jti(&uuid_str(i))));
}

/// Readers on another thread keep finding every key inserted before they started while the
/// writer grows the table many times (resize while reading).
#[test]
fn set_resize_while_reading() {
    let s = Arc::new(RevocationSet::new());
    for i in 0..100 {
        s.revoke_jti(&uuid_str(i), 10);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (s, stop) = (Arc::clone(&s), Arc::clone(&stop));
            std::thread::spawn(move || {
                let keys: Vec<String> = (0..100).map(uuid_str).collect();
                let mut rounds = 0_u64;
                while !stop.load(Relaxed) || rounds == 0 {
                    for k in &keys {
                        assert_eq!(s.check(&jti(k)), Some(Scope::Jti));
                    }
                    assert_eq!(s.check(&jti(U)), None);
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    for i in 100..50_000 {
        s.revoke_jti(&uuid_str(i), 10);
    }
    stop.store(true, Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(s.len().jtis, 50_000);
}

/// Every key inserted before a publication point is seen by readers after it.
#[test]
fn set_concurrent_readers_see_published_inserts() {
    const N: u64 = 30_000;
    const STEP: u64 = 1_000;
    let s = Arc::new(RevocationSet::new());
    let published = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(3));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (s, published, start) =
                (Arc::clone(&s), Arc::clone(&published), Arc::clone(&start));
            std::thread::spawn(move || {
                let keys: Vec<String> = (0..N).map(uuid_str).collect();
                start.wait();
                let mut checked = 0_u64;
                loop {
                    let upto = published.load(Acquire) as u64;
                    // Sample the published prefix plus a few keys beyond it.
                    let mut i = r;
                    while i < upto {
                        assert_eq!(
                            s.check(&jti(&keys[i as usize])),
                            Some(Scope::Jti),
                            "key {i} published before {upto}"
                        );
                        checked += 1;
                        i += 7;
                    }
                    if upto == N {
                        return checked;
                    }
                }
            })
        })
        .collect();
    start.wait();
    for batch in 0..N / STEP {
        for i in batch * STEP..(batch + 1) * STEP {
            s.revoke_jti(&uuid_str(i), 10);
        }
        published.store(((batch + 1) * STEP) as usize, Release);
    }
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[test]
fn set_heap_bytes_per_entry() {
    let s = RevocationSet::new();
    for i in 0..100_000 {
        s.revoke_jti(&uuid_str(i), 10);
    }
    let per = s.uuid_table_bytes() as f64 / 100_000.0;
    assert!(per <= 40.0, "{per} bytes per entry");
}
