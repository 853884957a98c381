//! "Where a request's CPU goes": one stacked bar per model, its CPU per
//! request split by the profile's categories (`profile::categories`), one
//! panel per level; one chart for the server and one for the load
//! generator (`loadgen sweep --profile`, drawn into `profiles/`).
//!
//! The line charts' renderer ([`super::draw`]) draws series of points;
//! bars are drawn here, with its fonts, tick steps, value labels and
//! hover: each part of a bar shows its category, µs per request and share.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::draw::{err, fmt_value, nice_step, register_fonts, with_hover, Hover, Unit, FONT};
use crate::profile::categories::Category;

/// One bar: a model and its µs per request by category.
pub struct Bar {
    pub model: String,
    pub by_category: Vec<(Category, f64)>,
}

/// One panel: a level and its bars.
pub struct LevelBars {
    pub level: u64,
    pub bars: Vec<Bar>,
}

const PANEL_W: u32 = 420;
const LEGEND_W: u32 = 180;
const HEIGHT: u32 = 520;

/// A category's colour: kernel paths in blues and greens, waiting in
/// oranges, the process's own code grey, `other` light.
fn color(c: Category) -> RGBColor {
    match c {
        Category::User => RGBColor(120, 120, 120),
        Category::Syscall => RGBColor(31, 119, 180),
        Category::Socket => RGBColor(23, 190, 207),
        Category::TcpIp => RGBColor(44, 160, 44),
        Category::Readiness => RGBColor(255, 127, 14),
        Category::Scheduler => RGBColor(214, 39, 40),
        Category::Memory => RGBColor(148, 103, 189),
        Category::Other => RGBColor(220, 220, 220),
    }
}

/// Draw `STEM.svg` and `STEM.png`; both paths.
pub fn render(stem: &Path, title: &str, levels: &[LevelBars]) -> anyhow::Result<Vec<PathBuf>> {
    register_fonts();
    let size = ((PANEL_W * levels.len().max(1) as u32).max(600) + LEGEND_W, HEIGHT);
    let (svg, png) = (stem.with_extension("svg"), stem.with_extension("png"));
    let mut text = String::new();
    let hovers = draw(SVGBackend::with_string(&mut text, size).into_drawing_area(), title, levels)
        .with_context(|| format!("drawing {}", svg.display()))?;
    std::fs::write(&svg, with_hover(&text, &hovers)).with_context(|| format!("cannot write {}", svg.display()))?;
    draw(BitMapBackend::new(&png, size).into_drawing_area(), title, levels)
        .with_context(|| format!("drawing {}", png.display()))?;
    Ok(vec![svg, png])
}

/// Draw the bars on `root`; returns the hover of every part of a bar.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    levels: &[LevelBars],
) -> anyhow::Result<Vec<Hover>> {
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, (FONT, 22).into_font().style(FontStyle::Bold)).map_err(err)?;
    let (w, _) = root.dim_in_pixel();
    let (plots, legend) = root.split_horizontally(w - LEGEND_W);
    // One y scale for every panel, so that bars compare across levels.
    let top = levels
        .iter()
        .flat_map(|l| &l.bars)
        .map(|b| b.by_category.iter().map(|(_, v)| v).sum::<f64>())
        .fold(0.0, f64::max);
    let step = nice_step(top.max(1e-3) / 5.0);
    let y_hi = (top / step).ceil().max(1.0) * step;
    let mut hovers = Vec::new();
    for (level, area) in levels.iter().zip(plots.split_evenly((1, levels.len().max(1)))) {
        hovers.extend(draw_panel(&area, level, y_hi, step)?);
    }
    for (i, c) in Category::ALL.iter().rev().enumerate() {
        let y = 40 + 26 * i as i32;
        legend.draw(&Rectangle::new([(8, y), (24, y + 16)], color(*c).filled())).map_err(err)?;
        legend.draw(&Text::new(c.name(), (32, y), (FONT, 15).into_font())).map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(hovers)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    level: &LevelBars,
    y_hi: f64,
    step: f64,
) -> anyhow::Result<Vec<Hover>> {
    let n = level.bars.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{} connections", level.level), (FONT, 17))
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..n as f64, 0.0..y_hi)
        .map_err(err)?;
    let names: Vec<&str> = level.bars.iter().map(|b| b.model.as_str()).collect();
    chart
        .configure_mesh()
        .y_desc("CPU µs per request")
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|v| {
            let i = v.floor() as usize;
            if (v - i as f64 - 0.5).abs() < 1e-6 {
                names.get(i).map(|s| s.to_string()).unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_labels((y_hi / step).round() as usize + 1)
        .y_label_formatter(&|v| fmt_value(*v, Unit::Plain))
        .x_label_style((FONT, 13).into_font().transform(FontTransform::Rotate90))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(WHITE)
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(err)?;
    let mut hovers = Vec::new();
    for (i, bar) in level.bars.iter().enumerate() {
        let total: f64 = bar.by_category.iter().map(|(_, v)| v).sum();
        let mut base = 0.0;
        for c in Category::ALL {
            let v = bar.by_category.iter().find(|(k, _)| *k == c).map_or(0.0, |(_, v)| *v);
            if v > 0.0 {
                let (x0, x1) = (i as f64 + 0.15, i as f64 + 0.85);
                chart
                    .draw_series(std::iter::once(Rectangle::new([(x0, base), (x1, base + v)], color(c).filled())))
                    .map_err(err)?;
                let title = format!(
                    "{}, {} connections, {}: {} µs per request, {:.0}% of {}",
                    bar.model,
                    level.level,
                    c.name(),
                    fmt_value(v, Unit::Plain),
                    100.0 * v / total,
                    fmt_value(total, Unit::Plain)
                );
                hovers.push(Hover { at: chart.backend_coord(&(i as f64 + 0.5, base + v / 2.0)), title });
            }
            base += v;
        }
    }
    Ok(hovers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_of_a_bar_shows_its_figures_on_hover() {
        let bar = |model: &str, user, tcp| Bar {
            model: model.into(),
            by_category: vec![(Category::User, user), (Category::TcpIp, tcp), (Category::Memory, 0.0)],
        };
        let levels =
            [LevelBars { level: 1000, bars: vec![bar("mio-single", 3.0, 1.0), bar("thread-per-conn", 6.0, 2.0)] }];
        let dir = crate::testdata::scratch("breakdown");
        render(&dir.join("bars"), "t", &levels).unwrap();
        let svg = std::fs::read_to_string(dir.join("bars.svg")).unwrap();
        assert!(svg.contains("<title>thread-per-conn, 1000 connections, tcp_ip: 2 µs per request, 25% of 8</title>"));
        assert_eq!(svg.matches("<title>").count(), 4, "one per drawn part, none for a part of 0: {svg}");
    }
}
