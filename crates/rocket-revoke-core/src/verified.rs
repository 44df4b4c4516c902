//! The per-thread cache of tokens whose signature has verified (see
//! [`VerifierConfig::verified_cache`](crate::VerifierConfig::verified_cache)).
//!
//! A client sends the same access token on every request until it expires, and in a running
//! server the header parse, three base64 decodes and the HMAC (or RSA) check of that token
//! cost several microseconds with cold CPU caches. Their outcome depends only on the token's
//! bytes, the verifier's configuration and its key set, so it is remembered here, per thread
//! (no lock, no sharing), in a direct-mapped table of recent successes. What depends on the
//! clock or is cheap (the claims and every check on them) still runs on each request.
//!
//! An entry answers only for the verifier (and its clones) that stored it and only while the
//! fetched JWKS set it was checked against is the current one: a key rotation empties the
//! cache for that verifier. Only signatures that verified are stored, so a forged token is
//! never answered from here; and the signature part of a token is compared in constant time,
//! so timing tells an attacker nothing about a cached signature.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use subtle::ConstantTimeEq;
use xxhash_rust::xxh3::xxh3_64;

/// Longer tokens are verified every time: this bounds an entry to a few KiB, so a table
/// holds at most `slots × ~3.5 KiB` per thread whatever tokens arrive.
const MAX_CACHED_LEN: usize = 2048;

/// A token whose signature verified.
struct Entry {
    /// The verifier (and its clones) that checked it.
    owner: Weak<()>,
    /// The fetched JWKS set that was current then; `None` for a verifier without a URL.
    key_set: Option<Weak<()>>,
    /// The whole token.
    token: String,
    /// Where its signature starts (after the last `.`).
    split: usize,
    /// Its decoded claims segment, for the per-request claim checks.
    payload: Vec<u8>,
}

impl Entry {
    fn belongs_to(&self, owner: &Arc<()>, key_set: Option<&Arc<()>>) -> bool {
        self.owner.as_ptr() == Arc::as_ptr(owner)
            && match (&self.key_set, key_set) {
                (None, None) => true,
                (Some(stored), Some(current)) => stored.as_ptr() == Arc::as_ptr(current),
                _ => false,
            }
    }
}

thread_local! {
    static TABLE: RefCell<Vec<Option<Entry>>> = const { RefCell::new(Vec::new()) };
}

/// Where a token's signature starts, or `None` when it has no `.` at all.
fn signature_start(token: &str) -> Option<usize> {
    token.rfind('.').map(|dot| dot + 1)
}

fn slot(token: &str, slots: usize) -> usize {
    // The remainder is below `slots`, a usize.
    (xxh3_64(token.as_bytes()) % slots as u64) as usize
}

/// Runs `f` on the decoded claims segment of `token` when this thread has seen its signature
/// verify for `owner` under `key_set`; `None` (and `f` not run) otherwise.
pub(crate) fn lookup<R>(
    owner: &Arc<()>,
    key_set: Option<&Arc<()>>,
    slots: usize,
    token: &str,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    if slots == 0 || token.len() > MAX_CACHED_LEN {
        return None;
    }
    let split = signature_start(token)?;
    TABLE.with(|table| {
        // Taken only if `f` (a claims type's own `Deserialize`) verifies another token.
        let table = table.try_borrow().ok()?;
        let entry = table.get(slot(token, slots))?.as_ref()?;
        let hit = entry.split == split
            && entry.token.len() == token.len()
            && entry.belongs_to(owner, key_set)
            // The header and claims segments are what the client sent: compared plainly.
            && entry.token.as_bytes()[..split] == token.as_bytes()[..split]
            && bool::from(
                entry.token.as_bytes()[split..].ct_eq(&token.as_bytes()[split..]),
            );
        hit.then(|| f(&entry.payload))
    })
}

/// Remembers that `token`'s signature verified for `owner` under `key_set`, with its decoded
/// claims segment. Replaces whatever held the token's slot, reusing its buffers.
pub(crate) fn insert(
    owner: &Arc<()>,
    key_set: Option<&Arc<()>>,
    slots: usize,
    token: &str,
    payload: &[u8],
) {
    if slots == 0 || token.len() > MAX_CACHED_LEN {
        return;
    }
    let Some(split) = signature_start(token) else {
        return;
    };
    TABLE.with(|table| {
        let Ok(mut table) = table.try_borrow_mut() else {
            return;
        };
        if table.len() < slots {
            table.resize_with(slots, || None);
        }
        let slot = &mut table[slot(token, slots)];
        match slot {
            Some(entry) => {
                if entry.owner.as_ptr() != Arc::as_ptr(owner) {
                    entry.owner = Arc::downgrade(owner);
                }
                entry.key_set = key_set.map(Arc::downgrade);
                entry.token.clear();
                entry.token.push_str(token);
                entry.split = split;
                entry.payload.clear();
                entry.payload.extend_from_slice(payload);
            }
            None => {
                *slot = Some(Entry {
                    owner: Arc::downgrade(owner),
                    key_set: key_set.map(Arc::downgrade),
                    token: token.to_owned(),
                    split,
                    payload: payload.to_vec(),
                })
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_of(owner: &Arc<()>, key_set: Option<&Arc<()>>, token: &str) -> Option<Vec<u8>> {
        lookup(owner, key_set, 64, token, <[u8]>::to_vec)
    }

    #[test]
    fn answers_only_for_the_same_token_owner_and_key_set() {
        let owner = Arc::new(());
        let other = Arc::new(());
        let set = Arc::new(());
        let rotated = Arc::new(());
        let token = "aGVhZGVy.Y2xhaW1z.c2lnbmF0dXJl";
        assert_eq!(payload_of(&owner, Some(&set), token), None);
        insert(&owner, Some(&set), 64, token, b"claims");

        assert_eq!(
            payload_of(&owner, Some(&set), token).as_deref(),
            Some(&b"claims"[..])
        );
        assert_eq!(
            payload_of(&other, Some(&set), token),
            None,
            "other verifier"
        );
        assert_eq!(
            payload_of(&owner, Some(&rotated), token),
            None,
            "rotated keys"
        );
        assert_eq!(payload_of(&owner, None, token), None, "no key set");
        // Same header and claims, another signature of the same length.
        assert_eq!(
            payload_of(&owner, Some(&set), "aGVhZGVy.Y2xhaW1z.c2lnbmF0dXJf"),
            None
        );
        // The dot moved: same length, different split.
        assert_eq!(
            payload_of(&owner, Some(&set), "aGVhZGVy.Y2xhaW1zc.2lnbmF0dXJl"),
            None
        );
    }

    #[test]
    fn disabled_or_oversized_is_never_stored() {
        let owner = Arc::new(());
        let token = "a.b.c";
        insert(&owner, None, 0, token, b"x");
        assert_eq!(lookup(&owner, None, 0, token, <[u8]>::to_vec), None);

        let long = format!("a.{}.c", "b".repeat(MAX_CACHED_LEN));
        insert(&owner, None, 64, &long, b"x");
        assert_eq!(payload_of(&owner, None, &long), None);
    }

    #[test]
    fn a_slot_is_reused_by_the_latest_token() {
        let owner = Arc::new(());
        // One slot: every token competes for it.
        insert(&owner, None, 1, "h.p1.s1", b"one");
        insert(&owner, None, 1, "h.p2.s2", b"two");
        assert_eq!(lookup(&owner, None, 1, "h.p1.s1", <[u8]>::to_vec), None);
        assert_eq!(
            lookup(&owner, None, 1, "h.p2.s2", <[u8]>::to_vec).as_deref(),
            Some(&b"two"[..])
        );
    }
}
