"""A stand-in for the ``numexpr`` module: ``import fusebox.numexpr as ne``.

The same functions, computed by fusebox (one fused kernel per expression, NumPy 2 semantics,
a parser that never evaluates Python).

What is numexpr's and what differs (python/NUMEXPR_COMPAT.md has the whole list):

- ``evaluate``, ``validate``, ``re_evaluate``: numexpr's signatures and behaviour, default
  ``casting='safe'``; numexpr's keyword arguments ``optimization``, ``truediv``,
  ``sanitize``, ``disable_cache`` are accepted, checked as numexpr checks them, and otherwise
  ignored (fusebox always optimizes, always divides truly, and never evaluates the string, so
  it needs no sanitizer); ``_frame_depth`` is honoured.
- ``NumExpr(ex, signature)`` returns a ``fusebox.Compiled`` (callable, ``.run``,
  ``.signature``, ``.input_names``); without a signature every name is float64, in sorted
  order (numexpr's rule). ``disassemble`` raises ``NotImplementedError``: fusebox has no
  numexpr virtual machine program to show (``fusebox.explain`` shows the kernel IR).
- ``set_num_threads``/``get_num_threads``/``detect_number_of_cores``/``detect_number_of_threads``,
  ``ncores``, ``nthreads``, ``MAX_THREADS`` (``NUMEXPR_MAX_THREADS``, default 64).
- VML: ``use_vml`` is False (fusebox generates its own vector math);
  ``get_vml_version`` returns None, ``set_vml_accuracy_mode`` and ``set_vml_num_threads``
  are no-ops returning None, ``get_vml_num_threads`` returns None: what numexpr does when
  built without VML.
- Semantics are NumPy 2's, not numexpr's: a Python float with a float32 array stays float32;
  integer literals are int64 when alone (numexpr: int32); ``sum(x, axis=-1)`` works (numexpr
  rejects negative axes); reductions may appear anywhere in an expression. No string, complex
  or small-integer dtypes yet (``UnsupportedDtypeError``, a ``TypeError``).
"""

import sys

from .. import _core
from .. import __version__ as _fusebox_version
from .._threads import (
    _init_num_threads,
    detect_number_of_cores,
    get_num_threads,
    set_num_threads,
)
from . import expressions, necompiler, utils
from .expressions import E
from .necompiler import NumExpr, disassemble, evaluate, re_evaluate, validate
from .utils import (
    detect_number_of_threads,
    get_vml_num_threads,
    get_vml_version,
    set_vml_accuracy_mode,
    set_vml_num_threads,
)

#: fusebox's version (this module is fusebox's stand-in, not numexpr).
__version__ = _fusebox_version
version = _fusebox_version

#: numexpr's thread ceiling: ``NUMEXPR_MAX_THREADS`` if set, else 64.
MAX_THREADS = utils.MAX_THREADS

#: numexpr's block size constant (fusebox's kernels have none; kept for code that reads it).
__BLOCK_SIZE1__ = 1024

#: No Intel VML: fusebox generates its own vector math.
use_vml = False

#: Cores detected at import.
ncores = detect_number_of_cores()

#: Threads set at import from the environment.
nthreads = _init_num_threads()


def print_versions():
    """Print the versions of what this stand-in uses."""
    import platform

    import numpy

    print("-=" * 38)
    print(f"fusebox (numexpr stand-in) version: {__version__}")
    print(f"NumPy version:     {numpy.__version__}")
    print(f"Python version:    {sys.version}")
    print(f"Platform:          {platform.platform()}")
    print(f"CPU cores:         {ncores}; threads: {get_num_threads()}")
    print("VML available?    False")
    print("-=" * 38)


def test(verbosity=1):
    """numexpr's own tests run against this module by fusebox's test suite
    (python/tests/test_numexpr_upstream.py); not from here."""
    raise NotImplementedError(
        "run python/tests/test_numexpr_upstream.py to test the stand-in with numexpr's suite"
    )


__all__ = [
    "E",
    "NumExpr",
    "disassemble",
    "evaluate",
    "re_evaluate",
    "validate",
    "set_num_threads",
    "get_num_threads",
    "detect_number_of_cores",
    "detect_number_of_threads",
    "get_vml_version",
    "set_vml_accuracy_mode",
    "set_vml_num_threads",
    "get_vml_num_threads",
    "use_vml",
    "ncores",
    "nthreads",
    "MAX_THREADS",
    "version",
    "__version__",
    "print_versions",
]
