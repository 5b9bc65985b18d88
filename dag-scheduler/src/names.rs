//! Node names: one string arena and a sorted index from name to node.
//!
//! A million names as a million `String`s in two hash maps (one to validate, one to look up)
//! cost two allocations and two SipHash inserts per node: most of the build time. Here they are
//! one arena (bytes and end offsets) and one sorted array of hashes and node indices, built once
//! by `build`, which serves both the duplicate check and lookups.

/// Every name, back to back.
#[derive(Default)]
pub(crate) struct Names {
    bytes: String,
    /// `ends[i]`: where name `i` ends in `bytes` (it starts where name `i - 1` ends).
    ends: Vec<usize>,
}

impl Names {
    pub(crate) fn push(&mut self, name: &str) {
        self.bytes.push_str(name);
        self.ends.push(self.bytes.len());
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// Name -> node index, over a [`Names`] arena: every node's `hash << 32 | index`, sorted.
///
/// Built by hashing the names in order (a sequential pass) and a radix sort, not by inserting
/// into a hash table: a million random inserts into a table far larger than the cache cost a
/// cache miss or three each, which was most of the build. Lookups (by name: reports, marks,
/// name dependencies) are a binary search.
pub(crate) struct NameIndex {
    sorted: Box<[u64]>,
}

impl NameIndex {
    /// Indexes every name; on a name used more than once, gives the index of the earliest
    /// second use (what inserting the names in order into a map would find first).
    pub(crate) fn new(names: &Names) -> Result<NameIndex, usize> {
        let mut keys: Vec<u64> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (hash(name.as_bytes()) << 32) | i as u64)
            .collect();
        sort_by_high_half(&mut keys);
        // Equal names have equal hashes: compare names only within a run of equal hashes (the
        // run is in index order: the sort is stable).
        let mut second_use: Option<usize> = None;
        let mut run_start = 0;
        for k in 1..=keys.len() {
            if k < keys.len() && keys[k] >> 32 == keys[run_start] >> 32 {
                continue;
            }
            let run = &keys[run_start..k];
            for (j, &later) in run.iter().enumerate().skip(1) {
                let later = later as u32 as usize;
                if run[..j]
                    .iter()
                    .any(|&earlier| names.get(earlier as u32 as usize) == names.get(later))
                {
                    second_use = Some(second_use.map_or(later, |s| s.min(later)));
                    break;
                }
            }
            run_start = k;
        }
        match second_use {
            Some(i) => Err(i),
            None => Ok(NameIndex {
                sorted: keys.into_boxed_slice(),
            }),
        }
    }

    pub(crate) fn find(&self, names: &Names, name: &str) -> Option<u32> {
        let h = hash(name.as_bytes());
        let first = self.sorted.partition_point(|&k| k >> 32 < h);
        self.sorted[first..]
            .iter()
            .take_while(|&&k| k >> 32 == h)
            .map(|&k| k as u32)
            .find(|&i| names.get(i as usize) == name)
    }
}

/// Sorts by the high 32 bits, stably (least significant digit first radix sort, 8 bits a pass).
fn sort_by_high_half(keys: &mut Vec<u64>) {
    let digit = |k: u64, d: usize| ((k >> (32 + 8 * d)) & 0xff) as usize;
    let mut counts = [[0usize; 256]; 4];
    for &k in keys.iter() {
        for (d, count) in counts.iter_mut().enumerate() {
            count[digit(k, d)] += 1;
        }
    }
    let mut out = vec![0u64; keys.len()];
    for (d, count) in counts.iter().enumerate() {
        if count.contains(&keys.len()) {
            continue; // every key has the same digit here
        }
        let mut next = [0usize; 256];
        let mut sum = 0;
        for (slot, &c) in next.iter_mut().zip(count) {
            *slot = sum;
            sum += c;
        }
        for &k in keys.iter() {
            let b = digit(k, d);
            out[next[b]] = k;
            next[b] += 1;
        }
        std::mem::swap(keys, &mut out);
    }
}

/// A fast 32-bit hash (the Fx hash of rustc, eight bytes at a time, top half kept). Names come
/// from the program that builds the graph, not from an attacker, so a keyed hash buys nothing.
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    // One more round so the last word's bits reach the top half, which is kept.
    (h.rotate_left(5) ^ (h >> 29)).wrapping_mul(K) >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_name_and_the_second_use_of_a_duplicate() {
        let mut names = Names::default();
        for i in 0..1000 {
            names.push(&format!("node-{i}"));
        }
        names.push("");
        let index = NameIndex::new(&names).unwrap();
        for i in 0..1000 {
            assert_eq!(index.find(&names, &format!("node-{i}")), Some(i));
        }
        assert_eq!(index.find(&names, ""), Some(1000));
        assert_eq!(index.find(&names, "node-1000"), None);
        names.push("node-7");
        assert_eq!(NameIndex::new(&names).err(), Some(1001));
    }
}
