//! Node names: one string arena and a sorted index from name to node.
//!
//! A million names as a million `String`s in two hash maps (one to validate, one to look up)
//! cost two allocations and two SipHash inserts per node: most of the build time. Here they are
//! one arena (bytes and end offsets) and one sorted array of hashes and node indices, built once
//! by `build`, which serves both the duplicate check and lookups.
//!
//! A node added without a name (`GraphBuilder::unnamed_node`) is shown as `#` and its index
//! (`#17`) in errors, reports and DOT. That text is written into the arena when the node is
//! added (a few digit stores, no formatting machinery), flagged, and left out of the hash index:
//! `find` answers `#17` by parsing it, so a graph of unnamed nodes hashes and sorts nothing.

use std::collections::TryReserveError;
use std::fmt;

use pool_core::catch_panic;

use crate::key::NodeName;

/// Set in `Names::ends[i]` when node `i` has no user-given name (its text is `#i`).
const UNNAMED: usize = 1 << (usize::BITS - 1);

/// `00` to `99`, for writing two decimal digits at a time.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Every name, back to back.
#[derive(Default)]
pub(crate) struct Names {
    bytes: String,
    /// `ends[i]`: where name `i` ends in `bytes` (it starts where name `i - 1` ends), with the
    /// `UNNAMED` bit set for a node that has no user-given name.
    ends: Vec<usize>,
    /// Whether any node has a user-given name (if not, there is nothing to index).
    any_named: bool,
    /// Every named node's `hash << 32 | index`, in node order: the [`NameIndex`] keys, hashed
    /// as each name is added, while its text is in the cache (`build` reads neither the text
    /// nor `ends` again to index the names). Taken by [`take_keys`](Names::take_keys).
    keys: Vec<u64>,
    /// The named nodes whose name starts with `#`, which may be an unnamed node's text.
    hash_prefixed: Vec<u32>,
    /// The text of the last unnamed node added: the next one is usually the next index.
    odometer: Odometer,
}

/// `#` and the decimal digits of an index, left-aligned in a fixed buffer, counted up in place:
/// the text of index `i + 1` from that of `i` is usually one byte changed, where writing the
/// digits afresh (two at a time) cost as much as the rest of adding a node.
#[derive(Default)]
struct Odometer {
    /// The index shown, if any.
    index: Option<u32>,
    /// `#` and at most 10 digits (`u32::MAX`); `text[..len]` is the text.
    text: [u8; 12],
    len: usize,
}

impl Odometer {
    /// Shows `index`: counted up from the previous index when it is the next one and no digit
    /// is added, written afresh otherwise.
    fn show(&mut self, index: u32) {
        if self.index.map(|last| last.wrapping_add(1)) != Some(index) || !self.count_up() {
            self.write(index);
        }
        self.index = Some(index);
    }

    /// Adds one to the digits in place; false if that needs one more digit (`#99` to `#100`).
    fn count_up(&mut self) -> bool {
        for digit in self.text[1..self.len].iter_mut().rev() {
            if *digit < b'9' {
                *digit += 1;
                return true;
            }
            *digit = b'0';
        }
        false
    }

    fn write(&mut self, index: u32) {
        // Digits from the end of a small buffer, two at a time, then moved to the front.
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut rest = index;
        while rest >= 10 {
            let pair = (rest % 100) as usize * 2;
            rest /= 100;
            at -= 2;
            digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if rest > 0 || at == digits.len() {
            at -= 1;
            digits[at] = b'0' + rest as u8;
        }
        let count = digits.len() - at;
        self.text[0] = b'#';
        self.text[1..=count].copy_from_slice(&digits[at..]);
        self.len = count + 1;
    }
}

impl Names {
    #[cfg(test)]
    fn push(&mut self, name: &str) {
        let index = self.len() as u32;
        assert!(self.push_name(index, name).is_ok());
    }

    /// Adds a node named by `name`'s text, written straight into the arena. If writing it fails
    /// or panics (a user's `Display`, or `AsRef<str>`), the partial text is taken back, the node
    /// is added as an unnamed node `#index`, and the problem is returned for `build` to report.
    pub(crate) fn push_name<N: NodeName>(&mut self, index: u32, name: N) -> Result<(), String> {
        // A borrowed name's text is its `AsRef<str>`: user code for a user's type (for `&str`
        // the catch costs nothing that runs).
        match catch_panic(|| name.text()) {
            Ok(Some(text)) => {
                self.push_text(index, text);
                return Ok(());
            }
            Ok(None) => {}
            Err(panic) => {
                self.push_unnamed(index);
                return Err(format!("panicked: {panic}"));
            }
        }
        let start = self.bytes.len();
        let written = if N::RUNS_USER_CODE {
            // The user's `Display` may panic: the node is still added (as `#index`), so the
            // builder stays whole, and `build` names the problem.
            catch_panic(|| name.append_to(&mut self.bytes))
                .map_err(|panic| format!("panicked: {panic}"))
                .and_then(|r| r.map_err(|fmt::Error| "a Display impl returned an error".into()))
        } else {
            name.append_to(&mut self.bytes)
                .map_err(|fmt::Error| "a Display impl returned an error".into())
        };
        match written {
            Ok(()) => {
                let text = &self.bytes.as_bytes()[start..];
                if text.first() == Some(&b'#') {
                    self.hash_prefixed.push(index);
                }
                self.keys.push((hash(text) << 32) | u64::from(index));
                self.ends.push(self.bytes.len());
                self.any_named = true;
                Ok(())
            }
            Err(problem) => {
                // `String`'s `fmt::Write` appends whole `&str`s: `start` is a char boundary.
                self.bytes.truncate(start);
                self.push_unnamed(index);
                Err(problem)
            }
        }
    }

    /// Adds a node named `text`. A name of at most 16 bytes (most are) is read as two words
    /// once, which both its copy into the arena and its hash use: a `push_str` called `memcpy`
    /// for it, which cost more than the rest of storing and hashing the name. (Inlined into
    /// `GraphBuilder::node` it cost 6 instructions per node more, not less.)
    fn push_text(&mut self, index: u32, text: &str) {
        let bytes = text.as_bytes();
        let h = if let Some(words) = ShortName::of(bytes) {
            // SAFETY: `append_to` writes `text`'s bytes exactly, so `self.bytes` stays UTF-8.
            words.append_to(unsafe { self.bytes.as_mut_vec() });
            words.hash()
        } else {
            self.bytes.push_str(text);
            hash(bytes)
        };
        if bytes.first() == Some(&b'#') {
            self.hash_prefixed.push(index);
        }
        self.keys.push((h << 32) | u64::from(index));
        self.ends.push(self.bytes.len());
        self.any_named = true;
    }

    /// Room for `nodes` more names (their end offsets; the text grows as it comes).
    pub(crate) fn try_reserve(&mut self, nodes: usize) -> Result<(), TryReserveError> {
        self.ends.try_reserve(nodes)?;
        self.keys.try_reserve(nodes)
    }

    /// The index keys of the names added so far, and the nodes whose name starts with `#`
    /// (see [`NameIndex::new`]); the names themselves stay.
    pub(crate) fn take_keys(&mut self) -> NameKeys {
        NameKeys {
            keys: std::mem::take(&mut self.keys),
            hash_prefixed: std::mem::take(&mut self.hash_prefixed),
        }
    }

    /// Adds node `index`, which has no name: its text is `#index`.
    pub(crate) fn push_unnamed(&mut self, index: u32) {
        self.odometer.show(index);
        let Odometer { text, len, .. } = &self.odometer;
        // SAFETY: `text` is ASCII (`#`, `0`-`9`, and zeros past `len`), and only `text[..len]`
        // is kept, so `bytes` stays UTF-8. (Checking it with `from_utf8` cost as much as the
        // rest of adding a node.) The whole buffer is appended, then cut to length: a copy of
        // a fixed size is a few moves, one of the text's length a `memcpy` call.
        let bytes = unsafe { self.bytes.as_mut_vec() };
        bytes.extend_from_slice(text);
        bytes.truncate(bytes.len() - (text.len() - len));
        self.ends.push(self.bytes.len() | UNNAMED);
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    fn end(&self, i: usize) -> usize {
        self.ends[i] & !UNNAMED
    }

    pub(crate) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        &self.bytes[start..self.end(i)]
    }

    /// Whether node `i` was added without a name.
    pub(crate) fn is_unnamed(&self, i: usize) -> bool {
        self.ends.get(i).is_some_and(|&end| end & UNNAMED != 0)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    /// The unnamed node that `name` (`#17`) shows, if there is one.
    fn unnamed_node(&self, name: &str) -> Option<u32> {
        let digits = name.strip_prefix('#')?;
        // Exactly the text `push_unnamed` writes: digits only, no sign, no leading zero.
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
        {
            return None;
        }
        let i: u32 = digits.parse().ok()?;
        self.is_unnamed(i as usize).then_some(i)
    }
}

/// What [`Names`] noted of the named nodes as they were added, for [`NameIndex::new`].
pub(crate) struct NameKeys {
    keys: Vec<u64>,
    hash_prefixed: Vec<u32>,
}

/// Name -> node index, over a [`Names`] arena: every named node's `hash << 32 | index`, sorted
/// by the hash's top `prefix_bits` bits.
///
/// Built on a graph's first name lookup (`build` only checks the names: [`NameIndex::check`]),
/// from the names hashed again and a radix sort, not by inserting into a hash table: a million
/// random inserts into a table far larger than the cache cost a cache miss or three each. Lookups (by name: reports, marks,
/// name dependencies) are a binary search on the prefix, then a short scan of keys with the same
/// prefix comparing the whole hash, then the name.
pub(crate) struct NameIndex {
    sorted: Box<[u64]>,
    /// A key's prefix is `key >> prefix_shift`.
    prefix_shift: u32,
}

impl NameIndex {
    /// Indexes every user-given name; on a name used more than once, gives the index of the
    /// earliest second use (see [`check`](Self::check)). What `build` once did; it now only
    /// checks, and the graph indexes its names on the first lookup.
    #[cfg(test)]
    pub(crate) fn new(names: &Names, keys: NameKeys) -> Result<NameIndex, usize> {
        Self::check(names, keys)?;
        Ok(Self::index(names))
    }

    /// Checks that no user-given name is used twice; on a name used more than once, gives the
    /// index of the earliest second use (what inserting the names in order into a map would
    /// find first). A user-given name that is the text of an unnamed node (`#17`) counts as a
    /// second use. `keys`: what `names.take_keys()` gave after the last name was added.
    ///
    /// Without sorting the keys (what indexing them costs: a radix sort of two scattering
    /// passes over 8 bytes a name, a third of a named build's own work): a bit per slot of a
    /// table of 16 to 32 slots per key, indexed by the top bits of the hash, notes which slots
    /// were hit, and a second bit which were hit twice (branch-free, both bits in one cache
    /// line: 4 MiB for a million names). Equal names have equal hashes, so the same slot: only the keys of
    /// slots hit twice (a few percent) are sorted by hash and index and compared, hashes
    /// first, names (a cache miss each, in a large arena) only for equal hashes.
    pub(crate) fn check(names: &Names, keys: NameKeys) -> Result<(), usize> {
        if !names.any_named {
            return Ok(());
        }
        let mut second_use: Option<usize> = None;
        let mut note = |later: usize| second_use = Some(second_use.map_or(later, |s| s.min(later)));
        let NameKeys {
            keys,
            hash_prefixed,
        } = keys;
        for i in hash_prefixed {
            if let Some(k) = names.unnamed_node(names.get(i as usize)) {
                note(i.max(k) as usize);
            }
        }
        // 16 to 32 slots per key (at most 2^30 slots: 128 MiB per table).
        let bits = (keys.len().max(1).ilog2() + 5).min(30);
        let shift = 64 - bits;
        let slot = |k: u64| {
            let s = (k >> shift) as usize;
            (s >> 6, 1u64 << (s & 63))
        };
        // `[hit, hit twice]` words side by side: one cache line per key, not two.
        let mut table = vec![[0u64; 2]; 1usize << bits.saturating_sub(6)];
        for &k in &keys {
            let (w, bit) = slot(k);
            let [hit, twice] = &mut table[w];
            *twice |= *hit & bit;
            *hit |= bit;
        }
        // The keys of slots hit twice, compacted in place, branch-free (whether a key clashes
        // is data: a branch on it mispredicted once per clash).
        let mut clashes = keys;
        let mut len = 0;
        for i in 0..clashes.len() {
            let k = clashes[i];
            let (w, bit) = slot(k);
            clashes[len] = k;
            len += usize::from(table[w][1] & bit != 0);
        }
        clashes.truncate(len);
        drop(table);
        // By hash, then index: within a run of equal hashes, earlier nodes first.
        clashes.sort_unstable();
        for (k, pair) in clashes.windows(2).enumerate() {
            let later = pair[1];
            if (pair[0] ^ later) >> 32 != 0 {
                continue;
            }
            let later_name = names.get(later as u32 as usize);
            if clashes[..=k]
                .iter()
                .rev()
                .take_while(|&&earlier| (earlier ^ later) >> 32 == 0)
                .any(|&earlier| names.get(earlier as u32 as usize) == later_name)
            {
                note(later as u32 as usize);
            }
        }
        match second_use {
            Some(i) => Err(i),
            None => Ok(()),
        }
    }

    /// Indexes the user-given names of `names`, which [`check`](Self::check) found distinct:
    /// each is hashed again from the arena (the keys taken while adding were dropped after the
    /// check, 8 bytes a node a graph that is never asked a name need not keep), then sorted.
    pub(crate) fn index(names: &Names) -> NameIndex {
        if !names.any_named {
            return NameIndex {
                sorted: Box::default(),
                prefix_shift: 32,
            };
        }
        let mut keys: Vec<u64> = (0..names.len())
            .filter(|&i| !names.is_unnamed(i))
            .map(|i| (hash(names.get(i).as_bytes()) << 32) | i as u64)
            .collect();
        let prefix_shift = sort_by_hash_prefix(&mut keys);
        NameIndex {
            sorted: keys.into_boxed_slice(),
            prefix_shift,
        }
    }

    pub(crate) fn find(&self, names: &Names, name: &str) -> Option<u32> {
        let h = hash(name.as_bytes());
        let prefix = (h << 32) >> self.prefix_shift;
        let first = self
            .sorted
            .partition_point(|&k| k >> self.prefix_shift < prefix);
        self.sorted[first..]
            .iter()
            .take_while(|&&k| k >> self.prefix_shift == prefix)
            .filter(|&&k| k >> 32 == h)
            .map(|&k| k as u32)
            .find(|&i| names.get(i as usize) == name)
            .or_else(|| names.unnamed_node(name))
    }
}

/// Bits of the hash sorted per pass: a pass's 2048 bucket cursors (8 KiB) stay in the L1
/// cache while the keys are scattered.
const DIGIT_BITS: u32 = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;

/// Sorts the keys stably by a prefix of their hash (the high 32 bits) long enough that keys
/// with equal prefixes are rare: two bits more than the key count needs, in whole 11-bit
/// passes of a least significant digit first radix sort (two passes up to a million keys,
/// three, the whole hash, past that). Each pass scatters the whole array once, so the pass it
/// saves is a third of the sort; every pass's digits are counted in one read of the keys
/// before the first. Returns the shift that gives a key's prefix.
fn sort_by_hash_prefix(keys: &mut Vec<u64>) -> u32 {
    let wanted = (keys.len().max(1).ilog2() + 3).min(32);
    let passes = wanted.div_ceil(DIGIT_BITS);
    let prefix_bits = (passes * DIGIT_BITS).min(32);
    let low = 64 - prefix_bits; // the prefix's lowest bit in a key
    let mut out = vec![0u64; keys.len()];
    // A count of u32 (fewer than `u32::MAX` nodes) keeps a pass's cursors at 8 KiB.
    let mut counts = count_digits(keys, low, passes);
    for (pass, count) in (0..).zip(counts.iter_mut()) {
        let shift = low + DIGIT_BITS * pass;
        if count.iter().any(|&c| c as usize == keys.len()) {
            continue; // every key has the same digit here
        }
        // Counts to start positions, in place.
        let mut sum = 0;
        for slot in count.iter_mut() {
            let c = *slot;
            *slot = sum;
            sum += c;
        }
        for &k in keys.iter() {
            let cursor = &mut count[digit(k, shift)];
            out[*cursor as usize] = k;
            *cursor += 1;
        }
        std::mem::swap(keys, &mut out);
    }
    low
}

/// Key `k`'s radix sort digit at bit `shift`.
fn digit(k: u64, shift: u32) -> usize {
    ((k >> shift) as usize) & (BUCKETS - 1)
}

/// The digit counts of every one of `passes` (at most 3) radix sort passes, from the one at
/// bit `low` up, in one read of the keys: a pass's counts do not depend on the order the
/// passes before it leave the keys in, and a separate counting read per pass cost a read of
/// the whole array and a loop each.
fn count_digits(keys: &[u64], low: u32, passes: u32) -> Vec<[u32; BUCKETS]> {
    // A fixed number of passes per instance: the inner loop unrolls, its indices unchecked.
    fn count<const P: usize>(keys: &[u64], low: u32) -> Vec<[u32; BUCKETS]> {
        let mut counts = vec![[0u32; BUCKETS]; P];
        if let Ok(fixed) = <&mut [[u32; BUCKETS]; P]>::try_from(&mut counts[..]) {
            for &k in keys {
                for (pass, count) in (0..).zip(fixed.iter_mut()) {
                    count[digit(k, low + DIGIT_BITS * pass)] += 1;
                }
            }
        }
        counts
    }
    match passes {
        0 | 1 => count::<1>(keys, low),
        2 => count::<2>(keys, low),
        _ => count::<3>(keys, low),
    }
}

/// A name of at most 16 bytes as two words, read with a few fixed-size loads (no loop, no
/// `memcpy` call) and shifted into place: the words hold the name's bytes in order (little
/// endian), and past its length bytes that depend on the name alone (so the words, like the
/// name, are equal for equal names of the same length).
#[derive(Clone, Copy)]
struct ShortName {
    len: usize,
    words: [u64; 2],
}

impl ShortName {
    const MAX: usize = 16;

    fn of(bytes: &[u8]) -> Option<ShortName> {
        let n = bytes.len();
        // Fixed-size loads; the lengths below keep them in bounds (the fallbacks are unreached).
        let u32_at = |i: usize| {
            u64::from(u32::from_le_bytes(
                bytes[i..i + 4].try_into().unwrap_or([0; 4]),
            ))
        };
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
        let words = match n {
            0 => [0, 0],
            // Bytes 0, n/2 and n-1: the name's bytes in order for 1, 2 or 3 of them.
            1..=3 => [
                u64::from(bytes[0])
                    | (u64::from(bytes[n / 2]) << 8)
                    | (u64::from(bytes[n - 1]) << 16),
                0,
            ],
            // Bytes 0-3, and the last four moved down over what they repeat of them.
            4..=7 => [u32_at(0) | ((u32_at(n - 4) >> (8 * (8 - n))) << 32), 0],
            // Bytes 0-7, and the last eight moved down over what they repeat of them (by 64
            // bits, which `wrapping_shr` makes 0, for 8 bytes: then the second word repeats
            // the first, past the name's length).
            8..=Self::MAX => [u64_at(0), u64_at(n - 8).wrapping_shr(8 * (16 - n) as u32)],
            _ => return None,
        };
        Some(ShortName { len: n, words })
    }

    /// Appends the name's bytes to `out`: both words whole, then cut back to the name's length
    /// (a copy of a fixed size is two moves; one of the name's length is a `memcpy` call).
    fn append_to(self, out: &mut Vec<u8>) {
        let mut buf = [0u8; Self::MAX];
        buf[..8].copy_from_slice(&self.words[0].to_le_bytes());
        buf[8..].copy_from_slice(&self.words[1].to_le_bytes());
        out.extend_from_slice(&buf);
        out.truncate(out.len() - (Self::MAX - self.len));
    }

    /// The name's hash: [`hash`] of its bytes.
    fn hash(self) -> u64 {
        let [w0, w1] = self.words;
        // Both words always (the second is zero below 8 bytes): no branch on the length.
        let h = ((self.len as u64).rotate_left(5) ^ w0).wrapping_mul(HASH_K);
        finish((h.rotate_left(5) ^ w1).wrapping_mul(HASH_K))
    }
}

/// The Fx hash's multiplier (rustc's `FxHasher`).
const HASH_K: u64 = 0x517c_c1b7_2722_0a95;

/// One more round, so the last word's bits reach the top half, which is kept.
fn finish(h: u64) -> u64 {
    (h.rotate_left(5) ^ (h >> 29)).wrapping_mul(HASH_K) >> 32
}

/// A fast 32-bit hash (the Fx hash of rustc, eight bytes at a time, top half kept). Names come
/// from the program that builds the graph, not from an attacker, so a keyed hash buys nothing.
/// A name of at most 16 bytes is hashed from its [`ShortName`] words, which the builder reads
/// once for both its copy and its hash.
fn hash(bytes: &[u8]) -> u64 {
    if let Some(short) = ShortName::of(bytes) {
        return short.hash();
    }
    let mut h = bytes.len() as u64;
    // Word by word with `split_first_chunk`, which needs none of `chunks_exact`'s set-up (a
    // division and its remainder).
    let mut rest = bytes;
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        h = (h.rotate_left(5) ^ u64::from_le_bytes(*word)).wrapping_mul(HASH_K);
        rest = tail;
    }
    if let Some(tail) = ShortName::of(rest) {
        // Fewer than 8 bytes: one word (the length is hashed too).
        h = (h.rotate_left(5) ^ tail.words[0]).wrapping_mul(HASH_K);
    }
    finish(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Indexes the names added so far (and keeps their keys, for a later index of more).
    fn index_of(names: &mut Names) -> Result<NameIndex, usize> {
        let keys = names.take_keys();
        names.keys.clone_from(&keys.keys);
        names.hash_prefixed.clone_from(&keys.hash_prefixed);
        NameIndex::new(names, keys)
    }

    #[test]
    fn finds_every_name_and_the_second_use_of_a_duplicate() {
        let mut names = Names::default();
        for i in 0..1000 {
            names.push(&format!("node-{i}"));
        }
        names.push("");
        let index = index_of(&mut names).unwrap();
        for i in 0..1000 {
            assert_eq!(index.find(&names, &format!("node-{i}")), Some(i));
        }
        assert_eq!(index.find(&names, ""), Some(1000));
        assert_eq!(index.find(&names, "node-1000"), None);
        names.push("node-7");
        assert_eq!(index_of(&mut names).err(), Some(1001));
    }

    /// `check` finds what inserting the names in order into a map finds first, over many
    /// sizes of its slot table and with duplicates anywhere, many of one name, and names that
    /// clash in their slot without being equal.
    #[test]
    fn check_reports_the_earliest_second_use_as_a_map_would() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for count in [1usize, 2, 3, 63, 64, 65, 1000, 20_000] {
            for round in 0..4 {
                // Round 0: all distinct; else names drawn from a pool that repeats.
                let pool = if round == 0 {
                    usize::MAX
                } else {
                    count * round / 2 + 1
                };
                let texts: Vec<String> = (0..count)
                    .map(|i| match round {
                        0 => format!("n{i}"),
                        _ => format!("name/{}", next() as usize % pool),
                    })
                    .collect();
                let mut names = Names::default();
                for t in &texts {
                    names.push(t);
                }
                let mut seen = std::collections::HashSet::new();
                let expected = texts.iter().position(|t| !seen.insert(t.as_str()));
                let keys = names.take_keys();
                assert_eq!(
                    NameIndex::check(&names, keys).err(),
                    expected,
                    "{count} names, round {round}"
                );
            }
        }
    }

    #[test]
    fn the_sort_orders_by_a_long_enough_prefix_stably() {
        // One pass (few keys), two (up to a million), three (the whole hash, past 2^20 keys).
        for (count, passes) in [(100usize, 1u32), (5000, 2), (1 << 20, 3)] {
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            let mut keys: Vec<u64> = (0..count as u64)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Few distinct hashes, so equal prefixes have runs to keep in order.
                    (((state >> 40) % (count as u64 / 2)) << 44) | i
                })
                .collect();
            let shift = sort_by_hash_prefix(&mut keys);
            assert_eq!(64 - shift, (passes * DIGIT_BITS).min(32), "{count} keys");
            assert_eq!(keys.len(), count);
            for pair in keys.windows(2) {
                let (a, b) = (pair[0] >> shift, pair[1] >> shift);
                assert!(a < b || (a == b && (pair[0] as u32) < (pair[1] as u32)));
            }
        }
    }

    #[test]
    fn names_of_every_tail_length_are_told_apart() {
        // Short names differ only in the bytes `ShortName` reads, by overlapping loads.
        let mut names = Names::default();
        let mut texts = Vec::new();
        for len in 0..=20 {
            for fill in [b'a', b'b'] {
                for at in 0..len {
                    let mut text = vec![fill; len];
                    text[at] = b'z';
                    let text = String::from_utf8(text).unwrap();
                    if !texts.contains(&text) {
                        texts.push(text); // "z" is made twice
                    }
                }
            }
        }
        texts.push(String::new());
        for text in &texts {
            names.push(text);
        }
        // Copied byte for byte, whichever loads `ShortName` used (or `push_str` past 16 bytes).
        assert!(names.iter().eq(texts.iter().map(String::as_str)));
        let index = index_of(&mut names).unwrap();
        for (i, text) in texts.iter().enumerate() {
            assert_eq!(index.find(&names, text), Some(i as u32), "{text:?}");
        }
        assert_eq!(index.find(&names, "zzz"), None);
    }

    #[test]
    fn unnamed_nodes_show_their_index_and_are_found_by_it() {
        let mut names = Names::default();
        names.push("a");
        names.push_unnamed(1);
        names.push_unnamed(2);
        names.push("#10");
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a", "#1", "#2", "#10"]);
        let mut texts = Names::default();
        for i in [0, 7, 10, 99, 100, 105, 1000, 123_456, u32::MAX] {
            texts.push_unnamed(i);
            assert_eq!(texts.get(texts.len() - 1), format!("#{i}"));
        }
        let index = index_of(&mut names).unwrap();
        assert_eq!(index.find(&names, "#2"), Some(2));
        assert_eq!(
            index.find(&names, "#10"),
            Some(3),
            "a user's name, not a node index"
        );
        assert_eq!(index.find(&names, "#0"), None, "node 0 has a name");
        assert_eq!(index.find(&names, "#02"), None);
        assert_eq!(index.find(&names, "#+2"), None);
        // A user's name that is an unnamed node's text is a duplicate (its second use).
        names.push("#1");
        assert_eq!(index_of(&mut names).err(), Some(4));
    }

    #[test]
    fn unnamed_texts_counted_up_match_their_index() {
        // In order (counted up, across every added digit), after a gap and after named nodes
        // (written afresh), and down again.
        let mut names = Names::default();
        let mut expected = Vec::new();
        let indices = (0..=10_050u32)
            .chain([99_999, 100_000, 100_001, 5, 6, 4_294_967_294, u32::MAX])
            .chain(1_009..=1_011);
        for (n, i) in indices.enumerate() {
            if n % 97 == 3 {
                names.push("named");
                expected.push("named".to_owned());
            }
            names.push_unnamed(i);
            expected.push(format!("#{i}"));
        }
        assert!(names.iter().eq(expected.iter().map(String::as_str)));
    }
}
