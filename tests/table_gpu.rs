//! Tables on the GPU: the same streaming loop (chunks, partials in chunk order, validity as
//! kernel inputs, fused filters) with the session pinned to the GPU. The session's counters
//! prove the kernels ran there; the CPU session over the same table is the oracle (integers,
//! counts, min/max and validity exactly; float sums within 1e-12 relative: the GPU sums a
//! chunk pairwise). Skips without an adapter, fails instead under `FUSEBOX_REQUIRE_GPU=1`.
mod common;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use fusebox::table::{Column, Table};
use fusebox::{Device, Options, Session};
use std::sync::Arc;

use common::{gpu_has_f64 as has_f64, gpu_session};

/// 50,000 rows in batches of 7,001: `a` spread around 0, `b` with every 5th row null, `k`
/// small integers.
fn table() -> Table {
    let n = 50_000;
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Float64, false),
        Field::new("b", DataType::Float64, true),
        Field::new("k", DataType::Int64, false),
    ]));
    let batches = (0..n)
        .step_by(7_001)
        .map(|start| {
            let rows = start..(start + 7_001).min(n);
            let a: Vec<f64> = rows
                .clone()
                .map(|i| ((i * 7919) % 1013) as f64 * 0.013 - 6.5)
                .collect();
            let b: Vec<Option<f64>> = rows
                .clone()
                .map(|i| (i % 5 != 0).then_some(((i * 31) % 97) as f64 * 0.25 - 12.0))
                .collect();
            let k: Vec<i64> = rows.map(|i| (i % 13) as i64 - 6).collect();
            let cols: Vec<ArrayRef> = vec![
                Arc::new(Float64Array::from(a)),
                Arc::new(Float64Array::from(b)),
                Arc::new(Int64Array::from(k)),
            ];
            RecordBatch::try_new(schema.clone(), cols).unwrap()
        })
        .collect();
    Table::from_batches(batches)
        .unwrap()
        .with_chunk_rows(16_384)
}

fn same(got: &Column, want: &Column, what: &str) {
    assert_eq!(got.validity(), want.validity(), "{what}: validity");
    assert_eq!(got.values().dtype(), want.values().dtype(), "{what}");
    match (got.scalar_i64(), want.scalar_i64()) {
        (Some(g), Some(w)) => assert_eq!(g, w, "{what}"),
        _ => {
            let g = got.values().clone().into_f64().unwrap();
            let w = want.values().clone().into_f64().unwrap();
            for (i, (x, y)) in g.iter().zip(w.iter()).enumerate() {
                if !got.is_null(i) {
                    assert!(
                        (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                        "{what}[{i}]: gpu {x} vs cpu {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn filtered_reductions_and_null_aware_rows_run_on_the_gpu() {
    let Some(gpu) = gpu_session() else { return };
    if !has_f64() {
        println!("skipping: adapter 0 has no float64");
        return;
    }
    let cpu = table().with_session(&Session::with_options(
        Options::default().with_device(Device::Cpu),
    ));
    let g = table().with_session(&gpu);
    for (t, name) in [(&cpu, "cpu"), (&g, "gpu")] {
        assert_eq!(t.column_names(), ["a", "b", "k"], "{name}");
    }
    let run = |t: &Table| {
        let f = t.filter(&t.col("a").unwrap().gt(0.0)).unwrap();
        let (a, b, k) = (
            f.col("a").unwrap(),
            f.col("b").unwrap(),
            f.col("k").unwrap(),
        );
        let exprs = vec![
            (&a * &b).sum(),
            b.mean(),
            b.min(),
            b.max(),
            f.count(&b),
            k.sum(),
            (&b - b.mean()).max(),
        ];
        let mut out = f.compute_many(&exprs).unwrap();
        out.push(f.compute(&((-&a * &a).exp() * &b)).unwrap());
        out.push(f.compute(&f.fill_null(&b, 0.0)).unwrap());
        out
    };
    let want = run(&cpu);
    let got = run(&g);
    // Every chunk's inputs went up to the device (a, b, k and b's validity at least).
    assert!(
        gpu.stats().bytes_uploaded >= 50_000 * 8,
        "the GPU session uploaded {} bytes",
        gpu.stats().bytes_uploaded
    );
    for (i, (x, y)) in got.iter().zip(&want).enumerate() {
        same(x, y, &format!("result {i}"));
    }
    // The element-wise results keep the rows with a > 0, null where b is.
    assert!(want[7].len() > 20_000 && want[7].null_count() > 0);
}
