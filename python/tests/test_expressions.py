"""numexpr's expression classes against NumPy 2, on the CPU and the GPU.

The lists are numexpr's own test-suite lists (MISC, OPERATIONS, COMPARISONS, 1- and 2-argument
functions, powers), evaluated over float64, float32, int32 and int64 arrays, with one
operand replaced by a NumPy scalar (strong) or a Python number (weak), as numexpr's suite does;
then reductions, ``out=``, strided, reversed, broadcast, 0-d and empty inputs. The oracle is
NumPy evaluating the same string: fusebox must give NumPy's dtype, its values (exactly for
arithmetic, comparisons and rounding; within a few ULP for transcendental functions) and its
exceptions' classes.
"""

import warnings

import numpy as np
import pytest

import fusebox

MISC = [
    "b*c+d*e",
    "2*a+3*b",
    "-a",
    "sinh(a)",
    "2*a + (cos(3)+5)*sinh(cos(b))",
    "2*a + arctan2(a, b)",
    "arcsin(0.5)",
    "where(a != 0.0, 2, a)",
    "where(a > 10, b < a, b > a)",
    # numexpr writes `(a-10).real`: fusebox has no attribute syntax, `real(x)` instead.
    "where(real(a-10) != 0.0, a, 2)",
    "0.25 * (a < 5) + 0.33 * (a >= 5)",
    "cos(1+1)",
    "1+1",
    "1",
    "cos(a2)",
]
OPERATIONS = []
for op in list("+-*/%") + ["**"]:
    OPERATIONS += [
        f"(a+1) {op} (b+3)",
        f"3 {op} (b+3)",
        f"(a+1) {op} 4",
        f"2 {op} (b+3)",
        f"(a+1) {op} 2",
        f"(a+1) {op} -1",
        f"(a+1) {op} 0.5",
        f"(a+1) {op} 0",
    ]
COMPARISONS = []
for op in ["<", "<=", "==", ">=", ">", "!="]:
    COMPARISONS += [f"a/2+5 {op} b", f"a/2+5 {op} 7", f"7 {op} b", f"7.0 {op} 5"]
FUNC1 = [
    f"a + {f}(b+c)"
    for f in [
        "copy", "ones_like", "sqrt", "sin", "cos", "tan", "arcsin", "arccos", "arctan",
        "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "log", "log1p", "log10",
        "log2", "exp", "expm1", "abs", "conj", "ceil", "floor", "round", "trunc", "sign",
    ]
]
FUNC2 = []
for f in ["arctan2", "fmod", "hypot", "nextafter", "copysign"]:
    FUNC2 += [f"a + {f}(b+c, d+1)", f"a + {f}(b+c, 1)", f"a + {f}(1, d+1)"]
POW = [f"(a+1)**{n}" for n in (-7, -2.5, -1.5, -1.3, -0.5, 0, 0.0, 1, 2.3, 2.5, 3)]

SECTIONS = {
    "misc": MISC,
    "operations": OPERATIONS,
    "comparisons": COMPARISONS,
    "func1": FUNC1,
    "func2": FUNC2,
    "pow": POW,
}
CASES = [(sec, ex) for sec, exs in SECTIONS.items() for ex in exs]
DTYPES = ["float64", "float32", "int32", "int64"]
TRANSCENDENTAL = (
    "sin", "cos", "tan", "arc", "sinh", "cosh", "tanh", "log", "exp", "hypot", "**",
)

# NumPy's functions under numexpr's names, to evaluate the same strings.
NP_NAMES = {
    n: getattr(np, n)
    for n in [
        "where", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh",
        "tanh", "arcsinh", "arccosh", "arctanh", "log", "log1p", "log10", "log2", "exp",
        "expm1", "sqrt", "abs", "conj", "ceil", "floor", "round", "trunc", "sign", "copy",
        "ones_like", "fmod", "hypot", "nextafter", "copysign", "real",
    ]
}


def arrays(dtype, scalar):
    n = 100
    env = {
        "a": np.arange(2 * n, dtype=dtype)[::2],
        "a2": np.zeros([n, n], dtype=dtype),
        "b": np.arange(n, dtype=dtype) / n if dtype.startswith("float") else np.arange(n, dtype=dtype) // 7,
        "c": np.arange(n, dtype=dtype),
        "d": np.arange(n, dtype=dtype),
        "e": np.arange(n, dtype=dtype),
    }
    if scalar == "numpy":  # a NumPy scalar: strong, a 0-d array
        env["a"] = env["a"][n // 2]
    elif scalar == "python":  # a Python number: weak (NEP 50)
        env["b"] = env["b"][n // 2].item()
    return env


def numpy_eval(ex, env):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            # NumPy's own functions: a function of a Python number is a strong NumPy scalar
            # (`np.cos(3)` is float64), as it is in fusebox.
            return eval(ex, {"__builtins__": {}, **NP_NAMES}, dict(env)), None  # noqa: S307
        except Exception as e:  # noqa: BLE001 - the oracle's exception is the expectation
            return None, e


def check_equal(ex, got, want, device, inputs=np.float64):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.dtype == want.dtype, f"{ex}: dtype {got.dtype}, NumPy {want.dtype}"
    assert got.shape == want.shape, f"{ex}: shape {got.shape}, NumPy {want.shape}"
    if want.dtype.kind == "f" and any(t in ex for t in TRANSCENDENTAL):
        # A float32 function's result promoted to float64 (`cos(3) * sinh(cos(b32))`) carries
        # float32's error.
        tol = 2e-6 if np.float32 in (want.dtype, np.dtype(inputs)) else 1e-13
        if device == "gpu":
            tol *= 4
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True, err_msg=ex)
    else:
        np.testing.assert_array_equal(got, want, err_msg=ex)


@pytest.mark.parametrize("scalar", ["none", "numpy", "python"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("section,ex", CASES, ids=[f"{s}:{e}" for s, e in CASES])
def test_numexpr_expression_lists(section, ex, dtype, scalar, device):
    env = arrays(dtype, scalar)
    want, err = numpy_eval(ex, env)
    if err is not None:
        with pytest.raises(type(err)):
            fusebox.evaluate(ex, env, {}, device=device)
        return
    got = fusebox.evaluate(ex, env, {}, device=device)
    check_equal(ex, got, want, device, dtype)


REDUCTIONS = [
    "sum(x)", "sum(x*x+2)", "prod(x/10+1)", "min(x-1)", "max(x**2)", "mean(x)",
    "sum(x, axis=0)", "sum(y**2, axis=1)", "min(y, axis=0)", "max(y-1, axis=(0, 1))",
    "prod(y/10+1, axis=-1)", "mean(y, axis=0, keepdims=True)", "var(y)", "std(y, axis=1, ddof=1)",
    "any(y > 5)", "all(y > -1, axis=0)", "argmax(y, axis=1)", "argmin(x)",
    "y - mean(y, axis=0)", "sum(x) / sum(y) + x",
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ex", REDUCTIONS)
def test_reductions_match_numpy(ex, dtype, device):
    env = {"x": np.arange(1, 21, dtype=dtype), "y": np.arange(12, dtype=dtype).reshape(3, 4)}
    names = {
        **NP_NAMES,
        **{n: getattr(np, n) for n in ["sum", "prod", "min", "max", "mean", "var", "std", "any", "all", "argmax", "argmin"]},
    }
    with np.errstate(all="ignore"):
        want = eval(ex, {"__builtins__": {}, **names}, dict(env))  # noqa: S307
    got = fusebox.evaluate(ex, env, {}, device=device)
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (ex, got.dtype, want.dtype)
    if want.dtype.kind == "f":
        tol = 1e-5 if want.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


def test_out_is_written_in_place(device):
    a = np.arange(10.0)
    out = np.full(10, -1.0)
    r = fusebox.evaluate("2*a + 1", {"a": a}, {}, out=out, device=device)
    assert r is out
    np.testing.assert_array_equal(out, 2 * a + 1)


def test_out_any_strides_and_aliasing_an_input(device):
    x = np.arange(20.0).reshape(4, 5)
    base = np.zeros((8, 10))
    out = base[::2, ::-2]  # strided and reversed
    fusebox.evaluate("x * x", {"x": x}, {}, out=out, device=device)
    np.testing.assert_array_equal(out, x * x)
    assert base[1].sum() == 0  # the rows between were not touched
    y = np.arange(5.0)
    fusebox.evaluate("y + 3", {"y": y}, {}, out=y, device=device)  # out is the input
    np.testing.assert_array_equal(y, np.arange(5.0) + 3)


def test_out_casting_and_errors():
    a = np.arange(4.0)
    o32 = np.zeros(4, np.float32)
    fusebox.evaluate("a + 1", {"a": a}, {}, out=o32)  # same_kind: float64 -> float32 allowed
    np.testing.assert_array_equal(o32, (a + 1).astype(np.float32))
    with pytest.raises(TypeError):
        fusebox.evaluate("a + 1", {"a": a}, {}, out=o32, casting="safe")
    with pytest.raises(TypeError):
        fusebox.evaluate("a + 1", {"a": a}, {}, out=np.zeros(4, np.int64))
    with pytest.raises(ValueError):
        fusebox.evaluate("a + 1", {"a": a}, {}, out=np.zeros(5))
    ro = np.zeros(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fusebox.evaluate("a + 1", {"a": a}, {}, out=ro)
    with pytest.raises(TypeError):
        fusebox.evaluate("a + 1", {"a": a}, {}, out=[0, 0, 0, 0])
    # A weak (Python number) result is typed by out, as np.copyto does.
    o = np.zeros(3, np.int32)
    fusebox.evaluate("3", {}, {}, out=o, casting="safe")
    np.testing.assert_array_equal(o, 3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(30.0)[::3],  # strided
        lambda: np.arange(10.0)[::-1],  # negative stride
        lambda: np.broadcast_to(np.arange(5.0), (4, 5)),  # zero stride
        lambda: np.asfortranarray(np.arange(12.0).reshape(3, 4)),  # Fortran order
        lambda: np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1),  # permuted
        lambda: np.float64(2.5) * np.ones(()),  # 0-d
        lambda: np.zeros((0, 3)),  # empty
        lambda: np.arange(10, dtype=">f8"),  # byte-swapped (copied)
        lambda: np.frombuffer(b"\0" + np.arange(8.0).tobytes(), dtype=np.float64, offset=1),  # unaligned
    ],
)
def test_layouts(make, device):
    x = make()
    got = fusebox.evaluate("(5.0*x + 4.0)*x + 1.0", {"x": x}, {}, device=device)
    np.testing.assert_array_equal(got, (5.0 * x + 4.0) * x + 1.0)
    assert got.dtype == np.float64


def test_broadcasting(device):
    a = np.arange(100).reshape(10, 10)[::2]
    c = np.arange(10)
    d = np.arange(5).reshape(5, 1)
    np.testing.assert_array_equal(fusebox.evaluate("a+c", device=device), a + c)
    np.testing.assert_array_equal(fusebox.evaluate("a+d*c", device=device), a + d * c)
    with pytest.raises(ValueError):
        fusebox.evaluate("a + np", {"a": np.ones(3), "np": np.ones(4)}, {}, device=device)


def test_nep50_scalars():
    x = np.arange(4, dtype=np.float32)
    assert fusebox.evaluate("x * 2.5").dtype == np.float32  # a literal: weak
    s = 2.5
    assert fusebox.evaluate("x * s").dtype == np.float32  # a Python float: weak
    s = np.float64(2.5)
    assert fusebox.evaluate("x * s").dtype == np.float64  # a NumPy scalar: strong
    i = np.arange(3, dtype=np.int32)
    assert fusebox.evaluate("i + 1").dtype == np.int32
    with pytest.raises(OverflowError):
        fusebox.evaluate("i + 5000000000")


def test_results_own_their_buffer():
    x = np.arange(1000.0)
    r = fusebox.evaluate("x + 1")
    # The result's memory is fusebox's buffer, handed over (no NumPy-side copy): the array
    # does not own its data, its base is the container holding fusebox's Vec.
    assert not r.flags.owndata and r.base is not None and not isinstance(r.base, np.ndarray)
    r[0] = 42.0  # writeable
    assert r.flags.c_contiguous and x[0] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("func", ["isnan", "isinf", "isfinite", "signbit"])
def test_float_predicates(device, func, dtype):
    """numexpr 2.14's boolean functions, against NumPy (the sign bit of -0.0 and -NaN too)."""
    if np.dtype(dtype).kind == "f":
        a = np.array([1.5, np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, -2.0, 3e38], dtype)
        assert np.signbit(a[2])
    elif dtype is np.bool_:
        a = np.array([True, False, True])
    else:
        a = np.array([np.iinfo(dtype).min, -1, 0, 5, np.iinfo(dtype).max], dtype)
    got = fusebox.evaluate(f"{func}(a)", {"a": a}, {}, device=device)
    want = getattr(np, func)(a)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, want)
    got = fusebox.evaluate(f"where({func}(a), 1, 2) * 3", {"a": a}, {}, device=device)
    np.testing.assert_array_equal(got, np.where(want, 1, 2) * 3)
