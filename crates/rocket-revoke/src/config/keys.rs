//! The serde plumbing that lets [`RevokeConfig`](super::RevokeConfig) read one flat table
//! into several structs, each from the same figment (so errors keep figment's key paths and
//! sources), and refuse a key that none of them reads.
//!
//! - [`fields`] asks a struct which keys it reads: the `fields` its derived `Deserialize`
//!   passes to `deserialize_struct`.
//! - [`Section`] deserializes a struct from a map, skipping the keys it does not read (its
//!   own `deny_unknown_fields` would refuse every other section's keys).
//! - [`KnownKeys`] reads nothing and refuses any key that is not in a given set.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, Visitor,
};
use serde::{Deserialize, Deserializer};

/// The keys `T` (a struct with derived `Deserialize`) reads, `Option` fields included: the
/// `fields` its `Deserialize` passes to `deserialize_struct`. Empty for a type that is not a
/// struct.
pub(super) fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(FieldNames) {
        Err(FieldNamesError(Some(fields))) => fields,
        _ => &[],
    }
}

/// A deserializer that reads nothing: it only records what `deserialize_struct` is called
/// with, in its error.
struct FieldNames;

/// The error [`FieldNames`] stops with: the field names when it was asked for a struct.
#[derive(Debug)]
struct FieldNamesError(Option<&'static [&'static str]>);

impl fmt::Display for FieldNamesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("only the field names are read")
    }
}

impl std::error::Error for FieldNamesError {}

impl de::Error for FieldNamesError {
    fn custom<M: fmt::Display>(_: M) -> Self {
        FieldNamesError(None)
    }
}

impl<'de> Deserializer<'de> for FieldNames {
    type Error = FieldNamesError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(FieldNamesError(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Err(FieldNamesError(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// `T` deserialized from a map that may hold other structs' keys too: the keys `T` does not
/// read are skipped (unread), so `T`'s `deny_unknown_fields` never sees them. Errors in the
/// keys it reads are the deserializer's own (figment's name the key and its source).
pub(super) struct Section<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Section<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(OnlyFields(deserializer)).map(Section)
    }
}

/// Forwards to `D`, except that a struct's map skips the keys the struct does not read.
struct OnlyFields<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for OnlyFields<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_struct(name, fields, OnlyFieldsVisitor { fields, visitor })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The struct's visitor, handed a map that yields only the struct's `fields`.
struct OnlyFieldsVisitor<V> {
    fields: &'static [&'static str],
    visitor: V,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for OnlyFieldsVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_map(OnlyFieldsMap {
            fields: self.fields,
            map,
        })
    }
}

/// A map without the entries whose key is not one of `fields`.
struct OnlyFieldsMap<A> {
    fields: &'static [&'static str],
    map: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for OnlyFieldsMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if self.fields.contains(&key.as_str()) {
                return seed.deserialize(key.into_deserializer()).map(Some);
            }
            self.map.next_value::<IgnoredAny>()?;
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A set of keys a table may hold.
pub(super) trait KeySet {
    /// The keys.
    fn keys() -> &'static [&'static str];
}

/// Reads a map's keys and nothing else: a key not in `K`'s set is an `unknown field` error,
/// raised while the deserializer reads that key (figment puts the key and its source in the
/// message).
pub(super) struct KnownKeys<K>(PhantomData<K>);

impl<'de, K: KeySet> Deserialize<'de> for KnownKeys<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(KnownKeys(PhantomData))
    }
}

impl<'de, K: KeySet> Visitor<'de> for KnownKeys<K> {
    type Value = KnownKeys<K>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_key_seed(KnownKey::<K>(PhantomData))?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(self)
    }
}

/// One key, refused unless it is in `K`'s set.
struct KnownKey<K>(PhantomData<K>);

impl<'de, K: KeySet> DeserializeSeed<'de> for KnownKey<K> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, K: KeySet> Visitor<'de> for KnownKey<K> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        let keys = K::keys();
        if keys.contains(&key) {
            Ok(())
        } else {
            Err(E::unknown_field(key, keys))
        }
    }
}
