//! The one renderer behind every chart: a [`Figure`] of side-by-side panels
//! sharing an x axis, a legend strip on the right and notes underneath,
//! drawn once to SVG and once to PNG.
//!
//! Log axes are drawn by plotting log10 of the values on a linear axis with
//! explicit tick positions, so every panel has the same coordinate type and
//! the tick labels say exactly what we choose (the levels that were run,
//! "99.9%", "1 ms").
//!
//! The SVG carries its figures for a reader's mouse: over each measured
//! point lies an invisible circle whose `<title>` the browser shows on
//! hover, "mio-single, 1000 connections, p99: 7.3 ms (6.9 ms–7.8 ms), n=5"
//! (the median, the min–max of the runs, how many runs). The circles are
//! placed where the chart's own coordinate mapping put the point, and
//! added as one `<g class="hover">` at the end of the SVG, so they lie on
//! top of everything drawn.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// How tick labels print a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    /// 1, 20, 1.5k, 2M.
    Plain,
    /// Microseconds, shown as µs / ms / s.
    Micros,
}

/// One point of a series, in data units (not yet log-transformed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    /// The median of the runs, or the one run's value.
    pub y: f64,
    /// (min, max) of the runs, drawn as an error bar; `None` for one run.
    pub range: Option<(f64, f64)>,
    /// Drawn hollow: the load generator, not the server, was the limit.
    pub hollow: bool,
    /// How many runs the point is the median of; 0 for a point of a
    /// reference line, which measures nothing and gets no hover.
    pub n: usize,
}

impl Point {
    /// A cell's figure at `x`: its median, with an error bar over its runs
    /// when there are several; hollow where the load generator was the limit.
    pub fn of(x: f64, s: crate::stats::Spread, hollow: bool) -> Point {
        Point { x, y: s.median, range: (s.n > 1).then_some((s.min, s.max)), hollow, n: s.n }
    }

    /// One run's value at `x`.
    pub fn one(x: f64, y: f64) -> Point {
        Point { x, y, range: None, hollow: false, n: 1 }
    }
}

#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<Point>,
}

/// Reference lines (the SLO, the offered rate, a DELAY's length) are drawn
/// in this grey.
pub const REFERENCE: RGBColor = RGBColor(130, 130, 130);

impl Series {
    /// A grey reference line from x `lo` to `hi`, at `y(x)`.
    pub fn reference(name: String, (lo, hi): (f64, f64), y: impl Fn(f64) -> f64) -> Series {
        let ends = [lo, hi].into_iter().filter(|x| x.is_finite());
        let points = ends.map(|x| Point { x, y: y(x), range: None, hollow: false, n: 0 }).collect();
        Series { name, color: REFERENCE, points }
    }
}

#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub y_unit: Unit,
    pub log_y: bool,
    pub series: Vec<Series>,
}

/// The x axis: what it shows, and where its ticks are (data units).
#[derive(Clone, Debug)]
pub struct XAxis {
    pub label: String,
    pub log: bool,
    pub ticks: Vec<(f64, String)>,
    /// Data range; `None`: the ticks' span, padded.
    pub range: Option<(f64, f64)>,
    /// An x value (data units) in words, for the hover: "1000 connections".
    pub value: fn(f64) -> String,
}

impl XAxis {
    /// Connections, on a log scale, a tick at each level that was run.
    pub fn connections(levels: &[u64]) -> XAxis {
        let ticks = levels.iter().map(|l| (*l as f64, l.to_string())).collect();
        XAxis {
            label: "connections (log scale)".into(),
            log: true,
            ticks,
            range: None,
            value: |x| format!("{x} connections"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Figure {
    pub title: String,
    pub x: XAxis,
    pub panels: Vec<Panel>,
    /// Draw a marker at each point (levels), or lines only (spectra).
    pub markers: bool,
    /// Lines under the plots: what was left out and why.
    pub notes: Vec<String>,
}

const LEGEND_W: u32 = 200;
const PANEL_W: u32 = 560;
const HEIGHT: u32 = 560;
pub(super) const FONT: &str = "sans-serif";

/// Register the embedded DejaVu Sans as plotters' "sans-serif", once: the
/// PNGs then render text without any system font library.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Draw `figure` to `STEM.svg` (with its hover, see the module's doc) and
/// `STEM.png`; returns both paths.
pub fn render(stem: &Path, figure: &Figure) -> anyhow::Result<Vec<PathBuf>> {
    register_fonts();
    let size =
        ((PANEL_W * figure.panels.len().max(1) as u32).max(800) + LEGEND_W, HEIGHT + 22 * figure.notes.len() as u32);
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let mut text = String::new();
    let hovers = draw(SVGBackend::with_string(&mut text, size).into_drawing_area(), figure)
        .with_context(|| format!("drawing {}", svg.display()))?;
    std::fs::write(&svg, with_hover(&text, &hovers)).with_context(|| format!("cannot write {}", svg.display()))?;
    draw(BitMapBackend::new(&png, size).into_drawing_area(), figure)
        .with_context(|| format!("drawing {}", png.display()))?;
    Ok(vec![svg, png])
}

/// A point's place on the drawing, in pixels, and what its hover says.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Hover {
    pub(super) at: (i32, i32),
    pub(super) title: String,
}

impl Hover {
    /// "mio-single, 1000 connections, p99: 7.3 ms (6.9 ms–7.8 ms), n=5":
    /// the series, where on x, the panel (when the figure has several),
    /// the median and its runs' range.
    fn of(series: &str, x: &XAxis, (panel, several): (&Panel, bool), p: &Point, at: (i32, i32)) -> Hover {
        let v = |v: f64| fmt_value(v, panel.y_unit);
        let range = p.range.map(|(lo, hi)| format!(" ({}–{})", v(lo), v(hi))).unwrap_or_default();
        let bound = if p.hollow { ", loadgen-saturated" } else { "" };
        let which = if several { format!(", {}", panel.title) } else { String::new() };
        let title = format!("{series}, {}{which}: {}{range}, n={}{bound}", (x.value)(p.x), v(p.y), p.n);
        Hover { at, title }
    }
}

/// The SVG text `svg` with a circle per hover, invisible but for its
/// `<title>`, before its closing tag.
pub(super) fn with_hover(svg: &str, hovers: &[Hover]) -> String {
    let end = svg.rfind("</svg>").unwrap_or(svg.len());
    let mut out = String::with_capacity(svg.len() + 120 * hovers.len());
    out.push_str(&svg[..end]);
    out.push_str("<g class=\"hover\" fill=\"#000\" fill-opacity=\"0\">\n");
    for h in hovers {
        let title = crate::html::escape(&h.title);
        out.push_str(&format!("<circle cx=\"{}\" cy=\"{}\" r=\"7\"><title>{title}</title></circle>\n", h.at.0, h.at.1));
    }
    out.push_str("</g>\n");
    out.push_str(&svg[end..]);
    out
}

pub(super) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotters: {e:?}")
}

/// Draw `figure` on `root`; returns the hover of every point drawn.
fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, figure: &Figure) -> anyhow::Result<Vec<Hover>> {
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(&figure.title, (FONT, 24).into_font().style(FontStyle::Bold)).map_err(err)?;
    let (w, h) = root.dim_in_pixel();
    let notes_h = 22 * figure.notes.len() as u32 + if figure.notes.is_empty() { 0 } else { 8 };
    let (upper, notes) = root.split_vertically(h - notes_h);
    let (plots, legend) = upper.split_horizontally(w - LEGEND_W);
    let panels = plots.split_evenly((1, figure.panels.len().max(1)));
    let mut hovers = Vec::new();
    for (panel, area) in figure.panels.iter().zip(&panels) {
        hovers.extend(draw_panel(area, &figure.x, (panel, figure.panels.len() > 1), figure.markers)?);
    }
    draw_legend(&legend, figure)?;
    for (i, note) in figure.notes.iter().enumerate() {
        notes.draw(&Text::new(note.clone(), (20, 4 + 22 * i as i32), (FONT, 15).into_font())).map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(hovers)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x: &XAxis,
    (panel, several): (&Panel, bool),
    markers: bool,
) -> anyhow::Result<Vec<Hover>> {
    let (x_lo, x_hi) = x_span(x);
    let x_ticks: Vec<(f64, String)> = x.ticks.iter().map(|(v, l)| (scaled(x.log, *v), l.clone())).collect();
    let ys = y_values(panel);
    let (y_lo, y_hi, y_ticks) = y_axis(&ys, panel.log_y, panel.y_unit);

    let x_coord = Ticked { lo: x_lo, hi: x_hi, ticks: x_ticks.iter().map(|t| t.0).collect() };
    let y_coord = Ticked { lo: y_lo, hi: y_hi, ticks: y_ticks.iter().map(|t| t.0).collect() };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x_coord, y_coord)
        .map_err(err)?;
    let label = |ticks: &[(f64, String)], v: f64| {
        ticks.iter().find(|t| (t.0 - v).abs() < 1e-9).map(|t| t.1.clone()).unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_desc(&x.label)
        .y_desc(&panel.y_label)
        .x_label_formatter(&|v| label(&x_ticks, *v))
        .y_label_formatter(&|v| label(&y_ticks, *v))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE)
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(err)?;

    if ys.is_empty() {
        let (cx, cy) = ((x_lo + x_hi) / 2.0, (y_lo + y_hi) / 2.0);
        chart
            .draw_series(std::iter::once(Text::new("no data", (cx, cy), (FONT, 18).into_font().color(&BLACK.mix(0.5)))))
            .map_err(err)?;
    }
    // Caps of the error bars: 1.5% of the x span either side.
    let cap = (x_hi - x_lo) * 0.015;
    let scales = Scales { log_x: x.log, log_y: panel.log_y, cap };
    let mut hovers = Vec::new();
    for s in &panel.series {
        draw_series(&mut chart, s, scales, markers)?;
        for p in s.points.iter().filter(|p| p.n > 0 && scales.shown(p)) {
            let at = chart.backend_coord(&(scales.x(p.x), scales.y(p.y)));
            hovers.push(Hover::of(&s.name, x, (panel, several), p, at));
        }
    }
    Ok(hovers)
}

/// A value where a log axis puts it (log10), or a linear one (itself).
fn scaled(log: bool, v: f64) -> f64 {
    if log {
        v.log10()
    } else {
        v
    }
}

/// How a panel maps values onto its axes, and the error bars' cap width.
#[derive(Clone, Copy)]
struct Scales {
    log_x: bool,
    log_y: bool,
    cap: f64,
}

impl Scales {
    fn x(&self, v: f64) -> f64 {
        scaled(self.log_x, v)
    }

    fn y(&self, v: f64) -> f64 {
        scaled(self.log_y, v)
    }

    /// A log axis cannot show a value of 0 or less.
    fn shown(&self, p: &Point) -> bool {
        !self.log_y || p.y > 0.0
    }
}

/// One series: its error bars, its line and (with `markers`) its points,
/// hollow where the load generator was the limit.
fn draw_series<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Ticked, Ticked>>,
    s: &Series,
    scales: Scales,
    markers: bool,
) -> anyhow::Result<()> {
    let cap = scales.cap;
    let bars: Vec<(f64, f64, f64)> = s
        .points
        .iter()
        .filter(|p| scales.shown(p))
        .filter_map(|p| p.range.map(|(lo, hi)| (scales.x(p.x), lo, hi)))
        .filter(|(_, lo, _)| !scales.log_y || *lo > 0.0)
        .map(|(x, lo, hi)| (x, scales.y(lo), scales.y(hi)))
        .collect();
    let style = s.color.stroke_width(1);
    for &(x, lo, hi) in &bars {
        for segment in [[(x, lo), (x, hi)], [(x - cap, lo), (x + cap, lo)], [(x - cap, hi), (x + cap, hi)]] {
            chart.draw_series(std::iter::once(PathElement::new(segment.to_vec(), style))).map_err(err)?;
        }
    }
    let pts: Vec<(f64, f64, bool)> =
        s.points.iter().filter(|p| scales.shown(p)).map(|p| (scales.x(p.x), scales.y(p.y), p.hollow)).collect();
    chart.draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), s.color.stroke_width(2))).map_err(err)?;
    if markers {
        chart
            .draw_series(pts.iter().map(|&(px, py, hollow)| {
                let style = if hollow { s.color.stroke_width(2) } else { s.color.filled() };
                Circle::new((px, py), if hollow { 6 } else { 4 }, style)
            }))
            .map_err(err)?;
    }
    Ok(())
}

/// The x axis's span: its given range, or its ticks padded by 6%.
fn x_span(x: &XAxis) -> (f64, f64) {
    match x.range {
        Some((lo, hi)) => (scaled(x.log, lo), scaled(x.log, hi)),
        None => {
            let xs: Vec<f64> = x.ticks.iter().map(|t| scaled(x.log, t.0)).collect();
            let (lo, hi) = min_max(&xs).unwrap_or((0.0, 1.0));
            let pad = if hi > lo { (hi - lo) * 0.06 } else { 0.3 };
            (lo - pad, hi + pad)
        }
    }
}

/// Every value the y axis must span: the points and their error bars (on
/// a log axis, only their positive ends).
fn y_values(panel: &Panel) -> Vec<f64> {
    panel
        .series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|p| !panel.log_y || p.y > 0.0)
        .flat_map(|p| [Some(p.y), p.range.map(|r| r.0), p.range.map(|r| r.1)])
        .flatten()
        .filter(|y| !panel.log_y || *y > 0.0)
        .collect()
}

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, figure: &Figure) -> anyhow::Result<()> {
    let mut names: Vec<(&str, RGBColor)> = Vec::new();
    for s in figure.panels.iter().flat_map(|p| &p.series) {
        if !names.iter().any(|n| n.0 == s.name) {
            names.push((&s.name, s.color));
        }
    }
    let text = (FONT, 15).into_font();
    let mut y = 60;
    for (name, color) in &names {
        area.draw(&PathElement::new(vec![(10, y), (40, y)], color.stroke_width(2))).map_err(err)?;
        if figure.markers {
            area.draw(&Circle::new((25, y), 4, color.filled())).map_err(err)?;
        }
        area.draw(&Text::new(name.to_string(), (48, y - 9), text.clone())).map_err(err)?;
        y += 24;
    }
    let hollow = figure.panels.iter().flat_map(|p| &p.series).flat_map(|s| &s.points).any(|p| p.hollow);
    if hollow {
        y += 8;
        area.draw(&Circle::new((25, y), 6, BLACK.stroke_width(2))).map_err(err)?;
        area.draw(&Text::new("loadgen-saturated", (48, y - 9), text.clone())).map_err(err)?;
    }
    Ok(())
}

/// A linear axis whose ticks are exactly the ones given (no light grid).
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let f = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The y range (transformed) and its ticks, for values `ys` (data units).
fn y_axis(ys: &[f64], log: bool, unit: Unit) -> (f64, f64, Vec<(f64, String)>) {
    if log {
        let (lo, hi) = min_max(ys).unwrap_or((1.0, 10.0));
        let (mut a, mut b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        if a == b {
            a -= 1;
            b += 1;
        }
        let mult: &[f64] = if b - a <= 3 { &[1.0, 2.0, 5.0] } else { &[1.0] };
        let mut ticks = Vec::new();
        for e in a..=b {
            for m in mult {
                let v = m * 10f64.powi(e);
                if v <= 10f64.powi(b) {
                    ticks.push((v.log10(), fmt_value(v, unit)));
                }
            }
        }
        (a as f64, b as f64, ticks)
    } else {
        let hi = min_max(ys).map(|(_, hi)| hi).filter(|&hi| hi > 0.0).unwrap_or(1.0) * 1.1;
        let step = nice_step(hi / 5.0);
        let ticks = (0..).map(|i| i as f64 * step).take_while(|v| *v <= hi).map(|v| (v, fmt_value(v, unit))).collect();
        (0.0, hi, ticks)
    }
}

/// A round step (1, 2, 2.5 or 5 times a power of ten) of at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag)
}

fn min_max(vs: &[f64]) -> Option<(f64, f64)> {
    let lo = vs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = vs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

/// A tick label.
pub fn fmt_value(v: f64, unit: Unit) -> String {
    let trim = |s: String| if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    // Three significant digits, trailing zeros trimmed: 0.001, 0.25, 1.5, 250.
    let short = |v: f64| {
        if v >= 100.0 || v == v.round() {
            format!("{v:.0}")
        } else {
            let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 8) as usize;
            trim(format!("{v:.decimals$}"))
        }
    };
    match unit {
        Unit::Micros if v >= 1e6 => format!("{} s", short(v / 1e6)),
        Unit::Micros if v >= 1e3 => format!("{} ms", short(v / 1e3)),
        Unit::Micros => format!("{} µs", short(v)),
        Unit::Plain if v >= 1e6 => format!("{}M", short(v / 1e6)),
        Unit::Plain if v >= 1e3 => format!("{}k", short(v / 1e3)),
        Unit::Plain => short(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measured_point_carries_its_figures_on_hover() {
        let spread = |median, min, max, n| crate::stats::Spread { median, min, max, n };
        let series = Series {
            name: "a<b".into(),
            color: RGBColor(0, 0, 0),
            points: vec![
                Point::of(200.0, spread(900.0, 900.0, 900.0, 1), true),
                Point::of(1000.0, spread(7300.0, 6900.0, 7800.0, 5), false),
            ],
        };
        let slo = Series::reference("SLO".into(), (200.0, 1000.0), |_| 5000.0);
        let panel = Panel {
            title: "p99".into(),
            y_label: "latency".into(),
            y_unit: Unit::Micros,
            log_y: true,
            series: vec![series, slo],
        };
        let figure = Figure {
            title: "t".into(),
            x: XAxis::connections(&[200, 1000]),
            panels: vec![Panel { title: "p50".into(), series: vec![], ..panel.clone() }, panel],
            markers: true,
            notes: vec![],
        };
        let dir = crate::testdata::scratch("hover");
        render(&dir.join("chart"), &figure).unwrap();
        let svg = std::fs::read_to_string(dir.join("chart.svg")).unwrap();
        let titles: Vec<&str> = svg.split("<title>").skip(1).map(|t| t.split("</title>").next().unwrap()).collect();
        assert_eq!(
            titles,
            [
                "a&lt;b, 200 connections, p99: 900 µs, n=1, loadgen-saturated",
                "a&lt;b, 1000 connections, p99: 7.3 ms (6.9 ms–7.8 ms), n=5"
            ],
            "one hover per measured point, none on the reference line"
        );
        // Where the chart drew them: further right for more connections,
        // higher up (a smaller y) for a longer latency, inside the drawing.
        let at = |i: usize| -> (i32, i32) {
            let circle = svg.split("<circle cx=\"").filter(|c| c.contains("<title>")).nth(i).unwrap();
            let mut nums = circle.split('"').step_by(2).map(|n| n.parse::<i32>().unwrap());
            (nums.next().unwrap(), nums.next().unwrap())
        };
        let ((x0, y0), (x1, y1)) = (at(0), at(1));
        assert!(x0 < x1 && y1 < y0 && x0 > 0 && y0 < HEIGHT as i32, "{:?} {:?}", at(0), at(1));
        assert!(svg.trim_end().ends_with("</g>\n</svg>"), "the hover lies on top of the drawing");
    }

    #[test]
    fn tick_labels() {
        assert_eq!(fmt_value(1500.0, Unit::Plain), "1.5k");
        assert_eq!(fmt_value(0.25, Unit::Plain), "0.25");
        assert_eq!(fmt_value(0.001, Unit::Plain), "0.001");
        assert_eq!(fmt_value(0.02, Unit::Plain), "0.02");
        assert_eq!(fmt_value(0.0005, Unit::Plain), "0.0005");
        assert_eq!(fmt_value(2000.0, Unit::Micros), "2 ms");
        assert_eq!(fmt_value(50.0, Unit::Micros), "50 µs");
    }

    #[test]
    fn log_axis_spans_whole_decades() {
        let (lo, hi, ticks) = y_axis(&[30.0, 4000.0], true, Unit::Micros);
        assert_eq!((lo, hi), (1.0, 4.0));
        assert_eq!(ticks.first().unwrap().1, "10 µs");
        assert_eq!(ticks.last().unwrap().1, "10 ms");
    }

    #[test]
    fn linear_axis_starts_at_zero_with_round_steps() {
        let (lo, hi, ticks) = y_axis(&[12_000.0, 47_000.0], false, Unit::Plain);
        assert_eq!(lo, 0.0);
        assert!(hi >= 47_000.0);
        assert_eq!(ticks[1].0, 20_000.0, "5 steps of a round size");
    }
}
