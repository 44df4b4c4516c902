//! The concurrent table: one insert-only open-addressing table of 128-bit keys that
//! readers probe with atomic loads only, and its writer-side companion (`Part`).
//!
//! # Invariants
//!
//! * **Insert-only.** A writer (serialized on a `Mutex` that readers never touch) inserts
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

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize};
use std::sync::Arc;

use super::placement::{split, Seeds};

/// Slots per group (one control word).
pub(super) const GROUP: usize = 8;
/// Control byte of a never-used slot (found with [`zero_bytes`], hence the value 0).
pub(super) const EMPTY: u8 = 0;
/// Control byte of a removed slot (its key words stay, the slot is never reused).
pub(super) const TOMB: u8 = 1;
const _: () = assert!(EMPTY == 0 && TOMB == EMPTY + 1);
/// Occupancy (live + tombstones) / slots above which an insert rebuilds the table.
pub(super) const MAX_LOAD: f64 = 0.85;
/// Live entries / slots right after a rebuild.
pub(super) const TARGET_LOAD: f64 = 0.55;
/// Below this live / slots (after a removal), a table is shrunk.
pub(super) const SHRINK_LOAD: f64 = 0.25;
/// Load used by [`RevocationSet::with_capacity`] for the reserved UUID table.
pub(super) const RESERVE_LOAD: f64 = 0.80;
/// Smallest table, in groups.
pub(super) const MIN_GROUPS: usize = 2;
/// Writer-side expiry of an entry that never expires.
pub(super) const NEVER: u32 = u32::MAX;

pub(super) const LOW_BYTES: u64 = 0x0101_0101_0101_0101;
pub(super) const LOW7_BITS: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// One insert-only open-addressing table of 128-bit keys (see the module documentation).
pub(super) struct Table {
    /// One word per group; byte `i` is the control byte of slot `group * 8 + i`.
    pub(super) ctrl: Box<[AtomicU64]>,
    /// `[hi, lo]` per slot; written once, before the slot's control byte is published.
    pub(super) keys: Box<[[AtomicU64; 2]]>,
    /// Per-slot value (the subject cut-off); empty for tables without values.
    pub(super) vals: Box<[AtomicI64]>,
    /// Live entries (written by the writer only).
    pub(super) live: AtomicUsize,
    /// Tombstones (written by the writer only).
    pub(super) tombs: AtomicUsize,
}

/// `0x80` in every byte of `x` that is zero, `0` elsewhere (exact, no false positives).
#[inline]
pub(super) fn zero_bytes(x: u64) -> u64 {
    let y = (x & LOW7_BITS).wrapping_add(LOW7_BITS);
    !(y | x | LOW7_BITS)
}

/// Control tag of a hash: its low byte, moved out of the reserved `EMPTY`/`TOMB` values.
#[inline]
pub(super) fn tag_of(h: u64) -> u8 {
    let t = h as u8;
    if t <= TOMB {
        t | 2
    } else {
        t
    }
}

/// Multiply-shift range reduction of a hash to `0..n`.
#[inline]
pub(super) fn reduce(h: u64, n: usize) -> usize {
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// Groups needed to hold `n` entries at `load`.
pub(super) fn groups_for(n: usize, load: f64) -> usize {
    let groups = (n as f64 / (load * GROUP as f64)).ceil() as usize;
    groups.max(MIN_GROUPS)
}

impl Table {
    pub(super) fn new(groups: usize, with_vals: bool) -> Self {
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
    pub(super) fn groups(&self) -> usize {
        self.ctrl.len()
    }

    #[inline]
    pub(super) fn slots(&self) -> usize {
        self.keys.len()
    }

    #[inline]
    pub(super) fn live(&self) -> usize {
        self.live.load(Acquire)
    }

    #[inline]
    pub(super) fn has_vals(&self) -> bool {
        !self.vals.is_empty()
    }

    /// Heap bytes of this table plus the writer-side expiry array of the same length.
    pub(super) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Table>()
            + self.ctrl.len() * std::mem::size_of::<AtomicU64>()
            + self.keys.len() * std::mem::size_of::<[AtomicU64; 2]>()
            + self.vals.len() * std::mem::size_of::<AtomicI64>()
            + self.slots() * std::mem::size_of::<u32>()
    }

    /// The slot holding `key` (whose slot hash is `h`), if it is live. Lock-free, wait-free
    /// (bounded by the number of groups), allocation-free.
    #[inline(always)]
    pub(super) fn find(&self, key: u128, h: u64) -> Option<usize> {
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
    pub(super) fn insert_new(&self, key: u128, h: u64, val: i64) -> Option<usize> {
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
    pub(super) fn kill(&self, s: usize) {
        let (g, i) = (s / GROUP, s % GROUP);
        let w = self.ctrl[g].load(Relaxed);
        let w = (w & !(0xFF_u64 << (8 * i))) | (u64::from(TOMB) << (8 * i));
        self.ctrl[g].store(w, Release);
        self.live.store(self.live.load(Relaxed) - 1, Release);
        self.tombs.store(self.tombs.load(Relaxed) + 1, Relaxed);
    }

    /// Writer only: whether slot `s` holds a live entry.
    pub(super) fn is_live(&self, s: usize) -> bool {
        let w = self.ctrl[s / GROUP].load(Relaxed);
        ((w >> (8 * (s % GROUP))) as u8) > TOMB
    }

    /// Writer only: the key and value of slot `s`.
    pub(super) fn entry(&self, s: usize) -> (u128, i64) {
        let k = &self.keys[s];
        let key = (u128::from(k[0].load(Relaxed)) << 64) | u128::from(k[1].load(Relaxed));
        let val = self.vals.get(s).map_or(0, |v| v.load(Relaxed));
        (key, val)
    }
}

/// One table as the writer sees it: the shared table plus its writer-side expiries.
pub(super) struct Part {
    pub(super) table: Arc<Table>,
    /// Expiry per slot (seconds since the epoch, [`NEVER`] for none).
    pub(super) exp: Box<[u32]>,
    /// The table never shrinks below this many groups.
    pub(super) min_groups: usize,
}

impl Part {
    pub(super) fn new(groups: usize, with_vals: bool, min_groups: usize) -> Self {
        let table = Table::new(groups.max(min_groups), with_vals);
        let exp = vec![NEVER; table.slots()].into_boxed_slice();
        Part {
            table: Arc::new(table),
            exp,
            min_groups,
        }
    }

    /// Build a fresh table sized for `want` live entries and copy the live entries over.
    pub(super) fn rebuild(&mut self, want: usize, seeds: &Seeds) {
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
    pub(super) fn upsert(
        &mut self,
        key: u128,
        val: i64,
        exp: u32,
        replace: bool,
        seeds: &Seeds,
    ) -> bool {
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
    pub(super) fn remove(&mut self, key: u128, seeds: &Seeds) -> bool {
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
    pub(super) fn compact_if_needed(&mut self, seeds: &Seeds) -> bool {
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
    pub(super) fn prune(&mut self, now: i64) -> usize {
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

/// Writer-side expiry: `None` is [`NEVER`]; dates are clamped to what a `u32` holds.
pub(super) fn exp_u32(expires_at: Option<i64>) -> u32 {
    match expires_at {
        None => NEVER,
        Some(e) => e.clamp(0, i64::from(NEVER - 1)) as u32,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
    fn set_exp_clamping() {
        assert_eq!(exp_u32(None), NEVER);
        assert_eq!(exp_u32(Some(-5)), 0);
        assert_eq!(exp_u32(Some(i64::MAX)), NEVER - 1);
        assert_eq!(exp_u32(Some(1_700_000_000)), 1_700_000_000);
    }
}
