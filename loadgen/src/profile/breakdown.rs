//! A profile's samples, by category, turned into µs per request: each
//! category's share of the samples times the CPU per request the run
//! measured (STATS for the server, `getrusage` for the load generator), so
//! that the categories add up to the figure the tables already show.

use std::collections::BTreeMap;

use super::categories::{self, Category};
use super::fold;

/// Below this share of samples in named categories, a profile is flagged:
/// the table then misses too much of it to be read as a breakdown.
pub const NAMED_SHARE_FLOOR: f64 = 0.9;

/// Samples per category.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub by_category: BTreeMap<Category, u64>,
    pub total: u64,
}

impl Counts {
    /// Count the folded stacks' samples, each stack by [`categories::classify`].
    pub fn of_folded(folded: &str) -> Counts {
        let mut c = Counts::default();
        for (frames, n) in fold::stacks(folded) {
            *c.by_category.entry(categories::classify(&frames)).or_default() += n;
            c.total += n;
        }
        c
    }

    /// The share of samples in a named category (not `other`), 0–1.
    pub fn named_share(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        1.0 - self.by_category.get(&Category::Other).copied().unwrap_or(0) as f64 / self.total as f64
    }

    /// Each category in µs per request, scaled so that they add up to
    /// `cpu_us_per_req`; every category appears, 0 where it had no sample.
    pub fn per_request(&self, cpu_us_per_req: f64) -> BTreeMap<String, f64> {
        Category::ALL
            .iter()
            .map(|c| {
                let n = self.by_category.get(c).copied().unwrap_or(0);
                let share = if self.total == 0 { 0.0 } else { n as f64 / self.total as f64 };
                (c.name().to_string(), share * cpu_us_per_req)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_add_up_to_the_measured_cpu_and_other_is_what_is_not_named() {
        let folded = "srv;main;serve 600\n\
                      srv;write;entry_SYSCALL_64_[k];tcp_sendmsg_[k] 200\n\
                      srv;unnamed_[k] 200\n";
        let c = Counts::of_folded(folded);
        assert_eq!(c.total, 1000);
        assert!((c.named_share() - 0.8).abs() < 1e-12);
        let per = c.per_request(10.0);
        assert_eq!(per.len(), Category::ALL.len());
        assert!((per.values().sum::<f64>() - 10.0).abs() < 1e-9);
        assert!((per["user"] - 6.0).abs() < 1e-9);
        assert!((per["socket"] - 2.0).abs() < 1e-9);
        assert!((per["other"] - 2.0).abs() < 1e-9);
        assert_eq!(Counts::default().named_share(), 0.0);
    }
}
