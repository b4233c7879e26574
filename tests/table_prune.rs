//! Row groups skipped by their statistics: a filter that the min/max/null counts of a Parquet
//! row group prove false never decodes it, and the results keep every bit. Oracle: the same
//! table in memory (no statistics, nothing skipped) and sums computed here in plain Rust.
mod parquet_common;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use fusebox::table::Table;
use fusebox::Expr;
use std::path::PathBuf;
use std::sync::Arc;

const N: usize = 10_000;
const GROUP: usize = 1_000;

/// `a` = 0..N (sorted, so groups have disjoint ranges), `b` pseudo-random with every 7th row
/// null and all of rows 3000..4000 null, `k` = row / 1000 (one value per group), `f` float32
/// where group 5 holds only float32(0.1), `n` NaN in group 2.
fn batch() -> RecordBatch {
    let a: Vec<f64> = (0..N).map(|i| i as f64).collect();
    let b: Vec<Option<f64>> = (0..N)
        .map(|i| {
            let v = ((i as f64) * 0.618_033_988_75).fract() - 0.5;
            (i % 7 != 0 && !(3000..4000).contains(&i)).then_some(v)
        })
        .collect();
    let k: Vec<i64> = (0..N).map(|i| (i / GROUP) as i64).collect();
    let f: Vec<f32> = (0..N)
        .map(|i| if i / GROUP == 5 { 0.1f32 } else { 0.0 })
        .collect();
    let n: Vec<f64> = (0..N)
        .map(|i| {
            if i / GROUP == 2 && i % 3 == 0 {
                f64::NAN
            } else {
                (i / GROUP) as f64
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Float64, false),
        Field::new("b", DataType::Float64, true),
        Field::new("k", DataType::Int64, false),
        Field::new("f", DataType::Float32, false),
        Field::new("n", DataType::Float64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(a)),
        Arc::new(Float64Array::from(b)),
        Arc::new(Int64Array::from(k)),
        Arc::new(Float32Array::from(f)),
        Arc::new(Float64Array::from(n)),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

/// A fresh file per call (tests run in parallel).
fn parquet_file() -> PathBuf {
    parquet_common::fresh_parquet("prune", &batch(), GROUP)
}

/// The file table and the in-memory table, both with chunks of `chunk` rows.
fn tables(chunk: usize) -> (Table, Table) {
    let file = Table::open(parquet_file()).unwrap().with_chunk_rows(chunk);
    let mem = Table::from_batches(vec![batch()])
        .unwrap()
        .with_chunk_rows(chunk);
    (file, mem)
}

/// Every reduction kind and an element-wise column over `t.filter(pred(t))`, as bits.
fn results(t: &Table, pred: &dyn Fn(&Table) -> Expr) -> Vec<String> {
    let f = t.filter(&pred(t)).unwrap();
    let b = f.col("b").unwrap();
    let a = f.col("a").unwrap();
    let exprs = vec![
        b.sum(),
        b.mean(),
        b.min(),
        b.max(),
        f.count(&b),
        (&a * &b).sum(),
        a.max(),
        f.col("k").unwrap().prod(),
        b.std(),
    ];
    let mut out: Vec<String> = f
        .compute_many(&exprs)
        .unwrap()
        .iter()
        .map(|c| format!("{:?}", c.to_arrow()))
        .collect();
    out.push(format!("{:?}", f.compute(&(&a - &b)).unwrap().to_arrow()));
    out
}

fn check(chunk: usize, pred: &dyn Fn(&Table) -> Expr, skipped: usize, what: &str) {
    let (file, mem) = tables(chunk);
    assert_eq!(
        results(&file, pred),
        results(&mem, pred),
        "{what} (chunk {chunk})"
    );
    assert_eq!(mem.skipped_chunks(), 0);
    // Three passes over the rows: the reductions, the second level of `std`, the row pass.
    assert_eq!(file.skipped_chunks(), 3 * skipped, "{what} (chunk {chunk})");
}

#[test]
fn a_sorted_column_skips_the_groups_below_the_bound_with_the_same_bits() {
    // a > 7500: groups 0..=6 (a <= 6999) are pruned; 7 is kept.
    let pred = |t: &Table| t.col("a").unwrap().gt(7500.0);
    check(GROUP, &pred, 7, "a > 7500");
    // Chunks of 500: 14 chunks lie in pruned groups.
    check(500, &pred, 14, "a > 7500");
    // Chunks of 1500 straddle groups: chunks 0..=3 (rows 0..6000) lie in pruned groups only;
    // chunk 4 (rows 6000..7500) overlaps group 7 (rows 7000..), which is kept.
    check(1500, &pred, 4, "a > 7500");
    // The bound on the left, and with a computed bound: mean(a) = 4999.5.
    check(
        GROUP,
        &|t: &Table| Expr::from(2500.0).gt(t.col("a").unwrap()),
        7,
        "2500 > a",
    );
}

#[test]
fn conjunctions_disjunctions_and_integer_equality() {
    let k = |t: &Table| t.col("k").unwrap();
    check(
        GROUP,
        &|t: &Table| k(t).eq_(3i64) | k(t).eq_(8i64),
        8,
        "k == 3 | k == 8",
    );
    check(
        GROUP,
        &|t: &Table| t.col("a").unwrap().ge(2000.0) & k(t).ne_(4i64) & k(t).lt(6i64),
        7,
        "a >= 2000 & k != 4 & k < 6",
    );
}

#[test]
fn an_all_null_group_is_skipped_and_nan_groups_are_not_misjudged() {
    // b > -1 is true wherever b is present: only group 3 (all null) can be skipped.
    check(
        GROUP,
        &|t: &Table| t.col("b").unwrap().gt(-1.0),
        1,
        "b > -1",
    );
    // n holds NaN in group 2 (excluded from its statistics): n == 2 keeps group 2 only.
    check(
        GROUP,
        &|t: &Table| t.col("n").unwrap().eq_(2.0),
        9,
        "n == 2",
    );
    // n != 2 cannot be refuted on floats (NaN != 2 is true).
    check(
        GROUP,
        &|t: &Table| t.col("n").unwrap().ne_(2.0),
        0,
        "n != 2",
    );
}

#[test]
fn float32_bounds_compare_in_float32() {
    // float32(0.1) >= 0.1 is true in float32 (the literal is rounded first) though not in
    // float64: group 5 must be read.
    let (file, mem) = tables(GROUP);
    for t in [&file, &mem] {
        let f = t.filter(&t.col("f").unwrap().ge(0.1)).unwrap();
        let c = f.compute(&f.count(&f.col("a").unwrap())).unwrap();
        assert_eq!(c.scalar_i64(), Some(GROUP as i64));
    }
    assert_eq!(file.skipped_chunks(), 9);
}

#[test]
fn unsupported_predicates_skip_nothing() {
    check(
        GROUP,
        &|t: &Table| t.col("a").unwrap().sin().gt(0.0),
        0,
        "sin(a) > 0",
    );
}

#[test]
fn skipped_sums_match_plain_rust() {
    let (file, _) = tables(GROUP);
    let f = file.filter(&file.col("a").unwrap().ge(8000.0)).unwrap();
    let got = f.compute(&f.col("a").unwrap().sum()).unwrap().scalar_f64();
    let want: f64 = (8000..N).map(|i| i as f64).sum();
    assert_eq!(got, Some(want));
    assert_eq!(file.skipped_chunks(), 8);
}
