//! [`VerifyError`]: why a token was rejected. (Start-up errors are [`crate::KeyError`].)

/// Why a token was rejected.
///
/// The [`Display`](std::fmt::Display) text and [`VerifyError::description`] never contain token
/// content, so either may be shown to the client or logged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a well-formed JWS compact token: wrong number of parts, bad base64, bad JSON, a
    /// claim of the wrong type, or an empty `jti`.
    Malformed,
    /// The signature does not verify with the selected key(s).
    InvalidSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` is not one of the configured issuers.
    InvalidIssuer,
    /// `aud` names none of the configured audiences (or is present when none is configured).
    InvalidAudience,
    /// A required claim is absent; holds the claim's name (from the configuration).
    MissingClaim(String),
    /// The header's `alg` is `none`, unknown, or not in the allow-list.
    AlgorithmNotAllowed,
    /// No configured key matches the token's `kid` and algorithm.
    UnknownKey,
    /// The token has no `kid` and more than [`MAX_KEYS_PER_TOKEN`] keys could verify its
    /// algorithm: it is not tried against them all.
    ///
    /// [`MAX_KEYS_PER_TOKEN`]: super::MAX_KEYS_PER_TOKEN
    KidRequired,
    /// The token's key is in the `jwks_url` key set, which has not been fetched successfully
    /// for `jwks_max_stale_secs`: its keys are no longer trusted.
    StaleKeys,
    /// The token is longer than [`MAX_TOKEN_LEN`].
    ///
    /// [`MAX_TOKEN_LEN`]: super::MAX_TOKEN_LEN
    TooLarge,
    /// The header has a `crit` parameter; no JWS extension is supported.
    UnsupportedCritical,
    /// The token may live longer (`exp - iat`, or `exp - now` without `iat`) than the
    /// maximum lifetime every revocation is sized for ([`Verifier::with_max_lifetime`]):
    /// accepting it would let it outlive a revocation that covers it.
    ///
    /// [`Verifier::with_max_lifetime`]: super::Verifier::with_max_lifetime
    LifetimeTooLong,
    /// The token says it is another kind of JWT than an access token (an ID, logout,
    /// refresh or security event token), or lacks the `typ` the configuration requires: see
    /// [`TokenProfile`].
    ///
    /// [`TokenProfile`]: super::TokenProfile
    WrongType,
    /// No crypto backend is available (a build with both or neither of jsonwebtoken's
    /// `rust_crypto` and `aws_lc_rs` features); a server fault, not the token's.
    Unavailable,
}

/// The [`description`](VerifyError::description), written once; a missing claim adds
/// the claim's name (from the configuration, never from the token).
impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::MissingClaim(name) => write!(f, "{} `{name}`", self.description()),
            other => f.write_str(other.description()),
        }
    }
}

impl std::error::Error for VerifyError {}

impl VerifyError {
    /// Short, safe text for an RFC 6750 `error_description` (never echoes token content).
    pub fn description(&self) -> &'static str {
        match self {
            VerifyError::Malformed => "malformed token",
            VerifyError::InvalidSignature => "invalid signature",
            VerifyError::Expired => "token expired",
            VerifyError::NotYetValid => "token not yet valid",
            VerifyError::InvalidIssuer => "invalid issuer",
            VerifyError::InvalidAudience => "invalid audience",
            VerifyError::MissingClaim(_) => "missing required claim",
            VerifyError::AlgorithmNotAllowed => "algorithm not allowed",
            VerifyError::UnknownKey => "unknown signing key",
            VerifyError::KidRequired => "token names no signing key (kid)",
            VerifyError::StaleKeys => "signing keys are stale",
            VerifyError::TooLarge => "token too large",
            VerifyError::UnsupportedCritical => "unsupported critical header",
            VerifyError::Unavailable => "token verification unavailable",
            VerifyError::LifetimeTooLong => "token lifetime exceeds the maximum",
            VerifyError::WrongType => "token type not accepted",
        }
    }
}
