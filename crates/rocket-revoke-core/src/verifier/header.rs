//! The JOSE side of a compact token: its base64url segments and the header parameters the
//! rules read, parsed by small visitors into borrowed values (no `serde_json::Value`, no
//! allocation per parameter).

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::IgnoredAny;

use super::VerifyError;

/// Header `typ` values of an access token when no `required_typ` is set.
pub(super) const ACCESS_TYPS: [&str; 2] = ["jwt", "at+jwt"];

/// A media type as JOSE compares it: without an `application/` prefix (RFC 7515 §4.1.9);
/// callers compare the rest without letter case.
pub(super) fn media_type(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

/// A non-empty base64url (no padding) part; anything else is `Malformed`.
pub(super) fn decode_b64(part: &str) -> Result<Vec<u8>, VerifyError> {
    if part.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed)?;
    // JOSE header and claims are UTF-8 JSON; serde skips unknown members without checking
    // their encoding, so check it here for the whole segment.
    if std::str::from_utf8(&bytes).is_err() {
        return Err(VerifyError::Malformed);
    }
    Ok(bytes)
}

/// The JOSE header parameters the verifier reads. As for the claims, the lexically last of
/// duplicate names wins; other parameters are skipped (but must be valid JSON).
#[derive(Default)]
pub(super) struct JoseHeader<'a> {
    pub(super) alg: Option<Param<'a>>,
    pub(super) crit: Option<Param<'a>>,
    pub(super) b64: Option<Param<'a>>,
    pub(super) kid: Option<Param<'a>>,
    pub(super) typ: Option<Param<'a>>,
}

/// A header parameter's value, as far as the rules need it.
pub(super) enum Param<'a> {
    Str(Cow<'a, str>),
    True,
    Null,
    Other,
}

impl<'de> serde::Deserialize<'de> for Param<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Param<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Param<'de>, E> {
                Ok(Param::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Param<'de>, E> {
                Ok(Param::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Param<'de>, E> {
                Ok(Param::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Param<'de>, E> {
                Ok(if v { Param::True } else { Param::Other })
            }
            fn visit_unit<E>(self) -> Result<Param<'de>, E> {
                Ok(Param::Null)
            }
            fn visit_none<E>(self) -> Result<Param<'de>, E> {
                Ok(Param::Null)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Param<'de>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Param<'de>, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::Deserialize<'de> for JoseHeader<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JoseHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<JoseHeader<'de>, A::Error> {
                let mut h = JoseHeader::default();
                while let Some(name) = a.next_key::<Param<'de>>()? {
                    let Param::Str(name) = name else {
                        a.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let slot = match name.as_ref() {
                        "alg" => &mut h.alg,
                        "crit" => &mut h.crit,
                        "b64" => &mut h.b64,
                        "kid" => &mut h.kid,
                        "typ" => &mut h.typ,
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(a.next_value::<Param<'de>>()?);
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}
