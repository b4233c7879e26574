//! Shared helper of the table tests: record batches written to Parquet files in row groups of
//! a given size (so chunking and row-group statistics can be tested).
#![allow(dead_code)]
use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Write `b` to `path` in row groups of `group` rows.
pub fn write_parquet(path: &Path, b: &RecordBatch, group: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        b.schema(),
        Some(props),
    )
    .unwrap();
    w.write(b).unwrap();
    w.close().unwrap();
}

/// `b` in a fresh Parquet file per call (tests run in parallel), under a temporary directory
/// named for `tag` and the process, in row groups of `group` rows.
pub fn fresh_parquet(tag: &str, b: &RecordBatch, group: usize) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("fusebox_{tag}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("t{}.parquet", NEXT.fetch_add(1, Ordering::Relaxed)));
    write_parquet(&path, b, group);
    path
}
