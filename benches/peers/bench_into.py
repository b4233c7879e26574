#!/usr/bin/env python3
"""Peers on fusebox's bench cases, for a side-by-side table with `fusebox bench`.

Run right after the fusebox bench, on the same machine, with the same thread count:

    cargo run --release -- bench --threads 2 --sizes 1000000,100000000 \\
        --impls fused,fused-into,copy,copy-into --json > fusebox.json
    OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 NUMEXPR_NUM_THREADS=2 \\
        python3 benches/peers/bench_into.py --sizes 1e6,1e8 --json peers.json
    python3 benches/peers/bench_into.py --table fusebox.json peers.json

Implementations (each case as its own library writes it best):
  numpy-out    NumPy ufuncs with out= (preallocated output and, where a chain needs one, a
               preallocated temporary); reductions as NumPy spells them (dot for sumsq)
  numpy        NumPy eager: the expression as written, fresh temporaries and result
  numexpr-out  numexpr.evaluate(..., out=) (the reductions of softmax and standardize by NumPy)
  numexpr      numexpr.evaluate with a fresh result
  numba-out    Numba @njit(parallel=True) prange loops writing into out=
  jax          jax.jit on the CPU (float64 enabled); JAX returns a fresh array (no out=)

Cases: copy add1 poly gauss sumsq two (1-D float64, x = linspace(-5, 5, n), b in [1, 2));
rowbcast `X + v`, colbcast `X + c`, softmax (rows), standardize `(X - mean0) / std0`
(X of n/1000 rows of 1000); gauss32 (float32); relu_mix `where(a > 0, a, 0.01*a) + b`
(a float32, b float64); add_u8 `x + b` on uint8 (wrapping), 3 bytes per element.

Timing: a warm-up call, then samples of back-to-back calls lasting >= 0.05 s; the median of
7 samples (5 above 50 ms per call, 3 above 0.4 s). gc is off while timing.
"""
import argparse
import gc
import json
import math
import os
import statistics
import sys
import time

MU, SIGMA = -1.33, 1.25
C = 1.0 / (SIGMA * math.sqrt(2.0 * math.pi))
D = 1.0 / (2.0 * SIGMA * SIGMA)
COLS = 1000
CASES = ["copy", "add1", "poly", "gauss", "sumsq", "two", "rowbcast", "colbcast", "softmax",
         "standardize", "gauss32", "relu_mix", "add_u8"]
IMPLS = ["numpy-out", "numpy", "numexpr-out", "numexpr", "numba-out", "jax"]
BYTES = {"sumsq": 8, "gauss32": 8, "two": 24, "relu_mix": 20, "add_u8": 3}


def inputs(np, case, n):
    rows = max(1, n // COLS)
    x = np.linspace(-5.0, 5.0, n)
    b = 1.0 + (np.arange(n) % 1000) / 1000.0
    grid = np.linspace(-5.0, 5.0, rows * COLS).reshape(rows, COLS)
    ramp = lambda k: (np.arange(k) % 97) * 0.01
    if case in ("rowbcast",):
        return {"x": grid, "v": ramp(COLS)}
    if case == "colbcast":
        return {"x": grid, "c": ramp(rows).reshape(rows, 1)}
    if case in ("softmax", "standardize"):
        return {"x": grid}
    if case == "gauss32":
        return {"x": np.linspace(-5.0, 5.0, n, dtype=np.float32)}
    if case == "relu_mix":
        return {"x": np.linspace(-5.0, 5.0, n).astype(np.float32), "b": b}
    if case == "two":
        return {"x": x, "b": b}
    if case == "add_u8":
        i = np.arange(n)
        return {"x": (i % 251).astype(np.uint8), "b": (i * 7 % 256).astype(np.uint8)}
    return {"x": x}


def result_like(np, case, a):
    x = a["x"]
    if case == "sumsq":
        return None
    if case == "relu_mix":
        return np.empty(x.shape, np.float64)
    return np.empty_like(x)


# ---- NumPy --------------------------------------------------------------------------------
def numpy_out(np, case, a):
    x = a["x"]
    out = result_like(np, case, a)
    tmp = np.empty_like(out) if out is not None else None
    if case == "copy":
        return lambda: np.copyto(out, x)
    if case == "add1":
        return lambda: np.add(x, 1.0, out=out)
    if case == "add_u8":
        return lambda: np.add(x, a["b"], out=out)
    if case == "poly":
        def f():
            np.multiply(x, 5.0, out=out); np.add(out, 4.0, out=out)
            np.multiply(out, x, out=out); np.add(out, 1.0, out=out)
        return f
    if case in ("gauss", "gauss32"):
        t = x.dtype.type
        def f():
            np.subtract(x, t(MU), out=out); np.square(out, out=out)
            np.multiply(out, t(-D), out=out); np.exp(out, out=out)
            np.multiply(out, t(C), out=out)
        return f
    if case == "sumsq":
        return lambda: np.dot(x, x)
    if case == "two":
        b = a["b"]
        def f():
            np.multiply(b, b, out=out); np.multiply(out, 3.0, out=out)
            np.multiply(x, 2.0, out=tmp); np.add(out, tmp, out=out)
            np.divide(x, b, out=tmp); np.subtract(out, tmp, out=out)
        return f
    if case == "rowbcast":
        return lambda: np.add(x, a["v"], out=out)
    if case == "colbcast":
        return lambda: np.add(x, a["c"], out=out)
    if case == "softmax":
        m = np.empty((x.shape[0], 1))
        s = np.empty((x.shape[0], 1))
        def f():
            np.max(x, axis=1, keepdims=True, out=m); np.subtract(x, m, out=out)
            np.exp(out, out=out); np.sum(out, axis=1, keepdims=True, out=s)
            np.divide(out, s, out=out)
        return f
    if case == "standardize":
        mu = np.empty(x.shape[1])
        sd = np.empty(x.shape[1])
        def f():
            np.mean(x, axis=0, out=mu); np.std(x, axis=0, out=sd)
            np.subtract(x, mu, out=out); np.divide(out, sd, out=out)
        return f
    if case == "relu_mix":
        b = a["b"]
        t32 = np.empty_like(x)
        def f():
            # where(a > 0, a, 0.01*a) == maximum(a, 0.01*a), NaN and -0.0 included
            np.multiply(x, np.float32(0.01), out=t32); np.maximum(x, t32, out=t32)
            np.add(t32, b, out=out)
        return f


def numpy_eager(np, case, a):
    x = a["x"]
    return {
        "copy": lambda: x.copy(),
        "add1": lambda: x + 1.0,
        "poly": lambda: (5.0 * x + 4.0) * x + 1.0,
        "gauss": lambda: C * np.exp(-(x - MU) ** 2 * D),
        "gauss32": lambda: np.float32(C) * np.exp(-(x - np.float32(MU)) ** 2 * np.float32(D)),
        "sumsq": lambda: (x * x).sum(),
        "two": lambda: 2 * x + 3 * a.get("b") * a.get("b") - x / a.get("b"),
        "rowbcast": lambda: x + a.get("v"),
        "colbcast": lambda: x + a.get("c"),
        "softmax": lambda: (lambda e: e / e.sum(axis=1, keepdims=True))(
            np.exp(x - x.max(axis=1, keepdims=True))),
        "standardize": lambda: (x - x.mean(axis=0)) / x.std(axis=0),
        "relu_mix": lambda: np.where(x > 0, x, np.float32(0.01) * x) + a.get("b"),
        "add_u8": lambda: x + a.get("b"),
    }[case]


# ---- numexpr ------------------------------------------------------------------------------
NE = {
    "copy": "x", "add1": "x + 1", "poly": "(5.0*x + 4.0)*x + 1.0",
    "gauss": f"{C!r} * exp(-(x - {MU!r})**2 * {D!r})",
    "gauss32": "c32 * exp(-(x - mu32)**2 * d32)",
    "sumsq": "sum(x*x)", "two": "2*x + 3*b*b - x/b", "rowbcast": "x + v", "colbcast": "x + c",
    "relu_mix": "where(x > 0, x, f32 * x) + b",
}


def numexpr_fn(np, ne, case, a, use_out):
    out = result_like(np, case, a) if use_out else None
    env = dict(a)
    env.update(c32=np.float32(C), mu32=np.float32(MU), d32=np.float32(D), f32=np.float32(0.01))
    x = a["x"]
    if case == "add_u8":
        return None  # numexpr has no uint8 arithmetic (it upcasts to int32: other bytes)
    if case == "softmax":
        m = np.empty((x.shape[0], 1))
        def f():
            np.max(x, axis=1, keepdims=True, out=m)
            e = ne.evaluate("exp(x - m)", local_dict={"x": x, "m": m}, out=out)
            s = e.sum(axis=1, keepdims=True)
            return ne.evaluate("e / s", local_dict={"e": e, "s": s}, out=e)
        return f
    if case == "standardize":
        def f():
            mu, sd = x.mean(axis=0), x.std(axis=0)
            return ne.evaluate("(x - mu) / sd", local_dict={"x": x, "mu": mu, "sd": sd}, out=out)
        return f
    src = NE[case]
    if out is None or case == "sumsq":
        return lambda: ne.evaluate(src, local_dict=env)
    return lambda: ne.evaluate(src, local_dict=env, out=out)


# ---- Numba --------------------------------------------------------------------------------
def numba_fn(np, case, a):
    from numba import njit, prange
    x = a["x"]
    out = result_like(np, case, a)
    if case == "copy":
        @njit(parallel=True)
        def k(x, out):
            for i in prange(x.shape[0]):
                out[i] = x[i]
        return lambda: k(x, out)
    if case == "add1":
        @njit(parallel=True)
        def k(x, out):
            for i in prange(x.shape[0]):
                out[i] = x[i] + 1.0
        return lambda: k(x, out)
    if case == "poly":
        @njit(parallel=True)
        def k(x, out):
            for i in prange(x.shape[0]):
                v = x[i]
                out[i] = (5.0 * v + 4.0) * v + 1.0
        return lambda: k(x, out)
    if case in ("gauss", "gauss32"):
        t = x.dtype.type
        c, mu, d = t(C), t(MU), t(D)
        @njit(parallel=True)
        def k(x, out, c, mu, d):
            for i in prange(x.shape[0]):
                v = x[i] - mu
                out[i] = c * np.exp(-(v * v) * d)
        return lambda: k(x, out, c, mu, d)
    if case == "sumsq":
        @njit(parallel=True, fastmath=True)
        def k(x):
            s = 0.0
            for i in prange(x.shape[0]):
                s += x[i] * x[i]
            return s
        return lambda: k(x)
    if case == "two":
        b = a["b"]
        @njit(parallel=True)
        def k(x, b, out):
            for i in prange(x.shape[0]):
                out[i] = 2 * x[i] + 3 * b[i] * b[i] - x[i] / b[i]
        return lambda: k(x, b, out)
    if case == "rowbcast":
        v = a["v"]
        @njit(parallel=True)
        def k(x, v, out):
            for i in prange(x.shape[0]):
                for j in range(x.shape[1]):
                    out[i, j] = x[i, j] + v[j]
        return lambda: k(x, v, out)
    if case == "colbcast":
        c = a["c"]
        @njit(parallel=True)
        def k(x, c, out):
            for i in prange(x.shape[0]):
                ci = c[i, 0]
                for j in range(x.shape[1]):
                    out[i, j] = x[i, j] + ci
        return lambda: k(x, c, out)
    if case == "softmax":
        @njit(parallel=True, fastmath=False)
        def k(x, out):
            for i in prange(x.shape[0]):
                m = x[i, 0]
                for j in range(x.shape[1]):
                    m = max(m, x[i, j])
                s = 0.0
                for j in range(x.shape[1]):
                    e = np.exp(x[i, j] - m)
                    out[i, j] = e
                    s += e
                for j in range(x.shape[1]):
                    out[i, j] /= s
        return lambda: k(x, out)
    if case == "standardize":
        @njit(parallel=True)
        def k(x, out):
            r, cc = x.shape
            nb = (cc + 63) // 64
            mu = np.zeros(cc)
            sd = np.zeros(cc)
            for blk in prange(nb):
                lo, hi = blk * 64, min(cc, blk * 64 + 64)
                for i in range(r):
                    for j in range(lo, hi):
                        mu[j] += x[i, j]
                for j in range(lo, hi):
                    mu[j] /= r
                for i in range(r):
                    for j in range(lo, hi):
                        d = x[i, j] - mu[j]
                        sd[j] += d * d
                for j in range(lo, hi):
                    sd[j] = np.sqrt(sd[j] / r)
            for i in prange(r):
                for j in range(cc):
                    out[i, j] = (x[i, j] - mu[j]) / sd[j]
        return lambda: k(x, out)
    if case == "add_u8":
        b = a["b"]
        @njit(parallel=True)
        def k(x, b, out):
            for i in prange(x.shape[0]):
                out[i] = x[i] + b[i]
        return lambda: k(x, b, out)
    if case == "relu_mix":
        b = a["b"]
        f = np.float32(0.01)
        @njit(parallel=True)
        def k(x, b, out, f):
            for i in prange(x.shape[0]):
                v = x[i]
                out[i] = (v if v > 0 else f * v) + b[i]
        return lambda: k(x, b, out, f)


# ---- JAX ----------------------------------------------------------------------------------
def jax_fn(case, a):
    import jax
    import jax.numpy as jnp
    args = [jax.device_put(a[k]) for k in sorted(a)]  # b/c/v, then x (alphabetical)
    names = sorted(a)
    def body(*vals):
        e = dict(zip(names, vals))
        x = e["x"]
        if case == "copy":
            return x + 0
        if case == "add1":
            return x + 1.0
        if case == "add_u8":
            return x + e["b"]
        if case == "poly":
            return (5.0 * x + 4.0) * x + 1.0
        if case in ("gauss", "gauss32"):
            t = x.dtype
            return jnp.asarray(C, t) * jnp.exp(-(x - jnp.asarray(MU, t)) ** 2 * jnp.asarray(D, t))
        if case == "sumsq":
            return jnp.sum(x * x)
        if case == "two":
            b = e["b"]
            return 2 * x + 3 * b * b - x / b
        if case == "rowbcast":
            return x + e["v"]
        if case == "colbcast":
            return x + e["c"]
        if case == "softmax":
            ex = jnp.exp(x - jnp.max(x, axis=1, keepdims=True))
            return ex / jnp.sum(ex, axis=1, keepdims=True)
        if case == "standardize":
            return (x - jnp.mean(x, axis=0)) / jnp.std(x, axis=0)
        if case == "relu_mix":
            return jnp.where(x > 0, x, jnp.float32(0.01) * x) + e["b"]
    f = jax.jit(body)
    return lambda: f(*args).block_until_ready()


def timeit(fn):
    fn()
    t0 = time.perf_counter(); fn(); t1 = time.perf_counter() - t0
    number = max(1, min(100000, int(0.05 / max(t1, 1e-9))))
    repeat = 7 if t1 < 0.05 else (5 if t1 < 0.4 else 3)
    samples = []
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - t0) / number)
    finally:
        gc.enable()
    return statistics.median(samples)


def run(sizes, cases, impls, threads):
    import numpy as np
    records = []
    ne = None
    if any(i.startswith("numexpr") for i in impls):
        import numexpr as ne
        ne.set_num_threads(threads)
    if "jax" in impls:
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
    for case in cases:
        for n in sizes:
            a = inputs(np, case, n)
            for imp in impls:
                if imp == "numpy-out":
                    fn = numpy_out(np, case, a)
                elif imp == "numpy":
                    fn = numpy_eager(np, case, a)
                elif imp.startswith("numexpr"):
                    fn = numexpr_fn(np, ne, case, a, imp == "numexpr-out")
                elif imp == "numba-out":
                    fn = numba_fn(np, case, a)
                else:
                    fn = jax_fn(case, a)
                if fn is None:
                    continue
                t = timeit(fn)
                del fn
                gc.collect()
                rec = {"case": case, "n": n, "impl": imp, "median_s": t,
                       "bytes": BYTES.get(case, 16) * n, "threads": threads}
                records.append(rec)
                print(f"{case:<11} {n:>10} {imp:<12} {t * 1e3:10.3f} ms", flush=True)
            del a
            gc.collect()
    return records


def fmt(t):
    return "-" if t is None else (f"{t * 1e3:.2f}" if t < 10 else f"{t * 1e3:.0f}")


def table(fusebox_json, peers_json):
    fb = json.load(open(fusebox_json))
    pe = json.load(open(peers_json))
    recs = {(r["case"], r["n"], r["impl"]): r["median_s"] for r in fb + pe}
    keys = []
    for r in fb + pe:
        k = (r["case"], r["n"])
        if k not in keys:
            keys.append(k)
    cols = ["fused-into", "fused", "copy-into", "numba-out", "numpy-out", "numexpr-out", "jax",
            "numpy", "numexpr"]
    lines = ["| case | n | " + " | ".join(cols) + " | into/copy-into | into vs best peer out |",
             "|" + "---|" * (len(cols) + 4)]
    for case, n in sorted(keys, key=lambda k: (CASES.index(k[0]) if k[0] in CASES else 99, k[1])):
        get = lambda c: recs.get((case, n, c))
        into, base = get("fused-into"), get("copy-into")
        peers = [get(c) for c in ("numba-out", "numpy-out", "numexpr-out", "jax") if get(c)]
        best = min(peers) if peers else None
        ratio = f"{into / base:.2f}" if into and base else "-"
        vs = f"{best / into:.2f}x" if into and best else "-"
        lines.append(f"| {case} | {n:.0e} | " + " | ".join(fmt(get(c)) for c in cols)
                     + f" | {ratio} | {vs} |")
    print("Times in ms. `into vs best peer out`: the fastest peer's time over fusebox fused-into's"
          " (above 1: fusebox is faster).")
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1e6,1e8")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "2")))
    p.add_argument("--json", help="write the records here")
    p.add_argument("--table", nargs=2, metavar=("FUSEBOX_JSON", "PEERS_JSON"))
    args = p.parse_args()
    if args.table:
        table(*args.table)
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    recs = run(sizes, args.cases.split(","), args.impls.split(","), args.threads)
    if args.json:
        json.dump(recs, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
