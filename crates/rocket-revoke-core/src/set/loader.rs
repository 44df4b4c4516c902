//! The loader: a set's next content, built off to the side and swapped in at once.

use std::fmt;

use super::placement::{FAM, SUBJ, UUID};
use super::table::{groups_for, Part, TARGET_LOAD};
use super::{RevocationSet, State};
use crate::{Revocation, Scope};

/// The next content of a [`RevocationSet`], built off to the side ([`RevocationSet::loader`]).
///
/// Dropping it without [`finish`](Self::finish) leaves the set unchanged.
pub struct SetLoader<'s> {
    pub(super) set: &'s RevocationSet,
    pub(super) fresh: State,
    pub(super) pushed: usize,
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
    pub(super) fn size_parts(&mut self, counts: [usize; 4]) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::set::swar_uuid::tests::uuid_str;
    use crate::set::tests::rev;
    use crate::set::RevocationSet;
    use crate::Scope;

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
}
