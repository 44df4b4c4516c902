//! The per-thread cache of crypto verifiers, so a request does not build one (an allocation
//! and, for HMAC, the key setup) for a key it verified with before.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier};
use jsonwebtoken::Algorithm;

use crate::keys::Key;

/// Runs `f` with the crypto verifier for key `index` of the key list identified by `owner`
/// (a verifier's own keys, or one fetched JWKS set) and `alg`, built once per thread and kept
/// in a small per-thread cache (building one costs an allocation and, for HMAC, two hash
/// blocks of key setup per request). `None` when the backend cannot build one for this key.
pub(super) fn with_crypto<R>(
    provider: &CryptoProvider,
    owner_id: &Arc<()>,
    index: usize,
    key: &Key,
    alg: Algorithm,
    f: impl FnOnce(&dyn JwtVerifier) -> R,
) -> Option<R> {
    let owner = Arc::as_ptr(owner_id);
    CRYPTO_CACHE.with(|cache| {
        // Not re-entered: `f` only runs the backend's verify.
        let Ok(mut cache) = cache.try_borrow_mut() else {
            let verifier = (provider.verifier_factory)(&alg, &key.key).ok()?;
            return Some(f(verifier.as_ref()));
        };
        let pos = cache
            .iter()
            .position(|c| c.owner.as_ptr() == owner && c.index == index && c.alg == alg);
        let pos = match pos {
            Some(pos) => pos,
            None => {
                let verifier = (provider.verifier_factory)(&alg, &key.key).ok()?;
                // Entries of dropped verifiers go first, then the oldest.
                cache.retain(|c| c.owner.strong_count() > 0);
                if cache.len() >= CRYPTO_CACHE_MAX {
                    cache.remove(0);
                }
                cache.push(CachedCrypto {
                    owner: Arc::downgrade(owner_id),
                    index,
                    alg,
                    verifier,
                });
                cache.len() - 1
            }
        };
        Some(f(cache[pos].verifier.as_ref()))
    })
}

/// Most crypto verifiers one thread keeps (one per key and algorithm in use).
const CRYPTO_CACHE_MAX: usize = 16;

/// A crypto verifier built for one key of one [`Verifier`] (and its clones), or of one key
/// set fetched from its JWKS URL.
///
/// [`Verifier`]: super::Verifier
struct CachedCrypto {
    /// The key list's identity; dead once the verifier and its clones are dropped, or once
    /// the fetched set is replaced and no request uses it any more.
    owner: Weak<()>,
    index: usize,
    alg: Algorithm,
    verifier: Box<dyn JwtVerifier>,
}

thread_local! {
    /// Crypto verifiers are not `Send`, so each thread keeps its own.
    static CRYPTO_CACHE: RefCell<Vec<CachedCrypto>> = const { RefCell::new(Vec::new()) };
}
