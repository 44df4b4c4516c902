//! [`Bounds`]: how long a revocation stays in force, in one place every writer reads.
//!
//! A revocation must outlive every token it covers on every instance: a token is accepted
//! until its `exp` plus the verifier's leeway, and instances' clocks disagree by up to a
//! skew margin. So a revocation is kept in force until
//!
//! * `jti`: the token's `exp` + leeway + skew;
//! * subject or global cut-off `c`: `c` + max token lifetime + leeway + skew (every covered
//!   token has `iat <= c`, and no accepted token lives longer than the max lifetime);
//! * family, or a `jti` whose `exp` is unknown: now + max token lifetime + leeway + skew.
//!
//! The bounds are recorded in the database (`revoke_settings`) when an app launches, and the
//! largest value of each ever declared wins: an app with a longer lifetime raises the bound
//! (and extends the revocations already standing), one with a shorter lifetime leaves it.
//! Every writer (the app, other instances, revokectl, scripts) computes expiries from the
//! recorded bounds, so a revocation made anywhere lasts long enough for every app on the
//! database.

use serde::{Deserialize, Serialize};

/// Default clock-skew margin between instances, in seconds.
pub const DEFAULT_CLOCK_SKEW_SECS: i64 = 60;

/// The lifetime bounds of the tokens accepted on one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// The longest lifetime (`exp - iat`) of any accepted token, in seconds.
    pub max_token_ttl_secs: i64,
    /// The largest verifier leeway on `exp`, in seconds.
    pub leeway_secs: i64,
    /// How far instances' clocks may disagree, in seconds.
    pub clock_skew_secs: i64,
    /// How long expired registry rows and old events are kept, in seconds.
    pub retention_secs: i64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_token_ttl_secs: 30 * 24 * 3600,
            leeway_secs: 30,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
            retention_secs: 7 * 24 * 3600,
        }
    }
}

impl Bounds {
    /// How long past a token's `exp` it can still be accepted somewhere: leeway + skew.
    pub fn grace_secs(&self) -> i64 {
        self.leeway_secs.saturating_add(self.clock_skew_secs)
    }

    /// The larger of each bound.
    pub fn merge(&self, other: &Bounds) -> Bounds {
        Bounds {
            max_token_ttl_secs: self.max_token_ttl_secs.max(other.max_token_ttl_secs),
            leeway_secs: self.leeway_secs.max(other.leeway_secs),
            clock_skew_secs: self.clock_skew_secs.max(other.clock_skew_secs),
            retention_secs: self.retention_secs.max(other.retention_secs),
        }
    }

    /// When a revocation of one token whose `exp` is known may end.
    pub fn jti_until(&self, exp: i64) -> i64 {
        exp.saturating_add(self.grace_secs())
    }

    /// When a revocation covering tokens issued at or before `issued_by` may end.
    pub fn issued_until(&self, issued_by: i64) -> i64 {
        issued_by
            .saturating_add(self.max_token_ttl_secs)
            .saturating_add(self.grace_secs())
    }

    /// Checks that every bound is in range; the error names the key.
    pub fn validate(&self) -> crate::Result<()> {
        let check = |ok: bool, key: &str, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(crate::Error::Invalid(format!("`{key}` {what}")))
            }
        };
        check(
            self.max_token_ttl_secs > 0 && self.max_token_ttl_secs <= MAX_TTL_SECS,
            "max_token_ttl_secs",
            "must be between 1 second and 10 years",
        )?;
        check(
            (0..=MAX_LEEWAY_SECS).contains(&self.leeway_secs),
            "leeway",
            "must be between 0 and 3600 seconds",
        )?;
        check(
            (0..=MAX_LEEWAY_SECS).contains(&self.clock_skew_secs),
            "clock_skew_secs",
            "must be between 0 and 3600 seconds",
        )?;
        check(
            self.retention_secs >= 0,
            "retention_secs",
            "must not be negative",
        )
    }
}

/// Largest accepted `max_token_ttl_secs` (10 years).
pub const MAX_TTL_SECS: i64 = 10 * 365 * 24 * 3600;
/// Largest accepted leeway and skew margin (one hour).
pub const MAX_LEEWAY_SECS: i64 = 3600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_takes_the_larger_of_each_bound() {
        let a = Bounds {
            max_token_ttl_secs: 10,
            leeway_secs: 5,
            clock_skew_secs: 1,
            retention_secs: 100,
        };
        let b = Bounds {
            max_token_ttl_secs: 20,
            leeway_secs: 2,
            clock_skew_secs: 3,
            retention_secs: 50,
        };
        let m = a.merge(&b);
        assert_eq!(
            (
                m.max_token_ttl_secs,
                m.leeway_secs,
                m.clock_skew_secs,
                m.retention_secs
            ),
            (20, 5, 3, 100)
        );
        assert_eq!(m.jti_until(1_000), 1_008);
        assert_eq!(m.issued_until(1_000), 1_028);
    }

    #[test]
    fn out_of_range_bounds_name_their_key() {
        let bad = Bounds {
            leeway_secs: 7200,
            ..Bounds::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("`leeway`"), "{err}");
        assert!(Bounds::default().validate().is_ok());
    }
}
