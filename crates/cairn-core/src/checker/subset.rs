//! `--read-data-subset`: which packs to read, with restic 0.14's parsing and selection rules.
//!
//! * `n/t`: the packs whose first id byte modulo `t` is `n-1` (deterministic; `t` ≤ 256).
//! * `x%` or `x.y%`: that share of the packs, at least one, chosen at random.
//! * `SIZE` with a suffix b/B, k/K, m/M, g/G, t/T (powers of 1024): packs chosen at random
//!   until the share of the repository's size is reached, as restic computes it (the size
//!   becomes a percentage of all packs).

use crate::Id;

/// Largest `t` in `n/t`: only the first byte of the pack id is looked at.
pub const MAX_BUCKETS: u32 = 256;

#[derive(Clone, Debug, PartialEq)]
pub enum Subset {
    /// Group `n` (1-based) of `t`.
    Bucket { n: u32, t: u32 },
    /// A random share of the packs, in percent.
    Percent(f64),
    /// A random share of the packs, given as bytes of the repository.
    Size(u64),
}

impl std::fmt::Display for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subset::Bucket { n, t } => write!(f, "{n}/{t}"),
            Subset::Percent(p) => write!(f, "{p}%"),
            Subset::Size(s) => write!(f, "{s}"),
        }
    }
}

const INVALID: &str = "check flag --read-data-subset has invalid value, please see documentation";

/// restic's `parseSizeStr`: digits with an optional one-letter unit.
pub fn parse_size(s: &str) -> Option<i64> {
    let last = s.chars().last()?;
    let (num, unit): (&str, i64) = match last {
        'b' | 'B' => (&s[..s.len() - 1], 1),
        'k' | 'K' => (&s[..s.len() - 1], 1 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        't' | 'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    // Go's ParseInt accepts a sign; keep that, the caller rejects values ≤ 0.
    let v: i64 = num.parse().ok()?;
    v.checked_mul(unit)
}

impl std::str::FromStr for Subset {
    type Err = anyhow::Error;

    /// Parses and validates as restic 0.14 does, with its messages.
    fn from_str(s: &str) -> anyhow::Result<Subset> {
        // First as a '/'-separated list of unsigned integers: exactly two are wanted, and a
        // single number ("5") is not a size but an invalid value, as in restic.
        let ints: Option<Vec<u64>> = s
            .split('/')
            .map(|p| {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                p.parse::<u64>().ok()
            })
            .collect();
        if let Some(ints) = ints {
            if ints.len() != 2 {
                anyhow::bail!(INVALID);
            }
            let (n, t) = (ints[0], ints[1]);
            if n == 0 || t == 0 || n > t {
                anyhow::bail!("check flag --read-data-subset=n/t values must be positive integers, and n <= t, e.g. --read-data-subset=1/2");
            }
            if t > MAX_BUCKETS as u64 {
                anyhow::bail!("check flag --read-data-subset=n/t t must be at most {MAX_BUCKETS}");
            }
            return Ok(Subset::Bucket {
                n: n as u32,
                t: t as u32,
            });
        }
        if let Some(num) = s.strip_suffix('%') {
            let p: f64 = num.parse().map_err(|_| anyhow::anyhow!(INVALID))?;
            if p.is_nan() || p <= 0.0 || p > 100.0 {
                anyhow::bail!(
                    "check flag --read-data-subset=x% x must be above 0.0% and at most 100.0%"
                );
            }
            return Ok(Subset::Percent(p));
        }
        let size = parse_size(s).ok_or_else(|| anyhow::anyhow!(INVALID))?;
        if size <= 0 {
            anyhow::bail!("check flag --read-data-subset=n n must be above 0");
        }
        Ok(Subset::Size(size as u64))
    }
}

/// Is this pack in group `n` of `t`?
pub fn in_bucket(pack: &Id, n: u32, t: u32) -> bool {
    (pack.0[0] as u32) % t == n - 1
}

/// How many of `count` packs restic reads for a percentage: rounded down, at least one.
pub fn count_for_percent(count: usize, percent: f64) -> usize {
    let n = (count as f64 * (percent / 100.0)) as usize;
    if count > 0 && n < 1 {
        1
    } else {
        n.min(count)
    }
}

/// The percentage restic turns a size into (the size is capped at the repository's).
pub fn percent_for_size(size: u64, repo_size: u64) -> f64 {
    let size = size.min(repo_size);
    size as f64 / repo_size as f64 * 100.0
}

/// Chooses `k` of `0..n` at random (a partial Fisher-Yates shuffle), sorted.
pub fn random_choice(n: usize, k: usize) -> Vec<usize> {
    use rand::Rng;
    let k = k.min(n);
    let mut all: Vec<usize> = (0..n).collect();
    let mut rng = rand::thread_rng();
    for i in 0..k {
        let j = rng.gen_range(i..n);
        all.swap(i, j);
    }
    all.truncate(k);
    all.sort_unstable();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Subset, String> {
        s.parse::<Subset>().map_err(|e| e.to_string())
    }

    #[test]
    fn parses_like_restic() {
        assert_eq!(parse("1/3").unwrap(), Subset::Bucket { n: 1, t: 3 });
        assert_eq!(parse("256/256").unwrap(), Subset::Bucket { n: 256, t: 256 });
        assert_eq!(parse("2.5%").unwrap(), Subset::Percent(2.5));
        assert_eq!(parse("100%").unwrap(), Subset::Percent(100.0));
        assert_eq!(parse("1k").unwrap(), Subset::Size(1024));
        assert_eq!(parse("3M").unwrap(), Subset::Size(3 << 20));
        assert_eq!(parse("7b").unwrap(), Subset::Size(7));
        assert_eq!(parse("2G").unwrap(), Subset::Size(2 << 30));
        assert!(parse("0/3").unwrap_err().contains("n <= t"));
        assert!(parse("4/3").unwrap_err().contains("n <= t"));
        assert!(parse("1/257").unwrap_err().contains("at most 256"));
        assert!(parse("1/2/3").unwrap_err().contains("invalid value"));
        // A bare number is a one-element list, which restic rejects.
        assert!(parse("5").unwrap_err().contains("invalid value"));
        assert!(parse("0%").unwrap_err().contains("above 0.0%"));
        assert!(parse("100.1%").unwrap_err().contains("above 0.0%"));
        assert!(parse("x%").unwrap_err().contains("invalid value"));
        assert!(parse("0k").unwrap_err().contains("must be above 0"));
        assert!(parse("-1k").unwrap_err().contains("must be above 0"));
        assert!(parse("12q").unwrap_err().contains("invalid value"));
        assert!(parse("").unwrap_err().contains("invalid value"));
    }

    #[test]
    fn buckets_partition_the_packs() {
        for t in [1u32, 2, 3, 7, 256] {
            for b in 0..=255u8 {
                let id = Id([b; 32]);
                let hits = (1..=t).filter(|&n| in_bucket(&id, n, t)).count();
                assert_eq!(hits, 1, "byte {b} t {t}");
            }
        }
        assert!(in_bucket(&Id([0x05; 32]), 3, 3)); // 5 % 3 == 2
        assert!(!in_bucket(&Id([0x05; 32]), 1, 3));
    }

    #[test]
    fn percent_counts() {
        assert_eq!(count_for_percent(0, 50.0), 0);
        assert_eq!(count_for_percent(3, 10.0), 1);
        assert_eq!(count_for_percent(3, 50.0), 1);
        assert_eq!(count_for_percent(10, 55.0), 5);
        assert_eq!(count_for_percent(10, 100.0), 10);
        assert_eq!(percent_for_size(50, 200), 25.0);
        assert_eq!(percent_for_size(500, 200), 100.0);
    }

    #[test]
    fn random_choice_is_a_subset() {
        for (n, k) in [(0, 0), (5, 0), (5, 5), (100, 7), (3, 9)] {
            let c = random_choice(n, k);
            assert_eq!(c.len(), k.min(n));
            assert!(c.windows(2).all(|w| w[0] < w[1]));
            assert!(c.iter().all(|&i| i < n));
        }
    }
}
