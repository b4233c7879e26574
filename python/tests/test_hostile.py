"""Hostile input gives Python exceptions, never a crash: every case runs in a child process,
so a segfault or an abort shows as a failure here rather than taking pytest down."""

import subprocess
import sys
import textwrap

CASES = {
    "object array": "fb.evaluate('a + 1', {'a': np.array([1, 'x'], dtype=object)}, {})",
    "string array": "fb.evaluate('a == a', {'a': np.array(['a', 'b'])}, {})",
    "bytes array": "fb.evaluate('a', {'a': np.array([b'a'])}, {})",
    "datetime array": "fb.evaluate('a', {'a': np.array(['2020-01-01'], dtype='datetime64[D]')}, {})",
    "timedelta array": "fb.evaluate('a', {'a': np.array([1], dtype='timedelta64[s]')}, {})",
    "complex array": "fb.evaluate('a * 2', {'a': np.ones(3, complex)}, {})",
    "float16 array": "r = fb.evaluate('a * 2.5', {'a': np.full(3, 0.1, np.float16)}, {}); assert r.dtype == np.float16 and (r == np.full(3, 0.1, np.float16) * 2.5).all(); raise LookupError('computed')",
    "uint64 array + negative int": "fb.evaluate('a + (-1)', {'a': np.ones(3, np.uint64)}, {})",
    "structured array": "fb.evaluate('a', {'a': np.zeros(3, dtype=[('x', 'f8'), ('y', 'i4')])}, {})",
    "masked array": "fb.evaluate('a + 1', {'a': np.ma.masked_array([1.0, 2.0], mask=[0, 1])}, {})",
    "name bound to a function": "fb.evaluate('a + 1', {'a': print}, {})",
    "name bound to a dict": "fb.evaluate('a + 1', {'a': {}}, {})",
    "name bound to None": "fb.evaluate('a + 1', {'a': None}, {})",
    "name bound to a string": "fb.evaluate('a + 1', {'a': 'abc'}, {})",
    "python complex": "fb.evaluate('a + 1', {'a': 1j}, {})",
    "huge python int": "fb.evaluate('a + 1', {'a': 10**30}, {})",
    "ragged list": "fb.evaluate('a + 1', {'a': [[1, 2], [3]]}, {})",
    "deep parentheses": "fb.evaluate('(' * 100000 + 'a' + ')' * 100000, {'a': 1.0}, {})",
    "deep unary chain": "fb.evaluate('-' * 100000 + 'a', {'a': np.ones(2)}, {})",
    "long sum chain": "fb.evaluate('+'.join(['a'] * 5000), {'a': np.ones(2)}, {})",
    "huge string": "fb.evaluate('a' * 10_000_000, {}, {})",
    "nul and unicode": "fb.evaluate('a\\x00 + \\u00e9\\u200b', {'a': 1.0}, {})",
    "python code": "fb.evaluate('__import__(\"os\").system(\"echo pwned\")', {}, {})",
    "lambda": "fb.evaluate('lambda x: x', {}, {})",
    "attribute": "fb.evaluate('a.__class__', {'a': np.ones(2)}, {})",
    "subscript": "fb.evaluate('a[0]', {'a': np.ones(2)}, {})",
    "read-only out": "o = np.zeros(2); o.flags.writeable = False; fb.evaluate('a', {'a': np.ones(2)}, {}, out=o)",
    "out of wrong shape": "fb.evaluate('a', {'a': np.ones(2)}, {}, out=np.zeros(3))",
    "out of wrong type": "fb.evaluate('a', {'a': np.ones(2)}, {}, out='nope')",
    "order of wrong type": "fb.evaluate('a', {'a': np.ones(2)}, {}, order=5)",
    "casting of wrong type": "fb.evaluate('a', {'a': np.ones(2)}, {}, casting=None)",
    "device of wrong type": "fb.evaluate('a', {'a': np.ones(2)}, {}, device=3)",
    "local_dict of wrong type": "fb.evaluate('a', 42, {})",
    "unknown kwarg": "fb.evaluate('a', {'a': 1.0}, {}, bogus=1)",
    "expression not a string": "fb.evaluate(None)",
    "absurd broadcast": "fb.evaluate('a + b', {'a': np.broadcast_to(1.0, (2**31, 2**31)), 'b': np.broadcast_to(1.0, (2**31, 2**31))}, {})",
    "absurd axis": "fb.evaluate('sum(a, axis=99999999999)', {'a': np.ones(3)}, {})",
    # May compute: then it must be right (the runner wants an exception, so raise one after).
    "many dimensions": "r = fb.evaluate('a + 1', {'a': np.ones((1,) * 64)}, {}); assert r.shape == (1,) * 64 and r.sum() == 2; raise LookupError('computed')",
    "compile bad signature": "fb.compile('a + b', {'a': 'float64', 'b': object})",
    "compile bad dtype name": "fb.compile('a', {'a': 'quaternion'})",
    "explain unknown name": "fb.explain('zz + 1', {}, {})",
    "dask non-string": "import fusebox.dask as fd; fd.evaluate(3)",
}

RUNNER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import fusebox as fb
    try:
        {code}
    except BaseException as e:  # a Python exception of any kind is the expected outcome
        print("RAISED", type(e).__name__)
        sys.exit(0)
    print("NO EXCEPTION")
    """
)


def run_case(code):
    return subprocess.run(
        [sys.executable, "-c", RUNNER.format(code=code)], capture_output=True, text=True, timeout=300
    )


def test_hostile_inputs_raise_python_exceptions():
    failures = []
    for name, code in CASES.items():
        r = run_case(code)
        if r.returncode != 0 or "RAISED" not in r.stdout:
            failures.append(f"{name}: rc={r.returncode} stdout={r.stdout!r} stderr={r.stderr[-500:]!r}")
    assert not failures, "\n".join(failures)


def test_hostile_exception_classes():
    import numpy as np
    import pytest

    import fusebox as fb

    with pytest.raises(TypeError, match="object"):
        fb.evaluate("a + 1", {"a": np.array([1, "x"], dtype=object)}, {})
    with pytest.raises(TypeError, match="datetime64"):
        fb.evaluate("a", {"a": np.array(["2020-01-01"], dtype="datetime64[D]")}, {})
    with pytest.raises(fb.UnsupportedDtypeError, match="complex128"):
        fb.evaluate("a", {"a": np.ones(2, complex)}, {})
    with pytest.raises(TypeError, match="function"):
        fb.evaluate("a + 1", {"a": print}, {})
    with pytest.raises(OverflowError):
        fb.evaluate("a + 1", {"a": 10**30}, {})
    with pytest.raises((RecursionError, SyntaxError)):
        fb.evaluate("(" * 100000 + "a" + ")" * 100000, {"a": 1.0}, {})
    with pytest.raises(SyntaxError):
        fb.evaluate('__import__("os").system("echo pwned")', {}, {})
    with pytest.raises(ValueError, match="read-only"):
        o = np.zeros(2)
        o.flags.writeable = False
        fb.evaluate("a", {"a": np.ones(2)}, {}, out=o)
