"""pandas: engine="fusebox" in pd.eval, DataFrame.eval and DataFrame.query, against pandas'
numexpr engine on frames with float, int, bool and nullable columns."""

import warnings

import numpy as np
import pandas as pd
import pytest

import fusebox.pandas

pytest.importorskip("numexpr")


@pytest.fixture(scope="module", autouse=True)
def engine():
    fusebox.pandas.register()
    yield
    fusebox.pandas.unregister()


@pytest.fixture(scope="module")
def df():
    rng = np.random.default_rng(1)
    n = 2000
    return pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "g": rng.uniform(1, 2, size=n),
            "i": rng.integers(-50, 50, size=n),
            "j": rng.integers(1, 9, size=n).astype(np.int32),
            "b": rng.random(n) > 0.5,
            "ni": pd.array([None if k % 7 == 0 else k for k in range(n)], dtype="Int64"),
            "nf": pd.array([None if k % 5 == 0 else k / 3 for k in range(n)], dtype="Float64"),
            "nb": pd.array([None if k % 3 == 0 else k % 2 == 0 for k in range(n)], dtype="boolean"),
        }
    )


EVAL = [
    "f + g",
    "2 * f - 3 * g * g + f / g",
    "i * 2 + j",
    "i / j",
    "i // j + i % j",
    "f ** 2 + g ** 0.5",
    "(f > 0) & b",
    "~b | (i > 10)",
    "f > g",
    "i == 3",
    "sin(f) + exp(-g) * sqrt(g)",
    "abs(f) + arctan2(f, g)",
    "f * (f > 0) + g * (f <= 0)",
    "-f + +g",
    "i + f + j + b",
    # nullable columns: pandas' own evaluation for both engines
    "ni + 1",
    "ni * i",
    "nf / 2 + f",
    "nb & b",
]
QUERY = ["f > 0", "f > 0 and i < 10", "b", "not b and g < 1.5", "i == j", "ni > 10", "(f + g) * 2 > 3"]


def numexpr_engine(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "switched to python" for nullables
        return call("numexpr")


@pytest.mark.parametrize("ex", EVAL)
def test_dataframe_eval_matches_numexpr_engine(df, ex):
    got = df.eval(ex, engine="fusebox")
    want = numexpr_engine(lambda e: df.eval(ex, engine=e))
    pd.testing.assert_series_equal(got, want, check_exact=False, rtol=1e-13)


@pytest.mark.parametrize("ex", QUERY)
def test_dataframe_query_matches_numexpr_engine(df, ex):
    got = df.query(ex, engine="fusebox")
    want = numexpr_engine(lambda e: df.query(ex, engine=e))
    pd.testing.assert_frame_equal(got, want)


def test_pd_eval_with_locals_and_assignment(df):
    k = 3.5
    got = pd.eval("df.f * k + df.g", engine="fusebox")
    want = pd.eval("df.f * k + df.g", engine="numexpr")
    pd.testing.assert_series_equal(got, want)
    out = df.eval("h = f * @k", engine="fusebox")
    np.testing.assert_array_equal(out["h"].to_numpy(), df["f"].to_numpy() * k)
    # two frames aligned by pandas before the engine runs
    other = df.iloc[::-1]
    got = pd.eval("df.f + other.g", engine="fusebox")
    want = pd.eval("df.f + other.g", engine="numexpr")
    pd.testing.assert_series_equal(got, want)


def test_fusebox_really_runs(df):
    before = fusebox.stats()["kernels_launched"]
    df.eval("f * 3 + g * 7 - 1", engine="fusebox")
    after = fusebox.stats()["kernels_launched"]
    assert after > before


def test_registration_is_one_table_entry():
    from pandas.core.computation import engines

    assert "fusebox" in engines.ENGINES
    fusebox.pandas.unregister()
    assert "fusebox" not in engines.ENGINES
    with pytest.raises((KeyError, ValueError)):  # pandas 3 raises KeyError, 2.x ValueError
        pd.eval("1 + 1", engine="fusebox")
    fusebox.pandas.register()
    assert fusebox.pandas.registered()


def test_clear_error_without_the_engine_table(monkeypatch):
    from pandas.core.computation import engines

    monkeypatch.delattr(engines, "ENGINES")
    with pytest.raises(ImportError, match="engine table"):
        fusebox.pandas.register()
