"""numexpr's ``utils``: thread settings and the VML switches (no-ops: fusebox has no VML)."""

import os

from .._threads import (  # noqa: F401 - numexpr's names
    _init_num_threads,
    detect_number_of_cores,
    get_num_threads,
    set_num_threads,
)


def _max_threads():
    v = os.environ.get("NUMEXPR_MAX_THREADS", "")
    try:
        return int(v) if v.strip() else 64
    except ValueError:
        return 64


#: ``NUMEXPR_MAX_THREADS`` if set, else 64 (read at import, as numexpr does).
MAX_THREADS = _max_threads()


def detect_number_of_threads():
    """numexpr's deprecated helper: ``NUMEXPR_NUM_THREADS``, else ``OMP_NUM_THREADS``, else
    the cores, at most 8 unless the environment asks for more."""
    for var in ("NUMEXPR_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            return int(os.environ.get(var, ""))
        except ValueError:
            pass
    return min(detect_number_of_cores(), 8)


def get_vml_version():
    """None: fusebox has no Intel VML (it generates its own vector math)."""
    return None


def set_vml_accuracy_mode(mode):
    """No-op returning None (numexpr's behaviour without VML); ``mode`` is checked."""
    if mode not in ("high", "low", "fast", None):
        raise ValueError("mode argument must be one of: None, 'high', 'low', 'fast'")
    return None


def set_vml_num_threads(nthreads):
    """No-op (numexpr's behaviour without VML)."""
    return None


def get_vml_num_threads():
    """None (numexpr's behaviour without VML)."""
    return None
