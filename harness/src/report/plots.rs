//! SVG charts of the report, drawn with plotters' SVG backend (text is written as SVG `<text>`,
//! so no font library is needed). Every chart is drawn from numbers computed in the same run,
//! and its title says what it shows.

use super::accuracy::{density, Panel, Sweep};
use super::speed::SpeedRow;
use crate::machine::Limit;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

type Result<T> = std::result::Result<T, String>;
type PointValue = fn(&super::accuracy::SweepPoint) -> f64;

fn e<E: std::fmt::Debug>(x: E) -> String {
    format!("plot: {x:?}")
}

/// A fixed colour per implementation.
pub fn impl_color(isa: &str) -> RGBColor {
    match isa {
        "reference" => RGBColor(140, 140, 140),
        "scalar" => RGBColor(31, 119, 180),
        "avx2" => RGBColor(255, 127, 14),
        "avx512" => RGBColor(44, 160, 44),
        "neon" => RGBColor(148, 103, 189),
        "onnxruntime" => RGBColor(214, 39, 40),
        _ => RGBColor(0, 0, 0),
    }
}

/// Sans-serif text of `size` px anchored at `(h, v)`.
fn label_style(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(h, v))
}

/// Decimal byte counts for log axes (whose ticks fall on powers of ten): `100 kB`, `10 MB`.
fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.0} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// The label of a tick of an axis whose categories sit at `i + 0.5`: the category's name at its
/// centre, nothing elsewhere.
fn category_label(names: &[String], x: f64) -> String {
    let i = (x - 0.5).round();
    if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
        names[i as usize].clone()
    } else {
        String::new()
    }
}

/// The legend box of `chart` (white, framed) at `position` (plotters' default where `None`).
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: Option<SeriesLabelPosition>,
) -> Result<()> {
    let mut labels = chart.configure_series_labels();
    if let Some(p) = position {
        labels.position(p);
    }
    labels.background_style(WHITE.mix(0.9)).border_style(BLACK).draw().map_err(e)
}

/// The report's chart of a value against a log-scale `x` in `[xmin, xmax]`, `y` in `[0, ymax]`.
type LogXChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, plotters::coord::types::RangedCoordf64>>;

/// A [`LogXChart`] on `root` with its caption, axis descriptions `(x, y)` and `x` labels.
fn log_x_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    (xmin, xmax): (f64, f64),
    ymax: f64,
    (x_desc, y_desc): (&str, &str),
    x_label: &dyn Fn(&f64) -> String,
) -> Result<LogXChart<'a, 'b>> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 17))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((xmin..xmax).log_scale(), 0f64..ymax)
        .map_err(e)?;
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).x_label_formatter(x_label).draw().map_err(e)?;
    Ok(chart)
}

/// `points` sorted by `x`, drawn as a line with a dot on each point and named `label` in the
/// legend; returns the sorted points.
fn line_with_dots(
    chart: &mut LogXChart<'_, '_>,
    points: impl Iterator<Item = (f64, f64)>,
    color: RGBAColor,
    label: String,
) -> Result<Vec<(f64, f64)>> {
    let mut s: Vec<(f64, f64)> = points.collect();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(s.clone(), color.stroke_width(2)))
        .map_err(e)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    chart.draw_series(s.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled()))).map_err(e)?;
    Ok(s)
}

/// Read bandwidth against working-set size.
pub fn bandwidth_chart(path: &Path, limits: &[Limit]) -> Result<()> {
    let pts: Vec<(usize, f64, f64)> = limits
        .iter()
        .filter(|l| l.limit == "read_bandwidth")
        .filter_map(|l| l.bytes.map(|b| (l.threads, b as f64, l.value)))
        .collect();
    if pts.is_empty() {
        return Err("no read-bandwidth measurement to plot".into());
    }
    let xmin = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) / 1.5;
    let xmax = pts.iter().map(|p| p.1).fold(0.0, f64::max) * 1.5;
    let ymax = pts.iter().map(|p| p.2).fold(0.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let caption = "Read bandwidth of this machine against working-set size (stream-sum, best ISA, best run)";
    let axes = ("working set (bytes, log scale)", "GB/s");
    let mut chart = log_x_chart(&root, caption, (xmin, xmax), ymax, axes, &|v| human_bytes(*v))?;
    let mut threads: Vec<usize> = pts.iter().map(|p| p.0).collect();
    threads.sort();
    threads.dedup();
    for (k, t) in threads.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let s = line_with_dots(
            &mut chart,
            pts.iter().filter(|p| p.0 == *t).map(|p| (p.1, p.2)),
            color,
            format!("{t} thread(s)"),
        )?;
        chart
            .draw_series(
                s.iter().map(|&(x, y)| Text::new(format!("{y:.1}"), (x, y), label_style(12, HPos::Left, VPos::Bottom))),
            )
            .map_err(e)?;
    }
    legend(&mut chart, None)?;
    root.present().map_err(e)?;
    Ok(())
}

/// GOPS of the square `u8 x s8` GEMM against its size (log scale), one line per implementation,
/// with this machine's one-thread int8 peaks as horizontal lines: a roofline of the compute
/// bound.
pub fn gemm_chart(path: &Path, points: &[(usize, String, f64)], peaks: &[(String, f64)]) -> Result<()> {
    if points.is_empty() {
        return Err("no GEMM measurement to plot".into());
    }
    let xmin = points.iter().map(|p| p.0 as f64).fold(f64::INFINITY, f64::min) / 1.3;
    let xmax = points.iter().map(|p| p.0 as f64).fold(0.0, f64::max) * 1.3;
    let ymax = points.iter().map(|p| p.2).chain(peaks.iter().map(|p| p.1)).fold(0.0, f64::max) * 1.12;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let caption = "u8 x s8 -> i32 GEMM, M = N = K, one thread: GOPS against this machine's int8 peaks";
    let axes = ("M = N = K (log scale)", "GOPS (2 M N K / s / 1e9)");
    let mut chart = log_x_chart(&root, caption, (xmin, xmax), ymax, axes, &|v| format!("{v:.0}"))?;
    for (k, (kernel, v)) in peaks.iter().enumerate() {
        let color = RGBColor(90, 90, 90).mix(0.8 - 0.2 * k as f64);
        chart.draw_series(LineSeries::new(vec![(xmin, *v), (xmax, *v)], color.stroke_width(1))).map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("peak: {kernel} {v:.0} GOPS"),
                (xmin * 1.05, *v),
                label_style(12, HPos::Left, VPos::Bottom),
            )))
            .map_err(e)?;
    }
    let mut isas: Vec<String> = Vec::new();
    for p in points {
        if !isas.contains(&p.1) {
            isas.push(p.1.clone());
        }
    }
    for isa in &isas {
        let line = points.iter().filter(|p| &p.1 == isa).map(|p| (p.0 as f64, p.2));
        line_with_dots(&mut chart, line, impl_color(isa).to_rgba(), isa.clone())?;
    }
    legend(&mut chart, Some(SeriesLabelPosition::UpperRight))?;
    root.present().map_err(e)?;
    Ok(())
}

/// Grouped bars of Gelem/s per operation and implementation, one panel per (size, threads),
/// with the read-bandwidth ceiling of each operation drawn as a black bar.
pub fn speed_chart(path: &Path, rows: &[SpeedRow], sizes: &[usize], threads: &[usize]) -> Result<()> {
    if rows.is_empty() {
        return Err("no speed measurement to plot".into());
    }
    let mut ops: Vec<String> = Vec::new();
    for r in rows {
        if !ops.contains(&r.record.op) {
            ops.push(r.record.op.clone());
        }
    }
    let mut isas: Vec<String> = Vec::new();
    for r in rows {
        if !isas.contains(&r.record.isa) {
            isas.push(r.record.isa.clone());
        }
    }
    let vals = rows
        .iter()
        .map(|r| r.record.gelem_per_s)
        .chain(rows.iter().filter_map(|r| r.ceiling_gbs.map(|c| c / r.record.bytes_per_element)))
        .filter(|v| *v > 0.0);
    let (ymin, ymax) = vals.fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (ymin, ymax) = (ymin / 3.0, ymax * 2.0);
    let h = 330 * sizes.len() as u32 + 70;
    let w = 560 * threads.len() as u32;
    let root = SVGBackend::new(path, (w.max(600), h)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = root
        .titled(
            "Throughput (Gelem/s, log scale, median of repeated runs); black bar: this machine's read bandwidth at the same working set / bytes per element",
            ("sans-serif", 14),
        )
        .map_err(e)?;
    let (legend, body) = root.split_vertically(28);
    for (k, isa) in isas.iter().enumerate() {
        let x = 20 + 150 * k as i32;
        let name = if isa == "reference" { "reference (1 thread)".to_string() } else { isa.clone() };
        legend.draw(&Rectangle::new([(x, 8), (x + 14, 20)], impl_color(isa).filled())).map_err(e)?;
        legend.draw(&Text::new(name, (x + 20, 14), label_style(12, HPos::Left, VPos::Center))).map_err(e)?;
    }
    let x = 20 + 150 * isas.len() as i32;
    legend.draw(&PathElement::new(vec![(x, 14), (x + 14, 14)], BLACK.stroke_width(3))).map_err(e)?;
    legend
        .draw(&Text::new("read-bandwidth ceiling", (x + 20, 14), label_style(12, HPos::Left, VPos::Center)))
        .map_err(e)?;
    let panels = body.split_evenly((sizes.len(), threads.len()));
    for (pi, area) in panels.iter().enumerate() {
        let (size, t) = (sizes[pi / threads.len()], threads[pi % threads.len()]);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{} elements, {} thread(s)", crate::bench::format_size(size), t), ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..ops.len() as f64, (ymin..ymax).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(2 * ops.len() + 1)
            .x_label_formatter(&|x| category_label(&ops, *x))
            .y_desc("Gelem/s")
            .draw()
            .map_err(e)?;
        let width = 0.8 / isas.len() as f64;
        for (k, isa) in isas.iter().enumerate() {
            let color = impl_color(isa);
            let bars: Vec<Rectangle<(f64, f64)>> = ops
                .iter()
                .enumerate()
                .filter_map(|(i, op)| {
                    rows.iter()
                        .find(|r| {
                            &r.record.op == op
                                && &r.record.isa == isa
                                && r.record.elements == size
                                && (r.record.threads == t || r.record.isa == "reference")
                        })
                        .map(|r| {
                            let x0 = i as f64 + 0.1 + k as f64 * width;
                            Rectangle::new(
                                [(x0, ymin), (x0 + width * 0.9, r.record.gelem_per_s.max(ymin))],
                                color.filled(),
                            )
                        })
                })
                .collect();
            chart.draw_series(bars).map_err(e)?;
        }
        for (i, op) in ops.iter().enumerate() {
            if let Some(r) =
                rows.iter().find(|r| &r.record.op == op && r.record.elements == size && r.record.threads == t)
            {
                if let Some(c) = r.ceiling_gbs {
                    let y = c / r.record.bytes_per_element;
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(i as f64 + 0.05, y), (i as f64 + 0.95, y)],
                            BLACK.stroke_width(3),
                        )))
                        .map_err(e)?;
                }
            }
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// MSE (total, round, clip) against the clipping threshold, one panel per sweep.
pub fn clip_sweep_chart(path: &Path, sweeps: &[Sweep]) -> Result<()> {
    let root = SVGBackend::new(path, (520 * sweeps.len().max(1) as u32, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = root
        .titled(
            "Round error against clip error (seed 001): MSE vs clipping threshold, per-tensor symmetric",
            ("sans-serif", 15),
        )
        .map_err(e)?;
    let panels = root.split_evenly((1, sweeps.len().max(1)));
    for (sw, area) in sweeps.iter().zip(panels.iter()) {
        let all =
            sw.points.iter().flat_map(|p| [p.stats.mse, p.stats.round_mse, p.stats.clip_mse]).filter(|v| *v > 0.0);
        let (lo, hi) = all.fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(v), b.max(v)));
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{}, {}-bit, codes [-{q}, {q}]", sw.tensor, sw.bits, q = (1 << (sw.bits - 1)) - 1),
                ("sans-serif", 14),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(65)
            .build_cartesian_2d((0.015f64..1.1).log_scale(), (lo / 2.0..hi * 2.0).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("clipping threshold / max|x| (log)")
            .x_label_formatter(&|v| {
                let keep = [0.02, 0.05, 0.1, 0.2, 0.5, 1.0].iter().any(|k| (v / k - 1.0).abs() < 1e-6);
                if keep {
                    format!("{v}")
                } else {
                    String::new()
                }
            })
            .y_desc("mean squared error (log)")
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(e)?;
        let series: [(&str, RGBColor, PointValue); 3] = [
            ("total MSE", RGBColor(0, 0, 0), |p| p.stats.mse),
            ("round error", RGBColor(31, 119, 180), |p| p.stats.round_mse),
            ("clip error", RGBColor(214, 39, 40), |p| p.stats.clip_mse),
        ];
        for (name, color, f) in series {
            let pts: Vec<(f64, f64)> = sw.points.iter().map(|p| (p.ratio, f(p))).filter(|p| p.1 > 0.0).collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(e)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        if let Some(b) = sw.points.get(sw.best) {
            chart.draw_series(std::iter::once(Circle::new((b.ratio, b.stats.mse), 6, BLACK.filled()))).map_err(e)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("best: {:.2} max|x|, SQNR {:.1} dB", b.ratio, b.stats.sqnr_db),
                    (b.ratio, b.stats.mse / 1.3),
                    label_style(12, if b.ratio > 0.3 { HPos::Right } else { HPos::Center }, VPos::Top),
                )))
                .map_err(e)?;
        }
        legend(&mut chart, Some(SeriesLabelPosition::UpperLeft))?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// The seed-004 pictures: the density of `x` (grey), the density of its dequantized values
/// (blue steps, one per code, of width `s`) and the code grid (red lines at `(q - z) s`).
pub fn scale_zero_point_chart(path: &Path, x: &[f32], panels: &[Panel]) -> Result<()> {
    let cols = 2usize;
    let rows = panels.len().div_ceil(cols).max(1);
    let root = SVGBackend::new(path, (1100, 330 * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = root
        .titled(
            "How s and z place the code grid (seed 004): grey = density of x, blue = density of dequantized x^, red = codes q at (q - z) s",
            ("sans-serif", 14),
        )
        .map_err(e)?;
    let areas = root.split_evenly((rows, cols));
    let (xlo, xhi) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v as f64), b.max(v as f64)));
    let n = x.len().max(1) as f64;
    for (p, area) in panels.iter().zip(areas.iter()) {
        let s = p.scale as f64;
        let glo = p.value(p.range.qmin()) - s / 2.0;
        let ghi = p.value(p.range.qmax()) + s / 2.0;
        let (lo, hi) = (xlo.min(glo) - 0.3, xhi.max(ghi) + 0.3);
        let hist = density(x, lo, hi, 120);
        let steps: Vec<(f64, f64, f64)> = p
            .code_counts
            .iter()
            .map(|&(q, c)| (p.value(q) - s / 2.0, p.value(q) + s / 2.0, c as f64 / (n * s)))
            .collect();
        let ymax = hist.iter().chain(steps.iter()).map(|h| h.2).fold(0.0, f64::max) * 1.2;
        let st = &p.stats;
        let mut chart = ChartBuilder::on(area)
            .caption(&p.title, ("sans-serif", 13))
            .margin(8)
            .x_label_area_size(38)
            .y_label_area_size(40)
            .build_cartesian_2d(lo..hi, 0f64..ymax.max(1e-9))
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(format!(
                "SQNR {:.1} dB | clipped {:.2}% | codes used {}/{} | round MSE {:.1e}, clip MSE {:.1e}",
                st.sqnr_db,
                100.0 * st.clipped_fraction,
                st.codes_used,
                st.codes_available,
                st.round_mse,
                st.clip_mse
            ))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(
                hist.iter()
                    .map(|&(a, b, h)| Rectangle::new([(a, 0.0), (b, h)], RGBColor(150, 150, 150).mix(0.6).filled())),
            )
            .map_err(e)?;
        chart
            .draw_series(
                steps
                    .iter()
                    .map(|&(a, b, h)| Rectangle::new([(a, 0.0), (b, h)], RGBColor(31, 119, 180).mix(0.35).filled())),
            )
            .map_err(e)?;
        chart
            .draw_series(
                steps
                    .iter()
                    .map(|&(a, b, h)| Rectangle::new([(a, 0.0), (b, h)], RGBColor(31, 119, 180).stroke_width(1))),
            )
            .map_err(e)?;
        for &(q, _) in &p.code_counts {
            let v = p.value(q);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(v, 0.0), (v, ymax * 0.9)],
                    RGBColor(214, 39, 40).stroke_width(1),
                )))
                .map_err(e)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    q.to_string(),
                    (v, ymax * 0.9),
                    ("sans-serif", 11)
                        .into_font()
                        .color(&RGBColor(214, 39, 40))
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))
                .map_err(e)?;
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(1e5), "100 kB");
        assert_eq!(human_bytes(1e7), "10 MB");
        assert_eq!(human_bytes(100.0), "100 B");
        let names = vec!["a".to_string(), "b".to_string()];
        assert_eq!(category_label(&names, 0.5), "a");
        assert_eq!(category_label(&names, 1.5), "b");
        assert_eq!(category_label(&names, 1.0), "");
        assert_eq!(category_label(&names, 2.5), "");
    }

    #[test]
    fn charts_are_svg_with_their_titles() {
        let dir = std::env::temp_dir().join(format!("quantproof-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let x = super::super::accuracy::two_bumps(5000);
        let panels = super::super::accuracy::scale_zero_point_panels(&x).unwrap();
        let p = dir.join("szp.svg");
        scale_zero_point_chart(&p, &x, &panels).unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("How s and z place the code grid") && svg.contains("SQNR"));
        let limits = vec![
            Limit {
                limit: "read_bandwidth".into(),
                kernel: "k".into(),
                threads: 1,
                bytes: Some(1 << 20),
                value: 20.0,
                unit: "GB/s".into(),
                reps: 1,
                seconds_best: 0.1,
                quiet_reference: None,
            },
            Limit {
                limit: "read_bandwidth".into(),
                kernel: "k".into(),
                threads: 1,
                bytes: Some(1 << 26),
                value: 10.0,
                unit: "GB/s".into(),
                reps: 1,
                seconds_best: 0.1,
                quiet_reference: None,
            },
        ];
        let p = dir.join("bw.svg");
        bandwidth_chart(&p, &limits).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains("Read bandwidth"));
        assert!(bandwidth_chart(&p, &[]).is_err());
        let g = dir.join("gemm.svg");
        let pts = vec![
            (64, "avx512".to_string(), 100.0),
            (128, "avx512".to_string(), 150.0),
            (64, "onnxruntime".into(), 80.0),
        ];
        gemm_chart(&g, &pts, &[("vpdpbusd".to_string(), 400.0)]).unwrap();
        let svg = std::fs::read_to_string(&g).unwrap();
        assert!(svg.contains("GEMM") && svg.contains("onnxruntime") && svg.contains("peak: vpdpbusd 400 GOPS"));
        assert!(gemm_chart(&g, &[], &[]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
