"""CPU threads, with numexpr's environment conventions.

At import the thread count is ``FUSEBOX_NUM_THREADS`` if set (and not empty), else
``NUMEXPR_NUM_THREADS``, else ``OMP_NUM_THREADS``, else every core. ``set_num_threads``
changes it for later calls (each count has its own session, so the first call after a change
compiles its kernels again).
"""

import os

from . import _core


def detect_number_of_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _from_env():
    for var in ("FUSEBOX_NUM_THREADS", "NUMEXPR_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.strip() != "":
            try:
                n = int(v)
            except ValueError:
                raise ValueError(f"{var}={v!r} is not a number of threads") from None
            if n < 1:
                raise ValueError(f"{var}={v!r}: the number of threads must be at least 1")
            return n
    return None


def set_num_threads(nthreads):
    """Use ``nthreads`` CPU threads from now on; returns the previous number (numexpr's)."""
    if isinstance(nthreads, bool) or not isinstance(nthreads, int):
        try:
            import operator

            nthreads = operator.index(nthreads)
        except TypeError:
            raise TypeError(f"nthreads must be an integer, got {type(nthreads).__name__}") from None
    if nthreads < 1:
        raise ValueError(f"nthreads must be at least 1, got {nthreads}")
    old = get_num_threads()
    _core._set_threads(int(nthreads))
    return old


def get_num_threads():
    """The number of CPU threads calls use."""
    n = _core._get_threads()
    return n if n > 0 else detect_number_of_cores()


def _init_num_threads():
    """Read the environment (as at import) and apply it; returns the thread count."""
    n = _from_env()
    _core._set_threads(n if n is not None else 0)
    return get_num_threads()


_init_num_threads()
