"""numexpr's own test module, run against fusebox's stand-in (``fusebox.numexpr``).

The installed numexpr's ``tests/test_numexpr.py`` is copied to a temporary directory and run
by pytest in a child process whose ``PYTHONPATH`` starts with ``tests/standin``, where
``import numexpr`` gives the stand-in (also in the subprocesses numexpr's tests start). The
child's results (JUnit XML) are checked here: every failure must belong to a category that
python/NUMEXPR_COMPAT.md explains (``EXPECTED``), so a new failure fails this test. The counts
are printed (``pytest -s``) and kept in NUMEXPR_COMPAT.md.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# Failing tests by category (python/NUMEXPR_COMPAT.md explains each). Patterns match
# "Class::test" or "test_expressions[params]".
EXPECTED = {
    "strings": [r"::test_str_contains_", r"^test_strings::"],
    # test_bool_funcs: isnan/isinf/isfinite/signbit pass on float32 and float64, then the
    # test goes on to complex128.
    "complex": [
        r"::test_complex_tan$", r"::test_complex_expr$", r"::test_sign_round$", r"::test_bool_funcs$",
    ],
    # deliberate: NumPy keeps a uint32 array uint32; numexpr upcasts it to int64
    "uint32 stays uint32": [r"^test_uint32_int64::test_small_uint32$"],
    "numexpr's virtual machine": [
        r"::test_reductions$",  # disassemble() of numexpr programs (and complex sums)
        r"::test_r0_reuse$",
        r"::test_disassemble$",
        r"::test_constant_deduplication$",  # NumExpr(...).constants
        r"::test_nan_constant$",
    ],
    "negative axes": [r"::test_axis$"],
    "int32 literals": [r"^test_int32_int64::test_small_int$"],
    "and/or keywords": [r"::test_boolean_operator$"],
    "sanitizer": [r"::test_sanitize$"],
    "attribute syntax": [r"^test_expressions\[where\(\(a-10\)\.real"],
}


THREAD_VARS = ("OMP_NUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMEXPR_MAX_THREADS", "FUSEBOX_NUM_THREADS")


def _numexpr_tests():
    spec = importlib.util.find_spec("numexpr")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "tests" / "test_numexpr.py"
    return path if path.exists() else None


def _category(test_id):
    for cat, patterns in EXPECTED.items():
        if any(re.search(p, test_id) for p in patterns):
            return cat
    return None


def run_upstream(tmp_path):
    src = _numexpr_tests()
    if src is None:
        pytest.skip("numexpr (with its tests) is not installed")
    shutil.copy(src, tmp_path / "test_numexpr.py")
    (tmp_path / "conftest.py").write_text(
        "import pathlib, numexpr\n"
        "pathlib.Path(__file__).with_name('which.txt').write_text(numexpr.__file__)\n"
    )
    standin = Path(__file__).parent / "standin"
    # numexpr's threading tests assume these are unset (they set them themselves). A
    # dask.distributed LocalCluster started earlier in this process (test_dask.py) leaves
    # OMP_NUM_THREADS=1 in os.environ (its nanny's pre-spawn environment), which made
    # `_init_num_threads()` return 1 in the child: numexpr itself does the same with it set.
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(standin)] + [p for p in [env.get("PYTHONPATH")] if p])
    xml = tmp_path / "results.xml"
    r = subprocess.run(
        [
            sys.executable, "-m", "pytest", "test_numexpr.py", "-q", "-p", "no:cacheprovider",
            "-o", "markers=thread_unsafe", f"--junitxml={xml}",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )
    if not xml.exists():
        raise AssertionError(f"numexpr's suite did not run:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    results = {}
    for case in ET.parse(xml).iter("testcase"):
        parts = case.get("classname", "").split(".")
        name = case.get("name", "")
        # "test_numexpr" for module-level tests, "test_numexpr.<Class>" for methods
        test_id = name if len(parts) < 2 else f"{parts[-1]}::{name}"
        if case.find("failure") is not None or case.find("error") is not None:
            results[test_id] = "failed"
        elif case.find("skipped") is not None:
            results[test_id] = "skipped"
        else:
            results[test_id] = "passed"
    return results, (tmp_path / "which.txt").read_text()


def test_numexpr_suite_against_the_standin(tmp_path):
    results, which = run_upstream(tmp_path)
    counts = {k: sum(1 for v in results.values() if v == k) for k in ("passed", "failed", "skipped")}
    by_cat = {}
    unexplained = []
    for test_id, outcome in sorted(results.items()):
        if outcome != "failed":
            continue
        cat = _category(test_id)
        if cat is None:
            unexplained.append(test_id)
        else:
            by_cat[cat] = by_cat.get(cat, 0) + 1
    print(f"\nnumexpr's suite on fusebox.numexpr: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")
    for cat, n in sorted(by_cat.items()):
        print(f"  {n:4d} failed: {cat}")
    assert os.path.join("fusebox", "numexpr") in which, f"the suite imported {which}, not the stand-in"
    assert not unexplained, "failures NUMEXPR_COMPAT.md does not explain:\n" + "\n".join(unexplained)
    # The floor recorded in NUMEXPR_COMPAT.md: fewer passes means something regressed.
    assert counts["passed"] >= 5500, counts
