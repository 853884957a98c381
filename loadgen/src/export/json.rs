//! `summary.json`: the [`Summary`] as it is, pretty-printed. It is the file
//! `loadgen report` reads back, so it keeps every run's whole `RunResult`.

use super::Exporter;
use crate::sweep::summary::Summary;

pub struct Json;

impl Exporter for Json {
    fn file_name(&self) -> &'static str {
        "summary.json"
    }

    fn serialize(&self, summary: &Summary) -> anyhow::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(summary)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata;

    #[test]
    fn round_trips() {
        let summary = testdata::summary();
        let bytes = Json.serialize(&summary).unwrap();
        let back: Summary = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, summary);
    }
}
