//! PNG plots of a sweep (plotters, bitmap backend): validation loss vs compute per policy with
//! the fitted power laws, and the loss curve of every run. Text uses the embedded DejaVu Sans
//! (`assets/fonts`, Bitstream Vera license), so no system fonts are needed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use plotters::coord::Shift;

use super::analysis::{compute_axis, x_of};
use super::{final_rows, ResultRow, SweepError};

/// A fitted loss-vs-compute law `L = beta * C^alpha` of one policy (`scaling::PowerLaw`).
#[derive(Clone, Debug, PartialEq)]
pub struct FittedLine {
    pub policy: String,
    pub alpha: f64,
    pub beta: f64,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];
const SIZE: (u32, u32) = (960, 640);

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        // Invariant: the embedded file is a valid TrueType font.
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .unwrap_or_else(|_| panic!("embedded DejaVuSans.ttf is a valid font"));
    });
}

/// Encodes an RGB buffer of `SIZE` as PNG and writes it atomically.
fn save_png(path: &Path, pixels: &[u8]) -> Result<(), SweepError> {
    let err = plot_err(path);
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| err(e.to_string()))?;
    writer
        .write_image_data(pixels)
        .map_err(|e| err(e.to_string()))?;
    writer.finish().map_err(|e| err(e.to_string()))?;
    super::write_atomic(path, &bytes)
}

fn plot_err(path: &Path) -> impl Fn(String) -> SweepError + '_ {
    move |m| SweepError::Results(format!("plot {}: {m}", path.display()))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error + 'static>>;

/// Draws one chart with `draw` on a white `SIZE` canvas and writes it to `path` as PNG.
fn render(path: &Path, draw: impl FnOnce(&Area) -> DrawResult) -> Result<(), SweepError> {
    register_font();
    let err = plot_err(path);
    let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        draw(&root).map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    save_png(path, &pixels)
}

/// The chart frame both plots share: caption, margins, axis label areas.
fn frame<'a, 'b>(root: &'a Area<'b>, caption: &str) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(caption, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64);
    b
}

/// The legend box both plots share.
fn draw_legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
) -> DrawResult {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    Ok(())
}

fn policy_colors(rows: &[ResultRow]) -> BTreeMap<String, RGBColor> {
    let mut names: Vec<&str> = rows.iter().map(|r| r.policy.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), PALETTE[i % PALETTE.len()]))
        .collect()
}

fn span(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    })
}

/// A compact tick label: scientific notation for FLOP counts, which plotters would otherwise
/// print with every digit, plain decimals for accelerator-hours and token counts below 10^4.
fn axis_number(x: f64) -> String {
    if x != 0.0 && !(1e-2..1e4).contains(&x.abs()) {
        format!("{x:.1e}")
    } else {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// Final validation loss of every run against its compute (log x), intermediate evaluations
/// as small dots, and each policy's fitted law over the plotted range.
pub fn loss_vs_compute(
    path: &Path,
    rows: &[ResultRow],
    fits: &[FittedLine],
) -> Result<(), SweepError> {
    let axis = compute_axis(rows);
    let x_label = match axis {
        "theoretical_hours" => "compute (reference accelerator-hours), log scale",
        _ => "compute (FLOPs), log scale",
    };
    let keep: Vec<(f64, &ResultRow)> = rows
        .iter()
        .filter(|r| r.checkpoint > 0 && r.loss > 0.0)
        .map(|r| (x_of(r, axis), r))
        .filter(|(x, _)| *x > 0.0)
        .collect();
    if keep.is_empty() {
        return Err(plot_err(path)("no evaluations after step 0".into()));
    }
    let (x0, x1) = span(keep.iter().map(|(x, _)| *x));
    let (y0, y1) = span(keep.iter().map(|(_, r)| r.loss));
    let colors = policy_colors(rows);
    let finals: Vec<&ResultRow> = final_rows(rows);
    render(path, |root| {
        let mut chart = frame(root, "validation loss vs compute")
            .build_cartesian_2d((x0 * 0.9..x1 * 1.1).log_scale(), y0 * 0.98..y1 * 1.02)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("validation loss (nats/token)")
            .x_labels(8)
            .x_label_formatter(&|x| axis_number(*x))
            .y_labels(12)
            .draw()?;
        for (policy, &color) in &colors {
            let mine = keep.iter().filter(|(_, r)| &r.policy == policy);
            let small = mine
                .clone()
                .map(|(x, r)| Circle::new((*x, r.loss), 2, color.mix(0.4).filled()));
            chart.draw_series(small)?;
            let last = mine.filter(|(_, r)| finals.iter().any(|f| std::ptr::eq(*f, *r)));
            chart
                .draw_series(last.map(|(x, r)| Circle::new((*x, r.loss), 5, color.filled())))?
                .label(policy.clone())
                .legend(move |(x, y)| Circle::new((x, y), 5, color.filled()));
            for f in fits.iter().filter(|f| &f.policy == policy) {
                let line = (0..=50).map(|i| {
                    let c = x0 * (x1 / x0).powf(i as f64 / 50.0);
                    (c, f.beta * c.powf(f.alpha))
                });
                chart.draw_series(LineSeries::new(line, color.stroke_width(2)))?;
            }
        }
        draw_legend(&mut chart)
    })
}

/// Validation loss against tokens seen for every run, colored by policy.
pub fn loss_curves(path: &Path, rows: &[ResultRow]) -> Result<(), SweepError> {
    if rows.is_empty() {
        return Err(plot_err(path)("no rows".into()));
    }
    let (x0, x1) = span(rows.iter().map(|r| r.tokens_seen as f64));
    let (y0, y1) = span(rows.iter().map(|r| r.loss));
    let colors = policy_colors(rows);
    let mut runs: BTreeMap<&str, Vec<&ResultRow>> = BTreeMap::new();
    for r in rows {
        runs.entry(r.model_name.as_str()).or_default().push(r);
    }
    render(path, |root| {
        let mut chart = frame(root, "validation loss per run")
            .build_cartesian_2d(x0..x1.max(x0 + 1.0), y0 * 0.98..y1 * 1.02)?;
        chart
            .configure_mesh()
            .x_desc("tokens seen")
            .y_desc("validation loss (nats/token)")
            .x_label_formatter(&|x| axis_number(*x))
            .draw()?;
        let mut labelled = Vec::new();
        for points in runs.values_mut() {
            points.sort_by_key(|r| r.checkpoint);
            let policy = &points[0].policy;
            let color = colors[policy];
            let series = chart.draw_series(LineSeries::new(
                points.iter().map(|r| (r.tokens_seen as f64, r.loss)),
                color.stroke_width(1),
            ))?;
            if !labelled.contains(policy) {
                labelled.push(policy.clone());
                series
                    .label(policy.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
        }
        draw_legend(&mut chart)
    })
}

#[cfg(test)]
mod tests {
    use super::axis_number;

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(axis_number(2.0e12), "2.0e12");
        assert_eq!(axis_number(0.25), "0.25");
        assert_eq!(axis_number(3.0), "3");
        assert_eq!(axis_number(0.0), "0");
        assert_eq!(axis_number(5.0e-4), "5.0e-4");
    }
}
