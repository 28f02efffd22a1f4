//! Award-key deduplication: exact repeats of a row are dropped, different rows that share a
//! key are kept with a suffix.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

/// Keeps award ids unique: exact repeats are dropped, same-key different rows get a suffix.
#[derive(Default)]
pub(super) struct Dedup {
    /// award key → the content hashes kept under it, each with the line it was first seen on
    seen: HashMap<u64, Kept, BuildHasherDefault<KeyHasher>>,
}

/// The rows kept under one award key: nearly always one, so it needs no allocation.
struct Kept {
    first: (u64, u64),
    more: Vec<(u64, u64)>,
}

/// Award keys are already hashes (SHA-256 prefixes): the map uses them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; fold anything else in rather than ignore it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(super) enum Seen {
    New,
    Repeat(u64),
    Collision(u32),
}

impl Dedup {
    pub(super) fn check(&mut self, key: u64, content: u64, line: u64) -> Seen {
        match self.seen.entry(key) {
            Entry::Vacant(e) => {
                e.insert(Kept {
                    first: (content, line),
                    more: Vec::new(),
                });
                Seen::New
            }
            Entry::Occupied(mut e) => {
                let kept = e.get_mut();
                let all = std::iter::once(&kept.first).chain(&kept.more);
                if let Some((_, first)) = all.into_iter().find(|(c, _)| *c == content) {
                    return Seen::Repeat(*first);
                }
                kept.more.push((content, line));
                Seen::Collision(kept.more.len() as u32 + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_drops_repeats_and_suffixes_collisions() {
        let mut d = Dedup::default();
        assert!(matches!(d.check(7, 1, 2), Seen::New));
        assert!(matches!(d.check(7, 1, 3), Seen::Repeat(2)));
        assert!(matches!(d.check(7, 9, 4), Seen::Collision(2)));
        assert!(matches!(d.check(7, 9, 5), Seen::Repeat(4)));
        assert!(matches!(d.check(8, 1, 6), Seen::New));
    }
}
