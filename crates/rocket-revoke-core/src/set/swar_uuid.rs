//! The hot path's UUID parser: a 36-character hyphenated lower-case UUID to its `u128`, with
//! SWAR hex decoding (8 digits per step). Only that exact spelling is a UUID key: any other is
//! an ordinary string, so the set matches jtis exactly as the database does.
//!
//! Self-contained (no `crate::` paths) so that `benches/set.rs` compiles this very file and
//! measures it against `uuid::Uuid::try_parse_ascii`; docs/BENCHMARKS.md has the figures
//! that keep it.

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
pub(crate) fn parse_uuid(s: &str) -> Option<u128> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    //! Self-contained (no `crate::` paths) like the parser: the bench compiles this file,
    //! with `cfg(test)` on. The set's tests borrow these keys.
    use super::*;

    /// A distinct UUID per `i` (`uuid_str(0)` is the nil UUID).
    pub(crate) fn uuid_str(i: u64) -> String {
        uuid::Uuid::from_u128(u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
            .hyphenated()
            .to_string()
    }

    pub(crate) const U: &str = "550e8400-e29b-41d4-a716-446655440000";
    pub(crate) const NIL: &str = "00000000-0000-0000-0000-000000000000";

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
}
