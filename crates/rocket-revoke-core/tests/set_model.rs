//! Model-based test of `RevocationSet`: random operation sequences run against the set and a
//! plain `HashMap` model; every `check` answer and every count must agree. Revocations come
//! unscoped and scoped to issuers (whose names are prefixes of each other, so a key that
//! confused issuer and key bytes would show), and tokens come with and without `iss`.
#![allow(missing_docs, clippy::unwrap_used)]

use proptest::prelude::*;
use rocket_revoke_core::SetCounts;
use rocket_revoke_core::{Revocation, RevocationSet, Scope, TokenRef};
use std::collections::HashMap;

/// Keys shared by all scopes: UUIDs in both cases, the nil UUID, look-alikes and plain strings.
const KEYS: &[&str] = &[
    "550e8400-e29b-41d4-a716-446655440000",
    "550E8400-E29B-41D4-A716-446655440000",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "00000000-0000-0000-0000-000000000001",
    "550e8400e29b41d4a716446655440000",
    "550e8400-e29b-41d4-a716-44665544000g",
    "{550e8400-e29b-41d4-a716-446655440000}",
    "alice",
    "Alice",
    "",
    "bob",
];

/// Issuer scopes: `None`, the empty one (the same as none), and names that are prefixes of
/// each other and of keys.
const ISSUERS: &[Option<&str>] = &[
    None,
    Some(""),
    Some("https://a"),
    Some("https://ab"),
    Some("b"),
];

/// What a token's `iss` can be.
const TOKEN_ISS: &[Option<&str>] = &[
    None,
    Some("https://a"),
    Some("https://ab"),
    Some("b"),
    Some("c"),
];

/// A model key: the issuer scope (`None` for every issuer) and the key.
type K = (Option<String>, String);

fn scope_of(issuer: Option<&str>) -> Option<String> {
    issuer.filter(|i| !i.is_empty()).map(str::to_owned)
}

#[derive(Debug, Clone)]
enum Op {
    Jti(usize, i64),
    Subject(usize, i64, Option<i64>),
    Family(usize, Option<i64>),
    Global(Option<i64>),
    Apply(Revocation),
    Restore(Scope, usize, usize),
    Prune(i64),
    ReplaceAll(Vec<Revocation>),
    /// Insert `n` generated UUID jtis (forces growth) with the given expiry.
    Bulk(u16, u64, i64),
    Check(
        Option<usize>,
        Option<usize>,
        Option<usize>,
        Option<i64>,
        usize,
    ),
}

#[derive(Default, Debug)]
struct Model {
    jtis: HashMap<K, Option<i64>>,
    subjects: HashMap<K, (i64, Option<i64>)>,
    families: HashMap<K, Option<i64>>,
    global: Option<(i64, Option<i64>)>,
    /// Issuers' own global cut-offs.
    globals: HashMap<String, (i64, Option<i64>)>,
}

/// jtis match exactly, UUIDs included (as the database compares them).
fn norm_jti(s: &str) -> String {
    s.to_owned()
}

/// Later expiry; `None` (never) is the latest.
fn later(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

impl Model {
    fn apply(&mut self, rev: &Revocation) {
        let iss = scope_of(rev.issuer.as_deref());
        let cut = (rev.cutoff.unwrap_or(rev.revoked_at), rev.expires_at);
        match rev.scope {
            Scope::Jti => {
                let e = self
                    .jtis
                    .entry((iss, norm_jti(&rev.key)))
                    .or_insert(rev.expires_at);
                *e = later(*e, rev.expires_at);
            }
            Scope::Subject => {
                self.subjects.insert((iss, rev.key.clone()), cut);
            }
            Scope::Family => {
                let e = self
                    .families
                    .entry((iss, rev.key.clone()))
                    .or_insert(rev.expires_at);
                *e = later(*e, rev.expires_at);
            }
            Scope::Global => match iss {
                Some(iss) => {
                    self.globals.insert(iss, cut);
                }
                None => self.global = Some(cut),
            },
        }
    }

    fn restore(&mut self, scope: Scope, issuer: Option<&str>, key: &str) -> bool {
        let iss = scope_of(issuer);
        match scope {
            Scope::Jti => self.jtis.remove(&(iss, norm_jti(key))).is_some(),
            Scope::Subject => self.subjects.remove(&(iss, key.to_owned())).is_some(),
            Scope::Family => self.families.remove(&(iss, key.to_owned())).is_some(),
            Scope::Global => match iss {
                Some(iss) => self.globals.remove(&iss).is_some(),
                None => self.global.take().is_some(),
            },
        }
    }

    fn entries(&self) -> usize {
        self.jtis.len() + self.subjects.len() + self.families.len() + self.globals.len()
    }

    fn prune(&mut self, now: i64) -> usize {
        let gone = |e: &Option<i64>| e.is_some_and(|e| e < now);
        let before = self.entries();
        self.jtis.retain(|_, e| !gone(e));
        self.subjects.retain(|_, (_, e)| !gone(e));
        self.families.retain(|_, e| !gone(e));
        self.globals.retain(|_, (_, e)| !gone(e));
        let mut n = before - self.entries();
        if self.global.is_some_and(|(_, e)| gone(&e)) {
            self.global = None;
            n += 1;
        }
        n
    }

    /// The set's order: the global cut-off, then the entries scoped to the token's issuer
    /// (global, subject, family, jti), then the unscoped ones.
    fn check(&self, t: &TokenRef<'_>) -> Option<Scope> {
        let before = |c: i64| t.iat.is_none_or(|iat| iat <= c);
        if self.global.is_some_and(|(c, _)| before(c)) {
            return Some(Scope::Global);
        }
        if let Some(iss) = t.iss {
            if self.globals.get(iss).is_some_and(|&(c, _)| before(c)) {
                return Some(Scope::Global);
            }
            if let Some(scope) = self.check_keys(t, Some(iss.to_owned())) {
                return Some(scope);
            }
        }
        self.check_keys(t, None)
    }

    fn check_keys(&self, t: &TokenRef<'_>, iss: Option<String>) -> Option<Scope> {
        let before = |c: i64| t.iat.is_none_or(|iat| iat <= c);
        let k = |key: &str| (iss.clone(), key.to_owned());
        if let Some(&(c, _)) = t.sub.and_then(|s| self.subjects.get(&k(s))) {
            if before(c) {
                return Some(Scope::Subject);
            }
        }
        if t.fid.is_some_and(|f| self.families.contains_key(&k(f))) {
            return Some(Scope::Family);
        }
        if t.jti
            .is_some_and(|j| self.jtis.contains_key(&k(&norm_jti(j))))
        {
            return Some(Scope::Jti);
        }
        None
    }

    /// As the set counts: an issuer's global cut-off lives in the subject table.
    fn counts(&self) -> SetCounts {
        SetCounts {
            jtis: self.jtis.len(),
            subjects: self.subjects.len() + self.globals.len(),
            families: self.families.len(),
            global: self.global.is_some(),
        }
    }
}

fn bulk_key(seed: u64, i: u64) -> String {
    let v = u128::from(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93),
    );
    uuid::Uuid::from_u128((v << 64) | u128::from(i) | 1)
        .hyphenated()
        .to_string()
}

fn key() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn time() -> impl Strategy<Value = i64> {
    0_i64..100
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::Jti),
        Just(Scope::Subject),
        Just(Scope::Family),
        Just(Scope::Global)
    ]
}

fn issuer() -> impl Strategy<Value = usize> {
    0..ISSUERS.len()
}

fn revocation() -> impl Strategy<Value = Revocation> {
    (
        scope(),
        key(),
        proptest::option::of(time()),
        proptest::option::of(time()),
        time(),
        issuer(),
    )
        .prop_map(|(scope, k, cutoff, expires_at, revoked_at, i)| Revocation {
            scope,
            key: if scope == Scope::Global {
                String::new()
            } else {
                KEYS[k].to_owned()
            },
            issuer: ISSUERS[i].map(str::to_owned),
            cutoff,
            expires_at,
            reason: None,
            actor: None,
            revoked_at,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let opt_key = || proptest::option::of(key());
    prop_oneof![
        4 => (key(), time()).prop_map(|(k, e)| Op::Jti(k, e)),
        3 => (key(), time(), proptest::option::of(time())).prop_map(|(k, c, e)| Op::Subject(k, c, e)),
        3 => (key(), proptest::option::of(time())).prop_map(|(k, e)| Op::Family(k, e)),
        1 => proptest::option::of(time()).prop_map(Op::Global),
        3 => revocation().prop_map(Op::Apply),
        3 => (scope(), issuer(), key()).prop_map(|(s, i, k)| Op::Restore(s, i, k)),
        2 => time().prop_map(Op::Prune),
        1 => proptest::collection::vec(revocation(), 0..12).prop_map(Op::ReplaceAll),
        1 => (0_u16..300, 0_u64..4, time()).prop_map(|(n, s, e)| Op::Bulk(n, s, e)),
        4 => (opt_key(), opt_key(), opt_key(), proptest::option::of(time()), 0..TOKEN_ISS.len())
            .prop_map(|(j, s, f, iat, i)| Op::Check(j, s, f, iat, i)),
    ]
}

fn compare_all(set: &RevocationSet, model: &Model) {
    assert_eq!(set.len(), model.counts());
    for iss in TOKEN_ISS.iter().copied() {
        for iat in [None, Some(0), Some(50), Some(99)] {
            for k in KEYS {
                for t in [
                    TokenRef {
                        jti: Some(k),
                        iat,
                        iss,
                        ..TokenRef::default()
                    },
                    TokenRef {
                        sub: Some(k),
                        iat,
                        iss,
                        ..TokenRef::default()
                    },
                    TokenRef {
                        fid: Some(k),
                        iat,
                        iss,
                        ..TokenRef::default()
                    },
                ] {
                    assert_eq!(set.check(&t), model.check(&t), "{t:?}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn set_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let set = RevocationSet::new();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Jti(k, e) => {
                    set.revoke_jti(KEYS[k], e);
                    model.apply(&Revocation {
                        scope: Scope::Jti, key: KEYS[k].to_owned(), issuer: None, cutoff: None,
                        expires_at: Some(e), reason: None, actor: None, revoked_at: 0,
                    });
                }
                Op::Subject(k, c, e) => {
                    set.revoke_subject(KEYS[k], c, e);
                    model.subjects.insert((None, KEYS[k].to_owned()), (c, e));
                }
                Op::Family(k, e) => {
                    set.revoke_family(KEYS[k], e);
                    let m = model.families.entry((None, KEYS[k].to_owned())).or_insert(e);
                    *m = later(*m, e);
                }
                Op::Global(c) => {
                    set.set_global_cutoff(c);
                    model.global = c.map(|c| (c, None));
                }
                Op::Apply(rev) => {
                    set.apply(&rev);
                    model.apply(&rev);
                }
                Op::Restore(scope, i, k) => {
                    let key = if scope == Scope::Global { "" } else { KEYS[k] };
                    prop_assert_eq!(
                        set.restore_scoped(scope, ISSUERS[i], key),
                        model.restore(scope, ISSUERS[i], key)
                    );
                }
                Op::Prune(now) => {
                    prop_assert_eq!(set.prune(now), model.prune(now));
                }
                Op::ReplaceAll(revs) => {
                    set.replace_all(&revs);
                    model = Model::default();
                    for rev in &revs {
                        model.apply(rev);
                    }
                }
                Op::Bulk(n, seed, e) => {
                    for i in 0..u64::from(n) {
                        let k = bulk_key(seed, i);
                        set.revoke_jti(&k, e);
                        let m = model.jtis.entry((None, k)).or_insert(Some(e));
                        *m = later(*m, Some(e));
                    }
                }
                Op::Check(j, s, f, iat, i) => {
                    let t = TokenRef {
                        jti: j.map(|k| KEYS[k]),
                        sub: s.map(|k| KEYS[k]),
                        fid: f.map(|k| KEYS[k]),
                        iat,
                        iss: TOKEN_ISS[i],
                    };
                    prop_assert_eq!(set.check(&t), model.check(&t));
                }
            }
            compare_all(&set, &model);
        }
        // Every bulk key the model holds is found, and only those.
        for ((iss, k), _) in model.jtis.iter() {
            if iss.is_none() {
                prop_assert!(set.contains_jti(k), "{}", k);
            }
        }
    }
}
