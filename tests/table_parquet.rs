//! A Parquet table's results are the bits of the same rows in memory at any chunk size (what
//! a change to how the file is read must keep, issue 14), and an empty file is a typed error.
mod parquet_common;

use arrow_array::{ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use fusebox::table::Table;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `a` and `b` (every 9th `b` null) of `n` rows, scaled by `k`.
fn batch(n: usize, k: f64) -> RecordBatch {
    let a: Vec<f64> = (0..n).map(|i| k * (i as f64 * 0.013).cos()).collect();
    let b: Vec<Option<f64>> = (0..n)
        .map(|i| (!i.is_multiple_of(9)).then_some(k * (i as f64 * 0.7).sin()))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Float64, false),
        Field::new("b", DataType::Float64, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(a)),
        Arc::new(Float64Array::from(b)),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn write(path: &Path, b: &RecordBatch) {
    parquet_common::write_parquet(path, b, 3000);
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fusebox_parquet_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// sum(a*b), mean(b), max(a - b) and the element-wise a*b + 1, as bits.
fn results(t: &Table) -> Vec<String> {
    let a = t.col("a").unwrap();
    let b = t.col("b").unwrap();
    let exprs = [(&a * &b).sum(), b.mean(), (&a - &b).max(), &a * &b + 1.0];
    t.compute_many(&exprs)
        .unwrap()
        .iter()
        .map(|c| format!("{:?}", c.to_arrow()))
        .collect()
}

#[test]
fn a_parquet_file_gives_the_bits_of_memory_across_chunks() {
    let d = dir("bits");
    let path = d.join("t.parquet");
    let b = batch(10_000, 1.0);
    write(&path, &b);
    for chunk in [1000, 4096, 1 << 20] {
        let file = Table::open(&path).unwrap().with_chunk_rows(chunk);
        let mem = Table::from_batches(vec![b.clone()])
            .unwrap()
            .with_chunk_rows(chunk);
        assert_eq!(results(&file), results(&mem), "chunk {chunk}");
    }
}

#[test]
fn an_empty_parquet_file_is_a_table_error() {
    let d = dir("empty");
    let path = d.join("empty.parquet");
    std::fs::write(&path, b"").unwrap();
    match Table::open(&path) {
        Err(fusebox::Error::Table { .. }) => {}
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("an empty file opened"),
    }
}
