"""fusebox.Data and compute: Blaze's interactive expressions over arrays and DataFrames."""

import numpy as np
import pandas as pd
import pytest

import fusebox
from fusebox import Data, compute, exp, sqrt


def test_seed_session_dataframe():
    df = pd.DataFrame({"a": [1, 2, 3], "b": list("abc")})
    data = Data(df)
    assert repr(data) == repr(df)
    s = data.a.sum()
    assert isinstance(s, fusebox.Expr)
    assert repr(s) == "6"
    r = compute(s)
    assert r == 6 and type(r) is int
    assert compute(data.a * 2 + 1).tolist() == [3, 5, 7]
    with pytest.raises(TypeError):
        compute(data.b + 1)  # a string column


def test_seed_session_gaussian_fused_and_unfused():
    x = Data(np.linspace(-5, 5, 10001))
    mu, sigma = -1.33, 1.25
    expr = 1 / (sigma * sqrt(2 * np.pi)) * exp(-(x - mu) ** 2 / (2 * sigma**2))
    t = np.linspace(-5, 5, 10001)
    want = 1 / (sigma * np.sqrt(2 * np.pi)) * np.exp(-((t - mu) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(compute(expr), want, rtol=1e-14)
    np.testing.assert_allclose(compute(expr, optimize=False), want, rtol=1e-14)
    fused = expr.explain(json=True)
    unfused = expr.explain(json=True, optimize=False)
    assert len(fused["kernels"]) == 1 and len(unfused["kernels"]) > 1


def test_expression_printing_round_trips_precedence():
    a = Data(np.arange(1.0, 6.0))
    t = np.arange(1.0, 6.0)
    cases = [
        (-(a - 1) ** 2, -((t - 1) ** 2)),
        ((-1.5) ** a, (-1.5) ** t),
        (2 - (a - 1), 2 - (t - 1)),
        (a / (a * 2), t / (t * 2)),
        ((a > 2) & (a < 5), (t > 2) & (t < 5)),
        (fusebox.where(a > 2, a, -a), np.where(t > 2, t, -t)),
        (a.astype("float32") * 2.5, t.astype("float32") * 2.5),
        ((a * a).mean(), np.mean(t * t)),
        (abs(a - 3), np.abs(t - 3)),
    ]
    for e, want in cases:
        got = compute(e)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=e.source)
        assert np.asarray(got).dtype == np.asarray(want).dtype, e.source


def test_nullable_pandas_columns_follow_pandas(pa):
    # pandas' nullable dtypes (Int64, Float64, boolean) as the oracle: NA skipped by
    # reductions, propagated element-wise.
    t = _arrow(pa, n=2000, seed=3)
    df = _pandas(t)
    assert not isinstance(df.a.dtype, np.dtype)
    data = Data(df)
    assert data.columns == ["a", "b", "s"]
    _check_table(data, df)
    flags = pd.DataFrame({"f": pd.array([True, None, False, True], dtype="boolean"),
                          "x": pd.array([1.5, 2.0, None, 4.0], dtype="Float64")})
    d = Data(flags)
    assert compute(d.x.sum()) == flags.x.sum()
    assert compute(d.f.sum()) == flags.f.sum()


@pytest.fixture
def pa():
    return pytest.importorskip("pyarrow")


def _frame(n=1000, seed=0):
    r = np.random.default_rng(seed)
    a = r.standard_normal(n)
    b = r.integers(-50, 50, n)
    a_null = r.random(n) < 0.1
    b_null = r.random(n) < 0.2
    return a, a_null, b, b_null


def _arrow(pa, n=1000, seed=0):
    a, a_null, b, b_null = _frame(n, seed)
    return pa.table({
        "a": pa.array(a, mask=a_null),
        "b": pa.array(b, mask=b_null),
        "s": pa.array([f"r{i}" for i in range(n)]),
    })


def _pandas(t):
    # pandas' nullable dtypes: the oracle for null semantics (sums skip nulls, NA propagates).
    return t.to_pandas(types_mapper={
        __import__("pyarrow").float64(): pd.Float64Dtype(),
        __import__("pyarrow").int64(): pd.Int64Dtype(),
    }.get)


def _check_table(data, df):
    s = data.a.sum()
    assert isinstance(s, fusebox.Expr)
    np.testing.assert_allclose(compute(s), df.a.sum(), rtol=1e-12)
    assert compute(data.b.sum()) == df.b.sum()
    np.testing.assert_allclose(compute(data.a.mean()), df.a.mean(), rtol=1e-12)
    np.testing.assert_allclose(compute(data.a.max()), df.a.max())
    np.testing.assert_allclose(compute((data.a * data.b).sum()), (df.a * df.b).sum(), rtol=1e-12)
    # Element-wise: null where an input is null.
    got = compute(data.a * 2 + data.b)
    want = df.a * 2 + df.b
    assert len(got) == len(want)
    got_null = np.asarray(got.is_null()) if hasattr(got, "is_null") else np.ma.getmaskarray(got)
    np.testing.assert_array_equal(got_null, want.isna().to_numpy())
    present = ~want.isna().to_numpy()
    np.testing.assert_allclose(
        np.asarray(got.fill_null(0) if hasattr(got, "fill_null") else got.filled(0))[present],
        want.to_numpy(dtype=float, na_value=0)[present], rtol=1e-12)
    # Unfused (Blaze's optimize=False) gives the same answers.
    np.testing.assert_allclose(compute(data.a.sum(), optimize=False), df.a.sum(), rtol=1e-12)
    np.testing.assert_allclose(
        compute((data.a - data.a.mean()).sum(), optimize=False),
        (df.a - df.a.mean()).sum(), rtol=1e-9, atol=1e-9)


def test_data_over_a_pyarrow_table_with_nulls(pa):
    t = _arrow(pa)
    data = Data(t)
    text = repr(data)
    assert "a: float64" in text and "b: int64" in text and "s: string" in text
    assert "null" in text and "r0" in text  # the first rows are shown
    assert data.columns == ["a", "b", "s"] and len(data) == 1000
    _check_table(data, _pandas(t))
    with pytest.raises(TypeError, match="not numeric"):
        data.s + 1
    # A null scalar is None (the max of no values).
    empty = Data(pa.table({"x": pa.array([None, None], type=pa.float64())}))
    assert compute(empty.x.max()) is None
    assert compute(empty.x.sum()) == 0.0
    # No nulls: an ndarray.
    full = Data(pa.table({"x": np.arange(5.0)}))
    r = compute(full.x * 2)
    assert isinstance(r, np.ndarray) and r.tolist() == [0, 2, 4, 6, 8]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "arrow"])
def test_data_over_files(pa, tmp_path, fmt):
    t = _arrow(pa, n=3000, seed=1)
    path = tmp_path / f"t.{fmt}"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(t, path, row_group_size=700)
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(t, path)
    else:
        import pyarrow.feather as feather

        feather.write_feather(t, path, compression="uncompressed")
    data = Data(str(path))
    assert "a: float64" in repr(data)
    _check_table(data, _pandas(t))
    assert compute(Data(path).b.sum()) == _pandas(t).b.sum()  # a PathLike too


def test_streamed_file_larger_than_a_chunk(pa, tmp_path):
    """More rows than one streaming chunk (2**20): reductions combine per-chunk partials."""
    import pyarrow.parquet as pq

    n = 2_500_000
    x = np.linspace(-1.0, 1.0, n)
    pq.write_table(pa.table({"x": x}), tmp_path / "big.parquet", row_group_size=300_000)
    data = Data(tmp_path / "big.parquet")
    np.testing.assert_allclose(compute((data.x * data.x).sum()), np.sum(x * x), rtol=1e-12)
    assert compute((data.x > 0.5).sum()) == int(np.sum(x > 0.5))


def test_unfused_runs_more_kernels(pa):
    data = Data(pa.table({"x": np.linspace(0, 1, 5000)}))
    e = (data.x * 2 + 1).sum() / data.x.max()
    counts = {}
    for opt in (True, False):
        before = fusebox.stats(optimize=opt)["kernels_launched"]
        r = compute(e, optimize=opt)
        counts[opt] = fusebox.stats(optimize=opt)["kernels_launched"] - before
        x = np.linspace(0, 1, 5000)
        np.testing.assert_allclose(r, (x * 2 + 1).sum() / x.max(), rtol=1e-12)
    assert counts[False] > counts[True] >= 1, counts


def test_one_table_per_expression(pa):
    d1 = Data(pa.table({"x": [1.0, 2.0]}))
    d2 = Data(pa.table({"x": [3.0, 4.0]}))
    with pytest.raises(TypeError, match="two different tables"):
        d1.x + d2.x
    d3 = Data(pa.table({"y": [3.0, 4.0]}))
    with pytest.raises(TypeError, match="two different tables"):
        compute(d1.x + d3.y)
    with pytest.raises(TypeError, match="mixing"):
        compute(d1.x + Data(np.ones(2)))
    with pytest.raises(OSError):
        Data("no/such/file.parquet")


def test_seed_session_script_runs():
    """examples/seed_session.py, the seed's whole session as a script, runs (at a small n)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "seed_session.py"
    r = subprocess.run([sys.executable, str(script), "20000"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "compute(data.a.sum()) -> 6 int" in r.stdout
    assert "fused is" in r.stdout and "faster than unfused" in r.stdout


def test_explain_over_a_table_shows_the_per_chunk_plan(pa, tmp_path):
    """fusebox.explain(expr) on a table expression: the passes the streaming executor runs,
    the kernels per chunk, the columns read; the evaluation then runs what it showed."""
    import pyarrow.parquet as pq

    n = 5000
    x = np.linspace(-1.0, 1.0, n)
    y = np.arange(n, dtype=np.float64)
    pq.write_table(pa.table({"a": x, "b": y, "c": -y}), tmp_path / "t.parquet", row_group_size=1000)
    data = Data(tmp_path / "t.parquet")
    e = data.a.sum()
    text = fusebox.explain(e)
    assert text.splitlines()[:3] == e.explain().splitlines()[:3]
    assert "pass 1 of 2: reductions" in text and "reads columns: a" in text, text
    d = fusebox.explain(fusebox.where(data.a > 0, data.b, 0.0).sum(), json=True)
    first = d["passes"][0]
    assert d["rows"] == n and first["kind"] == "reductions"
    assert first["columns"] == ["a", "b"]  # c is never read
    kernel = first["per_chunk"]["kernels"]
    assert len(kernel) == 1 and kernel[0]["shape"] == [n]
    assert kernel[0]["bytes_read"] == 16 * n  # a and b once each, fused
    np.testing.assert_allclose(compute(e), x.sum(), rtol=0, atol=1e-9)  # the sum cancels to ~1e-13
    # A derived (element-wise) column: one pass over the rows.
    rows = data.a * 2 + data.b
    d = rows.explain(json=True)
    assert [p["kind"] for p in d["passes"]] == ["rows"]
    assert d["passes"][0]["per_chunk"]["kernels"][0]["bytes_written"] == 8 * n
    # Over arrays, explain is as before.
    arr = Data(x)
    assert len(fusebox.explain(arr * 2 + 1, json=True)["kernels"]) == 1
    with pytest.raises(TypeError):
        fusebox.explain(3)
