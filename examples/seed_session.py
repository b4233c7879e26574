"""The seed's whole example session ("Blaze + Numba"), with fusebox.

Run: python examples/seed_session.py [N]   (N defaults to 1e7; the post used 1e8)

In the post: NumPy's poly(x) was ~4x slower than x + 1 because of its temporaries; Numba's
vectorize fused it; Blaze's Data/compute ran the Gaussian fused (compute(expr)) and unfused
(compute(expr, optimize=False)). Here every step is fusebox.
"""

import sys
import time

import numpy as np
import pandas as pd

import fusebox
from fusebox import Data, compute, exp, sqrt


def timeit(label, f, repeat=3):
    f()  # compile / warm up
    best = min(_time(f) for _ in range(repeat))
    print(f"{label:<44s} {best * 1e3:9.1f} ms")
    return best


def _time(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main(n):
    # In [18]: x = np.arange(100000000, dtype='float64')
    x = np.arange(n, dtype="float64")

    # In [19]-[21]: NumPy's x + 1 vs poly(x), with temporaries
    def poly(t):
        return (5.0 * t + 4.0) * t + 1.0

    t_add = timeit("NumPy x + 1", lambda: x + 1)
    t_np = timeit("NumPy poly(x)", lambda: poly(x))
    # In [31]-[33]: one fused loop (Numba's vectorize in the post)
    fast_poly = fusebox.compile("(5.0 * t + 4.0) * t + 1.0", {"t": "float64"})
    t_fb = timeit("fusebox compiled poly(x)", lambda: fast_poly(x))
    timeit("fusebox.evaluate('(5.0*x + 4.0)*x + 1.0')", lambda: fusebox.evaluate("(5.0*x + 4.0)*x + 1.0", {"x": x}))
    np.testing.assert_allclose(fast_poly(x[:1000]), poly(x[:1000]))
    print(f"  poly / (x + 1): NumPy {t_np / t_add:.1f}x, fusebox {t_fb / t_add:.1f}x")

    # In [41]-[50]: Data over a DataFrame
    df = pd.DataFrame({"a": [1, 2, 3], "b": list("abc")})
    data = Data(df)
    print(data)
    print("data.a.sum() ->", repr(data.a.sum()), type(data.a.sum()).__name__)
    s = compute(data.a.sum())
    print("compute(data.a.sum()) ->", s, type(s).__name__)
    assert s == 6 and isinstance(s, int)

    # In [4]-[8]: the Gaussian, fused vs optimize=False
    xd = Data(np.linspace(-5, 5, n))
    mu, sigma = -1.33, 1.25
    expr = 1 / (sigma * sqrt(2 * np.pi)) * exp(-(xd - mu) ** 2 / (2 * sigma**2))
    t_fused = timeit("compute(expr)", lambda: compute(expr))
    t_unfused = timeit("compute(expr, optimize=False)", lambda: compute(expr, optimize=False))
    print(f"  fused is {t_unfused / t_fused:.1f}x faster than unfused (the post: ~2x)")
    print(expr.explain().split("kernels:")[0].strip())


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 10_000_000)
