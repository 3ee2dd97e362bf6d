//! The few texts looked up last, with what each read as (and the comparison of short texts
//! they use, [`same_bytes`], for other readers too). Exports repeat a handful of values
//! row after row (currency codes, payment terms), and reading one costs hundreds of
//! instructions (the ISO currency table, a terms parser and a hash map); comparing a few
//! bytes with the last ones seen costs a handful.

/// The last `N` texts put, with their values, replaced round robin.
pub(crate) struct Recent<V, const N: usize> {
    entries: Vec<(Box<str>, V)>,
    /// The entry the next text replaces once `entries` is full.
    next: usize,
}

impl<V: Copy, const N: usize> Recent<V, N> {
    pub(crate) fn new() -> Self {
        Self { entries: Vec::with_capacity(N), next: 0 }
    }

    /// The value put for `text`, if it is among the last `N` texts put.
    #[inline]
    pub(crate) fn get(&self, text: &str) -> Option<V> {
        self.entries.iter().find(|(t, _)| same_text(t, text)).map(|(_, v)| *v)
    }

    /// Keeps `text` and its value, in place of the oldest once `N` are kept.
    pub(crate) fn put(&mut self, text: &str, value: V) {
        if self.entries.len() < N {
            self.entries.push((text.into(), value));
        } else if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = (text.into(), value);
            self.next = (self.next + 1) % N;
        }
    }
}

/// `a == b` without a call to `memcmp` for texts of up to 16 bytes (see [`same_bytes`]).
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// `x == y` without a call to `memcmp` for up to 16 bytes: two overlapping words, halves or
/// bytes of each. The short texts of an export (codes, names of fields, the tags of a sheet)
/// are compared row after row, and a call costs more than the comparison.
#[inline]
pub(crate) fn same_bytes(x: &[u8], y: &[u8]) -> bool {
    let n = x.len();
    if n != y.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => x[0] == y[0] && x[n / 2] == y[n / 2] && x[n - 1] == y[n - 1],
        4..=7 => x.first_chunk::<4>() == y.first_chunk::<4>() && x.last_chunk::<4>() == y.last_chunk::<4>(),
        8..=16 => x.first_chunk::<8>() == y.first_chunk::<8>() && x.last_chunk::<8>() == y.last_chunk::<8>(),
        _ => x == y,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `same_text` is `==`, for texts of every length around the word sizes.
        #[test]
        fn same_text_is_equality(a in "[ab é]{0,20}", b in "[ab é]{0,20}", k in 0usize..20) {
            proptest::prop_assert_eq!(same_text(&a, &b), a == b);
            proptest::prop_assert!(same_text(&a, &a.clone()));
            // The same text with one character changed at any place.
            let mut chars: Vec<char> = a.chars().collect();
            if let Some(c) = chars.get_mut(k % a.chars().count().max(1)) {
                *c = if *c == 'a' { 'b' } else { 'a' };
                let changed: String = chars.into_iter().collect();
                proptest::prop_assert_eq!(same_text(&a, &changed), a == changed);
            }
        }

        /// `same_bytes` is `==`, for any bytes of every length around the word sizes.
        #[test]
        fn same_bytes_is_equality(
            a in proptest::collection::vec(0u8..4, 0..24),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            longer in proptest::prelude::any::<bool>(),
        ) {
            let mut b = a.clone();
            if longer || b.is_empty() {
                b.push(0);
            } else {
                b[at.index(a.len())] ^= 1;
            }
            proptest::prop_assert!(same_bytes(&a, &a.clone()));
            proptest::prop_assert_eq!(same_bytes(&a, &b), a == b);
        }

        /// `get` answers what the last `put` of a text among the last three texts put
        /// said, and nothing for older texts.
        #[test]
        fn recent_keeps_the_last_texts(texts in proptest::collection::vec("[ab]{0,3}", 1..40)) {
            let mut recent: Recent<usize, 3> = Recent::new();
            let mut log: Vec<(String, usize)> = Vec::new();
            for (i, t) in texts.iter().enumerate() {
                if recent.get(t).is_none() {
                    recent.put(t, i);
                    log.push((t.clone(), i));
                }
                let kept = &log[log.len().saturating_sub(3)..];
                for probe in ["", "a", "b", "ab", "ba", "aaa", "bbb"] {
                    let want = kept.iter().rev().find(|(k, _)| k == probe).map(|(_, v)| *v);
                    proptest::prop_assert_eq!(recent.get(probe), want);
                }
            }
        }
    }
}
