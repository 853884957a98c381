//! The headline verdict for people: a few lines at the end of every sweep
//! ([`terminal`]), and the page's sections on it ([`verdict_section`]) and
//! on what failed and why ([`failures_section`]), expected outcomes
//! labelled "as designed". The verdict itself is [`crate::verdict`]; every
//! text taken from data is escaped ([`crate::html::escape`]).

use std::fmt::Write;
use std::path::Path;

use crate::fmt::{num, thousands, us_f};
use crate::html::escape;
use crate::records::sweep::Summary;
use crate::records::verdict::{Call, Headline, Reference, Row, Side};
use crate::sweep::cells::Outcome;
use crate::verdict::{BLOCKING, EVENT_LOOP};

/// The sweep's page, in its results directory (written by `output/page`).
pub const PAGE: &str = "index.html";

/// A value in its row's unit, as the tables write it.
fn value(unit: &str, v: f64) -> String {
    match unit {
        "µs" => us_f(v),
        "req/s" | "threads" => thousands(v),
        "MiB" => format!("{v:.1}"),
        _ => num(v),
    }
}

/// "0.998 (0.997–1.000), n 3", or "–".
fn side_text(unit: &str, side: Option<&Side>) -> String {
    match side {
        None => "–".into(),
        Some(s) if s.n < 2 => format!("{}, n 1", value(unit, s.median)),
        Some(s) => format!("{} ({}–{}), n {}", value(unit, s.median), value(unit, s.min), value(unit, s.max), s.n),
    }
}

/// "1000 conns", or "1000 conns (nearest to 5000)".
fn level_text(row: &Row) -> String {
    match row.level == row.wanted_level {
        true => format!("{} conns", row.level),
        false => format!("{} conns (nearest to {})", row.level, row.wanted_level),
    }
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or("–".into(), |r| format!("{}×", num(r)))
}

/// "as the argument expects", "against the argument (it expects ...)", or
/// nothing for a row not judged.
fn argument_text(row: &Row) -> String {
    match row.agrees_with_argument {
        Some(true) => "as expected".into(),
        Some(false) => format!("unexpected: the argument expects {}", row.expected.text()),
        None => String::new(),
    }
}

/// How many of `answers` are yes, of how many.
fn tally(answers: impl Iterator<Item = bool>) -> (usize, usize) {
    answers.fold((0, 0), |(yes, all), a| (yes + a as usize, all + 1))
}

/// How many rows agree with the reference, of those compared.
fn agreement_counts(v: &Headline) -> (usize, usize) {
    tally(v.rows.iter().filter_map(|r| r.reference.as_ref()?.agrees))
}

/// Of the rows judged here or in the reference but not in both, how many
/// lean the reference's way (their ratios on the same side of 1), of
/// those with both ratios: a description, not a verdict.
fn leaning_counts(v: &Headline) -> (usize, usize) {
    tally(v.rows.iter().filter_map(|r| {
        let theirs = r.reference.as_ref().filter(|a| a.agrees.is_none())?;
        Some((r.ratio? > 1.0) == (theirs.ratio? > 1.0))
    }))
}

/// The reference in a few words.
fn reference_text(v: &Headline) -> String {
    match &v.reference {
        Reference::IsReference => "this sweep is the reference".into(),
        Reference::Compared { path, .. } => {
            let (agree, compared) = agreement_counts(v);
            let mut text = format!("the reference ({path}) agrees on {agree} of {compared} rows compared");
            let (same, leaning) = leaning_counts(v);
            if leaning > 0 {
                text.push_str(&format!(
                    "; of the {leaning} rows not compared (not judged here or there), {same} lean the reference's way"
                ));
            }
            text
        }
        Reference::Missing { why } => format!("no reference to compare with ({why})"),
    }
}

/// The verdict in a few lines (one per row), then where the page is.
pub fn terminal(v: &Headline, page: &Path) -> String {
    let passes = match v.passes {
        1 => "one pass".to_string(),
        n => format!("{n} passes"),
    };
    let mut out = format!(
        "Verdict, {BLOCKING} against {EVENT_LOOP}, {passes}, at most {:.0}% chance of any false \"ahead\" over \
         the {} rows; {}:\n",
        100.0 * v.family_error_rate,
        v.rows.len(),
        reference_text(v)
    );
    for row in &v.rows {
        let median = |s: Option<&Side>| s.map_or("–".into(), |s| value(&row.unit, s.median));
        let argument = argument_text(row);
        let _ = write!(
            out,
            "  {} ({}, {}): {} vs {}: {}",
            row.label,
            row.scenario,
            level_text(row),
            median(row.blocking.as_ref()),
            median(row.event_loop.as_ref()),
            row.call.text()
        );
        if !argument.is_empty() {
            let _ = write!(out, ", {argument}");
        }
        if let Some(against) = &row.reference {
            let _ = write!(out, "; reference: {}", against.how);
        }
        out.push('\n');
    }
    if !v.not_in_sweep.is_empty() {
        let names: Vec<&str> = v.not_in_sweep.iter().map(|f| f.split(':').next().unwrap_or(f)).collect();
        let _ = writeln!(out, "  not in this sweep: {}", names.join("; "));
    }
    let _ = writeln!(out, "Page: {}", page.display());
    out
}

/// One sentence of what this machine showed.
fn showed(v: &Headline) -> String {
    let count = |f: &dyn Fn(&Call) -> bool| v.rows.iter().filter(|r| f(&r.call)).count();
    let ahead = |m: &str| count(&|c| matches!(c, Call::Ahead { model, .. } if model == m));
    let ties = count(&|c| matches!(c, Call::Tie { .. }));
    let unjudged = count(&|c| matches!(c, Call::NotJudged { .. }));
    let (held, judged) = tally(v.rows.iter().filter_map(|r| r.agrees_with_argument));
    format!(
        "On this machine {EVENT_LOOP} was ahead on {} of the {} headline figures and {BLOCKING} on {}, with {ties} \
         ties and {unjudged} not judged; the argument's expectation held on {held} of the {judged} rows judged.",
        ahead(EVENT_LOOP),
        v.rows.len(),
        ahead(BLOCKING),
    )
}

/// Where this machine agrees with the reference and where not, plainly.
fn against_reference(v: &Headline) -> String {
    let Reference::Compared { path, run_id } = &v.reference else {
        return format!("<p>Reference: {}.</p>\n", escape(&reference_text(v)));
    };
    let agreed = |r: &&Row| r.reference.as_ref().and_then(|a| a.agrees) == Some(true);
    let agree: Vec<String> = v.rows.iter().filter(agreed).map(|r| escape(&r.label)).collect();
    let differ: Vec<String> = v
        .rows
        .iter()
        .filter_map(|r| r.reference.as_ref().filter(|a| a.agrees == Some(false)).map(|a| (r, a)))
        .map(|(r, a)| format!("{} ({})", escape(&r.label), escape(&a.how)))
        .collect();
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join("; ") };
    let (same, leaning) = leaning_counts(v);
    let lean = match leaning {
        0 => String::new(),
        n => format!(
            " Of the {n} rows judged in only one of the two (or neither), {same} lean the reference's way: their \
             ratios lie on the same side of 1 (a description, not a verdict)."
        ),
    };
    format!(
        "<p>Against the reference (sweep {}, <code>{}</code>): this machine agrees on {}. It differs on {}.{lean}</p>\n",
        escape(run_id),
        escape(path),
        list(&agree),
        list(&differ)
    )
}

/// `<section id="verdict">`: what this machine showed, the table of the
/// headline's rows, the stated error rate, and the reference beside it.
pub fn verdict_section(v: &Headline) -> String {
    let mut out = String::from("<section id=\"verdict\">\n<h2>Verdict: what this machine showed</h2>\n");
    let _ = writeln!(out, "<p>{}</p>", escape(&showed(v)));
    let _ = writeln!(
        out,
        "<table id=\"verdict-table\">\n<thead><tr><th>figure</th><th>level</th><th>{BLOCKING}</th>\
         <th>{EVENT_LOOP}</th><th>ratio</th><th>call</th><th>reference</th><th>agreement</th></tr></thead>\n<tbody>"
    );
    for row in &v.rows {
        let (reference, agreement) = match (&row.reference, &v.reference) {
            (Some(a), _) => (format!("{}, {}", a.call.text(), ratio_text(a.ratio)), a.how.clone()),
            (None, Reference::IsReference) => ("–".into(), "this sweep is the reference".into()),
            (None, _) => ("–".into(), "no reference row".into()),
        };
        let cells = [
            format!("{} ({}, {})", row.figure, row.unit, row.scenario),
            level_text(row),
            side_text(&row.unit, row.blocking.as_ref()),
            side_text(&row.unit, row.event_loop.as_ref()),
            ratio_text(row.ratio),
            [row.call.text(), argument_text(row)]
                .iter()
                .filter(|t| !t.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            reference,
            agreement,
        ];
        out.push_str("<tr>");
        for c in cells {
            let _ = write!(out, "<td>{}</td>", escape(&c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    let _ = writeln!(
        out,
        "<p>Each row pairs the two models pass by pass (a paired t-test on the log ratios); Holm's correction over \
         the {} rows keeps the chance of any false \"ahead\" among them at most {:.0}%. The ratio is \
         {BLOCKING}'s median over {EVENT_LOOP}'s; \"ahead\" gives the paired ratio and the adjusted p \
         (p {} at most to be called).</p>",
        v.rows.len(),
        100.0 * v.family_error_rate,
        v.family_error_rate
    );
    out.push_str(&against_reference(v));
    if !v.not_in_sweep.is_empty() {
        let names: Vec<String> = v.not_in_sweep.iter().map(|f| escape(f)).collect();
        let _ = writeln!(out, "<p>Not in this sweep: {}.</p>", names.join("; "));
    }
    out.push_str("</section>\n");
    out
}

/// `<section id="failures">`: every cell with a failed run, what failed and
/// why; a failure that is the model's design is labelled "as designed".
pub fn failures_section(s: &Summary) -> String {
    let mut rows = String::new();
    let (mut designed, mut failed) = (0, 0);
    for scenario in &s.scenarios {
        for cell in s.cells(scenario).into_iter().filter(|c| c.outcome() != Outcome::Ok) {
            let (class, outcome, why) = match cell.as_designed() {
                Some(d) => {
                    designed += 1;
                    ("as-designed", "as designed".to_string(), d.text())
                }
                None => {
                    failed += 1;
                    ("failed", cell.outcome().name().to_string(), cell.failure_text())
                }
            };
            let offered = cell.offered_rps.map_or("–".into(), thousands);
            let runs = format!("{} of {}", cell.failures().len(), cell.runs.len());
            let _ = write!(rows, "<tr class=\"{class}\">");
            for c in [scenario, cell.model, &cell.level.to_string(), &offered, &runs, &outcome, &why] {
                let _ = write!(rows, "<td>{}</td>", escape(c));
            }
            rows.push_str("</tr>\n");
        }
    }
    let mut out = String::from("<section id=\"failures\">\n<h2>What failed, and why</h2>\n");
    if designed + failed == 0 {
        out.push_str("<p>Every run succeeded.</p>\n</section>\n");
        return out;
    }
    let _ = writeln!(
        out,
        "<p>{designed} cells failed as their model is designed to (pool past its workers: a worker holds its \
         connection until it closes, so the rest are never answered), and {failed} failed for real.</p>\n\
         <table id=\"failures-table\">\n<thead><tr><th>scenario</th><th>model</th><th>conns</th><th>offered \
         req/s</th><th>runs failed</th><th>outcome</th><th>why</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>"
    );
    out.push_str("</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::verdict::Against;
    use crate::testdata;

    fn headline() -> Headline {
        crate::verdict::headline(&testdata::summary_repeated(3))
    }

    #[test]
    fn the_terminal_gives_one_line_per_row_then_the_page() {
        let v = headline();
        let text = terminal(&v, Path::new("results/x/index.html"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + v.rows.len() + 1 + 1, "{text}");
        assert!(lines[0].starts_with("Verdict, thread-per-conn against mio-single, 3 passes"), "{text}");
        assert!(lines[1].starts_with("  cs/req, full load (echo-saturate, 1000 conns): "), "{text}");
        assert!(text.contains("server CPU µs/req, full load (echo-saturate, 1000 conns (nearest to 5000))"), "{text}");
        assert!(text.contains("not in this sweep: knee; head-of-line"), "{text}");
        assert_eq!(lines.last(), Some(&"Page: results/x/index.html"));
    }

    #[test]
    fn the_section_escapes_data_and_says_where_the_reference_differs() {
        let mut v = headline();
        v.rows[0].label = "<b>cs</b>".into();
        v.rows[0].figure = "<i>'cs' & \"more\"</i>".into();
        v.rows[0].reference = Some(Against {
            call: Call::Ahead { model: EVENT_LOOP.into(), by: 14.0, p_adjusted: 0.001 },
            ratio: Some(14.0),
            level: 1000,
            agrees: Some(false),
            how: "tie here, mio-single ahead in the reference".into(),
        });
        v.reference = Reference::Compared { path: "../reference/verdict.json".into(), run_id: "ref".into() };
        let html = verdict_section(&v);
        assert!(html.starts_with("<section id=\"verdict\">") && html.contains("<table id=\"verdict-table\">"));
        assert_eq!(html.matches("<tr>").count(), 1 + v.rows.len(), "{html}");
        assert!(html.contains("&lt;b&gt;cs&lt;/b&gt; (tie here, mio-single ahead in the reference)"), "{html}");
        assert!(
            html.contains("<td>&lt;i&gt;&#39;cs&#39; &amp; &quot;more&quot;&lt;/i&gt; (cs/req, echo-saturate)</td>"),
            "{html}"
        );
        assert!(!html.contains("<b>cs") && !html.contains("<i>"), "{html}");
        assert!(html.contains("at most 5%"), "{html}");
        assert!(!html.contains("lean the reference"), "every compared row was judged: {html}");
        // A row judged in neither: described by which way its ratio leans.
        v.rows[1].ratio = Some(2.0);
        v.rows[1].reference = Some(Against {
            call: Call::Tie { p_adjusted: Some(0.3), why: None },
            ratio: Some(0.5),
            level: 1000,
            agrees: None,
            how: String::new(),
        });
        let html = verdict_section(&v);
        assert!(html.contains("Of the 1 rows judged in only one of the two (or neither), 0 lean"), "{html}");
        assert!(terminal(&v, Path::new("index.html")).contains("of the 1 rows not compared"));
    }

    #[test]
    fn failures_label_the_designed_ones() {
        let mut s = testdata::summary_repeated(1);
        let html = failures_section(&s);
        assert!(html.contains("<td>failed</td>") && html.contains("800 of 1000 connections never served"), "{html}");
        assert!(html.contains("0 cells failed as their model is designed to"), "{html}");
        let pool = s.records.iter_mut().find(|r| r.model == "pool" && r.status.name() == "failed").unwrap();
        let mut result = testdata::result("pool", 1000, 640.0);
        result.connections.never_served = 936;
        pool.result = Some(result);
        pool.failure = Some("starved: 936 of 1000 connections never got an answer".into());
        let html = failures_section(&s);
        assert!(html.contains("<tr class=\"as-designed\">"), "{html}");
        assert!(html.contains("starved, as designed: 64 workers, 1000 connections"), "{html}");
        assert!(!html.contains("<td>failed</td>"), "{html}");
    }
}
