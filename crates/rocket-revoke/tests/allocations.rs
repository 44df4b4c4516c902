//! Heap allocations per guard check (`Bearer` parse, verify, refresh-token refusal, set
//! check), counted by dhat's allocator: the request path must not start allocating more
//! than the claims it hands to the handler need.
//!
//! Run with `-- --nocapture` to see the counts (docs/BENCHMARKS.md quotes them).
#![allow(missing_docs)]

#[path = "../benches/support/mod.rs"]
mod support;

use support::{guard_work, revoked_set, token, verifiers};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Allocations (blocks) and bytes per call of `check` after one warm-up call (which fills
/// the per-thread tables): the least of five rounds of `n` calls. dhat counts the whole
/// process, and on a loaded machine a round now and then also counts an allocation of
/// something else (3.004 blocks a call was seen): the least round is the check's own.
fn per_call(n: u64, mut check: impl FnMut() -> bool) -> (f64, f64) {
    assert!(check(), "warm-up call refused the token");
    let mut least = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let before = dhat::HeapStats::get();
        for _ in 0..n {
            assert!(check(), "the token was refused");
        }
        let after = dhat::HeapStats::get();
        let blocks = (after.total_blocks - before.total_blocks) as f64 / n as f64;
        let bytes = (after.total_bytes - before.total_bytes) as f64 / n as f64;
        if blocks < least.0 {
            least = (blocks, bytes);
        }
    }
    least
}

#[test]
fn a_guard_check_allocates_only_the_claims_it_returns() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let (cached, uncached) = verifiers();
    let set = revoked_set(1_000);
    let header = format!("Bearer {}", token());

    let (hit_blocks, hit_bytes) = per_call(1_000, || guard_work(&cached, &set, &header).is_some());
    let (miss_blocks, miss_bytes) =
        per_call(1_000, || guard_work(&uncached, &set, &header).is_some());
    eprintln!(
        "allocations per guard check: {hit_blocks} ({hit_bytes} B) with the token's signature \
         cached, {miss_blocks} ({miss_bytes} B) with the verified-token cache off"
    );

    // The claims handed to the handler own three strings (jti, sub, fid); a cached check
    // allocates nothing else.
    assert_eq!(hit_blocks, 3.0, "cached check");
    // Without the cache: those three, plus the decoded header, claims and signature.
    assert!(
        miss_blocks <= 6.0,
        "uncached check: {miss_blocks} allocations"
    );
    assert!(hit_blocks < miss_blocks);
}
