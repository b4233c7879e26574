//! `Table::explain`: the plan the streaming executor runs per chunk, shown without reading a
//! row (issue 15). The oracle is the evaluation itself: what explain predicts (passes, columns
//! read, kernels per chunk, bytes, chunks skipped by statistics) is checked against what
//! `compute` then does (the session's `Stats`, the table's skip counter) and against the
//! fusion rules' exact byte counts.
mod parquet_common;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use fusebox::table::{Table, TableExplain};
use fusebox::{Device, Error, Options, Session};
use std::path::PathBuf;
use std::sync::Arc;

const N: usize = 10_000;
const GROUP: usize = 1_000;

/// `a` = 0..N (sorted), `b` with every 5th row null, `k` = row % 3 (int64).
fn batch() -> RecordBatch {
    let a: Vec<f64> = (0..N).map(|i| i as f64).collect();
    let b: Vec<Option<f64>> = (0..N)
        .map(|i| (!i.is_multiple_of(5)).then_some((i as f64 * 0.37).sin()))
        .collect();
    let k: Vec<i64> = (0..N).map(|i| (i % 3) as i64).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Float64, false),
        Field::new("b", DataType::Float64, true),
        Field::new("k", DataType::Int64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(a)),
        Arc::new(Float64Array::from(b)),
        Arc::new(Int64Array::from(k)),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

/// A fresh Parquet file of [`batch`] in row groups of [`GROUP`] rows.
fn parquet_file() -> PathBuf {
    parquet_common::fresh_parquet("explain", &batch(), GROUP)
}

fn cpu() -> Session {
    Session::with_options(Options::default().with_device(Device::Cpu))
}

fn memory(chunk: usize, s: &Session) -> Table {
    Table::from_batches(vec![batch()])
        .unwrap()
        .with_chunk_rows(chunk)
        .with_session(s)
}

/// Kernels per chunk of each pass, and of the plans run once.
fn kernels(e: &TableExplain) -> Vec<(usize, usize)> {
    e.passes
        .iter()
        .map(|p| {
            (
                p.per_chunk.as_ref().map_or(0, |x| x.kernels.len()),
                p.once.as_ref().map_or(0, |x| x.kernels.len()),
            )
        })
        .collect()
}

#[test]
fn a_sum_is_one_fused_pass_reading_one_column() {
    let s = cpu();
    let t = memory(4096, &s);
    let e = t.explain(&t.col("a").unwrap().sum()).unwrap();
    assert_eq!((e.rows, e.chunks, e.chunk_len), (Some(N), Some(3), 4096));
    assert_eq!(e.passes.len(), 2, "the reductions, then the scalar result");
    let p = &e.passes[0];
    assert_eq!(p.kind, "reductions");
    assert_eq!(p.columns, ["a"]);
    let chunk = p.per_chunk.as_ref().unwrap();
    assert_eq!(chunk.kernels.len(), 1);
    let k = &chunk.kernels[0];
    assert_eq!(k.shape, [4096]);
    assert_eq!(k.reduce_axes, [0]);
    assert_eq!((k.bytes_read, k.bytes_written), (8 * 4096, 8));
    assert_eq!(p.skipped_chunks, None, "no statistics in memory");
    assert_eq!(e.passes[1].kind, "rows");
    assert!(e.passes[1].per_chunk.is_none(), "a scalar reads no rows");
    // What compute then runs: one kernel per chunk reading a's 8 bytes per row.
    let before = s.stats();
    let got = t.compute(&t.col("a").unwrap().sum()).unwrap();
    let after = s.stats();
    assert_eq!(got.scalar_f64(), Some((N * (N - 1) / 2) as f64));
    let once: u64 = e.passes[1]
        .once
        .as_ref()
        .map_or(0, |x| x.kernels.iter().map(|k| k.bytes_read).sum());
    assert_eq!(once, 8, "the result: one 0-d float64");
    // The chunks' kernels read 8 * N bytes (explain: 8 per row), combining the 3 partials
    // 3 * 8 more, the final pass what explain says it reads once.
    assert_eq!(
        after.bytes_read - before.bytes_read,
        8 * N as u64 + 3 * 8 + once
    );
}

#[test]
fn a_filtered_product_of_a_nullable_column_fuses_the_mask() {
    let s = cpu();
    let t = memory(4096, &s);
    let f = t.filter(&t.col("a").unwrap().gt(100.0)).unwrap();
    let expr = (&f.col("a").unwrap() * &f.col("b").unwrap()).sum();
    let e = f.explain(&expr).unwrap();
    let p = &e.passes[0];
    assert_eq!(p.columns, ["a", "b"]);
    let chunk = p.per_chunk.as_ref().unwrap();
    // One kernel: a, b and b's validity read once each; the sum and the count of kept rows.
    assert_eq!(chunk.kernels.len(), 1, "{chunk}");
    assert_eq!(chunk.kernels[0].bytes_read, (8 + 8 + 1) * 4096);
    assert_eq!(chunk.kernels[0].writes.len(), 2);
    // The plan explain shows is the plan compute runs: kernels per chunk times chunks.
    let before = s.stats().kernels_launched;
    f.compute(&expr).unwrap();
    let launched = s.stats().kernels_launched - before;
    let (per_chunk, once) = kernels(&e)
        .iter()
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    // 3 chunks; then each partial (sum, count) combined by one kernel.
    assert_eq!(launched as usize, 3 * per_chunk + once + 2);
}

#[test]
fn derived_columns_nested_reductions_and_rows() {
    let s = cpu();
    let t = memory(N, &s);
    let t2 = t
        .with_column("c", &(&t.col("a").unwrap() * 2.0 + 1.0))
        .unwrap();
    let c = t2.col("c").unwrap();
    // c - mean(c): the mean in one pass, then the rows in another.
    let e = t2.explain(&(&c - c.mean())).unwrap();
    let kinds: Vec<&str> = e.passes.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, ["reductions", "rows"]);
    for p in &e.passes {
        assert_eq!(p.columns, ["a"], "a derived column reads its source");
    }
    let rows = e.passes[1].per_chunk.as_ref().unwrap();
    assert_eq!(rows.kernels.len(), 1);
    assert_eq!(rows.kernels[0].shape, [N]);
    // a once per row and the mean (a 0-d stand-in) once; c written once per row.
    let k = &rows.kernels[0];
    assert_eq!(
        (k.bytes_read, k.bytes_written),
        (8 * N as u64 + 8, 8 * N as u64)
    );
    // std: two levels of reductions, then the scalar.
    let e = t2.explain(&c.std()).unwrap();
    let kinds: Vec<&str> = e.passes.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, ["reductions", "reductions", "rows"]);
    // The text names the passes and the columns; the JSON has the same passes.
    let text = e.to_string();
    assert!(text.contains("pass 1 of 3: reductions"), "{text}");
    assert!(text.contains("reads columns: a"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    assert_eq!(json["passes"].as_array().unwrap().len(), 3);
    assert_eq!(json["passes"][0]["columns"][0], "a");
    assert_eq!(json["chunk_rows"], N);
}

#[test]
fn row_groups_skipped_by_statistics_are_predicted() {
    let s = cpu();
    let file = Table::open(parquet_file())
        .unwrap()
        .with_chunk_rows(GROUP)
        .with_session(&s);
    // a > 7500: the groups of a <= 6999 (7 of 10) are refuted by their statistics.
    let f = file.filter(&file.col("a").unwrap().gt(7500.0)).unwrap();
    let b = f.col("b").unwrap();
    let exprs = [
        b.sum(),
        f.col("k").unwrap().max(),
        (&f.col("a").unwrap() - &b).min(),
    ];
    let e = f.explain_many(&exprs).unwrap();
    assert_eq!(f.skipped_chunks(), 0, "explain reads nothing");
    assert_eq!(e.chunks, Some(10));
    let predicted: usize = e.passes.iter().filter_map(|p| p.skipped_chunks).sum();
    assert_eq!(e.passes[0].skipped_chunks, Some(7));
    assert_eq!(e.passes[0].columns, ["a", "b", "k"]);
    let got = f.compute_many(&exprs).unwrap();
    assert_eq!(
        f.skipped_chunks(),
        predicted,
        "explain predicts the skipping"
    );
    // And the results are right (plain Rust over the kept rows).
    let kept = 7501..N;
    let bs = |i: usize| (!i.is_multiple_of(5)).then_some((i as f64 * 0.37).sin());
    let mut want_b = 0.0;
    for i in kept.clone() {
        if let Some(v) = bs(i) {
            want_b += v;
        }
    }
    assert!((got[0].scalar_f64().unwrap() - want_b).abs() < 1e-9);
    assert_eq!(got[1].scalar_i64(), Some(2));
    let want_min = kept
        .filter_map(|i| bs(i).map(|v| i as f64 - v))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(got[2].scalar_f64(), Some(want_min));
}

#[test]
fn explaining_an_unknown_column_is_an_error() {
    let t = memory(N, &cpu());
    let bad = fusebox::Expr::symbol("zz", fusebox::DType::F64, &[N]);
    match t.explain(&bad.sum()) {
        Err(Error::UnknownName { name, .. }) => assert_eq!(name, "zz"),
        other => panic!("{other:?}"),
    }
}
