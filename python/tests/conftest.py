"""Shared fixtures: the devices every expression test runs on.

``device`` is ``"cpu"`` and ``"gpu"``. The GPU runs are skipped only when no adapter exists
and ``FUSEBOX_REQUIRE_GPU`` is unset (CI sets it, with Mesa's lavapipe as the adapter); with
it set, a missing adapter fails the tests.
"""

import os

import numpy as np
import pytest

import fusebox

_GPU = None


def gpu_available():
    global _GPU
    if _GPU is None:
        try:
            fusebox.evaluate("a + 1", {"a": np.ones(2)}, {}, device="gpu")
            _GPU = (True, "")
        except RuntimeError as e:
            _GPU = (False, str(e))
    return _GPU


@pytest.fixture(params=["cpu", "gpu"])
def device(request):
    if request.param == "gpu":
        ok, why = gpu_available()
        if not ok:
            if os.environ.get("FUSEBOX_REQUIRE_GPU"):
                pytest.fail(f"FUSEBOX_REQUIRE_GPU is set but no GPU adapter works: {why}")
            pytest.skip(f"no GPU adapter: {why}")
    return request.param
