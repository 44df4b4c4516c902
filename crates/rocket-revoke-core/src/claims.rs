//! JWT claims: the registered ones, our own `fid` and `kind`, and the app's extra claims.

use serde::{Deserialize, Serialize};

use crate::{TokenKind, TokenRef};

/// The claims of a verified token.
///
/// `E` is the app's own claims, flattened into the same JSON object; use [`NoExtra`] (the
/// default) when there are none. Every registered claim is optional here: which ones a token
/// must carry is the [`Verifier`](crate::Verifier)'s `required_claims` setting.
///
/// The app's type should not declare fields with the names used here (`jti`, `sub`, `iat`,
/// `exp`, `nbf`, `iss`, `aud`, `fid`, `kind`): those are consumed by this struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims<E = NoExtra> {
    /// Token id (`jti`): the key of a single-token revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Subject (`sub`): usually the user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Issued at (`iat`), seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Expiry (`exp`), seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Not before (`nbf`), seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issuer (`iss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience (`aud`): one string or an array of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Session family id (`fid`): shared by every token of one login, including rotated
    /// refresh tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    /// Our own `kind` claim (`"access"` or `"refresh"`); absent on foreign tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TokenKind>,
    /// The app's own claims.
    #[serde(flatten)]
    pub extra: E,
}

impl<E: Default> Default for Claims<E> {
    fn default() -> Self {
        Claims {
            jti: None,
            sub: None,
            iat: None,
            exp: None,
            nbf: None,
            iss: None,
            aud: None,
            fid: None,
            kind: None,
            extra: E::default(),
        }
    }
}

impl<E> Claims<E> {
    /// The parts the revocation set checks, borrowed from these claims.
    pub fn token_ref(&self) -> TokenRef<'_> {
        TokenRef {
            jti: self.jti.as_deref(),
            sub: self.sub.as_deref(),
            fid: self.fid.as_deref(),
            iat: self.iat,
            iss: self.iss.as_deref(),
        }
    }
}

/// No extra claims: the default for [`Claims`]. Unknown claims in a token are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoExtra {}

/// The `aud` claim: a single string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialized as a string.
    One(String),
    /// Several audiences, serialized as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Every audience value, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many,
        };
        slice.iter().map(String::as_str)
    }

    /// Whether `aud` is one of the values.
    pub fn contains(&self, aud: &str) -> bool {
        self.iter().any(|a| a == aud)
    }
}

impl From<String> for Audience {
    fn from(one: String) -> Self {
        Audience::One(one)
    }
}

impl From<&str> for Audience {
    fn from(one: &str) -> Self {
        Audience::One(one.to_owned())
    }
}

impl From<Vec<String>> for Audience {
    fn from(many: Vec<String>) -> Self {
        Audience::Many(many)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_accepts_string_or_array() {
        let one: Audience = serde_json::from_str(r#""api""#).expect("one");
        assert_eq!(one, Audience::One("api".into()));
        assert!(one.contains("api"));
        let many: Audience = serde_json::from_str(r#"["a","b"]"#).expect("many");
        assert!(many.contains("b") && !many.contains("c"));
    }

    #[test]
    fn absent_claims_are_not_serialized() {
        let c = Claims::<NoExtra> {
            jti: Some("j".into()),
            ..Claims::default()
        };
        assert_eq!(serde_json::to_string(&c).expect("json"), r#"{"jti":"j"}"#);
    }

    #[test]
    fn token_ref_borrows_the_claims() {
        let c = Claims::<NoExtra> {
            jti: Some("j".into()),
            sub: Some("s".into()),
            fid: Some("f".into()),
            iat: Some(7),
            ..Claims::default()
        };
        let r = c.token_ref();
        assert_eq!(
            (r.jti, r.sub, r.fid, r.iat),
            (Some("j"), Some("s"), Some("f"), Some(7))
        );
    }
}
