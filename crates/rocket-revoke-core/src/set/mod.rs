//! The revocation set: the in-memory hot path that answers "is this token revoked?".
//!
//! The design and the merge rules are on [`RevocationSet`].

mod loader;
mod placement;
mod swar_uuid;
mod table;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;

use crate::{Revocation, Scope, TokenRef};
pub use loader::SetLoader;
use placement::{
    issuer_of, part_of, Seeds, FAM, OTHER, SUBJ, TAG_FAM, TAG_GLOBAL, TAG_JTI, TAG_SUB, UUID,
};
use swar_uuid::parse_uuid;
use table::{exp_u32, groups_for, Part, Table, MIN_GROUPS, RESERVE_LOAD};

/// A read-only view of a [`RevocationSet`]: what [`Engine::set`](crate::Engine::set) gives
/// out. It answers the reads (checks, cut-offs, counts, memory) and offers no mutator, so
/// nothing can change an engine's set behind its database: revocations go through
/// [`Engine::revoke`](crate::Engine::revoke) and [`Engine::restore`](crate::Engine::restore).
#[derive(Clone, Copy)]
pub struct SetView<'a> {
    set: &'a RevocationSet,
}

impl fmt::Debug for SetView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.set, f)
    }
}

impl<'a> SetView<'a> {
    /// The view of `set`.
    pub(crate) fn new(set: &'a RevocationSet) -> Self {
        Self { set }
    }

    /// Which scope revokes this token, if any: [`RevocationSet::check`].
    #[inline]
    pub fn check(&self, token: &TokenRef<'_>) -> Option<Scope> {
        self.set.check(token)
    }

    /// Whether `jti` itself is revoked: [`RevocationSet::contains_jti`].
    pub fn contains_jti(&self, jti: &str) -> bool {
        self.set.contains_jti(jti)
    }

    /// The cut-off in force for `sub`, if any: [`RevocationSet::subject_cutoff`].
    pub fn subject_cutoff(&self, sub: &str) -> Option<i64> {
        self.set.subject_cutoff(sub)
    }

    /// The global cut-off in force, if any: [`RevocationSet::global_cutoff`].
    pub fn global_cutoff(&self) -> Option<i64> {
        self.set.global_cutoff()
    }

    /// How many entries of each kind the set holds: [`RevocationSet::len`].
    pub fn len(&self) -> SetCounts {
        self.set.len()
    }

    /// True when nothing is revoked: [`RevocationSet::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Approximate heap bytes held: [`RevocationSet::heap_bytes`].
    pub fn heap_bytes(&self) -> usize {
        self.set.heap_bytes()
    }

    /// Heap bytes of the UUID `jti` table alone: [`RevocationSet::uuid_table_bytes`].
    pub fn uuid_table_bytes(&self) -> usize {
        self.set.uuid_table_bytes()
    }
}

/// How many entries of each kind the set holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SetCounts {
    /// Revoked `jti`s (UUID and other forms).
    pub jtis: usize,
    /// Subjects with a cut-off.
    pub subjects: usize,
    /// Revoked session families.
    pub families: usize,
    /// Whether a global cut-off is in force.
    pub global: bool,
}

impl SetCounts {
    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.jtis == 0 && self.subjects == 0 && self.families == 0 && !self.global
    }
}

/// A set of revocations answering [`check`](RevocationSet::check) without locks.
///
/// Shared as `Arc<RevocationSet>`; every method takes `&self`. Reads never wait on writers;
/// writers serialize among themselves.
///
/// # Design
///
/// * **Four tables, one snapshot.** Revoked UUID `jti`s, other `jti`s, subjects (with their
///   cut-off) and families each live in their own open-addressing `Table`. The four tables and
///   the global cut-off form one `Snapshot` published through an [`ArcSwap`] (so
///   [`RevocationSet::replace_all`] swaps everything at once) together with a generation counter.
///   [`RevocationSet::check`] revalidates the calling thread's cached `Arc<Snapshot>` with one
///   `Acquire` load of that counter and then does only atomic loads: no lock, no read-modify-write,
///   no I/O, no waiting on a writer, no allocation. Only after a publication (a rebuild, a global
///   cut-off change, a reload) does a thread's next check take the `ArcSwap::load_full` slow path.
///   (Plain `ArcSwap::load` costs two locked read-modify-writes per call; they are full barriers
///   that stop the CPU from overlapping the cache misses of consecutive checks.)
///   Cost of the cache: a thread keeps the snapshot it used last alive until its next check of
///   the same set (or of another set, or its exit), so after a rebuild an idle thread can pin
///   one old table generation.
/// * **Where things live** (in the source, under `src/set/`). `table.rs`: the concurrent table and the invariants that make
///   lock-free reads safe (insert-only slots, publication order, probe termination,
///   writer-side expiry). `placement.rs`: which table a revocation goes to and its key (UUID
///   parsing, seeded string and issuer-scoped hashes). `loader.rs`: the next content built
///   off to the side. `mod.rs`: the set's API, the snapshot readers use, and the merge
///   rules below.
///
/// # Merging and expiry rules
///
/// * Revoking a `jti` or a family that is already revoked keeps the later expiry (`None`, never,
///   is the latest).
/// * Revoking a subject again replaces both its cut-off and its expiry.
/// * The global cut-off is a single value: setting it replaces it. [`RevocationSet::apply`] of a
///   global revocation keeps its `expires_at`, so [`RevocationSet::prune`] can drop it;
///   [`RevocationSet::set_global_cutoff`] sets one that never expires.
pub struct RevocationSet {
    snap: ArcSwap<Snapshot>,
    /// Bumped after every publication of a new snapshot; validates per-thread caches.
    gen: AtomicU64,
    /// Unique per set (never reused), so a per-thread cache knows which set it holds.
    id: u64,
    writer: Mutex<State>,
    seeds: Seeds,
    /// Groups reserved for the UUID table by [`RevocationSet::with_capacity`]; it never shrinks
    /// below this.
    reserved_uuid_groups: usize,
}

/// A reader thread's cached snapshot of the set it checked last.
struct ReaderCache {
    set: u64,
    gen: u64,
    snap: Option<Arc<Snapshot>>,
}

thread_local! {
    /// `ArcSwap::load` costs two locked read-modify-writes (debt slot in and out), which are
    /// full barriers on x86 and stop the CPU from overlapping the cache misses of consecutive
    /// checks. Instead each thread keeps an `Arc` of the snapshot it used last and revalidates
    /// it with one plain `Acquire` load of the set's generation counter.
    static READER: RefCell<ReaderCache> = const {
        RefCell::new(ReaderCache {
            set: 0,
            gen: 0,
            snap: None,
        })
    };
}

/// What readers see: four tables and the global cut-off.
struct Snapshot {
    tables: [Arc<Table>; 4],
    global: Option<i64>,
    /// Whether any issuer-scoped entry was applied since the last reload: without one, a
    /// check does no scoped lookups at all, so single-issuer apps pay nothing for scopes.
    scoped: bool,
}

/// Everything the writer owns; guarded by `RevocationSet::writer`.
struct State {
    parts: [Part; 4],
    global: Option<i64>,
    global_exp: Option<i64>,
    /// See [`Snapshot::scoped`].
    scoped: bool,
}

impl State {
    fn new(uuid_groups: usize, reserved_uuid_groups: usize) -> Self {
        State {
            parts: [
                Part::new(uuid_groups, false, reserved_uuid_groups),
                Part::new(MIN_GROUPS, false, MIN_GROUPS),
                Part::new(MIN_GROUPS, true, MIN_GROUPS),
                Part::new(MIN_GROUPS, false, MIN_GROUPS),
            ],
            global: None,
            global_exp: None,
            scoped: false,
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            tables: [
                Arc::clone(&self.parts[UUID].table),
                Arc::clone(&self.parts[OTHER].table),
                Arc::clone(&self.parts[SUBJ].table),
                Arc::clone(&self.parts[FAM].table),
            ],
            global: self.global,
            scoped: self.scoped,
        }
    }

    /// Apply one revocation; returns whether the snapshot must be republished.
    fn apply(&mut self, rev: &Revocation, seeds: &Seeds) -> bool {
        let exp = exp_u32(rev.expires_at);
        if let Some(iss) = issuer_of(rev) {
            let Some((p, key)) = seeds.place(rev.scope, Some(iss), &rev.key) else {
                return false;
            };
            let republish = !self.scoped;
            self.scoped = true;
            let rebuilt = match rev.scope {
                // A cut-off: revoking again replaces it, as for unscoped subjects and global.
                Scope::Subject | Scope::Global => {
                    let cutoff = rev.cutoff.unwrap_or(rev.revoked_at);
                    self.parts[p].upsert(key, cutoff, exp, true, seeds)
                }
                Scope::Jti | Scope::Family => self.parts[p].upsert(key, 0, exp, false, seeds),
            };
            return rebuilt || republish;
        }
        match rev.scope {
            Scope::Jti => {
                let (p, key) = seeds.jti_key(&rev.key);
                self.parts[p].upsert(key, 0, exp, false, seeds)
            }
            Scope::Subject => {
                let cutoff = rev.cutoff.unwrap_or(rev.revoked_at);
                let key = seeds.string_key(&rev.key);
                self.parts[SUBJ].upsert(key, cutoff, exp, true, seeds)
            }
            Scope::Family => {
                let key = seeds.string_key(&rev.key);
                self.parts[FAM].upsert(key, 0, exp, false, seeds)
            }
            Scope::Global => {
                self.global = Some(rev.cutoff.unwrap_or(rev.revoked_at));
                self.global_exp = rev.expires_at;
                true
            }
        }
    }
}

impl Default for RevocationSet {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RevocationSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationSet")
            .field("counts", &self.len())
            .field("heap_bytes", &self.heap_bytes())
            .finish_non_exhaustive()
    }
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::build(MIN_GROUPS)
    }

    /// An empty set whose UUID `jti` table holds `jtis` entries without growing (it also never
    /// shrinks below that). Other `jti` forms, subjects and families start small and grow.
    pub fn with_capacity(jtis: usize) -> Self {
        Self::build(groups_for(jtis, RESERVE_LOAD))
    }

    fn build(uuid_groups: usize) -> Self {
        let state = State::new(uuid_groups, uuid_groups);
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        RevocationSet {
            snap: ArcSwap::from_pointee(state.snapshot()),
            gen: AtomicU64::new(0),
            id: NEXT_ID.fetch_add(1, Relaxed),
            writer: Mutex::new(state),
            seeds: Seeds::random(),
            reserved_uuid_groups: uuid_groups,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a table half-written in a way readers
        // could observe (publication is a single store), so a poisoned lock is still usable.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, st: &State) {
        self.snap.store(Arc::new(st.snapshot()));
        // After the store: a reader that sees the new generation loads this snapshot or a
        // newer one; a reader that still sees the old one linearizes before this publication.
        self.gen.fetch_add(1, Release);
    }

    /// Which scope revokes this token, if any. Order: Global, Subject, Family, Jti.
    ///
    /// No I/O, no lock, no waiting on a writer, no allocation in the steady state: one `Acquire`
    /// load validates this thread's cached snapshot, then only atomic loads follow.
    #[inline]
    pub fn check(&self, token: &TokenRef<'_>) -> Option<Scope> {
        let gen = self.gen.load(Acquire);
        let cached = READER.try_with(|cell| {
            if let Ok(c) = cell.try_borrow() {
                if c.set == self.id && c.gen == gen {
                    if let Some(snap) = &c.snap {
                        return Some(self.check_in(snap, token));
                    }
                }
            }
            let mut c = cell.try_borrow_mut().ok()?;
            let snap = self.snap.load_full();
            let found = self.check_in(&snap, token);
            *c = ReaderCache {
                set: self.id,
                gen,
                snap: Some(snap),
            };
            Some(found)
        });
        match cached {
            Ok(Some(found)) => found,
            // Thread-local storage already torn down (thread exit) or re-entered.
            _ => self.check_in(&self.snap.load(), token),
        }
    }

    #[inline(always)]
    fn check_in(&self, snap: &Snapshot, token: &TokenRef<'_>) -> Option<Scope> {
        let before = |cutoff: i64| token.iat.is_none_or(|iat| iat <= cutoff);
        if let Some(cutoff) = snap.global {
            if before(cutoff) {
                return Some(Scope::Global);
            }
        }
        if snap.scoped {
            if let Some(iss) = token.iss {
                if let Some(scope) = self.check_scoped(snap, iss, token) {
                    return Some(scope);
                }
            }
        }
        if let Some(sub) = token.sub {
            let t = &snap.tables[SUBJ];
            if t.live() != 0 {
                let key = self.seeds.string_key(sub);
                if let Some(s) = t.find(key, self.seeds.slot_hash(key)) {
                    if let Some(v) = t.vals.get(s) {
                        if before(v.load(Acquire)) {
                            return Some(Scope::Subject);
                        }
                    }
                }
            }
        }
        if let Some(fid) = token.fid {
            let t = &snap.tables[FAM];
            if t.live() != 0 {
                let key = self.seeds.string_key(fid);
                if t.find(key, self.seeds.slot_hash(key)).is_some() {
                    return Some(Scope::Family);
                }
            }
        }
        if let Some(jti) = token.jti {
            let (t, key) = match parse_uuid(jti) {
                Some(v) => (&snap.tables[UUID], v),
                None => {
                    let t = &snap.tables[OTHER];
                    if t.live() == 0 {
                        return None;
                    }
                    (t, self.seeds.string_key(jti))
                }
            };
            if t.find(key, self.seeds.slot_hash(key)).is_some() {
                return Some(Scope::Jti);
            }
        }
        None
    }

    /// The issuer-scoped entries that cover `token` (from issuer `iss`), in `check`'s order.
    /// Out of line: only apps that accept several issuers get here.
    #[inline(never)]
    fn check_scoped(&self, snap: &Snapshot, iss: &str, token: &TokenRef<'_>) -> Option<Scope> {
        let before = |cutoff: i64| token.iat.is_none_or(|iat| iat <= cutoff);
        let subjects = &snap.tables[SUBJ];
        let cutoff_of = |key: u128| {
            let s = subjects.find(key, self.seeds.slot_hash(key))?;
            subjects.vals.get(s).map(|v| v.load(Acquire))
        };
        if cutoff_of(self.seeds.scoped_key(TAG_GLOBAL, iss, "")).is_some_and(before) {
            return Some(Scope::Global);
        }
        if let Some(sub) = token.sub {
            if cutoff_of(self.seeds.scoped_key(TAG_SUB, iss, sub)).is_some_and(before) {
                return Some(Scope::Subject);
            }
        }
        let listed = |table: usize, tag: u8, key: &str| {
            let k = self.seeds.scoped_key(tag, iss, key);
            snap.tables[table]
                .find(k, self.seeds.slot_hash(k))
                .is_some()
        };
        if token.fid.is_some_and(|fid| listed(FAM, TAG_FAM, fid)) {
            return Some(Scope::Family);
        }
        if token.jti.is_some_and(|jti| listed(OTHER, TAG_JTI, jti)) {
            return Some(Scope::Jti);
        }
        None
    }

    /// Whether `jti` itself is revoked (the `Jti` scope only).
    pub fn contains_jti(&self, jti: &str) -> bool {
        let snap = self.snap.load();
        let (p, key) = self.seeds.jti_key(jti);
        snap.tables[p]
            .find(key, self.seeds.slot_hash(key))
            .is_some()
    }

    /// The cut-off in force for `sub`, if any.
    pub fn subject_cutoff(&self, sub: &str) -> Option<i64> {
        let snap = self.snap.load();
        let t = &snap.tables[SUBJ];
        let key = self.seeds.string_key(sub);
        let s = t.find(key, self.seeds.slot_hash(key))?;
        t.vals.get(s).map(|v| v.load(Acquire))
    }

    /// The global cut-off in force, if any.
    pub fn global_cutoff(&self) -> Option<i64> {
        self.snap.load().global
    }

    /// Revoke one token by `jti`; the entry may be pruned once `expires_at` (the token's `exp`)
    /// has passed. Re-revoking keeps the later expiry.
    pub fn revoke_jti(&self, jti: &str, expires_at: i64) {
        let (p, key) = self.seeds.jti_key(jti);
        let mut st = self.lock();
        if st.parts[p].upsert(key, 0, exp_u32(Some(expires_at)), false, &self.seeds) {
            self.publish(&st);
        }
    }

    /// tokens of `sub` with iat <= cutoff are revoked; replaces any earlier cutoff for sub.
    ///
    /// The expiry is replaced too; `None` never expires.
    pub fn revoke_subject(&self, sub: &str, cutoff: i64, expires_at: Option<i64>) {
        let key = self.seeds.string_key(sub);
        let mut st = self.lock();
        if st.parts[SUBJ].upsert(key, cutoff, exp_u32(expires_at), true, &self.seeds) {
            self.publish(&st);
        }
    }

    /// Revoke every token of session family `fid`. Re-revoking keeps the later expiry
    /// (`None`, never, is the latest).
    pub fn revoke_family(&self, fid: &str, expires_at: Option<i64>) {
        let key = self.seeds.string_key(fid);
        let mut st = self.lock();
        if st.parts[FAM].upsert(key, 0, exp_u32(expires_at), false, &self.seeds) {
            self.publish(&st);
        }
    }

    /// tokens with iat <= cutoff are revoked; None lifts it.
    ///
    /// A cut-off set here never expires through [`prune`](Self::prune).
    pub fn set_global_cutoff(&self, cutoff: Option<i64>) {
        let mut st = self.lock();
        st.global = cutoff;
        st.global_exp = None;
        self.publish(&st);
    }

    /// Apply a stored revocation (dispatch on rev.scope; Global uses rev.cutoff).
    ///
    /// A `Subject` or `Global` revocation without a `cutoff` uses `revoked_at` (a stored
    /// revocation always revokes; lifting is [`restore`](Self::restore)). `expires_at` is kept
    /// for every scope, including `Global`.
    pub fn apply(&self, rev: &Revocation) {
        let mut st = self.lock();
        if st.apply(rev, &self.seeds) {
            self.publish(&st);
        }
    }

    /// Lift a revocation (un-revoke). Global: lifts the cut-off (key ignored). Returns whether
    /// something was removed.
    pub fn restore(&self, scope: Scope, key: &str) -> bool {
        self.restore_scoped(scope, None, key)
    }

    /// Lift a revocation scoped to `issuer` ([`Revocation::issuer`]; `None` or empty: the
    /// unscoped one, as [`restore`](Self::restore)). Only that entry is lifted: an unscoped
    /// revocation of the same key stays, and so do other issuers'.
    pub fn restore_scoped(&self, scope: Scope, issuer: Option<&str>, key: &str) -> bool {
        let issuer = issuer.filter(|i| !i.is_empty());
        let key = if scope == Scope::Global { "" } else { key };
        let (p, k) = match self.seeds.place(scope, issuer, key) {
            Some(place) => place,
            None => {
                let mut st = self.lock();
                let had = st.global.take().is_some();
                st.global_exp = None;
                if had {
                    self.publish(&st);
                }
                return had;
            }
        };
        let mut st = self.lock();
        let part = &mut st.parts[p];
        let removed = part.remove(k, &self.seeds);
        if removed && part.compact_if_needed(&self.seeds) {
            self.publish(&st);
        }
        removed
    }

    /// Replace the whole content atomically (initial load / reload). Readers see either old or
    /// new content, never a mix.
    ///
    /// The new tables are built off to the side (other writers are not blocked meanwhile) and
    /// swapped in with one store; writes made by other threads during the build are replaced.
    pub fn replace_all<'a>(&self, revs: impl IntoIterator<Item = &'a Revocation>) {
        let revs: Vec<&Revocation> = revs.into_iter().collect();
        let mut loader = self.loader();
        let mut counts = [0_usize; 4];
        for rev in &revs {
            if let Some(p) = part_of(rev) {
                counts[p] += 1;
            }
        }
        loader.size_parts(counts);
        for rev in revs {
            loader.push(rev);
        }
        loader.finish();
    }

    /// A [`SetLoader`]: builds this set's next content off to the side, one revocation at a
    /// time (for example straight from a database cursor), for [`SetLoader::finish`] to swap
    /// in like [`replace_all`](Self::replace_all).
    ///
    /// ```
    /// use rocket_revoke_core::{RevocationSet, Revocation, Scope};
    /// let set = RevocationSet::new();
    /// let mut loader = set.loader();
    /// loader.expect(Scope::Jti, 1);
    /// loader.push(&Revocation {
    ///     scope: Scope::Jti,
    ///     key: "a".into(),
    ///     issuer: None,
    ///     cutoff: None,
    ///     expires_at: None,
    ///     reason: None,
    ///     actor: None,
    ///     revoked_at: 0,
    /// });
    /// assert!(!set.contains_jti("a"), "nothing changes before finish");
    /// loader.finish();
    /// assert!(set.contains_jti("a"));
    /// ```
    pub fn loader(&self) -> SetLoader<'_> {
        SetLoader {
            set: self,
            fresh: State::new(MIN_GROUPS, self.reserved_uuid_groups),
            pushed: 0,
        }
    }

    /// Drop entries whose expires_at < now; returns how many were dropped.
    ///
    /// Dropped entries become tombstones; a table with many tombstones, or far too big for what
    /// is left, is rebuilt at its target size so memory stays bounded.
    pub fn prune(&self, now: i64) -> usize {
        let mut st = self.lock();
        let mut dropped = 0;
        let mut republish = false;
        for part in st.parts.iter_mut() {
            let n = part.prune(now);
            if n > 0 {
                dropped += n;
                republish |= part.compact_if_needed(&self.seeds);
            }
        }
        if st.global.is_some() && st.global_exp.is_some_and(|e| e < now) {
            st.global = None;
            st.global_exp = None;
            dropped += 1;
            republish = true;
        }
        if republish {
            self.publish(&st);
        }
        dropped
    }

    /// How many entries of each kind the set holds.
    pub fn len(&self) -> SetCounts {
        let snap = self.snap.load();
        SetCounts {
            jtis: snap.tables[UUID].live() + snap.tables[OTHER].live(),
            subjects: snap.tables[SUBJ].live(),
            families: snap.tables[FAM].live(),
            global: snap.global.is_some(),
        }
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len().is_empty()
    }

    /// Approximate heap bytes held (from capacities), for stats and the memory benchmark.
    ///
    /// Counts the published tables (control, key and value arrays), the writer-side expiry
    /// arrays and the snapshot. During a rebuild the old tables stay alive until the last
    /// reader drops them; that transient is not counted.
    pub fn heap_bytes(&self) -> usize {
        let snap = self.snap.load();
        std::mem::size_of::<Snapshot>()
            + snap
                .tables
                .iter()
                .map(|t| t.heap_bytes() + 2 * std::mem::size_of::<usize>())
                .sum::<usize>()
    }

    /// Heap bytes of the UUID `jti` table alone (for the memory benchmark).
    pub fn uuid_table_bytes(&self) -> usize {
        self.snap.load().tables[UUID].heap_bytes()
    }
}
