"""fusebox: fused array expressions for NumPy, pandas and Dask.

``fusebox.evaluate("2*a + 3*b*c")`` compiles the whole expression into one loop (Cranelift on
the CPU, WGSL on a GPU) that reads each input once and writes the result once, with NumPy 2's
semantics (NEP 50 promotion, NaN and integer rules). Its API is numexpr's:

- ``evaluate(ex, local_dict=None, global_dict=None, out=None, order='K',
  casting='same_kind', *, device=None, optimize=True)``: names are looked up in
  ``local_dict`` then ``global_dict`` (by default the caller's locals and globals);
  ``out=`` is written in place (any strides; NumPy's ``casting`` rule; a read-only ``out``
  is a ``ValueError``); ``device`` is ``'auto'`` (default), ``'cpu'``, ``'gpu'``, ``'gpu:N'``;
  ``optimize=False`` runs one kernel per operator with temporaries (the unfused baseline).
- ``validate`` (returns None or the exception), ``re_evaluate`` (the last expression of
  this thread on the arrays its names are bound to now).
- ``compile(ex, signature)``: a function of the expression's names with fixed dtypes
  (like ``numba.vectorize``), callable with ``out=``, picklable.
- ``explain(ex, ..., json=False)``: the plan (graph, kernels, bytes moved, estimates).
- ``set_num_threads``, ``get_num_threads``, ``detect_number_of_cores``: threads come from
  ``FUSEBOX_NUM_THREADS``, else ``NUMEXPR_NUM_THREADS``, else ``OMP_NUM_THREADS``, else all
  cores.

``fusebox.numexpr`` stands in for the ``numexpr`` module, ``fusebox.pandas.register()`` adds
``engine="fusebox"`` to ``pandas.eval``/``DataFrame.eval``/``DataFrame.query``, and
``fusebox.dask.evaluate`` builds Dask graphs. ``fusebox.Data`` and ``fusebox.compute`` give
Blaze's interactive expressions over arrays and pandas DataFrames.

Arguments are borrowed, never copied (unaligned or byte-swapped arrays excepted); results own
fusebox's buffer; the GIL is released while kernels run. Python numbers are *weak* scalars
(``float32_array * 2.5`` stays float32, as in NumPy 2; numexpr gives float64), NumPy scalars
are strong. Unsupported dtypes raise ``UnsupportedDtypeError`` (a ``TypeError``), parse
errors ``ParseError`` (a ``SyntaxError`` and a ``ValueError``), unknown names ``KeyError``.
"""

from . import _core
from ._core import (
    Compiled,
    ParseError,
    UnsupportedDtypeError,
    evaluate,
    explain,
    re_evaluate,
    stats,
    validate,
)
from ._threads import detect_number_of_cores, get_num_threads, set_num_threads
from .table import (
    Data,
    Expr,
    compute,
    symbol,
    where,
    abs,
    arccos,
    arcsin,
    arctan,
    arctan2,
    ceil,
    cos,
    cosh,
    exp,
    expm1,
    floor,
    log,
    log10,
    log1p,
    log2,
    sin,
    sinh,
    sqrt,
    tan,
    tanh,
)

__version__ = "0.1.0"

#: The dtypes fusebox computes with.
SUPPORTED_DTYPES = tuple(_core.SUPPORTED_DTYPES)


def compile(ex, signature=None, *, device=None, optimize=True):
    """Compile ``ex`` into a function of its names, like ``numba.vectorize``.

    ``signature`` gives each name's dtype, in call order: a mapping ``{"a": "float64", ...}``,
    a sequence of ``(name, dtype)`` pairs, or a sequence of dtypes for the names in order of
    first appearance. ``None`` makes every name float64. The result is called with one array
    (or number) per name, positionally or by keyword, and ``out=``; arrays of another dtype
    are cast when NumPy's ``safe`` rule allows it. Shapes may change between calls.
    """
    if not isinstance(ex, str):
        raise TypeError(f"the expression must be a string, got {type(ex).__name__}")
    names = _names(ex)
    if signature is None:
        params = [(n, "float64") for n in names]
    elif hasattr(signature, "items"):
        params = list(signature.items())
    else:
        signature = list(signature)
        if all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in signature):
            params = signature
        else:
            if len(signature) != len(names):
                raise TypeError(
                    f"{len(signature)} dtypes for the {len(names)} names {names} of {ex!r}"
                )
            params = list(zip(names, signature))
    return _core.compile(ex, params, device, optimize)


def _names(ex):
    """The names ``ex`` uses, in order of first appearance (functions, ``astype``'s dtype and
    the constants ``pi``, ``e``, ``nan``, ``inf`` excluded)."""
    return list(_core.names(ex))


__all__ = [
    "evaluate",
    "validate",
    "re_evaluate",
    "compile",
    "explain",
    "stats",
    "set_num_threads",
    "get_num_threads",
    "detect_number_of_cores",
    "Compiled",
    "ParseError",
    "UnsupportedDtypeError",
    "Data",
    "Expr",
    "compute",
    "symbol",
    "where",
    "SUPPORTED_DTYPES",
]
