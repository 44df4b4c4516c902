//! The revocation set: the in-memory hot path that answers "is this token revoked?".
//!
//! # Design
//!
//! * **Four tables, one snapshot.** Revoked UUID `jti`s, other `jti`s, subjects (with their
//!   cut-off) and families each live in their own open-addressing `Table`. The four tables and
//!   the global cut-off form one `Snapshot` published through an [`ArcSwap`] (so
//!   [`RevocationSet::replace_all`] swaps everything at once) together with a generation counter.
//!   [`RevocationSet::check`] revalidates the calling thread's cached `Arc<Snapshot>` with one
//!   `Acquire` load of that counter and then does only atomic loads: no lock, no read-modify-write,
//!   no I/O, no waiting on a writer, no allocation. Only after a publication (a rebuild, a global
//!   cut-off change, a reload) does a thread's next check take the `ArcSwap::load_full` slow path.
//!   (Plain `ArcSwap::load` costs two locked read-modify-writes per call; they are full barriers
//!   that stop the CPU from overlapping the cache misses of consecutive checks.)
//!   Cost of the cache: a thread keeps the snapshot it used last alive until its next check of
//!   the same set (or of another set, or its exit), so after a rebuild an idle thread can pin
//!   one old table generation.
//! * **Insert-only tables.** A writer (serialized on a `Mutex` that readers never touch) inserts
//!   into the published table in place: it writes the key words and then publishes the slot by
//!   storing its control byte with `Release`. A key slot is written exactly once, while its
//!   control byte is still `EMPTY`, and is never overwritten. Removal (`restore`, `prune`) only
//!   turns a control byte into a tombstone. Growth, shrinking and compaction build a fresh table
//!   and swap a new snapshot in; readers still holding the old snapshot keep a consistent view.
//! * **Table layout** (SwissTable-like): slots come in groups of 8; each group has one
//!   `AtomicU64` control word holding 8 control bytes (`0` empty, `1` tombstone, `2..=255` a
//!   7.99-bit tag taken from the hash). Keys are `[AtomicU64; 2]` (hi, lo) in a separate array,
//!   so a miss usually touches only the compact control array (about 1.2 bytes per entry) and
//!   compares a key only when a tag matches (about 1 in 254 per occupied slot). Group indexes
//!   use multiply-shift range reduction, so the number of groups is not a power of two and the
//!   load factor can be chosen freely: tables are rebuilt at `MAX_LOAD` occupancy to
//!   `TARGET_LOAD`, which keeps a UUID entry between about 25 and 39 heap bytes
//!   (16 key + 1 control + 4 writer-side expiry bytes per slot).
//! * **Torn reads cannot happen.** A reader reads a slot's two key words only after it has
//!   loaded (with `Acquire`) a control word in which that slot carries a tag; the writer stored
//!   both key words before storing that control word with `Release`, and never writes them
//!   again. So the reader sees both final halves. A reader that loads the control word before
//!   the publication sees `EMPTY` and treats the key as "not yet inserted", which is the correct
//!   linearization of a concurrent insert. Because occupancy lives in the control byte, the
//!   all-zero key (the nil UUID) is an ordinary key: there is no key value reserved as an
//!   empty-slot marker.
//! * **Probe termination.** Insertion puts a key in the first group (in probe order) that has an
//!   `EMPTY` byte, and bytes never go back to `EMPTY` (tombstones are non-zero), so a lookup can
//!   stop at the first group with an `EMPTY` byte. A rebuild keeps occupancy below 100 %, so a
//!   lookup always terminates (it is also bounded by the number of groups).
//! * **Expiry is writer-side.** Readers never need it, so each table's per-slot expiry is a
//!   `u32` (seconds since the epoch, `u32::MAX` = never) in a parallel array owned by the
//!   writer. Expiries are clamped to `0..u32::MAX - 1` (1970 to 2106).
//!
//! # Keys
//!
//! * A `jti` that is a 36-character hyphenated lower-case UUID is parsed into its `u128`
//!   value: no hashing, no `String`. Only that exact form is parsed; an upper- or mixed-case
//!   spelling, a 32-digit "simple" UUID, a braced or `urn:uuid:` form is a different string
//!   and goes through the string path, so the set matches jtis exactly as the database does.
//! * Every other `jti`, every `sub` and every `fid` is keyed by a 128-bit xxh3 hash of its bytes,
//!   seeded with a random per-set seed, in its own table (so a string's hash can never be confused
//!   with a UUID value). For `n` distinct strings in one table the chance that any two share a
//!   hash is about `n² / 2¹²⁹` (≈ 1.5·10⁻²⁷ at a million entries). The failure mode is fail-closed:
//!   a collision can only make an unrevoked token look revoked, never let a revoked one through.
//!   The random seed keeps the hash (and the slot hash below) unpredictable from outside, so
//!   chosen `jti`s cannot be used to build long probe chains or collisions.
//! * A revocation scoped to an issuer ([`Revocation::issuer`]) is keyed by a hash of its scope
//!   tag, the issuer and the key in a domain (seed) of its own, in the table of its scope (a
//!   scoped `jti` in the string-`jti` table, an issuer's global cut-off in the subject table,
//!   whose value it uses). A check looks for scoped entries only once one has been applied
//!   (a flag in the snapshot), so an app with one issuer does exactly the lookups it did
//!   before; one that has them does up to four more hashed lookups for a token with `iss`.
//! * Slots are chosen by a seeded folded multiply of the two key halves (quality comparable to
//!   foldhash), so sequential or time-ordered UUIDs (v7) spread as well as random ones.
//!
//! # Merging and expiry rules
//!
//! * Revoking a `jti` or a family that is already revoked keeps the later expiry (`None`, never,
//!   is the latest).
//! * Revoking a subject again replaces both its cut-off and its expiry.
//! * The global cut-off is a single value: setting it replaces it. [`RevocationSet::apply`] of a
//!   global revocation keeps its `expires_at`, so [`RevocationSet::prune`] can drop it;
//!   [`RevocationSet::set_global_cutoff`] sets one that never expires.

use crate::{Revocation, Scope, TokenRef};
use arc_swap::ArcSwap;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use xxhash_rust::xxh3::{xxh3_128_with_seed, Xxh3};

/// Slots per group (one control word).
const GROUP: usize = 8;
/// Control byte of a never-used slot (found with [`zero_bytes`], hence the value 0).
const EMPTY: u8 = 0;
/// Control byte of a removed slot (its key words stay, the slot is never reused).
const TOMB: u8 = 1;
const _: () = assert!(EMPTY == 0 && TOMB == EMPTY + 1);
/// Occupancy (live + tombstones) / slots above which an insert rebuilds the table.
const MAX_LOAD: f64 = 0.85;
/// Live entries / slots right after a rebuild.
const TARGET_LOAD: f64 = 0.55;
/// Below this live / slots (after a removal), a table is shrunk.
const SHRINK_LOAD: f64 = 0.25;
/// Load used by [`RevocationSet::with_capacity`] for the reserved UUID table.
const RESERVE_LOAD: f64 = 0.80;
/// Smallest table, in groups.
const MIN_GROUPS: usize = 2;
/// Writer-side expiry of an entry that never expires.
const NEVER: u32 = u32::MAX;

const LOW_BYTES: u64 = 0x0101_0101_0101_0101;
const LOW7_BITS: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// Table indexes inside a [`Snapshot`] and the writer [`State`].
const UUID: usize = 0;
const OTHER: usize = 1;
const SUBJ: usize = 2;
const FAM: usize = 3;

/// Tags of issuer-scoped keys ([`Seeds::scoped_key`]).
const TAG_JTI: u8 = b'j';
const TAG_SUB: u8 = b's';
const TAG_FAM: u8 = b'f';
const TAG_GLOBAL: u8 = b'g';

/// The issuer a revocation is scoped to; an empty one is no scope (as the database stores it).
fn issuer_of(rev: &Revocation) -> Option<&str> {
    rev.issuer.as_deref().filter(|i| !i.is_empty())
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
/// writers serialize among themselves. See the [module documentation](self) for the design.
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

/// Per-set random seeds.
#[derive(Clone, Copy)]
struct Seeds {
    /// Seed of the 128-bit string hash.
    string: u64,
    /// Seed of the 128-bit hash of issuer-scoped keys: a domain of its own, so a scoped key
    /// never shares a hash with an unscoped string.
    scoped: u64,
    /// Seeds of the slot hash.
    slot: [u64; 2],
}

impl Seeds {
    fn random() -> Self {
        Seeds {
            string: rand::random(),
            scoped: rand::random(),
            // The folded multiply degenerates when a factor is 0; odd seeds make that a
            // one-in-2^64 event per key half instead of a structural one.
            slot: [rand::random::<u64>() | 1, rand::random::<u64>() | 1],
        }
    }

    #[inline]
    fn string_key(&self, s: &str) -> u128 {
        xxh3_128_with_seed(s.as_bytes(), self.string)
    }

    /// Key of an issuer-scoped entry: the tag (which scope), the issuer's length, the issuer
    /// and the key, hashed in the scoped domain. The length prefix keeps `("a", "bc")` and
    /// `("ab", "c")` apart; the tag keeps an issuer's global cut-off, which shares the
    /// subject table, apart from its subjects. Streams the parts: no allocation.
    #[inline]
    fn scoped_key(&self, tag: u8, iss: &str, key: &str) -> u128 {
        let mut h = Xxh3::with_seed(self.scoped);
        let len = u32::try_from(iss.len()).unwrap_or(u32::MAX);
        h.update(&[tag]);
        h.update(&len.to_le_bytes());
        h.update(iss.as_bytes());
        h.update(key.as_bytes());
        h.digest128()
    }

    /// Which table a revocation goes to, and its key there: issuer-scoped ones are hashed
    /// with their issuer ([`Seeds::scoped_key`]); an issuer's global cut-off goes to the
    /// subject table (it has a value). `None` for the set-wide global cut-off.
    fn place(&self, scope: Scope, issuer: Option<&str>, key: &str) -> Option<(usize, u128)> {
        match (issuer, scope) {
            (None, Scope::Global) => None,
            (None, Scope::Jti) => Some(self.jti_key(key)),
            (None, Scope::Subject) => Some((SUBJ, self.string_key(key))),
            (None, Scope::Family) => Some((FAM, self.string_key(key))),
            (Some(iss), Scope::Jti) => Some((OTHER, self.scoped_key(TAG_JTI, iss, key))),
            (Some(iss), Scope::Subject) => Some((SUBJ, self.scoped_key(TAG_SUB, iss, key))),
            (Some(iss), Scope::Family) => Some((FAM, self.scoped_key(TAG_FAM, iss, key))),
            (Some(iss), Scope::Global) => Some((SUBJ, self.scoped_key(TAG_GLOBAL, iss, ""))),
        }
    }

    /// 64-bit slot hash of a 128-bit key: one seeded folded multiply.
    #[inline]
    fn slot_hash(&self, key: u128) -> u64 {
        let (hi, lo) = split(key);
        let p = u128::from(lo ^ self.slot[0]) * u128::from(hi ^ self.slot[1]);
        (p as u64) ^ ((p >> 64) as u64)
    }

    /// Which jti table a `jti` goes to, and its key there.
    #[inline]
    fn jti_key(&self, jti: &str) -> (usize, u128) {
        match parse_uuid(jti) {
            Some(v) => (UUID, v),
            None => (OTHER, self.string_key(jti)),
        }
    }
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

/// One insert-only open-addressing table of 128-bit keys (see the module documentation).
struct Table {
    /// One word per group; byte `i` is the control byte of slot `group * 8 + i`.
    ctrl: Box<[AtomicU64]>,
    /// `[hi, lo]` per slot; written once, before the slot's control byte is published.
    keys: Box<[[AtomicU64; 2]]>,
    /// Per-slot value (the subject cut-off); empty for tables without values.
    vals: Box<[AtomicI64]>,
    /// Live entries (written by the writer only).
    live: AtomicUsize,
    /// Tombstones (written by the writer only).
    tombs: AtomicUsize,
}

#[inline]
fn split(key: u128) -> (u64, u64) {
    ((key >> 64) as u64, key as u64)
}

/// `0x80` in every byte of `x` that is zero, `0` elsewhere (exact, no false positives).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    let y = (x & LOW7_BITS).wrapping_add(LOW7_BITS);
    !(y | x | LOW7_BITS)
}

/// Control tag of a hash: its low byte, moved out of the reserved `EMPTY`/`TOMB` values.
#[inline]
fn tag_of(h: u64) -> u8 {
    let t = h as u8;
    if t <= TOMB {
        t | 2
    } else {
        t
    }
}

/// Multiply-shift range reduction of a hash to `0..n`.
#[inline]
fn reduce(h: u64, n: usize) -> usize {
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// Groups needed to hold `n` entries at `load`.
fn groups_for(n: usize, load: f64) -> usize {
    let groups = (n as f64 / (load * GROUP as f64)).ceil() as usize;
    groups.max(MIN_GROUPS)
}

impl Table {
    fn new(groups: usize, with_vals: bool) -> Self {
        let groups = groups.max(MIN_GROUPS);
        let slots = groups * GROUP;
        Table {
            ctrl: (0..groups).map(|_| AtomicU64::new(0)).collect(),
            keys: (0..slots)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            vals: if with_vals {
                (0..slots).map(|_| AtomicI64::new(0)).collect()
            } else {
                Box::default()
            },
            live: AtomicUsize::new(0),
            tombs: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn groups(&self) -> usize {
        self.ctrl.len()
    }

    #[inline]
    fn slots(&self) -> usize {
        self.keys.len()
    }

    #[inline]
    fn live(&self) -> usize {
        self.live.load(Acquire)
    }

    #[inline]
    fn has_vals(&self) -> bool {
        !self.vals.is_empty()
    }

    /// Heap bytes of this table plus the writer-side expiry array of the same length.
    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Table>()
            + self.ctrl.len() * std::mem::size_of::<AtomicU64>()
            + self.keys.len() * std::mem::size_of::<[AtomicU64; 2]>()
            + self.vals.len() * std::mem::size_of::<AtomicI64>()
            + self.slots() * std::mem::size_of::<u32>()
    }

    /// The slot holding `key` (whose slot hash is `h`), if it is live. Lock-free, wait-free
    /// (bounded by the number of groups), allocation-free.
    #[inline(always)]
    fn find(&self, key: u128, h: u64) -> Option<usize> {
        let (hi, lo) = split(key);
        let want = LOW_BYTES.wrapping_mul(u64::from(tag_of(h)));
        let n = self.groups();
        let mut g = reduce(h, n);
        for _ in 0..n {
            // Acquire pairs with the writer's Release store of this word: every slot whose
            // tag we see here has both key words visible (see "Torn reads" in the module docs).
            let w = self.ctrl[g].load(Acquire);
            let mut m = zero_bytes(w ^ want);
            while m != 0 {
                let s = g * GROUP + (m.trailing_zeros() / 8) as usize;
                let k = &self.keys[s];
                if k[0].load(Relaxed) == hi && k[1].load(Relaxed) == lo {
                    return Some(s);
                }
                m &= m - 1;
            }
            if zero_bytes(w) != 0 {
                return None;
            }
            g += 1;
            if g == n {
                g = 0;
            }
        }
        None
    }

    /// Writer only: put an absent `key` in the first free slot of its probe sequence.
    /// Returns `None` only if the table is full (callers rebuild before that can happen).
    fn insert_new(&self, key: u128, h: u64, val: i64) -> Option<usize> {
        let (hi, lo) = split(key);
        let n = self.groups();
        let mut g = reduce(h, n);
        for _ in 0..n {
            let w = self.ctrl[g].load(Relaxed);
            let free = zero_bytes(w);
            if free != 0 {
                let i = (free.trailing_zeros() / 8) as usize;
                let s = g * GROUP + i;
                if let Some(v) = self.vals.get(s) {
                    v.store(val, Relaxed);
                }
                // The key words are written once, here, while the slot is still EMPTY: no
                // reader reads them before the Release store below publishes the tag.
                self.keys[s][0].store(hi, Relaxed);
                self.keys[s][1].store(lo, Relaxed);
                self.ctrl[g].store(w | (u64::from(tag_of(h)) << (8 * i)), Release);
                self.live.store(self.live.load(Relaxed) + 1, Release);
                return Some(s);
            }
            g += 1;
            if g == n {
                g = 0;
            }
        }
        None
    }

    /// Writer only: turn live slot `s` into a tombstone.
    fn kill(&self, s: usize) {
        let (g, i) = (s / GROUP, s % GROUP);
        let w = self.ctrl[g].load(Relaxed);
        let w = (w & !(0xFF_u64 << (8 * i))) | (u64::from(TOMB) << (8 * i));
        self.ctrl[g].store(w, Release);
        self.live.store(self.live.load(Relaxed) - 1, Release);
        self.tombs.store(self.tombs.load(Relaxed) + 1, Relaxed);
    }

    /// Writer only: whether slot `s` holds a live entry.
    fn is_live(&self, s: usize) -> bool {
        let w = self.ctrl[s / GROUP].load(Relaxed);
        ((w >> (8 * (s % GROUP))) as u8) > TOMB
    }

    /// Writer only: the key and value of slot `s`.
    fn entry(&self, s: usize) -> (u128, i64) {
        let k = &self.keys[s];
        let key = (u128::from(k[0].load(Relaxed)) << 64) | u128::from(k[1].load(Relaxed));
        let val = self.vals.get(s).map_or(0, |v| v.load(Relaxed));
        (key, val)
    }
}

/// One table as the writer sees it: the shared table plus its writer-side expiries.
struct Part {
    table: Arc<Table>,
    /// Expiry per slot (seconds since the epoch, [`NEVER`] for none).
    exp: Box<[u32]>,
    /// The table never shrinks below this many groups.
    min_groups: usize,
}

impl Part {
    fn new(groups: usize, with_vals: bool, min_groups: usize) -> Self {
        let table = Table::new(groups.max(min_groups), with_vals);
        let exp = vec![NEVER; table.slots()].into_boxed_slice();
        Part {
            table: Arc::new(table),
            exp,
            min_groups,
        }
    }

    /// Build a fresh table sized for `want` live entries and copy the live entries over.
    fn rebuild(&mut self, want: usize, seeds: &Seeds) {
        let old = &self.table;
        let mut fresh = Part::new(
            groups_for(want, TARGET_LOAD),
            old.has_vals(),
            self.min_groups,
        );
        for s in 0..old.slots() {
            if old.is_live(s) {
                let (key, val) = old.entry(s);
                // A fresh table sized at TARGET_LOAD < 1 always has room.
                if let Some(t) = fresh.table.insert_new(key, seeds.slot_hash(key), val) {
                    fresh.exp[t] = self.exp[s];
                }
            }
        }
        *self = fresh;
    }

    /// Insert or update. Returns whether the table was replaced (the snapshot must be
    /// republished).
    fn upsert(&mut self, key: u128, val: i64, exp: u32, replace: bool, seeds: &Seeds) -> bool {
        let h = seeds.slot_hash(key);
        if let Some(s) = self.table.find(key, h) {
            if replace {
                if let Some(v) = self.table.vals.get(s) {
                    v.store(val, Release);
                }
                self.exp[s] = exp;
            } else {
                // NEVER is u32::MAX, so max keeps "never" over any date.
                self.exp[s] = self.exp[s].max(exp);
            }
            return false;
        }
        let mut rebuilt = false;
        let live = self.table.live();
        let occupied = live + self.table.tombs.load(Relaxed);
        if (occupied + 1) as f64 > MAX_LOAD * self.table.slots() as f64 {
            self.rebuild(live + 1, seeds);
            rebuilt = true;
        }
        loop {
            if let Some(s) = self.table.insert_new(key, h, val) {
                self.exp[s] = exp;
                return rebuilt;
            }
            // Unreachable with the load limits above; stay correct anyway.
            let want = self.table.slots();
            self.rebuild(want, seeds);
            rebuilt = true;
        }
    }

    /// Tombstone `key`; returns whether it was live.
    fn remove(&mut self, key: u128, seeds: &Seeds) -> bool {
        match self.table.find(key, seeds.slot_hash(key)) {
            Some(s) => {
                self.table.kill(s);
                true
            }
            None => false,
        }
    }

    /// After removals: rebuild if tombstones pile up or the table is far too big. Returns
    /// whether the table was replaced.
    fn compact_if_needed(&mut self, seeds: &Seeds) -> bool {
        let t = &self.table;
        let tombs = t.tombs.load(Relaxed);
        if tombs == 0 {
            return false;
        }
        let live = t.live();
        let slots = t.slots();
        let oversized = t.groups() > self.min_groups.max(groups_for(live, TARGET_LOAD))
            && (live as f64) < SHRINK_LOAD * slots as f64;
        if tombs * 8 >= slots || oversized {
            self.rebuild(live, seeds);
            true
        } else {
            false
        }
    }

    /// Tombstone every entry with an expiry before `now`; returns how many.
    fn prune(&mut self, now: i64) -> usize {
        let mut dropped = 0;
        for s in 0..self.table.slots() {
            let e = self.exp[s];
            if e != NEVER && i64::from(e) < now && self.table.is_live(s) {
                self.table.kill(s);
                dropped += 1;
            }
        }
        dropped
    }
}

/// The next content of a [`RevocationSet`], built off to the side ([`RevocationSet::loader`]).
///
/// Dropping it without [`finish`](Self::finish) leaves the set unchanged.
pub struct SetLoader<'s> {
    set: &'s RevocationSet,
    fresh: State,
    pushed: usize,
}

impl SetLoader<'_> {
    /// Sizes the table for `scope` to hold `revocations` without growing. A hint, only
    /// honoured before the first [`push`](Self::push); `jti` counts go to the UUID table.
    pub fn expect(&mut self, scope: Scope, revocations: usize) {
        let p = match scope {
            Scope::Jti => UUID,
            Scope::Subject => SUBJ,
            Scope::Family => FAM,
            Scope::Global => return,
        };
        let mut counts = [0; 4];
        counts[p] = revocations;
        self.size_parts(counts);
    }

    /// Resizes the (still empty) parts with a non-zero count.
    fn size_parts(&mut self, counts: [usize; 4]) {
        if self.pushed > 0 {
            return;
        }
        for (p, &n) in counts.iter().enumerate().filter(|(_, &n)| n > 0) {
            let part = &mut self.fresh.parts[p];
            *part = Part::new(groups_for(n, TARGET_LOAD), p == SUBJ, part.min_groups);
        }
    }

    /// Adds one stored revocation, as [`RevocationSet::apply`] would.
    pub fn push(&mut self, rev: &Revocation) {
        self.fresh.apply(rev, &self.set.seeds);
        self.pushed += 1;
    }

    /// How many revocations were pushed.
    pub fn pushed(&self) -> usize {
        self.pushed
    }

    /// Swaps the new content in, at once for every reader.
    pub fn finish(self) {
        let mut st = self.set.lock();
        *st = self.fresh;
        self.set.publish(&st);
    }
}

impl fmt::Debug for SetLoader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetLoader")
            .field("pushed", &self.pushed)
            .finish_non_exhaustive()
    }
}

/// The table a stored revocation goes to (`None` for the global cut-off).
fn part_of(rev: &Revocation) -> Option<usize> {
    if issuer_of(rev).is_some() {
        return Some(
            if rev.scope == Scope::Global || rev.scope == Scope::Subject {
                SUBJ
            } else if rev.scope == Scope::Family {
                FAM
            } else {
                OTHER
            },
        );
    }
    match rev.scope {
        Scope::Jti if parse_uuid(&rev.key).is_some() => Some(UUID),
        Scope::Jti => Some(OTHER),
        Scope::Subject => Some(SUBJ),
        Scope::Family => Some(FAM),
        Scope::Global => None,
    }
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

/// Writer-side expiry: `None` is [`NEVER`]; dates are clamped to what a `u32` holds.
fn exp_u32(expires_at: Option<i64>) -> u32 {
    match expires_at {
        None => NEVER,
        Some(e) => e.clamp(0, i64::from(NEVER - 1)) as u32,
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Eight ASCII hex digits (first digit in the lowest byte) to their value, SWAR-style.
/// Returns the value and a mask that is non-zero if any byte is not a hex digit.
#[inline(always)]
fn hex8(x: u64) -> (u64, u64) {
    // For bytes below 0x80, `b + (0x80 - lo)` has bit 7 set iff `b >= lo` and
    // `b + (0x7F - hi)` has bit 7 set iff `b > hi`; neither carries into the next byte.
    // A byte of 0x80 or more is flagged by `x & HIGH` (it may disturb its neighbours'
    // tests, but the whole run is rejected anyway).
    let in_range = |v: u64, lo: u8, hi: u8| {
        v.wrapping_add(ONES * u64::from(0x80 - lo)) & !v.wrapping_add(ONES * u64::from(0x7F - hi))
    };
    let digit = in_range(x, b'0', b'9');
    // Lower case only: the database compares jtis as exact strings, so the set must too.
    let letter = in_range(x, b'a', b'f');
    let bad = (((digit | letter) & HIGH) ^ HIGH) | (x & HIGH);
    // '0'..='9' -> low nibble; 'a'..='f' (bit 6 set) -> low nibble + 9.
    let nib = (x & (ONES * 0x0F)) + 9 * ((x >> 6) & ONES);
    // First digit to the most significant position, then squeeze 8 nibbles into 32 bits.
    let v = nib.swap_bytes();
    let v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
    let v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
    let v = (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF;
    (v, bad)
}

#[inline(always)]
fn le8(b: &[u8; 36], i: usize) -> u64 {
    u64::from_le_bytes([
        b[i],
        b[i + 1],
        b[i + 2],
        b[i + 3],
        b[i + 4],
        b[i + 5],
        b[i + 6],
        b[i + 7],
    ])
}

#[inline(always)]
fn le4(b: &[u8; 36], i: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]))
}

/// The value of a 36-character hyphenated lower-case UUID (`8-4-4-4-12` hex digits). Any
/// other spelling is an ordinary string key: jtis match exactly, as in the database.
#[inline]
fn parse_uuid(s: &str) -> Option<u128> {
    let b: &[u8; 36] = s.as_bytes().try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let (a, bad_a) = hex8(le8(b, 0));
    let (c, bad_c) = hex8(le4(b, 9) | (le4(b, 14) << 32));
    let (d, bad_d) = hex8(le4(b, 19) | (le4(b, 24) << 32));
    let (e, bad_e) = hex8(le8(b, 28));
    if bad_a | bad_c | bad_d | bad_e != 0 {
        return None;
    }
    Some((u128::from((a << 32) | c) << 64) | u128::from((d << 32) | e))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Barrier;

    fn jti(j: &str) -> TokenRef<'_> {
        TokenRef {
            jti: Some(j),
            ..TokenRef::default()
        }
    }

    /// A distinct UUID per `i` (`uuid_str(0)` is the nil UUID).
    fn uuid_str(i: u64) -> String {
        uuid::Uuid::from_u128(u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
            .hyphenated()
            .to_string()
    }

    const U: &str = "550e8400-e29b-41d4-a716-446655440000";
    const NIL: &str = "00000000-0000-0000-0000-000000000000";

    #[test]
    fn a_loader_swaps_everything_in_at_finish_and_a_dropped_one_changes_nothing() {
        let set = RevocationSet::new();
        set.revoke_jti("old", i64::MAX);
        set.revoke_subject("alice", 100, None);

        let mut dropped = set.loader();
        dropped.push(&rev(Scope::Jti, "never", None, None));
        drop(dropped);
        assert!(!set.contains_jti("never"));
        assert!(set.contains_jti("old"));

        let mut loader = set.loader();
        loader.expect(Scope::Jti, 1_000);
        loader.expect(Scope::Family, 10);
        for i in 0..1_000 {
            loader.push(&rev(Scope::Jti, &uuid_str(i), None, None));
        }
        loader.push(&rev(Scope::Jti, "not-a-uuid", None, None));
        loader.push(&rev(Scope::Family, "f1", None, None));
        loader.push(&rev(Scope::Subject, "bob", Some(50), None));
        // A hint after the first push is ignored: the table keeps what it holds.
        loader.expect(Scope::Jti, 10);
        assert_eq!(loader.pushed(), 1_003);
        assert!(
            !set.contains_jti("not-a-uuid"),
            "nothing visible before finish"
        );
        loader.finish();

        let counts = set.len();
        assert_eq!(
            (counts.jtis, counts.subjects, counts.families),
            (1_001, 1, 1)
        );
        assert!((0..1_000).all(|i| set.contains_jti(&uuid_str(i))));
        assert!(set.contains_jti("not-a-uuid"));
        assert!(!set.contains_jti("old"), "the old content is replaced");
        assert_eq!(set.subject_cutoff("alice"), None);
        assert_eq!(set.subject_cutoff("bob"), Some(50));
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
    fn set_parse_uuid_forms() {
        assert_eq!(parse_uuid(NIL), Some(0));
        assert_eq!(
            parse_uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"),
            Some(u128::MAX)
        );
        assert_eq!(parse_uuid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"), None);
        let v = uuid::Uuid::parse_str(U).unwrap().as_u128();
        assert_eq!(parse_uuid(U), Some(v));
        assert_eq!(parse_uuid(&U.to_uppercase()), None);
        assert_eq!(parse_uuid("550e8400e29b41d4a716446655440000"), None);
        assert_eq!(parse_uuid("550e8400-e29b-41d4-a716-44665544000g"), None);
        assert_eq!(parse_uuid("550e8400-e29b-41d4-a716_446655440000"), None);
        assert_eq!(parse_uuid("{550e8400-e29b-41d4-a716-4466554400}"), None);
        assert_eq!(parse_uuid("550e8400-e29b-41d4-a716-44665544000é"), None);
        assert_eq!(parse_uuid(""), None);
    }

    /// The SWAR parser agrees with the `uuid` crate on every single-byte mutation.
    #[test]
    fn set_parse_uuid_matches_reference() {
        let reference = |s: &[u8]| -> Option<u128> {
            let ok = s.len() == 36
                && s.iter().enumerate().all(|(i, c)| {
                    if matches!(i, 8 | 13 | 18 | 23) {
                        *c == b'-'
                    } else {
                        c.is_ascii_digit() || (b'a'..=b'f').contains(c)
                    }
                });
            ok.then(|| uuid::Uuid::try_parse_ascii(s).unwrap().as_u128())
        };
        let bases = [
            U.to_owned(),
            U.to_uppercase(),
            NIL.to_owned(),
            "aBcDeF09-1234-5678-9AbC-dEf012345678".to_owned(),
            uuid_str(7),
        ];
        for base in bases {
            assert_eq!(parse_uuid(&base), reference(base.as_bytes()), "{base}");
            for pos in 0..36 {
                for byte in 0..=255_u8 {
                    let mut b = base.clone().into_bytes();
                    b[pos] = byte;
                    match String::from_utf8(b) {
                        Ok(m) => assert_eq!(parse_uuid(&m), reference(m.as_bytes()), "{m:?}"),
                        Err(e) => assert_eq!(reference(e.as_bytes()), None),
                    }
                }
            }
        }
        for i in 0..1000 {
            let u = uuid_str(i);
            let v = uuid::Uuid::parse_str(&u).unwrap().as_u128();
            assert_eq!(parse_uuid(&u), Some(v));
            let upper = u.to_uppercase();
            if upper != u {
                assert_eq!(parse_uuid(&upper), None);
            }
        }
    }

    #[test]
    fn set_zero_bytes_is_exact() {
        assert_eq!(zero_bytes(0), 0x8080_8080_8080_8080);
        assert_eq!(zero_bytes(u64::MAX), 0);
        assert_eq!(zero_bytes(0x0100_0000_0000_0001), 0x0080_8080_8080_8000);
        assert_eq!(zero_bytes(0x8000_0000_0000_0080), 0x0080_8080_8080_8000);
        for b in 1..=255_u64 {
            assert_eq!(zero_bytes(b << 8), 0x8080_8080_8080_0080);
        }
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

    fn rev(scope: Scope, key: &str, cutoff: Option<i64>, exp: Option<i64>) -> Revocation {
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
    fn set_exp_clamping() {
        assert_eq!(exp_u32(None), NEVER);
        assert_eq!(exp_u32(Some(-5)), 0);
        assert_eq!(exp_u32(Some(i64::MAX)), NEVER - 1);
        assert_eq!(exp_u32(Some(1_700_000_000)), 1_700_000_000);
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
}
