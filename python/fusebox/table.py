"""Blaze-style interactive expressions: ``Data``, lazy ``Expr``s and ``compute``.

``Data(array)`` and ``Data(dataframe).column`` are lazy expressions; operators, the math
functions of this module and the reductions (``x.sum()``, ``x.mean(axis=0)``) build larger
ones; ``compute(expr)`` runs the whole tree as one fused fusebox call and returns a Python
scalar for a 0-d result, else an ndarray. ``compute(expr, optimize=False)`` runs it one
operator at a time with temporaries (Blaze's unfused mode). An expression's repr computes it
when the result is a scalar (as Blaze's interactive mode shows ``data.a.sum()`` as ``6``).

An expression is numexpr source text plus what its names are bound to:

- over NumPy arrays and pandas DataFrames, the arrays (the frame's NumPy columns, no copy for
  numeric ones; a frame with nullable (extension) columns goes through Arrow, below, so NA
  is validity: nulls propagate element-wise and reductions skip them, as in pandas);
- over a pyarrow Table or a Parquet, CSV or Arrow IPC path, the core crate's streamed table
  (``fusebox._core.Table``): the file is read in chunks while the kernels run, and nulls are
  Arrow validity, never NaN: an element-wise result is null where an input is, reductions
  skip nulls (the sum of none is 0, the mean of none is None). A result with nulls comes back
  as a pyarrow Array (a NumPy masked array without pyarrow); a null scalar as None.

One expression reads one table (or arrays only): mixing columns of two tables, or a table
and an array, raises ``TypeError``.
"""
import itertools
import math
import numbers

import numpy as np

from . import _core

_ids = itertools.count()

# Precedence of the operators as this module prints them (Python's, as the parser reads it).
_PREC = {"|": 2, "^": 3, "&": 4, "<<": 5, ">>": 5, "+": 6, "-": 6, "*": 7, "/": 7, "//": 7, "%": 7}
_CMP = ("<", "<=", ">", ">=", "==", "!=")


def _lit(v):
    """A Python number as source text (weak, as a literal in an expression string)."""
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, numbers.Integral):
        return repr(int(v))
    f = float(v)
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "(-inf)"
    return repr(f)


class Expr:
    """A lazy expression: source text, and the arrays its names are bound to."""

    __slots__ = ("_src", "_bind", "_prec")

    # NumPy defers to our reflected operators (np.float64(2) * expr stays lazy).
    __array_ufunc__ = None

    def __init__(self, src, bindings, prec=10):
        self._src = src
        self._bind = bindings
        self._prec = prec

    # ---- building ----------------------------------------------------------------------
    @staticmethod
    def _wrap(v):
        if isinstance(v, Expr):
            return v
        if isinstance(v, (bool, numbers.Number, np.bool_)) and not isinstance(v, complex):
            if isinstance(v, np.generic):
                # NumPy scalars are strong: bind them as 0-d arrays.
                return _leaf(np.asarray(v))
            src = _lit(v)
            return Expr(src, {}, 8 if src.startswith("-") else 10)
        if isinstance(v, np.ndarray):
            return _leaf(v)
        raise TypeError(f"cannot use a {type(v).__name__} in a fusebox expression")

    def _paren(self, prec):
        return self._src if self._prec > prec else f"({self._src})"

    def _bin(self, op, other, reverse=False):
        a, b = (Expr._wrap(other), self) if reverse else (self, Expr._wrap(other))
        if op == "**":
            src = f"{a._paren(9)} ** {b._paren(8)}"
            prec = 9
        elif op in _CMP:
            src = f"{a._paren(1)} {op} {b._paren(1)}"
            prec = 1
        else:
            p = _PREC[op]
            src = f"{a._paren(p - 1)} {op} {b._paren(p)}"
            prec = p
        return Expr(src, _merge(a._bind, b._bind), prec)

    def __add__(self, o):
        return self._bin("+", o)

    def __radd__(self, o):
        return self._bin("+", o, True)

    def __sub__(self, o):
        return self._bin("-", o)

    def __rsub__(self, o):
        return self._bin("-", o, True)

    def __mul__(self, o):
        return self._bin("*", o)

    def __rmul__(self, o):
        return self._bin("*", o, True)

    def __truediv__(self, o):
        return self._bin("/", o)

    def __rtruediv__(self, o):
        return self._bin("/", o, True)

    def __floordiv__(self, o):
        return self._bin("//", o)

    def __rfloordiv__(self, o):
        return self._bin("//", o, True)

    def __mod__(self, o):
        return self._bin("%", o)

    def __rmod__(self, o):
        return self._bin("%", o, True)

    def __pow__(self, o):
        return self._bin("**", o)

    def __rpow__(self, o):
        return self._bin("**", o, True)

    def __and__(self, o):
        return self._bin("&", o)

    def __rand__(self, o):
        return self._bin("&", o, True)

    def __or__(self, o):
        return self._bin("|", o)

    def __ror__(self, o):
        return self._bin("|", o, True)

    def __xor__(self, o):
        return self._bin("^", o)

    def __rxor__(self, o):
        return self._bin("^", o, True)

    def __lt__(self, o):
        return self._bin("<", o)

    def __le__(self, o):
        return self._bin("<=", o)

    def __gt__(self, o):
        return self._bin(">", o)

    def __ge__(self, o):
        return self._bin(">=", o)

    def __eq__(self, o):
        return self._bin("==", o)

    def __ne__(self, o):
        return self._bin("!=", o)

    __hash__ = None

    def __neg__(self):
        return Expr(f"-{self._paren(8)}", self._bind, 8)

    def __pos__(self):
        return self

    def __invert__(self):
        return Expr(f"~{self._paren(8)}", self._bind, 8)

    def __abs__(self):
        return _call("abs", self)

    def __bool__(self):
        raise TypeError("a fusebox expression has no truth value until computed: use compute()")

    def astype(self, dtype):
        """Cast to ``dtype`` (one of fusebox's dtypes)."""
        name = np.dtype(dtype).name
        return Expr(f"astype({self._src}, {name})", self._bind, 10)

    # ---- reductions ---------------------------------------------------------------------
    def _reduce(self, name, axis=None, keepdims=False, ddof=None):
        args = [self._src]
        if axis is not None:
            args.append(f"axis={axis if isinstance(axis, int) else tuple(axis)!r}")
        if keepdims:
            args.append("keepdims=True")
        if ddof:
            args.append(f"ddof={int(ddof)}")
        return Expr(f"{name}({', '.join(args)})", self._bind, 10)

    def sum(self, axis=None, keepdims=False):
        return self._reduce("sum", axis, keepdims)

    def prod(self, axis=None, keepdims=False):
        return self._reduce("prod", axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return self._reduce("min", axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return self._reduce("max", axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return self._reduce("mean", axis, keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        return self._reduce("var", axis, keepdims, ddof)

    def std(self, axis=None, keepdims=False, ddof=0):
        return self._reduce("std", axis, keepdims, ddof)

    def any(self, axis=None, keepdims=False):
        return self._reduce("any", axis, keepdims)

    def all(self, axis=None, keepdims=False):
        return self._reduce("all", axis, keepdims)

    def argmin(self, axis=None):
        return self._reduce("argmin", axis)

    def argmax(self, axis=None):
        return self._reduce("argmax", axis)

    # ---- looking at it -----------------------------------------------------------------
    @property
    def source(self):
        """The expression in numexpr syntax."""
        return self._src

    @property
    def bindings(self):
        """The arrays its names are bound to."""
        return dict(self._bind)

    def explain(self, optimize=True, device=None, json=False):
        """The plan ``compute`` would run (see ``fusebox.explain``). Over a table: per pass
        over the rows, the kernels each chunk runs, the columns read and the chunks the row
        groups' statistics skip; nothing is read."""
        table = _table_of(self)
        if table is not None:
            return table.explain(self._src, optimize=optimize, device=device, json=json)
        return _core.explain(self._src, self._bind, {}, device=device, optimize=optimize, json=json)

    def __array__(self, dtype=None, copy=None):
        r = np.asarray(compute(self))
        return r if dtype is None else r.astype(dtype)

    def __repr__(self):
        # Blaze's interactive mode: a scalar result is shown computed.
        try:
            r = compute(self)
        except Exception:  # noqa: BLE001 - show the expression when it cannot be computed
            return f"fusebox.Expr({self._src!r})"
        if not hasattr(r, "__len__"):
            return repr(r)
        return f"fusebox.Expr({self._src!r})\n{r!r}"


def _merge(*binds):
    """The bindings of the operands, one object per name."""
    out = {}
    for b in binds:
        for k, v in b.items():
            w = out.setdefault(k, v)
            if w is not v:
                if isinstance(v, _core.Table) and isinstance(w, _core.Table):
                    raise TypeError(
                        f"an expression over columns of two different tables (both have {k!r}; "
                        "join them first)"
                    )
                raise ValueError(f"the name {k!r} is bound to two different objects")
    return out


def _leaf(array, name=None):
    name = name or f"_fb{next(_ids)}"
    return Expr(name, {name: array}, 10)


def _call(fname, *args):
    parts = [Expr._wrap(a) for a in args]
    bind = _merge(*(p._bind for p in parts))
    return Expr(f"{fname}({', '.join(p._src for p in parts)})", bind, 10)


def symbol(name, array):
    """A named leaf bound to ``array`` (its name shows in ``source`` and ``explain``)."""
    if not name.isidentifier():
        raise ValueError(f"{name!r} is not a name")
    return _leaf(np.asarray(array), name)


def _unary(fname, npfunc):
    def f(x):
        if isinstance(x, Expr):
            return _call(fname, x)
        return npfunc(x)

    f.__name__ = fname
    f.__doc__ = (
        f"``{fname}(x)``: lazy on a fusebox expression, NumPy's ``{npfunc.__name__}`` on anything else."
    )
    return f


sqrt = _unary("sqrt", np.sqrt)
exp = _unary("exp", np.exp)
expm1 = _unary("expm1", np.expm1)
log = _unary("log", np.log)
log1p = _unary("log1p", np.log1p)
log2 = _unary("log2", np.log2)
log10 = _unary("log10", np.log10)
sin = _unary("sin", np.sin)
cos = _unary("cos", np.cos)
tan = _unary("tan", np.tan)
arcsin = _unary("arcsin", np.arcsin)
arccos = _unary("arccos", np.arccos)
arctan = _unary("arctan", np.arctan)
sinh = _unary("sinh", np.sinh)
cosh = _unary("cosh", np.cosh)
tanh = _unary("tanh", np.tanh)
floor = _unary("floor", np.floor)
ceil = _unary("ceil", np.ceil)
abs = _unary("abs", np.abs)  # noqa: A001 - the module's own abs, as NumPy's


def arctan2(y, x):
    """``arctan2(y, x)``: lazy if either is a fusebox expression."""
    if isinstance(y, Expr) or isinstance(x, Expr):
        return _call("arctan2", y, x)
    return np.arctan2(y, x)


def where(cond, a, b):
    """``where(cond, a, b)``: lazy if any argument is a fusebox expression."""
    if any(isinstance(v, Expr) for v in (cond, a, b)):
        return _call("where", cond, a, b)
    return np.where(cond, a, b)


def compute(expr, optimize=True, device=None):
    """Run ``expr``: a Python scalar for a 0-d result, else an ndarray.

    ``optimize=False``: one kernel per operator, each with a temporary (Blaze's unfused
    mode). ``device``: as ``fusebox.evaluate``'s.
    """
    if not isinstance(expr, Expr):
        return expr
    table = _table_of(expr)
    if table is not None:
        values, valid = table.compute(expr._src, optimize=optimize, device=device)
        return _with_nulls(values, valid)
    r = _core.evaluate(expr._src, expr._bind, {}, optimize=optimize, device=device)
    return r.item() if r.ndim == 0 else r


def _table_of(expr):
    """The one ``_core.Table`` the expression's names are columns of, or None (arrays)."""
    tables = {id(v): v for v in expr._bind.values() if isinstance(v, _core.Table)}
    if not tables:
        return None
    if len(tables) > 1:
        raise TypeError("an expression over columns of two different tables (join them first)")
    if any(not isinstance(v, _core.Table) for v in expr._bind.values()):
        raise TypeError("an expression mixing a table's columns with NumPy arrays")
    return next(iter(tables.values()))


def _with_nulls(values, valid):
    """A table result as Python: a scalar (None when null), an ndarray when nothing is null,
    else a pyarrow Array (a masked array without pyarrow)."""
    if values.ndim == 0:
        return None if valid is not None and not valid.item() else values.item()
    if valid is None or valid.all():
        return values
    try:
        import pyarrow as pa
    except ImportError:
        return np.ma.masked_array(values, mask=~valid)
    return pa.array(values.ravel(), mask=~valid.ravel())


class _Table:
    """``Data(DataFrame)``: columns as lazy expressions; shows the frame's rows."""

    def __init__(self, df):
        self._df = df
        self._cols = {}

    @property
    def columns(self):
        return list(self._df.columns)

    def _column(self, name):
        if name not in self._cols:
            col = self._df[name]
            dt = col.dtype
            if not isinstance(dt, np.dtype):
                raise TypeError(
                    f"column {name!r} has the pandas extension dtype {dt}: nullable columns are "
                    "computed through Arrow; install pyarrow"
                )
            if np.dtype(dt).name not in _core.SUPPORTED_DTYPES:
                raise _core.UnsupportedDtypeError(
                    f"column {name!r} has dtype {dt}: fusebox computes with "
                    f"{', '.join(_core.SUPPORTED_DTYPES)}"
                )
            ident = name if isinstance(name, str) and name.isidentifier() else f"_fb{next(_ids)}"
            self._cols[name] = _leaf(col.to_numpy(), ident)
        return self._cols[name]

    def __getitem__(self, name):
        if name not in self._df.columns:
            raise KeyError(name)
        return self._column(name)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._df.columns:
            return self._column(name)
        raise AttributeError(f"no column {name!r} (columns: {list(self._df.columns)})")

    def __dir__(self):
        return list(super().__dir__()) + [c for c in self._df.columns if isinstance(c, str)]

    def __len__(self):
        return len(self._df)

    def __repr__(self):
        return repr(self._df)

    def _repr_html_(self):
        return self._df._repr_html_()


class _ArrowTable:
    """``Data(pyarrow_table)`` or ``Data(path)``: the core crate's streamed table; columns are
    lazy expressions (names bound to the table); shows the schema and the first rows."""

    def __init__(self, table):
        self._t = table
        self._cols = {}

    @property
    def columns(self):
        return list(self._t.columns)

    def _column(self, name):
        if name not in self._cols:
            if self._t.dtype(name) is None:
                raise _core.UnsupportedDtypeError(
                    f"column {name!r} is not numeric: it is shown, never computed"
                )
            if not (isinstance(name, str) and name.isidentifier()):
                raise ValueError(f"column {name!r} is not a name an expression can use")
            self._cols[name] = Expr(name, {name: self._t}, 10)
        return self._cols[name]

    def __getitem__(self, name):
        if name not in self._t.columns:
            raise KeyError(name)
        return self._column(name)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._t.columns:
            return self._column(name)
        raise AttributeError(f"no column {name!r} (columns: {list(self._t.columns)})")

    def __dir__(self):
        return list(super().__dir__()) + list(self._t.columns)

    def __len__(self):
        n = self._t.rows
        if n is None:
            raise TypeError("the row count of this file is known only after reading it")
        return n

    def __repr__(self):
        return repr(self._t)


def _from_arrow(pa, table):
    """The core's table over a pyarrow Table (handed over as an Arrow IPC stream)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return _ArrowTable(_core.Table.from_ipc_stream(sink.getvalue().to_pybytes()))


def Data(obj):  # noqa: N802 - Blaze's name
    """Blaze's ``Data``: an ndarray becomes a lazy expression; a pandas DataFrame, a pyarrow
    Table or the path of a Parquet, CSV or Arrow IPC file a table whose columns are lazy
    expressions (``Data(df).a.sum()``)."""
    if isinstance(obj, Expr):
        return obj
    if isinstance(obj, np.ndarray):
        return _leaf(obj)
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None and isinstance(obj, pd.DataFrame):
        from pandas.api.types import is_string_dtype

        if any(not isinstance(dt, np.dtype) and not is_string_dtype(dt) for dt in obj.dtypes):
            # Nullable (extension) columns: pandas' NA becomes Arrow validity, and the core's
            # table computes with it (element-wise null where an input is, reductions skip).
            try:
                import pyarrow as pa
            except ImportError:
                return _Table(obj)  # computing such a column raises TypeError, naming pyarrow
            return _from_arrow(pa, pa.Table.from_pandas(obj, preserve_index=False))
        return _Table(obj)
    if pd is not None and isinstance(obj, pd.Series):
        return _Table(obj.to_frame())[obj.name if obj.name is not None else 0]
    if isinstance(obj, (str, bytes)) or hasattr(obj, "__fspath__"):
        import os

        return _ArrowTable(_core.Table.open(os.fsdecode(obj)))
    if type(obj).__module__.split(".")[0] == "pyarrow":
        import pyarrow as pa

        if isinstance(obj, pa.RecordBatch):
            obj = pa.Table.from_batches([obj])
        if not isinstance(obj, pa.Table):
            raise TypeError(f"fusebox.Data takes a pyarrow Table or RecordBatch, not a {type(obj).__name__}")
        return _from_arrow(pa, obj)
    if isinstance(obj, (list, tuple)):
        return _leaf(np.asarray(obj))
    raise TypeError(f"fusebox.Data cannot wrap a {type(obj).__name__}")
