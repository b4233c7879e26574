//! Tables against pandas: fixtures written by pyarrow/pandas/NumPy in tests/data/tables/
//! (`make_fixtures.py`), with pandas' results in `expected.json`. Nulls, filters, derived
//! columns, writing, the seed's `Data(df)`, and the same bits for any batch layout.
use fusebox::table::{CsvOptions, Table};
use fusebox::{Error, Expr, Options, Scalar, Session};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tables")
        .join(name)
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(data("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn exp_f(key: &str) -> Option<f64> {
    expected()[key].as_f64()
}

fn exp_i(key: &str) -> Option<i64> {
    expected()[key].as_i64()
}

/// Within `rel` relative error (float sums: pandas sums pairwise, fusebox in chunks).
fn close(got: Option<f64>, want: Option<f64>, rel: f64, what: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= rel * w.abs().max(1e-300),
            "{what}: got {g:e}, pandas {w:e}"
        ),
        (g, w) => assert_eq!(g, w, "{what}"),
    }
}

const FORMATS: [&str; 4] = ["nulls.parquet", "nulls.arrow", "nulls.arrows", "nulls.csv"];

#[test]
fn seed_data_df_shows_rows_and_sums_a_to_6() {
    let t = Table::open(data("seed.parquet")).unwrap();
    let shown = t.to_string();
    assert!(shown.contains("a: int64"), "{shown}");
    assert!(shown.contains("b: string (not computed)"), "{shown}");
    // The rows, pandas-style: index, a, b.
    assert!(shown.contains("0  1  x"), "{shown}");
    assert!(shown.contains("2  3  z"), "{shown}");
    let sum = t.compute(&t.col("a").unwrap().sum()).unwrap();
    assert_eq!(sum.scalar_i64(), Some(6));
    // The string column is shown and passed through, never computed.
    match t.col("b") {
        Err(Error::UnsupportedDtype { dtype, context }) => {
            assert!(dtype.contains("Utf8"), "{dtype}");
            assert!(context.contains("`b`"), "{context}");
        }
        other => panic!("{:?}", other.map(|e| e.to_string())),
    }
    match t.col("c") {
        Err(Error::UnknownName { name, known }) => {
            assert_eq!(name, "c");
            assert_eq!(known, vec!["a".to_string(), "b".to_string()]);
        }
        other => panic!("{:?}", other.map(|e| e.to_string())),
    }
    let passed = t.select(&["b"]).unwrap().to_record_batch().unwrap();
    assert_eq!(passed.num_rows(), 3);
}

#[test]
fn reductions_skip_nulls_like_pandas_in_every_format() {
    for f in FORMATS {
        let t = Table::open(data(f)).unwrap();
        let (a, b, k, i) = (
            t.col("a").unwrap(),
            t.col("b").unwrap(),
            t.col("k").unwrap(),
            t.col("i").unwrap(),
        );
        let exprs = [
            a.sum(),
            b.sum(),
            k.sum(),
            i.sum(),
            b.mean(),
            k.mean(),
            b.min(),
            b.max(),
            k.min(),
            k.max(),
            t.count(&b),
            t.count(&k),
            b.var(),
            b.reduce(fusebox::Reduction::Std { ddof: 1 }, None, false),
            (&a * &b).sum(),
            t.fill_null(&b, 0.0).sum(),
        ];
        let r = t.compute_many(&exprs).unwrap();
        close(r[0].scalar_f64(), exp_f("sum_a"), 1e-12, f);
        close(r[1].scalar_f64(), exp_f("sum_b"), 1e-12, f);
        assert_eq!(r[2].scalar_i64(), exp_i("sum_k"), "{f}");
        assert_eq!(r[3].scalar_i64(), exp_i("sum_i"), "{f}");
        close(r[4].scalar_f64(), exp_f("mean_b"), 1e-12, f);
        close(r[5].scalar_f64(), exp_f("mean_k"), 1e-12, f);
        assert_eq!(r[6].scalar_f64(), exp_f("min_b"), "{f}");
        assert_eq!(r[7].scalar_f64(), exp_f("max_b"), "{f}");
        assert_eq!(r[8].scalar_i64(), exp_i("min_k"), "{f}");
        assert_eq!(r[9].scalar_i64(), exp_i("max_k"), "{f}");
        assert_eq!(r[10].scalar_i64(), exp_i("count_b"), "{f}");
        assert_eq!(r[11].scalar_i64(), exp_i("count_k"), "{f}");
        close(r[12].scalar_f64(), exp_f("var_b"), 1e-12, f);
        close(r[13].scalar_f64(), exp_f("std_b_ddof1"), 1e-12, f);
        close(r[14].scalar_f64(), exp_f("sum_ab"), 1e-12, f);
        close(r[15].scalar_f64(), exp_f("sum_fill_b_0"), 1e-12, f);
    }
}

#[test]
fn element_wise_results_are_null_where_an_input_is() {
    for f in FORMATS {
        let t = Table::open(data(f)).unwrap();
        let (a, b, k) = (
            t.col("a").unwrap(),
            t.col("b").unwrap(),
            t.col("k").unwrap(),
        );
        let r = t.compute_many(&[&a * &b, &b + &k]).unwrap();
        assert_eq!(r[0].len(), 1000);
        assert_eq!(
            r[0].null_count() as i64,
            exp_i("null_count_a_times_b").unwrap()
        );
        assert_eq!(
            r[1].null_count() as i64,
            exp_i("null_count_b_plus_k").unwrap()
        );
        let want = expected();
        let vals = r[0].values().clone().into_f64().unwrap();
        for (j, w) in want["first_rows_a_times_b"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            match w.as_f64() {
                None => assert!(r[0].is_null(j), "{f} row {j}"),
                Some(w) => assert_eq!(vals[[j]], w, "{f} row {j}"),
            }
        }
        // is_null / is_valid are never null themselves.
        let isnull = t.compute(&t.is_null(&b)).unwrap();
        assert_eq!(isnull.null_count(), 0);
        let nulls = isnull.values().clone().into_bool().unwrap();
        assert_eq!(
            nulls.iter().filter(|x| **x).count() as i64,
            1000 - exp_i("count_b").unwrap()
        );
        // The mean of none is null; the sum of none is 0.
        let none = t.filter(&a.gt(1e9)).unwrap();
        let r = none
            .compute_many(&[b.sum(), b.mean(), b.min(), t.count(&b)])
            .unwrap();
        assert_eq!(r[0].scalar_f64(), Some(0.0));
        assert!(r[1].is_null(0) && r[2].is_null(0));
        assert_eq!(r[3].scalar_i64(), Some(0));
    }
}

#[test]
fn filters_fuse_into_reductions_and_compact_rows() {
    for f in FORMATS {
        let t = Table::open(data(f)).unwrap();
        let (a, b, k) = (
            t.col("a").unwrap(),
            t.col("b").unwrap(),
            t.col("k").unwrap(),
        );
        let pos = t.filter(&a.gt(0.0)).unwrap();
        let r = pos
            .compute_many(&[b.mean(), b.sum(), pos.count(&a)])
            .unwrap();
        close(r[0].scalar_f64(), exp_f("mean_b_where_a_pos"), 1e-12, f);
        close(r[1].scalar_f64(), exp_f("sum_b_where_a_pos"), 1e-12, f);
        assert_eq!(r[2].scalar_i64(), exp_i("count_where_a_pos"));
        // A null predicate drops the row (SQL's WHERE).
        let big = t.filter(&b.gt(5.0)).unwrap();
        let m = big.compute(&k.max()).unwrap();
        assert_eq!(m.scalar_i64(), exp_i("max_k_where_b_gt_5"), "{f}");
        // Element-wise over a filtered table: the kept rows only.
        let rows = pos.compute(&(&a * 2.0)).unwrap();
        assert_eq!(rows.len() as i64, exp_i("count_where_a_pos").unwrap());
        assert!(rows
            .values()
            .clone()
            .into_f64()
            .unwrap()
            .iter()
            .all(|v| *v > 0.0));
        // Reductions nested in row expressions take one pass per level.
        let dev = (&b - b.mean()).pow(2).sum();
        close(
            t.compute(&dev).unwrap().scalar_f64(),
            exp_f("sum_b_minus_mean_b_sq"),
            1e-12,
            f,
        );
    }
}

#[test]
fn the_same_bits_for_any_batch_layout_and_thread_count() {
    // Parquet row groups of 300, IPC batches of 256 and 333, one CSV batch per 1024 rows, and
    // the rows in memory: one chunk size, so the same bits.
    let sums = |t: &Table| {
        let b = t.col("b").unwrap();
        let a = t.col("a").unwrap();
        let r = t
            .compute_many(&[b.sum(), (&a * &b).sum(), b.mean()])
            .unwrap();
        r.iter()
            .map(|c| c.scalar_f64().unwrap().to_bits())
            .collect::<Vec<_>>()
    };
    for chunk in [64, 100, 1 << 20] {
        let reference = sums(
            &Table::open(data("nulls.parquet"))
                .unwrap()
                .with_chunk_rows(chunk),
        );
        for f in FORMATS {
            let t = Table::open(data(f)).unwrap().with_chunk_rows(chunk);
            assert_eq!(sums(&t), reference, "{f}, chunks of {chunk}");
            for threads in [1, 2] {
                let s = Session::with_options(Options::default().with_threads(threads));
                let t = t.clone().with_session(&s);
                assert_eq!(sums(&t), reference, "{f}, {threads} threads");
            }
        }
        let mem = Table::open(data("nulls.parquet"))
            .unwrap()
            .to_record_batch()
            .unwrap();
        let t = Table::from_batches(vec![mem])
            .unwrap()
            .with_chunk_rows(chunk);
        assert_eq!(sums(&t), reference, "memory, chunks of {chunk}");
    }
}

#[test]
fn derived_columns_select_and_write_round_trip_with_validity() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::open(data("nulls.parquet")).unwrap();
    let (a, b) = (t.col("a").unwrap(), t.col("b").unwrap());
    let derived = t
        .with_column("c", &((-&a * &a).exp() * &b))
        .unwrap()
        .filter(&a.gt(0.0))
        .unwrap()
        .select(&["c", "s", "k"])
        .unwrap();
    let want = derived.to_record_batch().unwrap();
    assert_eq!(want.num_rows() as i64, exp_i("count_where_a_pos").unwrap());
    for ext in ["parquet", "arrow", "arrows", "csv"] {
        let p = dir.path().join(format!("out.{ext}"));
        derived.write(&p).unwrap();
        let back = Table::open(&p).unwrap();
        assert_eq!(back.column_names(), vec!["c", "s", "k"], "{ext}");
        let got = back.to_record_batch().unwrap();
        assert_eq!(got.num_rows(), want.num_rows(), "{ext}");
        for j in [0, 2] {
            assert_eq!(
                got.column(j).null_count(),
                want.column(j).null_count(),
                "{ext} column {j}"
            );
        }
        let c = back.col("c").unwrap();
        let s_back = back.compute(&c.sum()).unwrap().scalar_f64();
        let s_want = derived
            .compute(&derived.col("c").unwrap().sum())
            .unwrap()
            .scalar_f64();
        close(s_back, s_want, 1e-15, ext);
    }
    // .npy: nulls are an error unless filled.
    let col = t.compute(&(&a * &b)).unwrap();
    let npy = dir.path().join("ab.npy");
    assert!(matches!(
        col.write_npy(&npy, None),
        Err(Error::Value { .. })
    ));
    col.write_npy(&npy, Some(Scalar::Float(0.0))).unwrap();
    let back = fusebox::npy::read_npy(&npy).unwrap().into_f64().unwrap();
    assert_eq!(back.len(), 1000);
    assert_eq!(back[[0]], 0.0); // row 0 of b is null
}

#[test]
fn npz_and_ndarray_columns() {
    for f in ["plain.npz", "plain_compressed.npz"] {
        let t = Table::open(data(f)).unwrap();
        let a = t.col("a").unwrap();
        close(
            t.compute(&a.sum()).unwrap().scalar_f64(),
            exp_f("sum_a"),
            1e-12,
            f,
        );
        assert_eq!(
            t.compute(&t.col("i").unwrap().sum()).unwrap().scalar_i64(),
            exp_i("sum_i")
        );
    }
    let x = ndarray::Array1::from(vec![1.0, 2.0, 3.0]);
    let n = ndarray::Array1::from(vec![1i64, 2, 3]);
    let t = Table::from_arrays(&[("x", x.into()), ("n", n.into())]).unwrap();
    let r = t
        .compute(&(t.col("x").unwrap() * t.col("n").unwrap()).sum())
        .unwrap();
    assert_eq!(r.scalar_f64(), Some(14.0));
    let bad = Table::from_arrays(&[
        ("x", ndarray::Array1::from(vec![1.0]).into()),
        ("y", ndarray::Array1::from(vec![1.0, 2.0]).into()),
    ]);
    assert!(matches!(bad, Err(Error::ShapeMismatch { .. })));
}

#[test]
fn csv_with_a_given_schema_and_in_memory() {
    use arrow_schema::{DataType, Field, Schema};
    let schema = Schema::new(vec![
        Field::new("x", DataType::Float32, true),
        Field::new("y", DataType::Int32, true),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.csv");
    std::fs::write(&p, "x,y\n1.5,2\n,3\n2.5,\n").unwrap();
    let t = Table::open_csv(&p, CsvOptions::default().with_schema(schema.into())).unwrap();
    let (x, y) = (t.col("x").unwrap(), t.col("y").unwrap());
    assert_eq!(x.dtype().unwrap(), fusebox::DType::F32);
    let r = t
        .compute_many(&[x.sum(), y.sum(), (&x + &y).sum(), t.count(&x)])
        .unwrap();
    assert_eq!(r[0].scalar_f64(), Some(4.0));
    assert_eq!(r[1].scalar_i64(), Some(5));
    assert_eq!(r[2].scalar_f64(), Some(3.5));
    assert_eq!(r[3].scalar_i64(), Some(2));
    let mem = Table::from_csv_bytes(b"p,q\ntrue,1\nfalse,2\n".to_vec()).unwrap();
    let q = mem.filter(&mem.col("p").unwrap()).unwrap();
    assert_eq!(
        q.compute(&q.col("q").unwrap().sum()).unwrap().scalar_i64(),
        Some(1)
    );
}

#[test]
fn each_error_kind_is_typed() {
    // A missing file.
    assert!(matches!(
        Table::open(data("missing.parquet")),
        Err(Error::Io { .. })
    ));
    // An unknown extension.
    assert!(matches!(
        Table::open(data("make_fixtures.py")),
        Err(Error::Argument { .. })
    ));
    // Truncated files: typed, with the file.
    let dir = tempfile::tempdir().unwrap();
    for f in FORMATS {
        let bytes = std::fs::read(data(f)).unwrap();
        let p = dir.path().join(f);
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let r = Table::open(&p).and_then(|t| {
            let cols: Vec<Expr> = ["a", "b", "k"]
                .iter()
                .map(|c| t.col(c).unwrap().sum())
                .collect();
            t.compute_many(&cols)
        });
        match r {
            Err(Error::Table { path, .. }) => assert_eq!(path.as_deref(), Some(p.as_path())),
            other => panic!("{f}: {:?}", other.map(|_| ())),
        }
    }
    // A filter that is not bool.
    let t = Table::open(data("nulls.parquet")).unwrap();
    assert!(matches!(
        t.filter(&t.col("a").unwrap()),
        Err(Error::DtypeMismatch { .. })
    ));
    // A symbol that is no column.
    let stray = Expr::symbol("zz", fusebox::DType::F64, &[3]);
    match t.compute(&stray.sum()) {
        Err(Error::UnknownName { name, known }) => {
            assert_eq!(name, "zz");
            assert_eq!(known, vec!["a", "b", "k", "i", "s"]);
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn shape_operations_on_columns_are_typed_errors() {
    // A table streams rows in chunks: reversing or slicing a column would mix chunks, so a view
    // in a table expression is an error (never a wrong answer or a panic).
    let x = ndarray::Array1::from(vec![1.0, 2.0, 3.0]);
    let t = Table::from_arrays(&[("x", x.into())]).unwrap();
    let c = t.col("x").unwrap();
    for e in [
        c.slice(&[fusebox::SliceSpec::step(-1)]).sum(),
        (c.expand_dims(0) * 2.0).sum(),
    ] {
        assert!(
            matches!(t.compute(&e), Err(Error::Argument { .. })),
            "{e}: {:?}",
            t.compute(&e)
        );
    }
}
