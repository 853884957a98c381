//! The markdown loadgen writes (`tables.md`, the floor table), as HTML, so
//! the page shows the very tables of [`crate::output::markdown`] without a
//! second table generator. Only the subset that module emits is read:
//! `#` headings, pipe tables whose rule row sets each column's alignment
//! (`---:` right), paragraphs and `- ` items; inline `**strong**`,
//! `*emphasis*`, `` `code` `` and `\*` (a star as such). Every text is escaped ([`crate::html::escape`]).

/// A run of lines that become one HTML element.
enum Block<'a> {
    None,
    Paragraph(Vec<&'a str>),
    Table(Vec<&'a str>),
    List(Vec<&'a str>),
}

/// `md` as HTML, its headings `shift` levels down (`#` becomes
/// `<h{1+shift}>`, at most `<h6>`).
pub fn to_html(md: &str, shift: usize) -> String {
    let mut out = String::new();
    let mut block = Block::None;
    for line in md.lines() {
        let line = line.trim_end();
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes > 0 && line[hashes..].starts_with(' ') {
            flush(&mut out, std::mem::replace(&mut block, Block::None));
            let h = (hashes + shift).min(6);
            out.push_str(&format!("<h{h}>{}</h{h}>\n", inline(line[hashes..].trim())));
            continue;
        }
        block = match (block, line) {
            (b, "") => {
                flush(&mut out, b);
                Block::None
            }
            (Block::Table(mut rows), l) if l.starts_with('|') => {
                rows.push(l);
                Block::Table(rows)
            }
            (Block::List(mut items), l) if l.starts_with("- ") => {
                items.push(&l[2..]);
                Block::List(items)
            }
            (Block::Paragraph(mut lines), l) if !l.starts_with('|') && !l.starts_with("- ") => {
                lines.push(l);
                Block::Paragraph(lines)
            }
            (b, l) => {
                flush(&mut out, b);
                if l.starts_with('|') {
                    Block::Table(vec![l])
                } else if let Some(item) = l.strip_prefix("- ") {
                    Block::List(vec![item])
                } else {
                    Block::Paragraph(vec![l])
                }
            }
        };
    }
    flush(&mut out, block);
    out
}

fn flush(out: &mut String, block: Block) {
    match block {
        Block::None => {}
        Block::Paragraph(lines) => out.push_str(&format!("<p>{}</p>\n", inline(&lines.join(" ")))),
        Block::List(items) => {
            let items: String = items.iter().map(|item| format!("<li>{}</li>\n", inline(item))).collect();
            out.push_str(&format!("<ul>\n{items}</ul>\n"));
        }
        Block::Table(rows) => out.push_str(&table(&rows)),
    }
}

/// The cells of a table row: `| a | b |` gives `["a", "b"]`.
fn cells(row: &str) -> Vec<&str> {
    let row = row.trim().trim_start_matches('|');
    let row = row.strip_suffix('|').unwrap_or(row);
    row.split('|').map(str::trim).collect()
}

/// A rule row's cell: dashes, with a colon at either end or both.
fn is_rule(cell: &str) -> bool {
    let dashes = cell.trim_start_matches(':').trim_end_matches(':');
    !dashes.is_empty() && dashes.chars().all(|c| c == '-')
}

/// A pipe table: its first row the header, its second (when it is a rule
/// row) each column's alignment, right-aligned columns classed `num`.
fn table(rows: &[&str]) -> String {
    let rule = rows.get(1).map(|r| cells(r)).filter(|c| c.iter().all(|c| is_rule(c)));
    let right: Vec<bool> = rule.as_ref().map_or(Vec::new(), |r| r.iter().map(|c| c.ends_with(':')).collect());
    let row = |cells: Vec<&str>, tag: &str| {
        let mut tr = String::from("<tr>");
        for (i, c) in cells.into_iter().enumerate() {
            let class = if right.get(i) == Some(&true) { " class=\"num\"" } else { "" };
            tr.push_str(&format!("<{tag}{class}>{}</{tag}>", inline(c)));
        }
        tr + "</tr>\n"
    };
    let mut out = String::from("<div class=\"scroll\"><table>\n<thead>");
    out.push_str(&row(cells(rows[0]), "th"));
    out.push_str("</thead>\n<tbody>\n");
    for r in &rows[1 + rule.is_some() as usize..] {
        out.push_str(&row(cells(r), "td"));
    }
    out + "</tbody>\n</table></div>\n"
}

/// Escaped text with `**strong**`, `*emphasis*`, `` `code` `` and `\*`
/// made HTML.
fn inline(text: &str) -> String {
    // A star written as such stays out of the marks' way until the end.
    const STAR: &str = "\u{1}";
    let alternate = |s: &str, mark: &str, tag: &str| {
        let parts: Vec<&str> = s.split(mark).collect();
        if parts.len().is_multiple_of(2) {
            return s.to_string(); // an unpaired mark stays as written
        }
        let mut out = String::new();
        for (i, part) in parts.iter().enumerate() {
            out.push_str(&if i % 2 == 1 { format!("<{tag}>{part}</{tag}>") } else { part.to_string() });
        }
        out
    };
    let escaped = crate::html::escape(text).replace("\\*", STAR);
    let marked = alternate(&alternate(&alternate(&escaped, "**", "strong"), "*", "em"), "`", "code");
    marked.replace(STAR, "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_paragraphs_lists_and_inline_marks() {
        let md =
            "# Sweep x\n\nA model is **ahead**\nof `getrusage` <here>, *both* (\\*).\n\n## s\n- one: **met**\n- two\n";
        assert_eq!(
            to_html(md, 2),
            "<h3>Sweep x</h3>\n<p>A model is <strong>ahead</strong> of <code>getrusage</code> &lt;here&gt;, \
             <em>both</em> (*).</p>\n\
             <h4>s</h4>\n<ul>\n<li>one: <strong>met</strong></li>\n<li>two</li>\n</ul>\n"
        );
    }

    #[test]
    fn a_pipe_table_keeps_its_alignment() {
        let md = "| model | conns | req/s |\n|---|---:|---:|\n| a<b | 200 | 20,000\\* |\n\n\\* loadgen-saturated\n";
        assert_eq!(
            to_html(md, 0),
            "<div class=\"scroll\"><table>\n<thead><tr><th>model</th><th class=\"num\">conns</th>\
             <th class=\"num\">req/s</th></tr>\n</thead>\n<tbody>\n<tr><td>a&lt;b</td><td class=\"num\">200</td>\
             <td class=\"num\">20,000*</td></tr>\n</tbody>\n</table></div>\n<p>* loadgen-saturated</p>\n"
        );
    }

    #[test]
    fn every_table_of_tables_md_becomes_an_html_table() {
        let md = crate::output::markdown::tables_md(&crate::testdata::summary()).unwrap();
        let html = to_html(&md, 2);
        let tables = md.lines().filter(|l| l.starts_with("|---")).count();
        assert!(tables >= 3, "{md}");
        assert_eq!(html.matches("<table>").count(), tables, "{html}");
        assert!(!html.contains('|'), "no pipe left over: {html}");
        assert!(html.contains("<td>pool</td><td class=\"num\">1000</td>"), "{html}");
    }
}
