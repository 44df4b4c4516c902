//! The claim checks, run on the payload of a token whose signature holds (on every call,
//! cached token or not): `exp`, `nbf`, `iat`, the lifetime cap, `iss`, `aud` and the
//! required claims, plus the one-pass scans of the payload that need no full parse.

use std::fmt;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Map, Value};

use super::header::Param;
use super::{Verifier, VerifyError};
use crate::claims::Claims;

/// `typ` claim values (Keycloak's token categories) of tokens that are not access tokens.
const OTHER_KIND_CLAIMS: [&str; 5] = ["id", "refresh", "offline", "logout", "serialized-id"];

impl Verifier {
    /// The claims of a token whose signature holds, checked against `now` and the claim
    /// rules.
    pub(super) fn claims<E: DeserializeOwned>(
        &self,
        payload: &[u8],
        now: i64,
    ) -> Result<Claims<E>, VerifyError> {
        let mut claims = match self.claims_direct::<E>(payload)? {
            Some(claims) => claims,
            None => self.claims_via_map::<E>(payload)?,
        };
        if let Some(name) = &self.family_claim {
            claims.fid = string_member(payload, name)?;
        }

        if let Some(exp) = claims.exp {
            if exp.saturating_add(self.leeway) <= now {
                return Err(VerifyError::Expired);
            }
        }
        if let Some(max) = self.max_lifetime {
            let Some(exp) = claims.exp else {
                return Err(VerifyError::MissingClaim("exp".into()));
            };
            // Without `iat` the token is as good as issued now. A covered token has
            // `iat <= cut-off`, so `exp - iat <= max` keeps it inside its revocation.
            let born = claims.iat.unwrap_or(now);
            if exp.saturating_sub(born) > max {
                return Err(VerifyError::LifetimeTooLong);
            }
        }
        let latest_start = now.saturating_add(self.leeway);
        if claims.nbf.is_some_and(|nbf| nbf > latest_start)
            || claims.iat.is_some_and(|iat| iat > latest_start)
        {
            return Err(VerifyError::NotYetValid);
        }
        if !self.issuer.is_empty() {
            match &claims.iss {
                None => return Err(VerifyError::MissingClaim("iss".into())),
                Some(iss) if !self.issuer.iter().any(|i| i == iss) => {
                    return Err(VerifyError::InvalidIssuer)
                }
                Some(_) => {}
            }
        }
        match (&claims.aud, self.audience.is_empty()) {
            (None, true) => {}
            (None, false) => return Err(VerifyError::MissingClaim("aud".into())),
            (Some(_), true) => return Err(VerifyError::InvalidAudience),
            (Some(aud), false) => {
                if !aud.iter().any(|a| self.audience.iter().any(|c| c == a)) {
                    return Err(VerifyError::InvalidAudience);
                }
            }
        }
        Ok(claims)
    }

    /// The claims from one parse straight into `Claims<E>`, with the same checks as
    /// [`Verifier::claims_via_map`]. `Ok(None)` when this path cannot decide alone: the
    /// parse failed (a duplicate name, where the lexically last member must win, or any
    /// other error, which the map path then classifies), or a required claim is not one
    /// of the registered ones that `Claims` holds.
    fn claims_direct<E: DeserializeOwned>(
        &self,
        payload: &[u8],
    ) -> Result<Option<Claims<E>>, VerifyError> {
        // Only a JSON object (a struct would also accept an array).
        if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Ok(None);
        }
        let Ok(claims) = serde_json::from_slice::<Claims<E>>(payload) else {
            return Ok(None);
        };
        let mut missing = None;
        for name in &self.required {
            let absent = match name.as_str() {
                "jti" => claims.jti.is_none(),
                "sub" => claims.sub.is_none(),
                "iat" => claims.iat.is_none(),
                "exp" => claims.exp.is_none(),
                "nbf" => claims.nbf.is_none(),
                "iss" => claims.iss.is_none(),
                "aud" => claims.aud.is_none(),
                "fid" => claims.fid.is_none(),
                "kind" => claims.kind.is_none(),
                _ => return Ok(None),
            };
            if absent && missing.is_none() {
                missing = Some(name);
            }
        }
        if claims.jti.as_deref() == Some("") {
            return Err(VerifyError::Malformed);
        }
        if let Some(name) = missing {
            return Err(VerifyError::MissingClaim(name.clone()));
        }
        Ok(Some(claims))
    }

    /// The claims through a JSON map (duplicate names: the lexically last wins), checked in
    /// this order: `jti` shape, required claims, then the types of the claims.
    fn claims_via_map<E: DeserializeOwned>(
        &self,
        payload: &[u8],
    ) -> Result<Claims<E>, VerifyError> {
        let payload = json_object(payload)?;
        match payload.get("jti") {
            None | Some(Value::Null) => {}
            Some(Value::String(jti)) if !jti.is_empty() => {}
            Some(_) => return Err(VerifyError::Malformed),
        }
        for name in &self.required {
            if matches!(payload.get(name.as_str()), None | Some(Value::Null)) {
                return Err(VerifyError::MissingClaim(name.clone()));
            }
        }
        serde_json::from_value(Value::Object(payload)).map_err(|_| VerifyError::Malformed)
    }
}

/// The string member `name` of the JSON object `bytes` (the last one when repeated, as in
/// the map path), without building the object. `None` when absent or `null`; a member of
/// another type is [`VerifyError::Malformed`].
fn string_member(bytes: &[u8], name: &str) -> Result<Option<String>, VerifyError> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

    struct Member<'n>(&'n str);

    impl<'de> Visitor<'de> for Member<'_> {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // `Param` borrows keys and values without escapes: no allocation per member.
            let mut found = None;
            while let Some(key) = map.next_key::<Param<'de>>()? {
                if matches!(&key, Param::Str(k) if k == self.0) {
                    found = match map.next_value::<Param<'de>>()? {
                        Param::Str(v) => Some(v.into_owned()),
                        Param::Null => None,
                        _ => return Err(serde::de::Error::custom("not a string")),
                    };
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    impl<'de> DeserializeSeed<'de> for Member<'_> {
        type Value = Option<String>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(bytes);
    Member(name)
        .deserialize(&mut de)
        .map_err(|_| VerifyError::Malformed)
}

/// Whether the payload (a JSON object) marks another kind of JWT than an access token: an
/// `events` claim (Security Event Tokens and OpenID back-channel logout tokens; RFC 8417 §4
/// asks JWT consumers to refuse it) or a `typ` claim in [`OTHER_KIND_CLAIMS`]. One pass,
/// without building the object; not an object is [`VerifyError::Malformed`].
pub(super) fn other_kind(bytes: &[u8]) -> Result<bool, VerifyError> {
    use serde::de::{Deserializer, MapAccess, Visitor};

    struct Markers;

    impl<'de> Visitor<'de> for Markers {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut other = false;
            while let Some(key) = map.next_key::<Param<'de>>()? {
                match &key {
                    Param::Str(k) if k == "events" => {
                        other |= !matches!(map.next_value::<Param<'de>>()?, Param::Null);
                    }
                    Param::Str(k) if k == "typ" => {
                        if let Param::Str(typ) = map.next_value::<Param<'de>>()? {
                            other |= OTHER_KIND_CLAIMS
                                .iter()
                                .any(|t| typ.eq_ignore_ascii_case(t));
                        }
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(other)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(Markers)
        .map_err(|_| VerifyError::Malformed)
}

/// A JSON object (UTF-8); anything else is `Malformed`.
fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, VerifyError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VerifyError::Malformed),
    }
}
