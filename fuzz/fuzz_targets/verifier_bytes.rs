//! The verifier on arbitrary bytes: as a token string, and (to get past the signature) as
//! the header and payload of a validly signed HS256 token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocket_revoke_fuzz::{sign_hs256, verify_everywhere};

fuzz_target!(|data: &[u8]| {
    // 1. The bytes as the token (lossy UTF-8: the guards only ever see `&str`).
    verify_everywhere(&String::from_utf8_lossy(data));

    // 2. Header and payload chosen by the fuzzer, signed with the configured secret: every
    //    check after the signature (claim types, exp/nbf/iat arithmetic, iss/aud, jti, crit,
    //    duplicate keys) sees arbitrary input.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (header, payload) = data
        .get(1..)
        .unwrap_or_default()
        .split_at(split.saturating_sub(1));
    verify_everywhere(&sign_hs256(header, payload));
    // With a fixed valid header, so the payload alone is fuzzed.
    verify_everywhere(&sign_hs256(br#"{"alg":"HS256","typ":"JWT"}"#, data));
});
