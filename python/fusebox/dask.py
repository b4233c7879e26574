"""fusebox on Dask arrays: ``fusebox.dask.evaluate(ex, **arrays)`` builds a Dask graph.

- Element-wise work runs as one fused fusebox kernel per block (``dask.array.blockwise``,
  with NumPy's right-aligned broadcasting, as ``dask.array`` does for ufuncs).
- Reductions (``sum prod min max any all mean var std``, with ``axis`` and ``keepdims``)
  go through Dask's reduction tree (``dask.array.reduction``) with fusebox partials: each
  block's partial is one fused fusebox reduction of the whole operand, so ``sum(x*x)`` never
  materializes ``x*x``. ``mean`` combines block sums (float64 sums for integer operands) and
  divides by the count; ``var``/``std`` take the mean first, then sum the squared deviations
  per block (two passes, as NumPy's). ``argmin``/``argmax`` are not supported here.
- Reductions inside larger expressions (``x - mean(x)``) become inputs of the element-wise
  stage: each reduction is its own Dask array, bound to a generated name.

The graph holds only module-level functions, expression strings and Python numbers, so it
pickles: on ``dask.distributed`` workers fusebox compiles the kernels again (once per
process). Arguments may be Dask arrays, NumPy arrays (wrapped with ``da.asarray``) or Python
numbers (weak scalars, folded into the expression).
"""

import functools
import math
import numbers

import numpy as np

from . import _core


def _letters(n):
    return "".join(chr(ord("a") + i) for i in range(n))


def _block_eval(*blocks, src, names, scalars, device):
    env = dict(zip(names, blocks))
    env.update(scalars)
    return _core.evaluate(src, env, {}, device=device)


def _block_reduce(*blocks, src, names, scalars, device, rank):
    # The block's partial: the reduction of the whole operand over the reduced axes, kept as
    # length-1 axes. Blocks of inputs broadcast along an axis are expanded by fusebox itself.
    r = _block_eval(*blocks, src=src, names=names, scalars=scalars, device=device)
    return r.reshape((1,) * (rank - r.ndim) + r.shape) if r.ndim < rank else r


def _identity(x, axis=None, keepdims=True):
    return x


def _combine(op):
    fn = {"sum": np.sum, "prod": np.prod, "min": np.min, "max": np.max, "any": np.any, "all": np.all}[op]

    def combine(x, axis=None, keepdims=False):
        return fn(x, axis=axis, keepdims=keepdims)

    return combine


def _mean_aggregate(x, axis=None, keepdims=False, count=1, dtype="float64"):
    return (np.sum(x, axis=axis, keepdims=keepdims) / count).astype(dtype)


def _finish_var(s, count=1, ddof=0, sqrt=False, dtype="float64"):
    v = s / (count - ddof) if count - ddof > 0 else s * np.nan
    return (np.sqrt(v) if sqrt else v).astype(dtype)


class _Graph:
    """Builds the Dask arrays for one call."""

    def __init__(self, da, device):
        self.da = da
        self.device = device

    def blockwise(self, src, arrays, scalars, dtype, ndim, func=_block_eval, reduced=(), **extra):
        """One fusebox call per block of the broadcast of ``arrays`` (name -> dask array)."""
        da = self.da
        out_ind = _letters(ndim)
        args = []
        names = list(arrays)
        for n in names:
            a = arrays[n]
            args += [a, out_ind[ndim - a.ndim:]]
        f = functools.partial(func, src=src, names=names, scalars=scalars, device=self.device, **extra)
        meta = np.empty((0,) * ndim, dtype=dtype)
        # A partial (func=_block_reduce) has length 1 along the reduced axes.
        adjust = {out_ind[i]: 1 for i in reduced}
        arr = da.blockwise(
            f, out_ind, *args, dtype=dtype, meta=meta, concatenate=True, adjust_chunks=adjust or None
        )
        return arr, out_ind

    def specs(self, arrays, scalars):
        s = {n: (str(a.dtype), tuple(int(d) for d in a.shape)) for n, a in arrays.items()}
        s.update(scalars)
        return s

    def evaluate(self, src, arrays, scalars):
        info = _core.analyze(src, self.specs(arrays, scalars))
        bound = dict(arrays)
        for r in info["reductions"]:
            bound[r["name"]] = self.reduction(r, arrays, scalars)
        outer = info["outer"]
        used = set(_core.names(outer))
        bound = {n: a for n, a in bound.items() if n in used}
        if not bound:
            # Only scalars: a 0-d result computed now (no data to distribute).
            return self.da.asarray(_core.evaluate(outer, dict(scalars), {}, device=self.device))
        if len(info["reductions"]) == 1 and outer == info["reductions"][0]["name"]:
            return bound[outer]
        ndim = len(info["shape"])
        arr, _ = self.blockwise(outer, bound, scalars, np.dtype(info["dtype"]), ndim)
        return arr

    def reduction(self, r, arrays, scalars):
        """The Dask array of one reduction taken out of the expression."""
        op, axes, keepdims = r["op"], tuple(r["axes"]), r["keepdims"]
        operand = r["operand"]
        # Reductions nested in the operand are computed first, as inputs.
        inner = _core.analyze(operand, self.specs(arrays, scalars))
        bound = dict(arrays)
        for sub in inner["reductions"]:
            bound[sub["name"]] = self.reduction(sub, arrays, scalars)
        operand = inner["outer"]
        used = set(_core.names(operand))
        bound = {n: a for n, a in bound.items() if n in used}
        shape = tuple(r["operand_shape"])
        ndim = len(shape)
        count = math.prod(shape[a] for a in axes) if axes else 1
        if op in ("argmin", "argmax"):
            raise NotImplementedError(f"{op} is not supported by fusebox.dask")
        if op in ("var", "std"):
            mean = dict(r, op="mean", keepdims=True)
            m = self.reduction(mean, arrays, scalars)
            name = "__fbmean"
            dev = f"({operand}) - {name}"
            sq = dict(
                r,
                op="sum",
                operand=f"({dev}) ** 2",
                operand_dtype=r["dtype"],
            )
            s = self.reduction(sq, {**arrays, name: m}, scalars)
            return s.map_blocks(
                _finish_var,
                count=count,
                ddof=r["ddof"],
                sqrt=op == "std",
                dtype=np.dtype(r["dtype"]),
                meta=np.empty((0,) * s.ndim, dtype=r["dtype"]),
            )
        if op == "mean":
            acc = "float64" if r["operand_dtype"] not in ("float32", "float64") else r["operand_dtype"]
            psrc = f"sum(astype({operand}, {acc}), axis={axes!r}, keepdims=True)"
            pdtype = np.dtype(acc)
        else:
            psrc = f"{op}({operand}, axis={axes!r}, keepdims=True)"
            pdtype = np.dtype(_core.analyze(psrc, self.specs(bound, scalars))["dtype"]) if bound else None
        if not bound:
            value = _core.evaluate(
                f"{op}({r['operand']}, axis={axes!r}, keepdims={keepdims})"
                if op not in ("var", "std")
                else r["operand"],
                dict(scalars),
                {},
                device=self.device,
            )
            return self.da.asarray(value)
        parts, _ = self.blockwise(
            psrc, bound, scalars, pdtype, ndim, func=_block_reduce, reduced=axes, rank=ndim
        )
        out_dtype = np.dtype(r["dtype"])
        if op == "mean":
            aggregate = functools.partial(_mean_aggregate, count=count, dtype=out_dtype)
            combine = _combine("sum")
        else:
            aggregate = _combine(op)
            combine = _combine(op)
        return self.da.reduction(
            parts,
            chunk=_identity,
            combine=combine,
            aggregate=aggregate,
            axis=axes,
            keepdims=keepdims,
            dtype=out_dtype,
            concatenate=True,
            meta=np.empty((0,) * (ndim if keepdims else ndim - len(axes)), dtype=out_dtype),
        )


def evaluate(ex, *, device=None, **arrays):
    """A Dask array computing ``ex`` on the given arrays (by name); see the module doc.

    ``device`` is passed to ``fusebox.evaluate`` on every block (None: auto).
    """
    import dask.array as da

    if not isinstance(ex, str):
        raise TypeError(f"the expression must be a string, got {type(ex).__name__}")
    names = _core.names(ex)
    missing = [n for n in names if n not in arrays]
    if missing:
        raise KeyError(missing[0])
    dask_arrays, scalars = {}, {}
    for n in names:
        v = arrays[n]
        if isinstance(v, (bool, numbers.Integral, numbers.Real)) and not isinstance(v, np.generic):
            scalars[n] = v
        elif isinstance(v, da.Array):
            dask_arrays[n] = v
        else:
            dask_arrays[n] = da.asarray(np.asarray(v))
    return _Graph(da, device).evaluate(ex, dask_arrays, scalars)
