//! The `Authorization` header value → claims path of the guards: header parsing
//! (`Authenticated::bearer_token`), verification, and the revocation-set check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocket_revoke::{AuthError, Authenticated};
use rocket_revoke_fuzz::{sign_hs256, verify_everywhere};

fn header_to_claims(value: &str) {
    match Authenticated::bearer_token(value) {
        Ok(token) => {
            // What the guard would verify: a non-empty token without whitespace.
            assert!(!token.is_empty());
            assert!(!token.contains(|c: char| c.is_whitespace() || c.is_control()));
            assert!(value.contains(token));
            verify_everywhere(token);
        }
        Err(e) => {
            // Every rejection is a 401 with a fixed description (no token content).
            assert_eq!(e.status().code, 401);
            assert!(matches!(e, AuthError::Scheme | AuthError::MalformedHeader));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The raw header value.
    header_to_claims(&String::from_utf8_lossy(data));
    // `<fuzzed scheme and spacing> <validly signed token of fuzzed payload>`.
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (prefix, payload) = data.split_at(cut);
    let token = sign_hs256(br#"{"alg":"HS256"}"#, payload.get(1..).unwrap_or_default());
    header_to_claims(&format!("{}{token}", String::from_utf8_lossy(prefix)));
    header_to_claims(&format!("Bearer {token}"));
});
