//! Running a function over a slice on a few threads.
//!
//! The function lives beside the repository code that uses it most; this is its public home
//! so that callers outside the repository module do not reach into it.

pub use crate::repository::parallel_map;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_stops_at_errors() {
        let items: Vec<u32> = (0..50).collect();
        let doubled = parallel_map(&items, 4, |n| anyhow::Ok(n * 2)).expect("no errors");
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        let failed = parallel_map(&items, 3, |n| {
            if *n == 7 {
                anyhow::bail!("seven")
            }
            Ok(*n)
        });
        assert_eq!(failed.expect_err("item 7 fails").to_string(), "seven");
        assert!(parallel_map(&[] as &[u32], 4, |n| anyhow::Ok(*n))
            .expect("empty")
            .is_empty());
    }
}
