"""numexpr's expression objects, enough to build expressions in Python: ``E.a + 2 * E.b``
gives a node whose ``source()`` is the numexpr string, which ``NumExpr`` compiles.
``ConstantNode(value)`` keeps a NumPy scalar's dtype (a float32 constant prints as
``astype(1.0, float32)``) and reports numexpr's kind names (``astKind``)."""

import math

import numpy as np

# numexpr's kind names by NumPy dtype.
_KINDS = {
    "bool": "bool",
    "int32": "int",
    "int64": "long",
    "float32": "float",
    "float64": "double",
    "complex128": "complex",
}


class ExpressionNode:
    """A node of an expression built in Python."""

    astKind = "double"

    def __init__(self, src, prec=10):
        self._src = src
        self._prec = prec

    def source(self):
        return self._src

    def __str__(self):
        return self._src

    def __repr__(self):
        return f"{type(self).__name__}({self._src!r})"

    def _paren(self, prec):
        return self._src if self._prec > prec else f"({self._src})"

    def _bin(self, op, prec, other, reverse=False):
        a, b = (_node(other), self) if reverse else (self, _node(other))
        if op == "**":
            return ExpressionNode(f"{a._paren(9)} ** {b._paren(8)}", 9)
        return ExpressionNode(f"{a._paren(prec - 1)} {op} {b._paren(prec)}", prec)

    def __add__(self, o):
        return self._bin("+", 6, o)

    def __radd__(self, o):
        return self._bin("+", 6, o, True)

    def __sub__(self, o):
        return self._bin("-", 6, o)

    def __rsub__(self, o):
        return self._bin("-", 6, o, True)

    def __mul__(self, o):
        return self._bin("*", 7, o)

    def __rmul__(self, o):
        return self._bin("*", 7, o, True)

    def __truediv__(self, o):
        return self._bin("/", 7, o)

    def __rtruediv__(self, o):
        return self._bin("/", 7, o, True)

    def __mod__(self, o):
        return self._bin("%", 7, o)

    def __rmod__(self, o):
        return self._bin("%", 7, o, True)

    def __pow__(self, o):
        return self._bin("**", 9, o)

    def __rpow__(self, o):
        return self._bin("**", 9, o, True)

    def __and__(self, o):
        return self._bin("&", 4, o)

    def __or__(self, o):
        return self._bin("|", 2, o)

    def __lt__(self, o):
        return self._bin("<", 2, o)

    def __le__(self, o):
        return self._bin("<=", 2, o)

    def __gt__(self, o):
        return self._bin(">", 2, o)

    def __ge__(self, o):
        return self._bin(">=", 2, o)

    def __eq__(self, o):
        return self._bin("==", 2, o)

    def __ne__(self, o):
        return self._bin("!=", 2, o)

    __hash__ = object.__hash__

    def __neg__(self):
        return ExpressionNode(f"-{self._paren(8)}", 8)

    def __invert__(self):
        return ExpressionNode(f"~{self._paren(8)}", 8)


class VariableNode(ExpressionNode):
    def __init__(self, name, kind="double"):
        super().__init__(name)
        self.value = name
        self.astKind = kind


class ConstantNode(ExpressionNode):
    def __init__(self, value):
        self.value = value
        if isinstance(value, np.generic):
            kind = _KINDS.get(value.dtype.name, value.dtype.name)
            text = _text(value.item())
            src = text if value.dtype.name in ("bool", "int64", "float64") else (
                f"astype({text}, {value.dtype.name})"
            )
        elif isinstance(value, bool):
            kind, src = "bool", _text(value)
        elif isinstance(value, int):
            kind, src = ("int" if -(2**31) <= value < 2**31 else "long"), _text(value)
        elif isinstance(value, float):
            kind, src = "double", _text(value)
        else:
            raise TypeError(f"unsupported constant {value!r}")
        super().__init__(src, 8 if src.startswith("-") else 10)
        self.astKind = kind


def _text(v):
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return repr(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "(-inf)"
    return repr(float(v))


def _node(v):
    if isinstance(v, ExpressionNode):
        return v
    return ConstantNode(v)


class _E:
    """``E.name`` is a variable node (numexpr's ``E``)."""

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return VariableNode(name)


E = _E()
