//! The map inside each shard: keys are user code, so they are hashed and compared only where
//! their panic can reach the submitter that owns them.
//!
//! A key's `Hash` runs once per submit, on the submitter's thread, before any lock is taken; its
//! `Eq` runs only in the submitter's search, which changes nothing. Every entry also gets a
//! serial number, and the entry's [`Place`] (hash and serial) is what executions carry:
//! workers, handles and cancels find their entry by serial and never call the key again, so a
//! key that panics after its submit cannot strand an execution. The key itself is handed back
//! when its entry is removed, so that its `Drop` (user code too) runs after the lock is released.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Where an entry is: the key's hash (computed at submit) and the entry's serial number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) hash: u64,
    pub(crate) serial: u64,
}

/// Maps keys to values; see the module docs for who may call the key's code.
pub(crate) struct KeyMap<K, V> {
    map: HashMap<Stored<K>, (u64, V), BuildHasherDefault<Prehashed>>,
    next_serial: u64,
}

impl<K: Eq, V> KeyMap<K, V> {
    pub(crate) fn new() -> Self {
        KeyMap {
            map: HashMap::default(),
            next_serial: 0,
        }
    }

    /// The value of `key`, whose hash is `hash`. Calls `K::eq` on every entry with the same
    /// hash (the submitter's own key, on its own thread); a panic there leaves the map as it was.
    pub(crate) fn find(&mut self, hash: u64, key: &K) -> Option<(Place, &mut V)> {
        let (serial, value) = self.map.get_mut(&ByKey { hash, key } as &dyn Query<K>)?;
        Some((
            Place {
                hash,
                serial: *serial,
            },
            value,
        ))
    }

    /// The value at `place`, if its entry is still in the map. Calls no user code.
    pub(crate) fn get(&mut self, place: Place) -> Option<&mut V> {
        let (_, value) = self.map.get_mut(&BySerial(place) as &dyn Query<K>)?;
        Some(value)
    }

    /// Adds `key`, which must not be in the map (the caller's [`find`](Self::find) said so),
    /// with the value `value` makes for its place. Calls no user code.
    pub(crate) fn insert(&mut self, hash: u64, key: K, value: impl FnOnce(Place) -> V) -> Place {
        let place = Place {
            hash,
            serial: self.next_serial,
        };
        self.next_serial += 1;
        // A fresh serial equals no stored one, so the insert compares no keys.
        let stored = Stored {
            hash,
            serial: place.serial,
            key,
        };
        self.map.insert(stored, (place.serial, value(place)));
        place
    }

    /// Removes the entry at `place` and hands back its key, to be dropped after the lock is
    /// released. Calls no user code.
    pub(crate) fn remove(&mut self, place: Place) -> Option<(K, V)> {
        let (stored, (_, value)) = self.map.remove_entry(&BySerial(place) as &dyn Query<K>)?;
        Some((stored.key, value))
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values().map(|(_, value)| value)
    }
}

/// A key as the map stores it. Two stored keys are equal only if they are the same entry: keys
/// are unique in the map, so comparing serials is enough.
struct Stored<K> {
    hash: u64,
    serial: u64,
    key: K,
}

/// How the map is searched: the hashbrown/std "borrow as a trait object" idiom, so one map can
/// be searched by the submitter's key ([`ByKey`]) or by an entry's place ([`BySerial`]).
trait Query<K> {
    fn hash(&self) -> u64;
    /// Set for stored keys and searches by place.
    fn serial(&self) -> Option<u64>;
    /// Set for stored keys and searches by key.
    fn key(&self) -> Option<&K>;
}

struct ByKey<'a, K> {
    hash: u64,
    key: &'a K,
}

struct BySerial(Place);

impl<K> Query<K> for Stored<K> {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn serial(&self) -> Option<u64> {
        Some(self.serial)
    }
    fn key(&self) -> Option<&K> {
        Some(&self.key)
    }
}

impl<K> Query<K> for ByKey<'_, K> {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn serial(&self) -> Option<u64> {
        None
    }
    fn key(&self) -> Option<&K> {
        Some(self.key)
    }
}

impl<K> Query<K> for BySerial {
    fn hash(&self) -> u64 {
        self.0.hash
    }
    fn serial(&self) -> Option<u64> {
        Some(self.0.serial)
    }
    fn key(&self) -> Option<&K> {
        None
    }
}

impl<K: Eq> PartialEq for dyn Query<K> + '_ {
    fn eq(&self, other: &Self) -> bool {
        match (self.serial(), other.serial()) {
            // A search by place, or two stored keys: no user code.
            (Some(a), Some(b)) => a == b,
            // A search by key: the submitter's `K::eq`.
            _ => self.key() == other.key(),
        }
    }
}

impl<K: Eq> Eq for dyn Query<K> + '_ {}

impl<K> Hash for dyn Query<K> + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(Query::hash(self));
    }
}

impl<'a, K: 'a> Borrow<dyn Query<K> + 'a> for Stored<K> {
    fn borrow(&self) -> &(dyn Query<K> + 'a) {
        self
    }
}

/// Consistent with `dyn Query`'s `Hash` and `Eq`, as `Borrow` requires.
impl<K> Hash for Stored<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K> PartialEq for Stored<K> {
    fn eq(&self, other: &Self) -> bool {
        self.serial == other.serial
    }
}

impl<K> Eq for Stored<K> {}

/// The map's hasher: the key was hashed already (SipHash, randomly keyed: the map stays
/// DoS-resistant), so this only spreads it. The multiply keeps the low bits (the table index)
/// as they were and mixes every bit into the top ones, which the table uses as a tag and which
/// the shard choice would otherwise have made equal for every key of a shard.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}
