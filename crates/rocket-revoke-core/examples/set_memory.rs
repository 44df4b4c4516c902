//! Memory per revoked UUID `jti`: RSS delta (from `/proc/self/statm`) and `heap_bytes()`.
//!
//! Run: `cargo run --release -p rocket-revoke-core --example set_memory -- [N] [--with-capacity]`
//! (N defaults to 1,000,000). Each mode should run in its own process so that memory freed by
//! one measurement does not hide in the allocator and skew the next.
#![allow(missing_docs)]

use rand::{rngs::StdRng, Rng, SeedableRng};
use rocket_revoke_core::{RevocationSet, TokenRef};

/// Resident set size in bytes (second field of `/proc/self/statm`, in 4 KiB pages).
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .iter()
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let with_capacity = args.iter().any(|a| a == "--with-capacity");

    let mut rng = StdRng::seed_from_u64(42);
    let mut buf = uuid::Uuid::encode_buffer();
    let before = rss_bytes().unwrap_or(0);
    let set = if with_capacity {
        RevocationSet::with_capacity(n)
    } else {
        RevocationSet::new()
    };
    let mut probe = String::new();
    for i in 0..n {
        // Keys are formatted into a stack buffer: nothing but the set itself stays allocated.
        let id = uuid::Builder::from_random_bytes(rng.gen()).into_uuid();
        let jti = id.hyphenated().encode_lower(&mut buf);
        set.revoke_jti(jti, 4_000_000_000);
        if i == n / 2 {
            probe = jti.to_owned();
        }
    }
    let after = rss_bytes().unwrap_or(0);
    let jti = TokenRef {
        jti: Some(&probe),
        ..TokenRef::default()
    };
    assert!(n == 0 || set.check(&jti).is_some());

    let counts = set.len();
    let per = |bytes: usize| bytes as f64 / counts.jtis.max(1) as f64;
    let rss = after.saturating_sub(before);
    println!(
        "mode: {}",
        if with_capacity {
            "with_capacity(n)"
        } else {
            "new() + growth"
        }
    );
    println!("revoked UUID jtis:            {}", counts.jtis);
    println!(
        "RSS delta:                    {rss} B = {:.1} B/jti",
        per(rss)
    );
    println!(
        "heap_bytes():                 {} B = {:.1} B/jti",
        set.heap_bytes(),
        per(set.heap_bytes())
    );
    println!(
        "UUID table (slots, ctrl, exp): {} B = {:.1} B/jti",
        set.uuid_table_bytes(),
        per(set.uuid_table_bytes())
    );
}
