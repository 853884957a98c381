//! `verdict.json`: a sweep's headline verdict, as written to disk and read
//! back (a sweep compares its own with the reference's). What the rows are
//! and how each call is made is [`crate::verdict`]; this file holds only the
//! record, so that anything may read it.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file in a results directory.
pub const FILE: &str = "verdict.json";

/// The headline of one sweep: thread-per-conn against mio-single on the
/// figures of REPORT.md's first screen.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Headline {
    pub run_id: String,
    /// Passes the sweep was asked for.
    pub passes: u32,
    /// The chance of any false "ahead" over all the rows together (Holm's
    /// correction over the rows' tests).
    pub family_error_rate: f64,
    pub rows: Vec<Row>,
    /// Rows left out because their scenario did not run: their figures.
    pub not_in_sweep: Vec<String>,
    pub reference: Reference,
}

/// One headline comparison.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// Stable name, the key a reference's row is found by.
    pub key: String,
    /// What is compared, and who it is charged to.
    pub figure: String,
    /// The figure in a few words, for the terminal.
    pub label: String,
    pub unit: String,
    pub scenario: String,
    /// Connections the row was measured at.
    pub level: u64,
    /// The level the argument uses; differs from `level` where the sweep
    /// did not run it and the nearest level stands in.
    pub wanted_level: u64,
    /// thread-per-conn's side, when it measured the figure.
    pub blocking: Option<Side>,
    /// mio-single's side, likewise.
    pub event_loop: Option<Side>,
    /// blocking's median over event_loop's.
    pub ratio: Option<f64>,
    pub call: Call,
    /// What the argument expects here.
    pub expected: Expected,
    /// Whether this sweep's call is the expected one (`None`: not judged).
    pub agrees_with_argument: Option<bool>,
    /// This row against the reference's, when there is one to compare with.
    pub reference: Option<Against>,
}

/// One model's figure: median, min–max and how many runs measured it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Side {
    pub model: String,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

/// The call on one row.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// `model` is better by `by` (the paired ratio, ≥ 1), with Holm's
    /// adjusted p over the headline's rows.
    Ahead { model: String, by: f64, p_adjusted: f64 },
    /// No difference shown (`p_adjusted` where a test was made).
    Tie { p_adjusted: Option<f64>, why: Option<String> },
    /// No test: one pass, too few, a side failed or is missing.
    NotJudged { why: String },
}

impl Call {
    /// "mio-single ahead 14× (p 0.0012)", "tie (p 0.410)", "not judged: one pass".
    pub fn text(&self) -> String {
        match self {
            Call::Ahead { model, by, p_adjusted } => {
                format!("{model} ahead {}× (p {})", crate::fmt::num(*by), crate::fmt::p_value(*p_adjusted))
            }
            Call::Tie { p_adjusted: Some(p), .. } => format!("tie (p {})", crate::fmt::p_value(*p)),
            Call::Tie { why: Some(why), .. } => format!("tie: {why}"),
            Call::Tie { .. } => "tie".into(),
            Call::NotJudged { why } => format!("not judged: {why}"),
        }
    }

    /// The same call as `other`: the same model ahead, or both ties.
    pub fn same_as(&self, other: &Call) -> Option<bool> {
        match (self, other) {
            (Call::NotJudged { .. }, _) | (_, Call::NotJudged { .. }) => None,
            // A tie by rule (a lower bound) cannot tell either.
            (Call::Tie { why: Some(_), .. }, _) | (_, Call::Tie { why: Some(_), .. }) => None,
            (Call::Ahead { model: a, .. }, Call::Ahead { model: b, .. }) => Some(a == b),
            (Call::Tie { .. }, Call::Tie { .. }) => Some(true),
            _ => Some(false),
        }
    }

    /// The call in a few words: "mio-single ahead", "tie", "not judged".
    pub fn short(&self) -> String {
        match self {
            Call::Ahead { model, .. } => format!("{model} ahead"),
            Call::Tie { .. } => "tie".into(),
            Call::NotJudged { .. } => "not judged".into(),
        }
    }
}

/// What the argument (REPORT.md) expects of a row.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    /// The event loop (mio-single) ahead.
    EventLoopAhead,
    /// A tie: the light-load counter-finding.
    Tie,
}

impl Expected {
    pub fn text(self) -> &'static str {
        match self {
            Expected::EventLoopAhead => "event loop ahead",
            Expected::Tie => "a tie (light load)",
        }
    }
}

/// Where the reference's verdict was, or why there is none to compare with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "reference", rename_all = "snake_case")]
pub enum Reference {
    /// This sweep is the reference.
    IsReference,
    /// Compared with the verdict at `path` (sweep `run_id`).
    Compared { path: String, run_id: String },
    /// None found, or unreadable: why.
    Missing { why: String },
}

/// One row against the reference's row of the same key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Against {
    pub call: Call,
    pub ratio: Option<f64>,
    pub level: u64,
    /// Same call (`None`: one of them was not judged).
    pub agrees: Option<bool>,
    /// "agrees", or how it differs: "tie here, mio-single ahead in the reference".
    pub how: String,
}

impl Headline {
    /// Read `DIR/verdict.json`.
    pub fn load(dir: &Path) -> anyhow::Result<Headline> {
        use anyhow::Context;
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a sweep's verdict", path.display()))
    }
}
