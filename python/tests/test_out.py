"""`out=` is written in place: the kernel writes into `out`'s own buffer (any strides, `out`
aliasing an input included) and `evaluate` returns `out` itself. NumPy is the oracle."""

import os

import numpy as np
import pytest

import fusebox


def rng_arrays(n, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal(n), r.standard_normal(n)


def check(ex, out, want, device="cpu", **names):
    got = fusebox.evaluate(ex, names, {}, out=out, device=device)
    assert got is out
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def test_contiguous(device):
    a, b = rng_arrays(10_000)
    out = np.full_like(a, np.nan)
    check("2*a + b*b - 1", out, 2 * a + b * b - 1, device, a=a, b=b)


def test_strided_and_reversed_out(device):
    a, b = rng_arrays(5_000)
    base = np.full(15_000, 7.0)
    out = base[::3]
    check("a * b + 3", out, a * b + 3, device, a=a, b=b)
    # Elements between the strided ones are untouched.
    assert np.all(base[1::3] == 7.0) and np.all(base[2::3] == 7.0)
    rev = np.zeros(5_000)[::-1]
    check("sin(a) - b", rev, np.sin(a) - b, device, a=a, b=b)


def test_strided_and_reversed_inputs():
    a, b = rng_arrays(20_000)
    out = np.empty(10_000)
    check("a - b", out, a[::2] - b[::-2], a=a[::2], b=b[::-2])


def test_two_dimensional_transposed_out(device):
    a = np.arange(12_000.0).reshape(100, 120)
    out = np.zeros((120, 100)).T  # F order: out's last axis is not the unit-stride one
    check("a * a + 1", out, a * a + 1, device, a=a)
    assert out.flags.f_contiguous


def test_broadcast_inputs(device):
    a = np.linspace(0, 1, 300).reshape(300, 1)
    b = np.linspace(-1, 1, 200)
    out = np.empty((300, 200))
    check("a * b + 2", out, a * b + 2, device, a=a, b=b)


def test_out_aliases_an_input():
    a0, b = rng_arrays(50_000)
    a = a0.copy()
    got = fusebox.evaluate("a * 2 + b", {"a": a, "b": b}, {}, out=a)
    assert got is a
    np.testing.assert_allclose(a, a0 * 2 + b)
    # numexpr's idiom: the caller's frame, out= one of the names.
    x = a0.copy()
    fusebox.evaluate("x + 1", out=x)
    np.testing.assert_allclose(x, a0 + 1)


def test_out_overlaps_an_input_shifted_and_reversed():
    a0 = np.arange(10_001.0)
    a = a0.copy()
    # out is a[1:], the input a[:-1]: overlapping but not the same elements.
    fusebox.evaluate("x * 10", {"x": a[:-1]}, {}, out=a[1:])
    np.testing.assert_array_equal(a[1:], a0[:-1] * 10)
    assert a[0] == a0[0]
    a = a0.copy()
    fusebox.evaluate("x + 0.5", {"x": a}, {}, out=a[::-1])
    np.testing.assert_array_equal(a, (a0 + 0.5)[::-1])


def test_reduction_into_zero_d_out(device):
    a, b = rng_arrays(4_000)
    out = np.zeros(())
    got = fusebox.evaluate("sum(a * b)", {"a": a, "b": b}, {}, out=out, device=device)
    assert got is out
    np.testing.assert_allclose(out, np.sum(a * b), rtol=1e-10)


def test_out_of_another_dtype_or_shape_still_follows_numpy():
    a = np.arange(6.0)
    out32 = np.zeros(6, np.float32)
    assert fusebox.evaluate("a / 3", {"a": a}, {}, out=out32) is out32
    np.testing.assert_array_equal(out32, (a / 3).astype(np.float32))
    with pytest.raises(TypeError):
        fusebox.evaluate("a / 3", {"a": a}, {}, out=np.zeros(6, np.int64))
    wide = np.zeros((2, 6))
    assert fusebox.evaluate("a + 1", {"a": a}, {}, out=wide) is wide
    np.testing.assert_array_equal(wide, np.broadcast_to(a + 1, (2, 6)))
    with pytest.raises(ValueError):
        fusebox.evaluate("a + 1", {"a": a}, {}, out=np.zeros(5))


def test_compiled_out_in_place():
    f = fusebox.compile("x * x - y", [("x", np.float64), ("y", np.float64)])
    x, y = rng_arrays(9_000)
    out = np.empty(9_000)[::-1]
    assert f(x, y, out=out) is out
    np.testing.assert_allclose(out, x * x - y)
    x2 = x.copy()
    assert f(x2, y, out=x2) is x2
    np.testing.assert_allclose(x2, x * x - y)


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's peak-RSS reset")
def test_no_temporary_of_the_result_size():
    """With out=, the process's peak resident memory grows by far less than one result
    (80 MB here): the kernel writes into `out`, no fresh result is made and copied."""
    n = 10_000_000
    a = np.ones(n)
    b = np.full(n, 2.0)
    out = np.ones(n)  # every page touched already
    fusebox.evaluate("a * b + 1", {"a": a, "b": b}, {}, out=out)  # compile outside the window
    if not _reset_peak():
        pytest.skip("cannot reset the peak RSS here")
    before = _rss_kib("VmRSS")
    got = fusebox.evaluate("a * b + 1", {"a": a, "b": b}, {}, out=out)
    grew_kib = _rss_kib("VmHWM") - before
    assert got is out
    assert np.all(out == 3.0)
    assert grew_kib * 1024 < n * 8 // 8, f"peak grew by {grew_kib} KiB"
    # The same measurement sees a fresh result (the control: the measure can fail).
    _reset_peak()
    before = _rss_kib("VmRSS")
    r = fusebox.evaluate("a * b + 1", {"a": a, "b": b}, {})
    assert (_rss_kib("VmHWM") - before) * 1024 > n * 8 // 2
    del r
