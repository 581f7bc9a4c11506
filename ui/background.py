"""One background thread for slow, cacheable work that pages wait for (UMAP, t-SNE, IW curves).

The thread never calls `st.*`: it only computes and writes the runs folder's cache. A page submits
a job under a key, shows something meanwhile, and a fragment reruns the app when the future is done.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st
import torch


class BackgroundWorker:
    """Futures keyed by what they compute, so two sessions asking for the same thing share one."""

    def __init__(self):
        # One thread, one torch thread: two busy pools on two cores slow each other several-fold.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vae-background",
                                        initializer=torch.set_num_threads, initargs=(1,))
        self._futures: dict[tuple, Future] = {}
        self._lock = threading.Lock()

    def submit(self, key: tuple, fn) -> Future:
        """The future for `key`, started once. A failed one is kept, so the page shows its error instead of
        rerunning a computation that fails again; `forget` allows a retry."""
        with self._lock:
            future = self._futures.get(key)
            if future is None:
                future = self._pool.submit(fn)
                self._futures[key] = future
            # Succeeded work lives on in the runs folder's cache; only pending and failed futures are kept.
            for done in [k for k, f in self._futures.items() if k != key and f.done() and f.exception() is None]:
                del self._futures[done]
            return future

    def forget(self, key: tuple) -> None:
        with self._lock:
            self._futures.pop(key, None)


@st.cache_resource
def worker() -> BackgroundWorker:
    return BackgroundWorker()


def cached_or_pending(key: tuple, read_cached, compute, *, what: str) -> tuple[object | None, Future | None]:
    """(value, None) when `read_cached()` has it or the background job finished; (None, future) while the
    job runs (pass the future to `rerun_when_done`); (None, None) after a failure, which is shown with a
    Try again button. `compute` runs in the background thread and must keep its result where
    `read_cached` finds it (the runs folder's cache)."""
    value = read_cached()
    if value is not None:
        return value, None
    future = worker().submit(key, compute)
    if not future.done():
        return None, future
    if future.exception() is None:
        return future.result(), None
    st.error(f"{what} could not be computed: {future.exception()}")
    if st.button("Try again", key="retry_" + "_".join(str(part)[:16] for part in key)):
        worker().forget(key)
        st.rerun()
    return None, None


@st.fragment(run_every=2.0)
def rerun_when_done(*futures: Future) -> None:
    """One poller per page run, however many results it waits for: the page reruns as soon as any is ready
    (and waits again for the rest), so a page never carries several timers that each rerun it."""
    if any(f.done() for f in futures):
        st.rerun(scope="app")
