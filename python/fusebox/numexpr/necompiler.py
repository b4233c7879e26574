"""numexpr's ``necompiler``: ``evaluate``, ``validate``, ``re_evaluate``, ``NumExpr``."""

from .. import _core
from .. import compile as _compile

#: numexpr's ``evaluate`` (default ``casting='safe'``), computed by fusebox.
evaluate = _core.ne_evaluate
validate = _core.validate
re_evaluate = _core.re_evaluate


def _source(ex):
    from .expressions import ExpressionNode

    if isinstance(ex, ExpressionNode):
        return ex.source()
    if isinstance(ex, str):
        return ex
    raise TypeError(f"expected a string or an expression node, got {type(ex).__name__}")


def NumExpr(ex, signature=(), sanitize=None, **kwargs):  # noqa: N802 - numexpr's name
    """Compile ``ex`` into a callable (a ``fusebox.Compiled``) of the names in ``signature``
    (``[(name, dtype), ...]``); without one, every name is float64, in sorted order."""
    bad = set(kwargs) - {"optimization", "truediv"}
    if bad:
        raise ValueError(f"Unknown keyword argument '{bad.pop()}'")
    src = _source(ex)
    if not signature:
        signature = [(n, "float64") for n in sorted(_core.names(src))]
    return _compile(src, list(signature))


def disassemble(nex):
    """numexpr's program listing: fusebox runs no numexpr virtual machine program."""
    raise NotImplementedError(
        "fusebox compiles to native code, not to numexpr's virtual machine: "
        "fusebox.explain() shows its kernel IR"
    )


def getExprNames(text, context):  # noqa: N802 - numexpr's name
    """The names ``text`` uses and whether it would use VML (never: fusebox has none)."""
    src = _source(text)
    try:
        return list(_core.names(src)), False
    except SyntaxError:
        # numexpr lists names before checking calls; do the same for strings fusebox rejects.
        import re

        found = []
        for m in re.finditer(r"[A-Za-z_][A-Za-z_0-9]*", src):
            if not src[m.end():].lstrip().startswith("(") and m.group(0) not in found:
                found.append(m.group(0))
        return found, False


def getContext(kwargs, _frame_depth=1):  # noqa: N802 - numexpr's name
    """numexpr's context: the accepted keyword arguments with their defaults."""
    ctx = {"optimization": "aggressive", "truediv": False}
    for k, v in dict(kwargs).items():
        if k not in ctx:
            raise ValueError(f"Unknown keyword argument '{k}'")
        ctx[k] = v
    return ctx
