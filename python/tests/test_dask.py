"""fusebox.dask: graphs whose results equal NumPy's, on the threaded scheduler and on a
dask.distributed LocalCluster with worker processes."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import fusebox.dask as fd  # noqa: E402

RNG = np.random.default_rng(7)
X = RNG.normal(size=(600, 40))
Y = RNG.uniform(1, 2, size=40)
I = RNG.integers(-100, 100, size=(600, 40)).astype(np.int32)

CASES = [
    ("2*x + 3*y*y - x/y", lambda x, y, i: 2 * x + 3 * y * y - x / y),
    ("exp(-x*x) * sin(y)", lambda x, y, i: np.exp(-x * x) * np.sin(y)),
    ("where(x > 0, x, i)", lambda x, y, i: np.where(x > 0, x, i)),
    ("sum(x*x)", lambda x, y, i: np.sum(x * x)),
    ("sum(x*y, axis=0)", lambda x, y, i: np.sum(x * y, axis=0)),
    ("sum(i, axis=1)", lambda x, y, i: np.sum(i, axis=1)),
    ("prod(y)", lambda x, y, i: np.prod(y)),
    ("min(x - y, axis=1)", lambda x, y, i: np.min(x - y, axis=1)),
    ("max(i, axis=(0, 1), keepdims=True)", lambda x, y, i: np.max(i, axis=(0, 1), keepdims=True)),
    ("mean(x, axis=0)", lambda x, y, i: np.mean(x, axis=0)),
    ("mean(i)", lambda x, y, i: np.mean(i)),
    ("var(x, axis=1)", lambda x, y, i: np.var(x, axis=1)),
    ("std(i, ddof=1)", lambda x, y, i: np.std(i, ddof=1)),
    ("any(x > 3)", lambda x, y, i: np.any(x > 3)),
    ("all(y > 1, axis=0)", lambda x, y, i: np.all(y > 1, axis=0)),
    ("x - mean(x, axis=0)", lambda x, y, i: x - np.mean(x, axis=0)),
    ("sum(x - mean(x))", lambda x, y, i: np.sum(x - np.mean(x))),
    ("sum(x) / sum(y) + 1", lambda x, y, i: np.sum(x) / np.sum(y) + 1),
    ("x * k", lambda x, y, i: x * 2.5),
]


def inputs():
    return dict(
        x=da.from_array(X, chunks=(128, 16)),
        y=da.from_array(Y, chunks=16),
        i=da.from_array(I, chunks=(200, 40)),
        k=2.5,
    )


def check(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("ex,ref", CASES, ids=[c[0] for c in CASES])
def test_threaded_scheduler(ex, ref):
    args = inputs()
    names = fd._core.names(ex)
    r = fd.evaluate(ex, **{n: args[n] for n in names})
    assert isinstance(r, da.Array)
    check(r.compute(scheduler="threads"), ref(X, Y, I))


def test_elementwise_is_one_task_per_block():
    x = da.from_array(X, chunks=(128, 16))
    r = fd.evaluate("(5.0*x + 4.0)*x + 1.0", x=x)
    # the graph of x plus one fusebox task per block: no per-operator layers
    layers = dict(r.dask.layers)
    assert len(layers) == 2
    assert len(layers[r.name]) == x.npartitions


def test_reduction_partials_are_fused():
    # sum(x*x): every block's partial is one fused kernel writing one number per block;
    # the tree combines the partials. x*x is never materialized.
    x = da.from_array(X, chunks=(100, 40))
    import fusebox

    before = fusebox.stats()
    r = fd.evaluate("sum(x*x)", x=x).compute(scheduler="sync")
    after = fusebox.stats()
    np.testing.assert_allclose(r, np.sum(X * X), rtol=1e-12)
    assert after["kernels_launched"] - before["kernels_launched"] == x.npartitions
    assert after["bytes_written"] - before["bytes_written"] == 8 * x.npartitions
    assert after["bytes_read"] - before["bytes_read"] == X.nbytes


@pytest.fixture
def restore_environ():
    """dask.distributed's nanny writes its pre-spawn environment (OMP_NUM_THREADS=1, ...) into
    this process's os.environ; later tests (and the children they start) must not inherit it."""
    import os

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_local_cluster_with_worker_processes(restore_environ):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        args = inputs()
        for ex, ref in CASES:
            names = fd._core.names(ex)
            r = fd.evaluate(ex, **{n: args[n] for n in names})
            check(client.compute(r).result(), ref(X, Y, I))
        # compiled functions pickle: rebuilt (and compiled) on the workers
        import fusebox

        f = fusebox.compile("2*t + 1", {"t": "float64"})
        fut = client.submit(lambda g, v: g(v), f, np.arange(5.0))
        np.testing.assert_array_equal(fut.result(), 2 * np.arange(5.0) + 1)


def test_errors():
    with pytest.raises(KeyError):
        fd.evaluate("x + z", x=da.ones(3))
    with pytest.raises(NotImplementedError):
        fd.evaluate("argmax(x)", x=da.ones(3))
    with pytest.raises(SyntaxError):
        fd.evaluate("x +", x=da.ones(3))
