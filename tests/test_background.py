"""The background worker: one computation per key, failures kept (not retried in a loop), results not hoarded."""
import time

import pytest

from ui.background import BackgroundWorker


def wait(future):
    deadline = time.monotonic() + 10
    while not future.done():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return future


def test_a_key_runs_once_a_failure_stays_until_forgotten_and_finished_work_is_dropped():
    worker, calls = BackgroundWorker(), []

    def ok():
        calls.append("ok")
        return 1

    def boom():
        calls.append("boom")
        raise RuntimeError("no data")

    assert wait(worker.submit(("a",), ok)).result() == 1
    assert worker.submit(("a",), ok).result() == 1 and calls == ["ok"]  # the same key: not run again
    failed = wait(worker.submit(("b",), boom))
    assert worker.submit(("b",), boom) is failed and calls == ["ok", "boom"]  # kept, so the page shows the error
    with pytest.raises(RuntimeError, match="no data"):
        failed.result()
    worker.forget(("b",))
    wait(worker.submit(("b",), boom))
    assert calls == ["ok", "boom", "boom"]  # a retry runs it again
    assert ("a",) not in worker._futures  # finished work lives in the disk cache, not in this dict
