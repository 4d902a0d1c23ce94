"""The server runs numpy's BLAS on one thread (tailor.server.run.one_blas_thread)."""

from __future__ import annotations

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from tailor.server.run import one_blas_thread


def _numpy_blas_threads() -> list[int]:
    np.ones((64, 64), dtype=np.float32) @ np.ones(64, dtype=np.float32)  # numpy's BLAS is loaded
    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]


def test_one_blas_thread_limits_the_library_numpy_already_loaded() -> None:
    with threadpoolctl.threadpool_limits(2, user_api="blas"):  # as on a machine of two cores or more
        before = _numpy_blas_threads()
        assert before and all(threads == 2 for threads in before), before
        limiter = one_blas_thread()
        try:
            assert _numpy_blas_threads() == [1] * len(before)
        finally:
            limiter.restore_original_limits()
        assert _numpy_blas_threads() == before
