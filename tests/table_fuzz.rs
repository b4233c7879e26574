//! Fuzzing the table readers (Parquet, Arrow IPC file and stream, CSV, `.npz`): arbitrary
//! bytes, and the fixtures of tests/data/tables/ corrupted (bytes flipped, truncated, spliced),
//! opened by extension and fully read (every computable column summed, the table displayed).
//! Property: a typed error or a result, never a panic (readers that panic on malformed input
//! are caught inside `fusebox::table` and reported as `Error::Table`).
//!
//! Cases: `FUSEBOX_FUZZ_CASES` per format (default [`DEFAULT_CASES`]), or
//! `FUSEBOX_FUZZ_SECONDS=600` to run each format for that long (see README's Tables section
//! for the recorded long runs).
//!
//! Recorded run (2026-12-03, dev profile, shared 2-core machine under load):
//! `FUSEBOX_FUZZ_SECONDS=60`, the five properties at once, no failure: Parquet 8,000 cases /
//! 68 s, IPC file 11,000 / 63 s, IPC stream 11,000 / 63 s, CSV 14,000 / 60 s, `.npz` 22,000 /
//! 61 s. The readers did panic on some corrupted inputs (arrow-ipc's and parquet's own asserts
//! and unwraps); `fusebox::table` caught each and returned `Error::Table`.
//!
//! The 10 minutes per format (2026-12-03, dev profile, the five at once with
//! `--test-threads=5` at nice 15 on the shared 2-core machine under load 12-15):
//! `FUSEBOX_FUZZ_SECONDS=600`, no failure: Parquet 30,000 cases / 602 s, IPC file 25,000 /
//! 611 s, IPC stream 21,000 / 607 s, CSV 49,000 / 603 s, `.npz` 102,000 / 604 s.
use fusebox::table::Table;
use fusebox::Error;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DEFAULT_CASES: u32 = 200;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tables")
        .join(name)
}

/// Open and read everything; Ok for a readable table, Err(typed) otherwise.
fn read_all(path: &std::path::Path) -> Result<(), Error> {
    let t = Table::open(path)?.with_chunk_rows(97);
    let exprs: Vec<_> = t
        .column_names()
        .iter()
        .filter_map(|c| t.col(c).ok())
        .map(|e| e.sum())
        .collect();
    t.compute_many(&exprs)?;
    let _ = t.to_string();
    t.to_record_batch()?;
    Ok(())
}

/// Run `strategy` for the configured cases or seconds.
fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let seconds: Option<u64> = std::env::var("FUSEBOX_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let cases = std::env::var("FUSEBOX_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let start = Instant::now();
    let mut total = 0u64;
    loop {
        let mut runner = TestRunner::new(Config {
            cases: if seconds.is_some() { 1000 } else { cases },
            failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
            ..Config::default()
        });
        runner.run(&strategy, &test).unwrap();
        total += runner.config().cases as u64;
        match seconds {
            Some(s) if start.elapsed() < Duration::from_secs(s) => continue,
            _ => break,
        }
    }
    if seconds.is_some() {
        eprintln!(
            "{name}: {total} cases in {:.0} s",
            start.elapsed().as_secs_f64()
        );
    }
}

/// The fixture `name` with `edits` applied: (position fraction, byte) overwrites, then cut to
/// `keep` of its length.
fn corrupt(bytes: &[u8], edits: &[(f64, u8)], keep: f64) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for (at, v) in edits {
        let i = ((b.len() as f64) * at) as usize;
        if i < b.len() {
            b[i] = *v;
        }
    }
    let n = ((b.len() as f64) * keep).ceil() as usize;
    b.truncate(n.max(1));
    b
}

fn fuzz_format(fixture: &str) {
    let ext = fixture.rsplit('.').next().unwrap().to_string();
    let bytes = std::fs::read(data(fixture)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("case.{ext}"));
    let strategy = (
        prop::collection::vec((0.0f64..1.0, any::<u8>()), 0..8),
        prop_oneof![Just(1.0f64), 0.0f64..1.0],
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    );
    run(fixture, strategy, |(edits, keep, junk, arbitrary)| {
        let b = if arbitrary {
            junk
        } else {
            corrupt(&bytes, &edits, keep)
        };
        std::fs::write(&path, &b).unwrap();
        match std::panic::catch_unwind(|| read_all(&path)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(
                Error::Table { .. }
                | Error::UnsupportedDtype { .. }
                | Error::Io { .. }
                | Error::ShapeMismatch { .. }
                | Error::Argument { .. },
            )) => Ok(()),
            Ok(Err(other)) => Err(TestCaseError::fail(format!("untyped error kind: {other}"))),
            Err(_) => Err(TestCaseError::fail("panicked")),
        }
    });
}

#[test]
fn fuzz_parquet() {
    fuzz_format("nulls.parquet");
}

#[test]
fn fuzz_ipc_file() {
    fuzz_format("nulls.arrow");
}

#[test]
fn fuzz_ipc_stream() {
    fuzz_format("nulls.arrows");
}

#[test]
fn fuzz_csv() {
    fuzz_format("nulls.csv");
}

#[test]
fn fuzz_npz() {
    fuzz_format("plain_compressed.npz");
}
