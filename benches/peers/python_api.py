#!/usr/bin/env python3
"""fusebox's Python API against numexpr and NumPy, on the BENCHMARKS.md cases.

Set-up: a venv with numpy, numexpr, pandas and fusebox built with the release profile
        (`pip install ./python`, which is pyproject.toml's default profile).
Run:    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/peers/python_api.py
Env:    BENCH_SIZES=1e3,1e4,... (default 1e3..1e8), BENCH_THREADS (default: all cores, for
        fusebox and numexpr alike), BENCH_JSON=FILE (raw records).

Cases (float64): add1 `x + 1`, poly `(5.0*x + 4.0)*x + 1.0`, gauss (the seed's Gaussian,
x = linspace(-5, 5, n)), sumsq `sum(x*x)`, two `2*a + 3*b*b - a/b` (b in [1, 2)).
Each is timed as fusebox.evaluate and numexpr.evaluate, with a fresh result and with out=,
and NumPy eager (and NumPy with out= where ufuncs allow it); "copy" is `np.copyto` of one
input into an existing array, the machine's limit for one pass over n elements. Then `df.eval` with
engine="numexpr" and engine="fusebox", and the per-call overhead at n = 1e3 (evaluate with
the same expression and arrays each call; re_evaluate; a compiled function).

Timing: each sample is the mean of back-to-back calls lasting >= 0.2 s (at least one call);
the reported time is the median of 5 samples (3 at 1e8). gc is off while timing.
"""

import gc
import json
import os
import statistics
import sys
import time

import numpy as np

import fusebox

try:
    import numexpr as ne
except ImportError:  # pragma: no cover
    ne = None

SIZES = [int(float(s)) for s in os.environ.get("BENCH_SIZES", "1e3,1e4,1e5,1e6,1e7,1e8").split(",")]
THREADS = int(os.environ.get("BENCH_THREADS", "0")) or fusebox.detect_number_of_cores()
MU, SIGMA = -1.33, 1.25

CASES = {
    "add1": "x + 1",
    "poly": "(5.0*x + 4.0)*x + 1.0",
    "gauss": "1/(1.25*sqrt(2*pi)) * exp(-(x - -1.33)**2/(2*1.25**2))",
    "sumsq": "sum(x*x)",
    "two": "2*a + 3*b*b - a/b",
}


def numpy_fns(case, env, out):
    x, a, b = env.get("x"), env.get("a"), env.get("b")
    if case == "add1":
        return (lambda: x + 1), (lambda: np.add(x, 1, out=out))
    if case == "poly":
        def po():
            np.multiply(x, 5.0, out=out)
            np.add(out, 4.0, out=out)
            np.multiply(out, x, out=out)
            np.add(out, 1.0, out=out)
        return (lambda: (5.0 * x + 4.0) * x + 1.0), po
    if case == "gauss":
        c = 1 / (SIGMA * np.sqrt(2 * np.pi))
        d = 2 * SIGMA**2

        def go():
            np.subtract(x, MU, out=out)
            np.multiply(out, out, out=out)
            np.divide(out, -d, out=out)
            np.exp(out, out=out)
            np.multiply(out, c, out=out)
        return (lambda: 1 / (SIGMA * np.sqrt(2 * np.pi)) * np.exp(-((x - MU) ** 2) / (2 * SIGMA**2))), go
    if case == "sumsq":
        return (lambda: np.sum(x * x)), (lambda: np.dot(x, x))
    if case == "two":
        def to():
            np.multiply(b, b, out=out)
            np.multiply(out, 3, out=out)
            np.add(out, 2 * a, out=out)
            np.subtract(out, a / b, out=out)
        return (lambda: 2 * a + 3 * b * b - a / b), to
    raise KeyError(case)


def bench(f, n):
    f()
    target = 0.2
    samples = 3 if n >= 10**8 else 5
    t0 = time.perf_counter()
    f()
    one = max(time.perf_counter() - t0, 1e-9)
    number = max(1, int(target / one))
    out = []
    gc.disable()
    try:
        for _ in range(samples):
            t = time.perf_counter()
            for _ in range(number):
                f()
            out.append((time.perf_counter() - t) / number)
    finally:
        gc.enable()
    return statistics.median(out)


def fmt(t):
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def run_arrays(records):
    fusebox.set_num_threads(THREADS)
    if ne is not None:
        ne.set_num_threads(THREADS)
    print(f"threads: {THREADS}; numexpr {getattr(ne, '__version__', '-')}, numpy {np.__version__}")
    header = ("| case | n | fusebox | fusebox out= | numexpr | numexpr out= | NumPy | NumPy out= "
              "| copy (limit) |")
    print(header)
    print("|---|---|---|---|---|---|---|---|---|")
    for n in SIZES:
        rng = np.random.default_rng(0)
        env = {"x": np.linspace(-5, 5, n), "a": rng.random(n), "b": rng.uniform(1, 2, n)}
        out = np.empty(n)
        for case, ex in CASES.items():
            names = fusebox._core.names(ex)
            local = {k: env[k] for k in names}
            if "pi" in ex:
                local["pi"] = np.pi  # numexpr has no `pi`; fusebox's constant is the same value
            scalar = case == "sumsq"
            o = np.empty(()) if scalar else out
            row = {"case": case, "n": n}
            row["fusebox"] = bench(lambda: fusebox.evaluate(ex, local, {}), n)
            row["fusebox_out"] = bench(lambda: fusebox.evaluate(ex, local, {}, out=o), n)
            if ne is not None:
                row["numexpr"] = bench(lambda: ne.evaluate(ex, local, {}), n)
                row["numexpr_out"] = bench(lambda: ne.evaluate(ex, local, {}, out=o), n)
            alloc, into = numpy_fns(case, env, out)
            row["numpy"] = bench(alloc, n)
            row["numpy_out"] = bench(into, n)
            # The machine's limit for one pass: copy one input into an existing buffer.
            row["copy"] = bench(lambda: np.copyto(out, env["a"]), n)
            records.append(row)
            print(
                f"| {case} | {n:.0e} | {fmt(row['fusebox'])} | {fmt(row['fusebox_out'])} | "
                f"{fmt(row.get('numexpr', float('nan')))} | {fmt(row.get('numexpr_out', float('nan')))} | "
                f"{fmt(row['numpy'])} | {fmt(row['numpy_out'])}{' (dot)' if scalar else ''} | "
                f"{fmt(row['copy'])} |",
                flush=True,
            )
        del env, out


def run_overhead(records):
    x = np.linspace(0, 1, 1000)
    ex = "(5.0*x + 4.0)*x + 1.0"
    out = np.empty_like(x)
    f = fusebox.compile(ex, {"x": "float64"})

    def fb_frame(x=x):  # `x` is a local of the calling frame, found there as numexpr does
        return fusebox.evaluate("(5.0*x + 4.0)*x + 1.0")

    def ne_frame(x=x):
        return ne.evaluate("(5.0*x + 4.0)*x + 1.0")

    rows = {
        "fusebox.evaluate (frame lookup)": fb_frame,
        "fusebox.evaluate(local_dict)": lambda: fusebox.evaluate(ex, {"x": x}, {}),
        "fusebox.evaluate out=": lambda: fusebox.evaluate(ex, {"x": x}, {}, out=out),
        "fusebox.re_evaluate": None,
        "fusebox compiled f(x)": lambda: f(x),
        "NumPy poly": lambda: (5.0 * x + 4.0) * x + 1.0,
    }
    fusebox.validate(ex, {"x": x}, {})
    rows["fusebox.re_evaluate"] = lambda: fusebox.re_evaluate({"x": x}, {})
    if ne is not None:
        rows["numexpr.evaluate (frame lookup)"] = ne_frame
        rows["numexpr.evaluate(local_dict)"] = lambda: ne.evaluate(ex, {"x": x}, {})
        rows["numexpr.evaluate out="] = lambda: ne.evaluate(ex, {"x": x}, {}, out=out)
        ne.validate(ex, {"x": x}, {})
        rows["numexpr.re_evaluate"] = lambda: ne.re_evaluate({"x": x}, {})
    fusebox.set_num_threads(1)
    if ne is not None:
        ne.set_num_threads(1)
    print("\nper call, poly at n = 1e3, one thread:")
    print("| call | time |")
    print("|---|---|")
    for name, fn in rows.items():
        t = min(bench(fn, 1000) for _ in range(3))
        records.append({"overhead": name, "seconds": t})
        print(f"| {name} | {t * 1e6:.2f} us |", flush=True)
    fusebox.set_num_threads(THREADS)
    if ne is not None:
        ne.set_num_threads(THREADS)


def run_pandas(records):
    try:
        import pandas as pd
    except ImportError:
        return
    import fusebox.pandas

    fusebox.pandas.register()
    print("\ndf.eval('2*a + 3*b*b - a/b'):")
    print("| rows | engine=numexpr | engine=fusebox | engine=python |")
    print("|---|---|---|---|")
    for n in [s for s in SIZES if s <= 10**7]:
        rng = np.random.default_rng(0)
        df = pd.DataFrame({"a": rng.random(n), "b": rng.uniform(1, 2, n)})
        row = {"df_eval": n}
        for engine in ("numexpr", "fusebox", "python"):
            if engine == "numexpr" and ne is None:
                continue
            row[engine] = bench(lambda: df.eval("2*a + 3*b*b - a/b", engine=engine), n)
        records.append(row)
        print(f"| {n:.0e} | {fmt(row.get('numexpr', float('nan')))} | {fmt(row['fusebox'])} | {fmt(row['python'])} |", flush=True)


def main():
    records = []
    run_overhead(records)
    run_arrays(records)
    run_pandas(records)
    path = os.environ.get("BENCH_JSON")
    if path:
        with open(path, "w") as f:
            json.dump(records, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
