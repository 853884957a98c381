//! Every record `loadgen` writes to disk and reads back, in one place: a
//! run's configuration ([`config`]) and result ([`run`]), the histograms a
//! tagged run adds for `loadgen merge` ([`part`]), a sweep's summary
//! ([`sweep`]) and its headline verdict ([`verdict`]); the times they carry are read and printed by [`clock`].
//! Reading a record, and upgrading one written by an older `loadgen`,
//! lives beside its type.
//!
//! Records sit at the bottom of the crate: they import nothing of `run`,
//! `sweep`, `check` or the outputs, so anything may read them.

pub mod clock;
pub mod config;
pub mod part;
pub mod profile;
pub mod run;
pub mod sweep;
pub mod verdict;

#[cfg(test)]
mod tests {
    /// A figure read back from a record is the figure written, bit for bit:
    /// `loadgen report` redraws a sweep's verdict from its files and must get
    /// the sweep's own. serde_json's default parser misses some values by one
    /// ulp; the workspace enables its `float_roundtrip` parser.
    #[test]
    fn figures_read_back_bit_for_bit() {
        // A fixed xorshift stream over every exponent a record holds.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut missed = Vec::new();
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
            let value = mantissa * 10f64.powi(i % 24 - 12);
            let back: f64 = serde_json::from_str(&serde_json::to_string(&value).unwrap()).unwrap();
            if back.to_bits() != value.to_bits() {
                missed.push(value);
            }
        }
        assert!(
            missed.is_empty(),
            "{} of 20000 figures came back changed, e.g. {:?}",
            missed.len(),
            &missed[..missed.len().min(3)]
        );
    }
}
