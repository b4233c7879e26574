"""fusebox as a ``pandas.eval`` engine.

``fusebox.pandas.register()`` makes ``engine="fusebox"`` work in ``pd.eval``,
``DataFrame.eval`` and ``DataFrame.query``.

pandas has no public plug-in point for engines. What this touches, exactly: one entry,
``"fusebox"``, added to the dict ``pandas.core.computation.engines.ENGINES`` (the table
``pd.eval`` looks engines up in, by name, which ``pandas.core.computation.eval`` imported by
reference, so the same dict object). Nothing else is patched: pandas' parser, alignment and
result reconstruction run as for its numexpr engine. ``unregister()`` removes the entry.
On a pandas without that table, ``register()`` raises ``ImportError`` saying so.

The engine (``FuseboxEngine``) is written like pandas' ``NumExprEngine``: pandas aligns the
operands, prints the expression with its temporaries' names, and the engine evaluates that
string on the scope's arrays with ``fusebox.evaluate``. Names that clash with fusebox's
functions raise pandas' ``NumExprClobberingError``, as with numexpr.

Nullable (masked) columns (``Int64``, ``Float64``, ``boolean``) and other extension dtypes
are evaluated by pandas itself (the ``python`` engine's path), as pandas does for its numexpr
engine (without its warning); fusebox's own null semantics come with the tables issue.
Semantics otherwise are NumPy 2's (float32 columns combined with Python floats stay float32;
numexpr gives float64).
"""

from . import _core

_NAME = "fusebox"


def _engines():
    try:
        from pandas.core.computation import engines
    except ImportError as e:  # pragma: no cover - depends on the pandas installed
        raise ImportError(
            "fusebox.pandas needs pandas' engine table pandas.core.computation.engines.ENGINES, "
            f"which this pandas does not have ({e})"
        ) from e
    table = getattr(engines, "ENGINES", None)
    base = getattr(engines, "AbstractEngine", None)
    if not isinstance(table, dict) or base is None:
        import pandas

        raise ImportError(
            f"pandas {pandas.__version__} has no engine table "
            "(pandas.core.computation.engines.ENGINES and AbstractEngine): "
            "fusebox.pandas.register() cannot add engine='fusebox'"
        )
    return engines, table, base


def _has_extension_dtype(terms):
    from pandas.api.types import is_extension_array_dtype, is_string_dtype

    types = [getattr(terms, "return_type", None)]
    types += list(getattr(terms, "operand_types", None) or ())
    return any(
        t is not None and is_extension_array_dtype(t) and not is_string_dtype(t) for t in types
    )


def _engine_class():
    engines, _, base = _engines()

    class FuseboxEngine(base):
        """pandas.eval engine running the expression as one fused fusebox kernel."""

        has_neg_frac = True

        def evaluate(self):
            # Nullable and other extension dtypes: pandas' own evaluation (see module doc).
            if _has_extension_dtype(self.expr.terms):
                return self.expr()
            return super().evaluate()

        def _evaluate(self):
            s = self.convert()
            scope = self.expr.env.full_scope
            check = getattr(engines, "_check_ne_builtin_clash", None)
            if check is not None:
                check(self.expr)
            result = _core.evaluate(s, scope, {})
            return result

    return FuseboxEngine


def register():
    """Add ``engine="fusebox"`` to pandas (idempotent); returns the engine class."""
    _, table, _ = _engines()
    if _NAME not in table:
        table[_NAME] = _engine_class()
    return table[_NAME]


def unregister():
    """Remove ``engine="fusebox"`` from pandas' engine table."""
    _, table, _ = _engines()
    table.pop(_NAME, None)


def registered():
    """Whether ``engine="fusebox"`` is available."""
    try:
        _, table, _ = _engines()
    except ImportError:
        return False
    return _NAME in table
