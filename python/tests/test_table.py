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


def test_pending_sources_say_so():
    with pytest.raises(NotImplementedError, match="tables issue"):
        Data("data.parquet")
    df = pd.DataFrame({"n": pd.array([1, None], dtype="Int64")})
    with pytest.raises(TypeError, match="nullable"):
        compute(Data(df).n + 1)
