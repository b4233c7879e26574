//! Render `fusebox bench --json` output as an SVG plot: for each case, time per element and
//! GB/s against array size, one line per implementation (log-log).
//!
//! ```sh
//! fusebox bench --json > bench.json
//! cargo run --example plot_bench -- bench.json docs/bench.svg
//! ```
use plotters::prelude::*;
use std::collections::BTreeMap;

/// case -> implementation -> [(n, GB/s, ns per element)]
type Series = BTreeMap<String, BTreeMap<String, Vec<(f64, f64, f64)>>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = match args.as_slice() {
        [_, i, o] => (i.clone(), o.clone()),
        _ => return Err("usage: plot_bench BENCH.json OUT.svg".into()),
    };
    let records: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&input)?)?;
    let mut data: Series = BTreeMap::new();
    for r in &records {
        let (Some(case), Some(imp), Some(n), Some(gbps), Some(t)) = (
            r["case"].as_str(),
            r["impl"].as_str(),
            r["n"].as_f64(),
            r["gbps"].as_f64(),
            r["median_s"].as_f64(),
        ) else {
            return Err(format!("malformed record: {r}").into());
        };
        data.entry(case.into())
            .or_default()
            .entry(imp.into())
            .or_default()
            .push((n, gbps, t / n * 1e9));
    }
    let cases: Vec<&String> = data.keys().collect();
    let root =
        SVGBackend::new(&output, (1200, 330 * cases.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let rows = root.split_evenly((cases.len().max(1), 2));
    let colors = [RED, BLUE, GREEN, MAGENTA, BLACK, CYAN];
    for (ci, case) in cases.iter().enumerate() {
        let impls = &data[*case];
        let all: Vec<&(f64, f64, f64)> = impls.values().flatten().collect();
        let (nmin, nmax) = all
            .iter()
            .fold((f64::MAX, 0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
        for (col, (label, pick)) in [("GB/s", 1usize), ("ns per element", 2usize)]
            .iter()
            .enumerate()
        {
            let val = |p: &(f64, f64, f64)| if *pick == 1 { p.1 } else { p.2 };
            let (vmin, vmax) = all
                .iter()
                .fold((f64::MAX, 0f64), |(a, b), p| (a.min(val(p)), b.max(val(p))));
            let area = &rows[ci * 2 + col];
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{case}: {label}"), ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(
                    (nmin..nmax).log_scale(),
                    (vmin * 0.8..vmax * 1.25).log_scale(),
                )?;
            chart.configure_mesh().x_desc("n").draw()?;
            for (k, (imp, pts)) in impls.iter().enumerate() {
                let mut pts: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, val(p))).collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let c = colors[k % colors.len()];
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                    .label(imp.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], c));
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
    }
    root.present()?;
    println!("wrote {output}");
    Ok(())
}
