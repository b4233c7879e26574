"""The numexpr-compatible API around evaluate: name lookup, validate/re_evaluate, compile,
explain, threads and their environment variables, error classes, concurrent calls."""

import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import fusebox


def test_names_come_from_the_callers_frame():
    a = np.arange(3.0)
    b = 2.0

    def inner():
        c = np.ones(3)  # noqa: F841 - not visible: local_dict replaces the frame's locals
        return fusebox.evaluate("a * b + c", {"a": a, "b": b})

    with pytest.raises(KeyError):
        inner()
    np.testing.assert_array_equal(fusebox.evaluate("a * b"), a * 2.0)
    # local_dict replaces the frame's locals (numexpr's rule): `a` is not found there
    with pytest.raises(KeyError):
        fusebox.evaluate("a * b", {"b": 3.0})
    np.testing.assert_array_equal(fusebox.evaluate("a * b", {"a": a, "b": 3.0}), a * 3.0)
    # local then global
    np.testing.assert_array_equal(fusebox.evaluate("a + g", {"a": a}, {"g": 1.0, "a": None}), a + 1)


G = np.arange(4.0)


def test_module_globals_and_constants():
    np.testing.assert_array_equal(fusebox.evaluate("G * 2"), G * 2)
    np.testing.assert_allclose(fusebox.evaluate("G * pi"), G * np.pi)
    e = np.ones(4)  # a bound `e` wins over the constant, as in numexpr
    np.testing.assert_array_equal(fusebox.evaluate("G + e"), G + 1)


def test_validate_then_re_evaluate():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([4.0, 5.0, 6.0])
    c = np.array([7.0, 8.0, 9.0])
    assert fusebox.validate("2*a + 3*b*c") is None
    np.testing.assert_array_equal(fusebox.re_evaluate(), 2 * a + 3 * b * c)
    a = np.array([0.0, 0.0, 1.0])
    np.testing.assert_array_equal(fusebox.re_evaluate(), 2 * a + 3 * b * c)
    assert isinstance(fusebox.validate("2*a + 3*b*zz"), KeyError)
    assert isinstance(fusebox.validate("2+"), SyntaxError)


def test_re_evaluate_reuses_live_out_and_does_not_keep_it_alive():
    import gc
    import weakref

    a = np.arange(3.0)
    out = np.zeros(3)
    assert fusebox.evaluate("a + 1", {"a": a}, out=out) is out
    assert fusebox.re_evaluate({"a": a + 10}) is out
    np.testing.assert_array_equal(out, a + 11)
    ref = weakref.ref(out)
    del out
    gc.collect()
    assert ref() is None


def test_compile_signatures_out_and_pickle():
    f = fusebox.compile("(5.0*t + 4.0)*t + 1.0", {"t": "float64"})
    t = np.linspace(-1, 1, 101)
    np.testing.assert_array_equal(f(t), (5.0 * t + 4.0) * t + 1.0)
    np.testing.assert_array_equal(f(t=t[::-2]), (5.0 * t[::-2] + 4.0) * t[::-2] + 1.0)
    out = np.empty_like(t)
    assert f(t, out=out) is out
    np.testing.assert_array_equal(out, (5.0 * t + 4.0) * t + 1.0)
    # int32 arrays are cast safely to the signature's float64; float64 to int32 is refused
    np.testing.assert_array_equal(f(np.arange(3, dtype=np.int32)), [1.0, 10.0, 29.0])
    g = fusebox.compile("a + b", [("a", np.int32), ("b", np.int32)])
    with pytest.raises(TypeError):
        g(np.ones(2), np.ones(2, np.int32))
    with pytest.raises(TypeError):
        g(np.ones(2, np.int32))  # missing argument
    h = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(h(t), f(t))
    assert f.signature == [("t", "float64")] and f.input_names == ["t"]
    with pytest.raises(KeyError):
        fusebox.compile("a + b", {"a": "float64"})
    # 2-d calls after 1-d ones, reductions with axes
    s = fusebox.compile("sum(m*m, axis=1)", ["float32"])
    m = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(s(m), (m * m).sum(axis=1))


def test_explain_text_and_json():
    x = np.arange(1000.0)
    text = fusebox.explain("sum(x*x)")
    assert "kernel 0" in text and "bytes moved" in text
    d = fusebox.explain("(5.0*x + 4.0)*x + 1.0", json=True)
    assert d["bytes_fused"] == 16 * 1000 and d["bytes_unfused"] == 72 * 1000
    assert len(d["kernels"]) == 1
    u = fusebox.explain("(5.0*x + 4.0)*x + 1.0", json=True, optimize=False)
    assert len(u["kernels"]) == 4


def test_unfused_mode_gives_the_same_result():
    x = np.linspace(-5, 5, 1001)
    a = fusebox.evaluate("1/(1.25*sqrt(2*pi)) * exp(-(x+1.33)**2/(2*1.25**2))")
    b = fusebox.evaluate("1/(1.25*sqrt(2*pi)) * exp(-(x+1.33)**2/(2*1.25**2))", optimize=False)
    np.testing.assert_allclose(a, b, rtol=1e-14)


def test_threads_setting():
    old = fusebox.set_num_threads(1)
    try:
        assert fusebox.get_num_threads() == 1
        x = np.arange(100000.0)
        np.testing.assert_array_equal(fusebox.evaluate("x*2"), x * 2)
        assert fusebox.set_num_threads(2) == 1
        np.testing.assert_array_equal(fusebox.evaluate("x*2"), x * 2)
    finally:
        fusebox.set_num_threads(old)
    with pytest.raises(ValueError):
        fusebox.set_num_threads(0)
    with pytest.raises(TypeError):
        fusebox.set_num_threads("two")
    assert fusebox.detect_number_of_cores() >= 1


@pytest.mark.parametrize(
    "env,want",
    [
        ({"FUSEBOX_NUM_THREADS": "3", "NUMEXPR_NUM_THREADS": "2", "OMP_NUM_THREADS": "5"}, 3),
        ({"NUMEXPR_NUM_THREADS": "2", "OMP_NUM_THREADS": "5"}, 2),
        ({"OMP_NUM_THREADS": "5"}, 5),
        ({"OMP_NUM_THREADS": ""}, None),
    ],
)
def test_thread_environment_variables(env, want):
    clean = {k: v for k, v in os.environ.items() if not k.endswith("NUM_THREADS")}
    code = "import fusebox; print(fusebox.get_num_threads(), fusebox.detect_number_of_cores())"
    r = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    got, cores = map(int, r.stdout.split())
    assert got == (want if want is not None else cores)


def test_error_classes():
    x = np.arange(3.0)
    with pytest.raises(SyntaxError):
        fusebox.evaluate("x +* 2")
    with pytest.raises(ValueError):  # ParseError is also a ValueError
        fusebox.evaluate("x.real")
    with pytest.raises(KeyError):
        fusebox.evaluate("x + nope")
    with pytest.raises(TypeError):
        fusebox.evaluate("~x")  # ~ on floats
    with pytest.raises(np.exceptions.AxisError):
        fusebox.evaluate("sum(x, axis=3)")
    with pytest.raises(ValueError):
        fusebox.evaluate("max(e)", {"e": np.zeros(0)}, {})  # no identity
    with pytest.raises(ValueError):
        fusebox.evaluate("x", order="Q")
    with pytest.raises(ValueError):
        fusebox.evaluate("x", casting="sometimes")
    with pytest.raises(ValueError):
        fusebox.evaluate("x", device="tpu")
    with pytest.raises(ValueError):
        fusebox.evaluate("x", optimization="extreme")
    with pytest.raises(ValueError):
        fusebox.evaluate("x", colour="blue")
    with pytest.raises(TypeError):
        fusebox.evaluate(b"x")


def test_concurrent_calls_from_python_threads():
    rng = np.random.default_rng(0)
    data = [rng.random(50_000) for _ in range(8)]
    exprs = ["2*x + 1", "sum(x*x)", "where(x > 0.5, x, -x)", "exp(-x)*sin(x)"]
    expected = {
        (i, ex): fusebox.evaluate(ex, {"x": d}, {}) for i, d in enumerate(data) for ex in exprs
    }
    errors = []
    barrier = threading.Barrier(8)

    def work(i):
        try:
            barrier.wait()
            for _ in range(20):
                for ex in exprs:
                    got = fusebox.evaluate(ex, {"x": data[i]}, {})
                    np.testing.assert_array_equal(got, expected[(i, ex)])
                    # validate + re_evaluate are per thread
                    assert fusebox.validate(ex, {"x": data[i]}, {}) is None
                    np.testing.assert_array_equal(fusebox.re_evaluate({"x": data[i]}, {}), expected[(i, ex)])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_gil_is_released_while_kernels_run():
    # A second thread makes progress while the first runs a long kernel.
    x = np.linspace(0, 1, 4_000_000)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        for _ in range(5):
            fusebox.evaluate("sin(x)*exp(-x)+cos(x)**2", {"x": x}, {})
    finally:
        done.set()
        t.join()
    assert len(ticks) > 5


INT_DTYPES = ["int8", "int16", "uint8", "uint16", "uint32", "uint64"]


@pytest.mark.parametrize("dt", INT_DTYPES)
@pytest.mark.parametrize("ex", ["a * 3 + b", "a // b", "a % b", "a - b", "abs(a)", "a << 3",
                                "where(a > b, a, b)", "sum(a)", "a * 2.5", "a + 1"])
def test_small_and_unsigned_integer_dtypes_match_numpy(dt, ex):
    info = np.iinfo(dt)
    r = np.random.default_rng(7)
    a = r.integers(info.min, info.max, 1000, dtype=dt, endpoint=True)
    b = r.integers(info.min, info.max, 1000, dtype=dt, endpoint=True)
    b[b == 0] = 1
    a[:3] = [info.min, info.max, 0]
    env = {"a": a, "b": b, "where": np.where, "abs": np.abs, "sum": np.sum}
    with np.errstate(all="ignore"):
        want = eval(ex, {"__builtins__": {}}, env)  # noqa: S307
    got = fusebox.evaluate(ex, {"a": a, "b": b}, {})
    assert np.asarray(got).dtype == np.asarray(want).dtype, ex
    np.testing.assert_array_equal(got, want)


def test_mixed_integer_dtypes_promote_like_numpy():
    a = np.arange(-5, 5, dtype=np.int8)
    u = np.arange(10, dtype=np.uint8)
    got = fusebox.evaluate("a + u", {"a": a, "u": u}, {})
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, a + u)
    big = np.array([2**64 - 1, 3], dtype=np.uint64)
    i = np.array([-1, 1], dtype=np.int64)
    got = fusebox.evaluate("big + i", {"big": big, "i": i}, {})
    assert got.dtype == np.float64  # NumPy 2: uint64 with int64 is float64
    np.testing.assert_array_equal(got, big + i)
