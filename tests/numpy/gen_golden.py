#!/usr/bin/env python3
"""Generate NumPy golden fixtures for fusebox (tests/golden/).

Run from anywhere with the project's NumPy 2 venv:

    /tmp/pv/bin/python tests/numpy/gen_golden.py

It is deterministic (fixed seed, fixed value lists) and rewrites tests/golden/ completely
(`gen_golden.py --ints` writes tests/golden_ints/ instead: the same generators focused on
int8, int16, uint8, uint16, uint32 and uint64, with their pairs against every dtype, from a
seed of their own, so the default fixtures do not change; `--f16` writes tests/golden_f16/:
float16 and its pairs with every other dtype, where, casts and reductions):

- in/*.npy      input arrays (edge values per dtype, random values, shaped for broadcasting)
- out/*.npy     NumPy's result for each case
- manifest.tsv  one case per line, tab-separated:
      name  expr  sexpr  bindings  expected  tol
  expr      the expression in numexpr/fusebox syntax (for people and for the string parser)
  sexpr     the same expression as an S-expression, which tests/golden_numpy.rs builds with
            the Rust Expr API: (add a b), (neg a), (where c a b), (astype int32 a), (sum a);
            reductions take options after the operand: (std a axis=1 ddof=1 keepdims),
            (sum a axis=[0,1]), (max a axis=[]) for `axis=()`;
            literals are weak Python scalars: True/False, 2, -1, 2.5
  bindings  `a=in/f64_col.npy b=in/f64_row.npy` (or `-`)
  expected  `out/NAME.npy`, or `error` where NumPy raises or gives a dtype outside fusebox's
            set (complex): fusebox must return an error there too
  tol       `exact` (bitwise; NaN matches NaN; the sign of zero counts) or `ulp:N`

The ULP bounds in ULP_TOL were measured on this machine (x86-64, AVX-512) between NumPy 2.4
(its SIMD loops / glibc) and Rust's std/libm as used by src/semantics.rs: `cargo test --test
golden_numpy -- --nocapture` prints the table for the fixtures, and

    /tmp/pv/bin/python tests/numpy/gen_golden.py --survey /tmp/fusebox_survey
    FUSEBOX_ULP_SURVEY=/tmp/fusebox_survey cargo test --test golden_numpy -- --ignored --nocapture

measures 200,000 random inputs per function (about 60 MB, not committed).
"""
import os
import shutil
import sys
import warnings

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")
IN = os.path.join(ROOT, "in")
OUT = os.path.join(ROOT, "out")

DTYPES = {
    "bool": np.bool_,
    "int32": np.int32,
    "int64": np.int64,
    "float32": np.float32,
    "float64": np.float64,
}
SHORT = {"bool": "b", "int32": "i32", "int64": "i64", "float32": "f32", "float64": "f64"}
# Every dtype fusebox computes with (a NumPy result of another dtype, complex, is `error`).
SUPPORTED = {np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                   np.uint16, np.uint32, np.uint64, np.float16, np.float32,
                                   np.float64)}

rng = np.random.default_rng(20261123)

# ---- input values ---------------------------------------------------------------------------

F64_EDGES = [
    np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 1.5, 3.0, -7.0, 0.1,
    -3.7, 100.0, 1e-300, -1e-300, 5e-324, -5e-324, 1e-310, 2.2250738585072014e-308, 1e300,
    -1e300, 1.7976931348623157e308, -1.7976931348623157e308, 4503599627370497.0, 709.78,
    -745.1, 1e20, -2147483648.5, 9.2233720368547758e18,
]
F32_EDGES = [
    np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 1.5, 3.0, -7.0, 0.1,
    -3.7, 100.0, 1e-30, -1e-30, 1e-45, -1e-45, 1e-40, 1.1754944e-38, 1e30, -1e30,
    3.4028235e38, -3.4028235e38, 8388609.0, 88.7, -103.9, 1e20, -2147483648.0, 3e9,
]
I32_EDGES = [
    0, 1, -1, 2, -2, 3, -7, 7, 31, 32, 33, 100, -100, 2**31 - 1, -(2**31), -(2**31) + 1,
    2**31 - 2, 65536, 16777217, -46341,
]
I64_EDGES = [
    0, 1, -1, 2, -2, 3, -7, 7, 63, 64, 65, 100, -100, 2**63 - 1, -(2**63), -(2**63) + 1,
    2**53 + 1, -(2**53 + 1), 2**31, -(2**31) - 1, 3037000500,
]
EDGES = {
    "bool": np.array([False, True]),
    "int32": np.array(I32_EDGES, np.int32),
    "int64": np.array(I64_EDGES, np.int64),
    "float32": np.array(F32_EDGES, np.float32),
    "float64": np.array(F64_EDGES, np.float64),
}
# Non-negative exponents for integer `**` (NumPy raises for negative array exponents, which
# fusebox cannot do per element; see semantics.rs).
POW_EXPONENTS = {
    "int32": np.array([0, 1, 2, 3, 7, 31, 32, 33, 100], np.int32),
    "int64": np.array([0, 1, 2, 3, 7, 63, 64, 65, 100], np.int64),
}


def random_floats(dt, n):
    """A spread of magnitudes and signs, for ULP measurement and the division family."""
    parts = [
        rng.standard_normal(n // 4),
        rng.uniform(-1.0, 1.0, n // 4),
        rng.choice([-1.0, 1.0], n // 4) * 10.0 ** rng.uniform(-8, 8, n // 4),
        rng.uniform(-100.0, 100.0, n - 3 * (n // 4)),
    ]
    return np.concatenate(parts).astype(dt)


def random_f16(n):
    """float16 values across its range: normal magnitudes 1e-4..3e4 of both signs, a few
    subnormals, and values in [-100, 100]."""
    parts = [
        rng.choice([-1.0, 1.0], n // 2) * 10.0 ** rng.uniform(-4, 4.5, n // 2),
        rng.uniform(-100.0, 100.0, n // 4),
        rng.choice([-1.0, 1.0], n - 3 * (n // 4)) * rng.uniform(0, 6e-5, n - 3 * (n // 4)),
    ]
    return np.concatenate(parts).astype(np.float16)


def rand_floats(t, n):
    return random_f16(n) if t is np.float16 else random_floats(t, n)


FLOATS = (np.float16, np.float32, np.float64)


def random_ints(dt, n):
    info = np.iinfo(dt)
    small = rng.integers(-100 if info.min < 0 else 0, 101, n // 2)
    big = rng.integers(info.min, info.max, n - n // 2, endpoint=True, dtype=dt)
    return np.concatenate([small, big]).astype(dt)


# ---- operators --------------------------------------------------------------------------------

UNARY = {
    # fusebox name: (numpy function, numexpr spelling or None for `name(a)`)
    "neg": (np.negative, "-{a}"),
    "not": (np.invert, "~{a}"),
    "abs": (np.absolute, None),
    "sign": (np.sign, None),
    "sqrt": (np.sqrt, None),
    "exp": (np.exp, None),
    "expm1": (np.expm1, None),
    "log": (np.log, None),
    "log1p": (np.log1p, None),
    "log2": (np.log2, None),
    "log10": (np.log10, None),
    "sin": (np.sin, None),
    "cos": (np.cos, None),
    "tan": (np.tan, None),
    "arcsin": (np.arcsin, None),
    "arccos": (np.arccos, None),
    "arctan": (np.arctan, None),
    "sinh": (np.sinh, None),
    "cosh": (np.cosh, None),
    "tanh": (np.tanh, None),
    "arcsinh": (np.arcsinh, None),
    "arccosh": (np.arccosh, None),
    "arctanh": (np.arctanh, None),
    "floor": (np.floor, None),
    "ceil": (np.ceil, None),
    "round": (np.round, None),
    "trunc": (np.trunc, None),
}
BINARY = {
    "add": (np.add, "+"),
    "sub": (np.subtract, "-"),
    "mul": (np.multiply, "*"),
    "div": (np.true_divide, "/"),
    "floordiv": (np.floor_divide, "//"),
    "rem": (np.remainder, "%"),
    "pow": (np.power, "**"),
    "maximum": (np.maximum, None),
    "minimum": (np.minimum, None),
    "arctan2": (np.arctan2, None),
    "hypot": (np.hypot, None),
    "fmod": (np.fmod, None),
    "copysign": (np.copysign, None),
    "nextafter": (np.nextafter, None),
    "and": (np.bitwise_and, "&"),
    "or": (np.bitwise_or, "|"),
    "xor": (np.bitwise_xor, "^"),
    "shl": (np.left_shift, "<<"),
    "shr": (np.right_shift, ">>"),
    "eq": (np.equal, "=="),
    "ne": (np.not_equal, "!="),
    "lt": (np.less, "<"),
    "le": (np.less_equal, "<="),
    "gt": (np.greater, ">"),
    "ge": (np.greater_equal, ">="),
}
TRANSCENDENTAL_UNARY = {
    "exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan", "arcsin", "arccos",
    "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
}
TRANSCENDENTAL_BINARY = {"arctan2", "hypot", "pow"}

# Measured maximum ULP distance NumPy vs fusebox's semantics on these inputs, per function and
# result dtype (see the module docstring). `ulp:0` means bitwise equal up to the sign of zero.
ULP_TOL = {
    # (function, dtype): max over the fixtures and a 200,000-input survey (`--survey`); the
    # fixtures alone measure the same or 1 less.
    ("arccos", "float32"): 2, ("arccos", "float64"): 1,
    ("arccosh", "float32"): 1, ("arccosh", "float64"): 2,
    ("arcsin", "float32"): 3, ("arcsin", "float64"): 1,
    ("arcsinh", "float32"): 1, ("arcsinh", "float64"): 2,
    ("arctan", "float32"): 2, ("arctan", "float64"): 1,
    ("arctan2", "float32"): 3, ("arctan2", "float64"): 1,
    ("arctanh", "float32"): 2, ("arctanh", "float64"): 1,
    # float64 sin/cos: libm is NumPy bit for bit (0), the JIT's vector code (src/mathlib/trig.rs)
    # differs from glibc by up to 1 ULP (26 of 513 fixture values).
    ("cos", "float32"): 1, ("cos", "float64"): 1,
    ("cosh", "float32"): 2, ("cosh", "float64"): 1,
    ("exp", "float32"): 2, ("exp", "float64"): 1,
    ("expm1", "float32"): 2, ("expm1", "float64"): 1,
    ("hypot", "float32"): 1, ("hypot", "float64"): 1,
    ("log", "float32"): 3, ("log", "float64"): 1,
    ("log10", "float32"): 2, ("log10", "float64"): 2,
    ("log1p", "float32"): 2, ("log1p", "float64"): 1,
    ("log2", "float32"): 2, ("log2", "float64"): 1,
    ("pow", "float32"): 1, ("pow", "float64"): 1,
    ("sin", "float32"): 1, ("sin", "float64"): 1,
    ("sinh", "float32"): 2, ("sinh", "float64"): 2,
    ("tan", "float32"): 3, ("tan", "float64"): 1,
    ("tanh", "float32"): 3, ("tanh", "float64"): 2,
}

# float16 functions are NumPy's float32 loops (scalar npy_*f) rounded to float16; fusebox's
# float32 results round the same way except next to a float16 tie: 1 float16 ULP.
for _op in TRANSCENDENTAL_UNARY | TRANSCENDENTAL_BINARY:
    ULP_TOL[(_op, "float16")] = 1


def tolerance(op, result_dtype):
    kind = np.dtype(result_dtype).kind
    if kind == "f" and (op in TRANSCENDENTAL_UNARY or op in TRANSCENDENTAL_BINARY):
        n = ULP_TOL.get((op, np.dtype(result_dtype).name), 0)
        return f"ulp:{n}"
    return "exact"


# ---- writing --------------------------------------------------------------------------------

cases = []
inputs = {}


def add_input(name, arr):
    """Register an input array; returns its manifest path."""
    path = f"in/{name}.npy"
    if name in inputs:
        assert inputs[name].dtype == arr.dtype and np.array_equal(
            inputs[name], arr, equal_nan=True
        ), name
    else:
        inputs[name] = arr
        np.save(os.path.join(ROOT, path), arr)
    return path


def fmt_literal(v):
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def run_case(name, expr, sexpr, args, fn, tol_op, tol=None):
    """args: list of (symbol, input name, array) or python scalars (weak literals); `tol`
    overrides the tolerance `tol_op` would get."""
    bindings = []
    values = []
    for a in args:
        if isinstance(a, tuple):
            sym, iname, arr = a
            bindings.append(f"{sym}={add_input(iname, arr)}")
            values.append(arr)
        else:
            values.append(a)
    try:
        with np.errstate(all="ignore"):
            res = np.asarray(fn(*values))
        ok = res.dtype in SUPPORTED
    except (TypeError, ValueError, OverflowError) as e:  # NumPy refuses the combination
        ok = False
        del e
    if ok:
        path = f"out/{name}.npy"
        np.save(os.path.join(ROOT, path), res)
        tol = tol or tolerance(tol_op, res.dtype)
    else:
        path, tol = "error", "-"
    cases.append((name, expr, sexpr, " ".join(bindings) or "-", path, tol))


def sym(letter, iname, arr):
    return (letter, iname, arr)


def unary_expr(op, a):
    spelling = UNARY[op][1]
    return spelling.format(a=a) if spelling else f"{op}({a})"


def binary_expr(op, a, b):
    sym_ = BINARY[op][1]
    return f"{a} {sym_} {b}" if sym_ else f"{op}({a}, {b})"


def gen_unary():
    for dt, t in DTYPES.items():
        if dt not in FOCUS:
            continue
        s = SHORT[dt]
        if t in FLOATS:
            x = np.concatenate([EDGES[dt], rand_floats(t, 480)]).astype(t)
        elif t is np.bool_:
            x = EDGES[dt]
        else:
            x = np.concatenate([EDGES[dt], random_ints(t, 40)]).astype(t)
        for op, (fn, _) in UNARY.items():
            run_case(f"{op}__{s}", unary_expr(op, "a"), f"({op} a)",
                     [sym("a", f"{s}_unary", x)], fn, op)


def pick_subset(dt, k):
    e = EDGES[dt]
    return e[:k] if len(e) > k else e


def gen_binary():
    names = list(DTYPES)
    for da in names:
        for db in names:
            if da not in FOCUS and db not in FOCUS:
                continue
            sa, sb = SHORT[da], SHORT[db]
            same = da == db
            # Same dtype: every pair of edge values, as contiguous 1-D arrays (NumPy's SIMD
            # loops run on contiguous data, and they are what users get); mixed dtypes: the
            # first 10 edge values of each, as a column and a row (broadcasting).
            if same:
                e = EDGES[da]
                a, b = np.repeat(e, len(e)), np.tile(e, len(e))
                ia, ib = f"{sa}_pairs_a", f"{sb}_pairs_b"
            else:
                a = pick_subset(da, 10).reshape(-1, 1)
                b = pick_subset(db, 10).reshape(1, -1)
                ia, ib = f"{sa}_col10", f"{sb}_row10"
            for op, (fn, _) in BINARY.items():
                bb, ibb = b, ib
                if op == "pow" and db in POW_EXPONENTS and DTYPES[da] not in FLOATS:
                    # Non-negative integer exponents only, as a row against a column of bases.
                    bb = POW_EXPONENTS[db].reshape(1, -1)
                    ibb = f"{sb}_powexp"
                    run_case(f"{op}__{sa}_{sb}", binary_expr(op, "a", "b"), f"({op} a b)",
                             [sym("a", f"{sa}_col", EDGES[da].reshape(-1, 1)),
                              sym("b", ibb, bb)], fn, op)
                    continue
                run_case(f"{op}__{sa}_{sb}", binary_expr(op, "a", "b"), f"({op} a b)",
                         [sym("a", ia, a), sym("b", ibb, bb)], fn, op)
    # Random element-wise pairs for floats: the division family and ULP measurement.
    for dt in ("float16", "float32", "float64"):
        if dt not in FOCUS:
            continue
        t = DTYPES[dt]
        s = SHORT[dt]
        a = rand_floats(t, 400)
        b = rand_floats(t, 400)
        for op, (fn, _) in BINARY.items():
            bb, ib = b, f"{s}_randb"
            if op == "pow":
                # Keep bases positive so most results are finite and informative.
                run_case(f"{op}__{s}_rand", binary_expr(op, "a", "b"), f"({op} a b)",
                         [sym("a", f"{s}_randpos", np.abs(a)),
                          sym("b", f"{s}_randexp", (b / 10).astype(t))], fn, op)
                continue
            run_case(f"{op}__{s}_rand", binary_expr(op, "a", "b"), f"({op} a b)",
                     [sym("a", f"{s}_randa", a), sym("b", ib, bb)], fn, op)


WEAK_RIGHT = [True, 2, -1, 0, 2.5, -0.5, 3000000000]
WEAK_LEFT = [2, 2.5, True]


def weak_name(v):
    s = fmt_literal(v).replace("-", "m").replace(".", "p")
    return s


def gen_weak():
    for dt, t in DTYPES.items():
        if dt not in FOCUS:
            continue
        s = SHORT[dt]
        x = EDGES[dt]
        for op, (fn, _) in BINARY.items():
            for w in WEAK_RIGHT:
                run_case(f"{op}__{s}_w{weak_name(w)}", binary_expr(op, "a", fmt_literal(w)),
                         f"({op} a {fmt_literal(w)})", [sym("a", f"{s}_edges", x), w], fn, op)
            for w in WEAK_LEFT:
                xa, ia = x, f"{s}_edges"
                if op == "pow" and dt in POW_EXPONENTS and not isinstance(w, float):
                    xa, ia = POW_EXPONENTS[dt], f"{s}_powexp1d"  # no negative exponents
                run_case(f"{op}__w{weak_name(w)}_{s}", binary_expr(op, fmt_literal(w), "a"),
                         f"({op} {fmt_literal(w)} a)", [w, sym("a", ia, xa)], fn, op)
        # Integer powers with negative weak exponents: NumPy raises.
        run_case(f"pow__{s}_wm2", binary_expr("pow", "a", "-2"), "(pow a -2)",
                 [sym("a", f"{s}_edges", x), -2], np.power, "pow")


def gen_where():
    names = list(DTYPES)
    c_bool = rng.integers(0, 2, 8).astype(bool)
    conds = {
        "b": c_bool,
        "i32": np.array([0, 1, -1, 0, 7, 0, 2**31 - 1, -(2**31)], np.int32),
        "f64": np.array([0.0, -0.0, np.nan, 1.0, 0.0, -np.inf, 5e-324, 0.0], np.float64),
    }
    for cname, c in conds.items():
        for da in names:
            for db in names:
                if cname != "b" and da != db:
                    continue
                if da not in FOCUS and db not in FOCUS:
                    continue
                sa, sb = SHORT[da], SHORT[db]
                a = pick_subset(da, 10).reshape(-1, 1)
                b = np.resize(EDGES[db][::-1], 8)
                run_case(f"where__c{cname}_{sa}_{sb}", "where(c, a, b)", "(where c a b)",
                         [sym("c", f"cond_{cname}", c), sym("a", f"{sa}_col10", a),
                          sym("b", f"{sb}_row8", b)], np.where, "where")
    for da in names:
        if da not in FOCUS:
            continue
        sa = SHORT[da]
        a = EDGES[da]
        cond = np.resize(c_bool, a.shape)
        for w in [0, 2.5, True, 3000000000]:
            run_case(f"where__{sa}_w{weak_name(w)}", f"where(c, a, {fmt_literal(w)})",
                     f"(where c a {fmt_literal(w)})",
                     [sym("c", f"cond_for_{sa}", cond), sym("a", f"{sa}_edges", a), w],
                     np.where, "where")
            run_case(f"where__w{weak_name(w)}_{sa}", f"where(c, {fmt_literal(w)}, a)",
                     f"(where c {fmt_literal(w)} a)",
                     [sym("c", f"cond_for_{sa}", cond), w, sym("a", f"{sa}_edges", a)],
                     np.where, "where")
    run_case("where__w1_w0", "where(c, 1, 0)", "(where c 1 0)",
             [sym("c", "cond_b", c_bool), 1, 0], np.where, "where")
    run_case("where__w1_w2p5", "where(c, 1, 2.5)", "(where c 1 2.5)",
             [sym("c", "cond_b", c_bool), 1, 2.5], np.where, "where")


def gen_astype():
    for da, ta in DTYPES.items():
        if da not in FOCUS and not FOCUS_CASTS:
            continue
        x = EDGES[da]
        if ta in (np.float32, np.float64):
            x = np.concatenate([x, random_floats(ta, 60) * 1e3]).astype(ta)
        elif ta is np.float16:
            x = np.concatenate([x, random_f16(60)]).astype(ta)
        for db, tb in DTYPES.items():
            if da not in FOCUS and db not in FOCUS:
                continue
            sa, sb = SHORT[da], SHORT[db]
            run_case(f"astype__{sa}_{sb}", f"astype(a, {db})", f"(astype {db} a)",
                     [sym("a", f"{sa}_cast", x)], lambda v, tb=tb: v.astype(tb), "astype")


def gen_sum():
    lengths = [0, 1, 5, 7, 8, 9, 16, 17, 127, 128, 129, 255, 256, 257, 1000, 4097]
    for dt, t in DTYPES.items():
        if dt not in FOCUS:
            continue
        s = SHORT[dt]
        for n in lengths:
            if t is np.bool_:
                x = rng.integers(0, 2, n).astype(bool)
            elif t in FLOATS:
                x = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n)).astype(t)
            else:
                x = random_ints(t, n)
            run_case(f"sum__{s}_n{n}", "sum(a)", "(sum a)", [sym("a", f"{s}_sum{n}", x)],
                     np.sum, "sum")
        run_case(f"sum__{s}_edges", "sum(a)", "(sum a)", [sym("a", f"{s}_edges", EDGES[dt])],
                 np.sum, "sum")
        if t is not np.bool_:
            x2 = np.resize(EDGES[dt], (3, 50)).astype(t)
            if t in FLOATS:
                x2 = np.where(np.isfinite(x2), x2, 1.0).astype(t)
            run_case(f"sum__{s}_2d", "sum(a)", "(sum a)", [sym("a", f"{s}_sum2d", x2)],
                     np.sum, "sum")


def gen_compound():
    f64 = random_floats(np.float64, 64)
    f32 = random_floats(np.float32, 64)
    i32 = random_ints(np.int32, 64)
    run_case("compound__sum_mul", "sum(a * 2.0)", "(sum (mul a 2.0))",
             [sym("a", "f32_c64", f32)], lambda a: np.sum(a * 2.0), "sum")
    run_case("compound__where_sqrt", "where(a > 0.0, sqrt(a), -a)",
             "(where (gt a 0.0) (sqrt a) (neg a))", [sym("a", "f64_c64", f64)],
             lambda a: np.where(a > 0.0, np.sqrt(a), -a), "where")
    run_case("compound__cast_add", "astype(a, float32) + b", "(add (astype float32 a) b)",
             [sym("a", "f64_c64", f64), sym("b", "f32_c64", f32)],
             lambda a, b: a.astype(np.float32) + b, "add")
    run_case("compound__int_poly", "(a * 3 + 1) // 2 % 7", "(rem (floordiv (add (mul a 3) 1) 2) 7)",
             [sym("a", "i32_c64", i32)], lambda a: (a * 3 + 1) // 2 % 7, "rem")
    # Shapes: 0-d with 1-D, empty with broadcasting.
    run_case("shape__0d_1d", "a + b", "(add a b)",
             [sym("a", "f64_0d", np.array(1.5)), sym("b", "f64_c64", f64)], np.add, "add")
    run_case("shape__empty", "a * b", "(mul a b)",
             [sym("a", "f64_empty", np.zeros((0, 1))), sym("b", "f64_c64", f64)],
             np.multiply, "mul")
    run_case("shape__mismatch", "a + b", "(add a b)",
             [sym("a", "f64_c64", f64), sym("b", "f64_three", np.zeros(3))], np.add, "add")


# ---- reductions --------------------------------------------------------------------------------

# (fusebox name, NumPy function, extra keyword arguments); `var1`/`std1` are ddof=1.
REDUCTIONS = [
    ("sum", np.sum, {}), ("prod", np.prod, {}), ("min", np.min, {}), ("max", np.max, {}),
    ("any", np.any, {}), ("all", np.all, {}), ("argmin", np.argmin, {}),
    ("argmax", np.argmax, {}), ("mean", np.mean, {}), ("var", np.var, {}),
    ("std", np.std, {}), ("var1", np.var, {"ddof": 1}), ("std1", np.std, {"ddof": 1}),
]


def axis_text(axis):
    """(expr keyword text, sexpr atom, case-name part) for an `axis` argument."""
    if axis is None:
        return "", "", "all"
    if isinstance(axis, int):
        return f", axis={axis}", f" axis={axis}", f"a{axis}".replace("-", "m")
    inner = ", ".join(str(a) for a in axis)
    return (f", axis=({inner})", " axis=[" + ",".join(str(a) for a in axis) + "]",
            "a" + ("".join(str(a) for a in axis) or "empty"))


def red_case(rname, fn, kw, iname, arr, axis, keepdims, prefix=""):
    base = rname.rstrip("1")
    ddof = kw.get("ddof", 0)
    ax_e, ax_s, ax_n = axis_text(axis)
    expr = f"{base}(a{ax_e}" + (f", ddof={ddof}" if ddof else "") + (
        ", keepdims=True" if keepdims else "") + ")"
    sexpr = f"({base} a{ax_s}" + (f" ddof={ddof}" if ddof else "") + (
        " keepdims" if keepdims else "") + ")"
    name = f"red_{rname}__{prefix}{iname}_{ax_n}" + ("_kd" if keepdims else "")

    def f(a):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # empty slices, ddof >= n
            return fn(a, axis=axis, keepdims=keepdims, **kw)

    run_case(name, expr, sexpr, [sym("a", iname, arr)], f, rname, "exact")


def reduction_inputs():
    """Per dtype: a 9x150 matrix (150 > 128: NumPy's pairwise sum splits the rows; 9 rows added
    one after another along axis 0), a 4x6x20 block, the edge values (NaN, inf, overflow), and
    edge values laid out 2-D so that some rows hold a NaN and others not."""
    out = {}
    for dt, t in DTYPES.items():
        if dt not in FOCUS:
            continue
        s = SHORT[dt]
        if t is np.bool_:
            m = rng.integers(0, 2, (9, 150)).astype(bool)
            m[3] = False
            m[5] = True
            c = rng.integers(0, 2, (4, 6, 20)).astype(bool)
        elif t in FLOATS:
            m = (rng.standard_normal((9, 150)) * 10.0 ** rng.uniform(-3, 3, (9, 150))).astype(t)
            c = (rng.standard_normal((4, 6, 20)) * 10.0 ** rng.uniform(-2, 2, (4, 6, 20))).astype(t)
        else:
            m = random_ints(t, 9 * 150).reshape(9, 150)
            c = random_ints(t, 480).reshape(4, 6, 20)
        e = EDGES[dt]
        e2 = np.resize(e, (5, 8)).astype(t)
        if t in FLOATS:
            e2[1] = np.where(np.isnan(e2[1]), 1.0, e2[1])  # some rows without NaN
            e2[2] = np.where(np.isnan(e2[2]), 2.0, e2[2])
        out[dt] = [(f"{s}_red9x150", m), (f"{s}_red4x6x20", c), (f"{s}_edges", e),
                   (f"{s}_red_edges2d", e2)]
    return out


def gen_reductions(focused_only=False):
    inputs = reduction_inputs()
    for dt, t in DTYPES.items():
        if dt not in FOCUS:
            continue
        s = SHORT[dt]
        (mn, m), (cn, c), (en, e), (e2n, e2) = inputs[dt]
        for rname, fn, kw in REDUCTIONS:
            for axis in [None, 0, 1, -1, (0, 1), ()]:
                red_case(rname, fn, kw, mn, m, axis, False)
            for axis in [None, 1, (0, 1)]:
                red_case(rname, fn, kw, mn, m, axis, True)
            for axis in [None, 2, 1, (0, 2), (1, 2), (0, 1), (0, 1, 2), -3]:
                red_case(rname, fn, kw, cn, c, axis, False)
            red_case(rname, fn, kw, en, e, None, False)
            red_case(rname, fn, kw, en, e, 0, True)
            red_case(rname, fn, kw, en, e, (), False)  # sum: 0.0 + x, so -0.0 becomes 0.0
            for axis in [None, 0, 1]:
                red_case(rname, fn, kw, e2n, e2, axis, False)
            # Empty operands: the reduced extent 0 (identity, NaN, or NumPy's error) or the
            # kept extent 0 (an empty result, never an error).
            for shape in [(0,), (0, 3), (3, 0)]:
                z = np.zeros(shape, t)
                zn = f"{s}_empty" + "x".join(map(str, shape))
                for axis in ([None, 0] if len(shape) == 1 else [None, 0, 1, -1]):
                    red_case(rname, fn, kw, zn, z, axis, False)
                red_case(rname, fn, kw, zn, z, 0, True)
            # 0-d operands: axis=None, axis=() and an axis that does not exist.
            z0 = np.array(EDGES[dt][1], t)
            for axis in [None, (), 0]:
                red_case(rname, fn, kw, f"{s}_red0d", z0, axis, False)
            red_case(rname, fn, kw, f"{s}_red0d", z0, None, True)
            # Out-of-range and repeated axes.
            red_case(rname, fn, kw, mn, m, 2, False)
            red_case(rname, fn, kw, mn, m, (1, -1), False)
    if focused_only:
        return
    # Length-1 axes: NumPy's iterator drops them, so a (9, 1) column sums pairwise like a row.
    for dt in ("float32", "float64"):
        s = SHORT[dt]
        m = inputs[dt][0][1]
        col, mid = np.ascontiguousarray(m[:, :1]), np.ascontiguousarray(m.reshape(9, 1, 150))
        for rname, fn, kw in REDUCTIONS:
            for axis in [0, None]:
                red_case(rname, fn, kw, f"{s}_red9x1", col, axis, False)
            for axis in [(0, 2), 2, 0, (0, 1)]:
                red_case(rname, fn, kw, f"{s}_red9x1x150", mid, axis, False)
    # Integer wrapping: sum and prod of int64 that overflow, of int32 that overflow int32 only.
    big = np.array([2**62, 2**62, 2**62, 3, -5], np.int64)
    for rname, fn, kw in REDUCTIONS[:2]:
        red_case(rname, fn, kw, "i64_wrap", big, None, False)
        red_case(rname, fn, kw, "i32_big", np.array([2**31 - 1] * 3 + [65536, 65536], np.int32),
                 None, False)
    # NumPy casts integers to float64 through its 8192-element buffer: mean/var/std of more
    # than 8192 large int64 values round by chunk.
    wide = np.random.default_rng(8192).integers(-2**62, 2**62, (2, 20000))  # own stream
    for rname, fn, kw in [REDUCTIONS[8], REDUCTIONS[9], REDUCTIONS[12]]:
        for axis in [None, 1, 0]:
            red_case(rname, fn, kw, "i64_red2x20000", wide, axis, False)
    # Longer runs: f32 sums of 100,000 values along the contiguous axis and across rows.
    long = (rng.standard_normal((4, 25000)) * 10.0 ** rng.uniform(-3, 3, (4, 25000))).astype(
        np.float32)
    for rname, fn, kw in [REDUCTIONS[0], REDUCTIONS[8], REDUCTIONS[10]]:
        for axis in [None, 0, 1]:
            red_case(rname, fn, kw, "f32_red4x25000", long, axis, False)


def gen_done_when():
    """The expressions issue 4 is done with, on both float dtypes."""
    for dt in ("float32", "float64"):
        t = DTYPES[dt]
        s = SHORT[dt]
        x = random_floats(t, 1000)
        a = (rng.standard_normal((9, 150)) * 3).astype(t)
        b = (rng.standard_normal((9, 150)) * 3).astype(t)
        run_case(f"red_done__sum_sq_{s}", "sum(x * x)", "(sum (mul x x))",
                 [sym("x", f"{s}_done_x", x)], lambda x: np.sum(x * x), "sum", "exact")
        run_case(f"red_done__mean_a0_{s}", "mean(a, axis=0)", "(mean a axis=0)",
                 [sym("a", f"{s}_done_a", a)], lambda a: np.mean(a, axis=0), "mean", "exact")
        run_case(f"red_done__maxabs_a1_{s}", "max(abs(a - b), axis=1)",
                 "(max (abs (sub a b)) axis=1)",
                 [sym("a", f"{s}_done_a", a), sym("b", f"{s}_done_b", b)],
                 lambda a, b: np.max(np.abs(a - b), axis=1), "max", "exact")
        run_case(f"red_done__standardize_{s}", "(x - mean(x)) / std(x)",
                 "(div (sub x (mean x)) (std x))", [sym("x", f"{s}_done_x", x)],
                 lambda x: (x - np.mean(x)) / np.std(x), "div", "exact")
        # exp differs from NumPy's by up to ULP_TOL; the sum of exps carries that along.
        tol = f"ulp:{ULP_TOL.get(('exp', dt), 0) + 2}"
        run_case(f"red_done__softmax_{s}", "exp(x - max(x)) / sum(exp(x - max(x)))",
                 "(div (exp (sub x (max x))) (sum (exp (sub x (max x)))))",
                 [sym("x", f"{s}_done_x", x)],
                 lambda x: np.exp(x - np.max(x)) / np.sum(np.exp(x - np.max(x))), "exp", tol)


def gen_survey(n=200_000):
    """Many random inputs per transcendental, for measuring ULP bounds (not committed)."""
    for dt in ("float32", "float64"):
        t = DTYPES[dt]
        s = SHORT[dt]
        x = np.concatenate([
            random_floats(t, n // 2),
            rng.uniform(-1.0, 1.0, n // 4),
            rng.uniform(1.0, 1e4, n // 4),
        ]).astype(t)
        for op in sorted(TRANSCENDENTAL_UNARY):
            run_case(f"{op}__{s}_survey", unary_expr(op, "a"), f"({op} a)",
                     [sym("a", f"{s}_survey_x", x)], UNARY[op][0], op)
        a, b = random_floats(t, n), random_floats(t, n)
        for op in sorted(TRANSCENDENTAL_BINARY):
            if op == "pow":
                args = [sym("a", f"{s}_survey_pos", np.abs(a)),
                        sym("b", f"{s}_survey_exp", (b / 10).astype(t))]
            else:
                args = [sym("a", f"{s}_survey_a", a), sym("b", f"{s}_survey_b", b)]
            run_case(f"{op}__{s}_survey", binary_expr(op, "a", "b"), f"({op} a b)", args,
                     BINARY[op][0], op)


# The dtypes the per-dtype generators cover (every one by default; `--ints`: the integer
# types of issue 17, with their pairs against every dtype).
FOCUS = set(DTYPES)
FOCUS_CASTS = False

INT_EDGES = {
    "int8": [0, 1, -1, 2, -2, 3, -7, 7, 8, 9, 100, -100, 127, -128, -127, 126],
    "int16": [0, 1, -1, 2, -2, 3, -7, 7, 15, 16, 17, 300, -300, 2**15 - 1, -(2**15), -(2**15) + 1],
    "uint8": [0, 1, 2, 3, 7, 8, 9, 100, 127, 128, 200, 254, 255],
    "uint16": [0, 1, 2, 3, 7, 15, 16, 17, 300, 2**15, 2**16 - 2, 2**16 - 1],
    "uint32": [0, 1, 2, 3, 7, 31, 32, 33, 100, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1,
               16777217],
    "uint64": [0, 1, 2, 3, 7, 63, 64, 65, 100, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1,
               2**53 + 1, 2**32, 3037000500],
}
INT_SHORT = {"int8": "i8", "int16": "i16", "uint8": "u8", "uint16": "u16", "uint32": "u32",
             "uint64": "u64"}


def setup_ints():
    """`--ints`: add the six integer dtypes and focus every generator on them."""
    global FOCUS, FOCUS_CASTS, rng
    for name, edges in INT_EDGES.items():
        t = getattr(np, name)
        DTYPES[name] = t
        SHORT[name] = INT_SHORT[name]
        EDGES[name] = np.array(edges, t)
        bits = np.iinfo(t).bits
        POW_EXPONENTS[name] = np.array([0, 1, 2, 3, 7, bits - 1, bits, bits + 1], t)
    FOCUS = set(INT_EDGES)
    rng = np.random.default_rng(20261203)


F16_EDGES = [
    np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 1.5, 3.0, -7.0, 0.1,
    -3.7, 100.0, 65504.0, -65504.0, 6.1035e-05, 6e-08, -6e-08, 1e-05, 2049.0, 0.3333, 11.5,
    1000.0, -1000.0, 255.0, 256.5, 1e4, 3e4, -2e4,
]


def setup_f16():
    """`--f16`: float16 with its pairs against every dtype (the integer types included)."""
    global FOCUS, FOCUS_CASTS, rng
    setup_ints()
    DTYPES["float16"] = np.float16
    SHORT["float16"] = "f16"
    EDGES["float16"] = np.array(F16_EDGES, np.float16)
    FOCUS = {"float16"}
    rng = np.random.default_rng(20261216)


def main():
    global ROOT, IN, OUT, ULP_TOL
    survey = len(sys.argv) == 3 and sys.argv[1] == "--survey"
    ints = len(sys.argv) == 2 and sys.argv[1] == "--ints"
    f16 = len(sys.argv) == 2 and sys.argv[1] == "--f16"
    if f16:
        ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden_f16")
        IN, OUT = os.path.join(ROOT, "in"), os.path.join(ROOT, "out")
        setup_f16()
    if ints:
        ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden_ints")
        IN, OUT = os.path.join(ROOT, "in"), os.path.join(ROOT, "out")
        setup_ints()
    if survey:
        ROOT = os.path.abspath(sys.argv[2])
        IN, OUT = os.path.join(ROOT, "in"), os.path.join(ROOT, "out")
        ULP_TOL = {}  # report every distance; the survey never fails on tolerance
    elif len(sys.argv) != 1 and not (ints or f16):
        sys.exit("usage: gen_golden.py [--survey DIR | --ints | --f16]")
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(IN)
    os.makedirs(OUT)
    if survey:
        gen_survey()
    elif ints:
        gen_unary()
        gen_binary()
        gen_weak()
        gen_astype()
        gen_sum()
    elif f16:
        gen_unary()
        gen_binary()
        gen_weak()
        gen_where()
        gen_astype()
        gen_sum()
        gen_reductions(focused_only=True)
    else:
        gen_unary()
        gen_binary()
        gen_weak()
        gen_where()
        gen_astype()
        gen_sum()
        gen_compound()
        gen_reductions()
        gen_done_when()
    with open(os.path.join(ROOT, "manifest.tsv"), "w") as f:
        f.write("# name\texpr\tsexpr\tbindings\texpected\ttol  (generated by "
                "tests/numpy/gen_golden.py with NumPy " + np.__version__ + ")\n")
        for c in cases:
            assert all("\t" not in x and "\n" not in x for x in c), c
            f.write("\t".join(c) + "\n")
    total = sum(os.path.getsize(os.path.join(d, x)) for d in (IN, OUT) for x in os.listdir(d))
    errors = sum(1 for c in cases if c[4] == "error")
    print(f"{len(cases)} cases ({errors} NumPy errors), {len(inputs)} inputs, {total} bytes")


if __name__ == "__main__":
    main()
