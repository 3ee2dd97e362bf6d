//! "did you mean …?" suggestions by edit distance.

/// Damerau–Levenshtein distance (optimal string alignment), case-insensitive.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo
/// (at most one edit for short words, two for words of 5+ characters, a third of the
/// length beyond). Ties go to the first candidate.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if word.chars().count() > 64 {
        return None;
    }
    let len = word.chars().count();
    let max = match len {
        0..=2 => 0,
        3..=4 => 1,
        5..=8 => 2,
        _ => len / 3,
    };
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c.eq_ignore_ascii_case(word) {
            return Some(c);
        }
        let d = distance(word, c);
        if d <= max && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("leter", "letter"), 1);
        assert_eq!(distance("emial", "email"), 1);
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn closest_picks_plausible_typos_only() {
        let c = ["email", "letter", "call", "sms"];
        assert_eq!(closest("leter", c), Some("letter"));
        assert_eq!(closest("emial", c), Some("email"));
        assert_eq!(closest("fax", c), None);
        assert_eq!(closest("EMAIL", c), Some("email"));
        assert_eq!(closest("scenaro", ["settings", "scenario"]), Some("scenario"));
    }
}
