"""`import numexpr` -> fusebox's stand-in (``fusebox.numexpr``), for running numexpr's own test
module against it (python/tests/test_numexpr_upstream.py puts this directory first on
PYTHONPATH, so subprocesses the tests start get the stand-in too)."""
import sys

import fusebox.numexpr as _standin
from fusebox.numexpr import expressions, necompiler, utils

sys.modules["numexpr"] = _standin
sys.modules["numexpr.expressions"] = expressions
sys.modules["numexpr.necompiler"] = necompiler
sys.modules["numexpr.utils"] = utils
