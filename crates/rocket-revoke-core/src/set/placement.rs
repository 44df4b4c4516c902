//! Keys: which table a revocation or a token's claim goes to, and its 128-bit key there.
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

use xxhash_rust::xxh3::{xxh3_128_with_seed, Xxh3};

use super::swar_uuid::parse_uuid;
use crate::{Revocation, Scope};

/// Table indexes inside a [`Snapshot`] and the writer [`State`].
pub(super) const UUID: usize = 0;
pub(super) const OTHER: usize = 1;
pub(super) const SUBJ: usize = 2;
pub(super) const FAM: usize = 3;

/// Tags of issuer-scoped keys ([`Seeds::scoped_key`]).
pub(super) const TAG_JTI: u8 = b'j';
pub(super) const TAG_SUB: u8 = b's';
pub(super) const TAG_FAM: u8 = b'f';
pub(super) const TAG_GLOBAL: u8 = b'g';

/// The issuer a revocation is scoped to; an empty one is no scope (as the database stores it).
pub(super) fn issuer_of(rev: &Revocation) -> Option<&str> {
    rev.issuer.as_deref().filter(|i| !i.is_empty())
}

/// Per-set random seeds.
#[derive(Clone, Copy)]
pub(super) struct Seeds {
    /// Seed of the 128-bit string hash.
    string: u64,
    /// Seed of the 128-bit hash of issuer-scoped keys: a domain of its own, so a scoped key
    /// never shares a hash with an unscoped string.
    scoped: u64,
    /// Seeds of the slot hash.
    slot: [u64; 2],
}

impl Seeds {
    pub(super) fn random() -> Self {
        Seeds {
            string: rand::random(),
            scoped: rand::random(),
            // The folded multiply degenerates when a factor is 0; odd seeds make that a
            // one-in-2^64 event per key half instead of a structural one.
            slot: [rand::random::<u64>() | 1, rand::random::<u64>() | 1],
        }
    }

    #[inline]
    pub(super) fn string_key(&self, s: &str) -> u128 {
        xxh3_128_with_seed(s.as_bytes(), self.string)
    }

    /// Key of an issuer-scoped entry: the tag (which scope), the issuer's length, the issuer
    /// and the key, hashed in the scoped domain. The length prefix keeps `("a", "bc")` and
    /// `("ab", "c")` apart; the tag keeps an issuer's global cut-off, which shares the
    /// subject table, apart from its subjects. Streams the parts: no allocation.
    #[inline]
    pub(super) fn scoped_key(&self, tag: u8, iss: &str, key: &str) -> u128 {
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
    pub(super) fn place(
        &self,
        scope: Scope,
        issuer: Option<&str>,
        key: &str,
    ) -> Option<(usize, u128)> {
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
    pub(super) fn slot_hash(&self, key: u128) -> u64 {
        let (hi, lo) = split(key);
        let p = u128::from(lo ^ self.slot[0]) * u128::from(hi ^ self.slot[1]);
        (p as u64) ^ ((p >> 64) as u64)
    }

    /// Which jti table a `jti` goes to, and its key there.
    #[inline]
    pub(super) fn jti_key(&self, jti: &str) -> (usize, u128) {
        match parse_uuid(jti) {
            Some(v) => (UUID, v),
            None => (OTHER, self.string_key(jti)),
        }
    }
}

/// The table a stored revocation goes to (`None` for the global cut-off).
pub(super) fn part_of(rev: &Revocation) -> Option<usize> {
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

/// The two 64-bit words `(hi, lo)` of a key, as a table stores them.
#[inline]
pub(super) fn split(key: u128) -> (u64, u64) {
    ((key >> 64) as u64, key as u64)
}
