//! The ROC and DET figure, as a PNG.
//!
//! Drawn with `plotters` on its bitmap backend. Text needs a font: the
//! `ab_glyph` feature renders a TrueType file we load at run time (DejaVu
//! Sans from Debian's `fonts-dejavu-core`, or `$FACEGATE_PLOT_FONT`), so
//! no fontconfig is needed. Without a font the curves are still drawn,
//! without text, and the caller is told.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::Result;

/// A curve: `(FMR, FNMR)` points and a label.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// `(FMR, FNMR)`, any order.
    pub points: Vec<(f64, f64)>,
}

/// A marked operating point.
#[derive(Debug, Clone)]
pub struct Mark {
    /// Short label, e.g. "FMR 1e-4".
    pub label: String,
    /// FMR.
    pub fmr: f64,
    /// FNMR.
    pub fnmr: f64,
}

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers a font for "sans-serif"; false when none was found.
fn register_font() -> bool {
    let env = std::env::var_os("FACEGATE_PLOT_FONT").map(std::path::PathBuf::from);
    let candidates = env
        .into_iter()
        .chain(FONT_CANDIDATES.iter().map(std::path::PathBuf::from));
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path) {
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Draws ROC (left: true-match rate against FMR, log x) and DET (right:
/// FNMR against FMR, log–log) for `curves`, marking `marks` on the first.
/// Returns whether text could be drawn.
pub fn roc_det(path: &Path, title: &str, curves: &[Curve], marks: &[Mark]) -> Result<bool> {
    let text = register_font();
    let root = BitMapBackend::new(path, (1100, 470)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = if text {
        root.titled(title, ("sans-serif", 22))
            .map_err(|e| e.to_string())?
    } else {
        root
    };
    let (left, right) = root.split_horizontally(550);
    let colours = [BLUE, RED, GREEN, MAGENTA];
    let x_range = 1e-8f64..1.0;

    // ROC.
    {
        let mut chart = ChartBuilder::on(&left)
            .margin(15)
            .x_label_area_size(if text { 45 } else { 0 })
            .y_label_area_size(if text { 60 } else { 0 })
            .build_cartesian_2d(x_range.clone().log_scale(), 0f64..1.0)
            .map_err(|e| e.to_string())?;
        if text {
            chart
                .configure_mesh()
                .x_desc("false-match rate (log)")
                .y_desc("true-match rate = 1 − FNMR")
                .x_label_formatter(&|x| format!("{x:.0e}"))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        for (k, c) in curves.iter().enumerate() {
            let colour = colours[k % colours.len()];
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .filter(|p| p.0 >= 1e-8)
                .map(|&(fmr, fnmr)| (fmr, 1.0 - fnmr))
                .collect();
            let series = chart
                .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            if text {
                series.label(c.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            }
        }
        chart
            .draw_series(
                marks
                    .iter()
                    .map(|m| Circle::new((m.fmr.max(1e-8), 1.0 - m.fnmr), 5, BLACK.filled())),
            )
            .map_err(|e| e.to_string())?;
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 15))
                .draw()
                .map_err(|e| e.to_string())?;
        }
    }

    // DET.
    {
        let mut chart = ChartBuilder::on(&right)
            .margin(15)
            .x_label_area_size(if text { 45 } else { 0 })
            .y_label_area_size(if text { 60 } else { 0 })
            .build_cartesian_2d(x_range.log_scale(), (1e-4f64..1.0).log_scale())
            .map_err(|e| e.to_string())?;
        if text {
            chart
                .configure_mesh()
                .x_desc("false-match rate (log)")
                .y_desc("false-non-match rate (log)")
                .x_label_formatter(&|x| format!("{x:.0e}"))
                .y_label_formatter(&|y| format!("{y:.0e}"))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        for (k, c) in curves.iter().enumerate() {
            let colour = colours[k % colours.len()];
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .copied()
                .filter(|p| p.0 >= 1e-8 && p.1 >= 1e-4)
                .collect();
            chart
                .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(
                marks
                    .iter()
                    .filter(|m| m.fnmr >= 1e-4)
                    .map(|m| Circle::new((m.fmr.max(1e-8), m.fnmr), 5, BLACK.filled())),
            )
            .map_err(|e| e.to_string())?;
        if text {
            chart
                .draw_series(marks.iter().filter(|m| m.fnmr >= 1e-4).map(|m| {
                    Text::new(
                        m.label.clone(),
                        (m.fmr.max(1e-8) * 1.5, m.fnmr * 1.15),
                        ("sans-serif", 14),
                    )
                }))
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(text)
}
