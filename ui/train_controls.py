"""The Train page's buttons for a run this session started: pause, one minibatch, one epoch, resume and stop,
and, while it is paused, a new learning rate and beta (vae/control.py). Other sessions watch without them."""
from __future__ import annotations

import streamlit as st

from vae.jobs import Job
from vae.runs import RunError

from . import state
from .widgets import fail


def status_line(job: Job, waiting: int) -> str:
    """What the job is doing, in one sentence (a paused job says that it keeps its slot)."""
    if job.state == "queued":
        return f"Waiting in the queue: place {job.queue_position}."
    if job.state == "running" and job.paused:
        at = job.history[-1] if job.history else {"step": 0, "epoch": 0.0}
        queue = f"; {waiting} queued run{'s wait' if waiting != 1 else ' waits'} for it" if waiting else ""
        return f"Paused at step {at['step']:,} (epoch {at['epoch']:.2f}): it keeps its training slot{queue}."
    if job.state == "running":
        eta = job.eta_seconds
        left = f", about {eta:,.0f} s left" if eta is not None else ""
        return f"Training: {job.progress:.0%} done, {job.samples_per_s:,.0f} samples/s{left}."
    return f"{job.state.capitalize()}: {job.message.rstrip('.')}."


def owner_controls(job: Job) -> None:
    """The buttons, for the session that started `job` while it trains; a press is sent to the training
    process at once and shows at the next redraw (within the live view's second)."""
    registry, me = state.registry(), state.session_id()
    columns = st.columns([1, 1.4, 1.3, 1, 3])
    pressed = None
    if job.state == "running":
        if job.paused:
            if columns[0].button("Resume", key=f"tr_go_{job.id}", icon=":material/play_arrow:"):
                pressed = "resume"
        elif columns[0].button("Pause", key=f"tr_pause_{job.id}", icon=":material/pause:"):
            pressed = "pause"
        if columns[1].button("One minibatch", key=f"tr_step_{job.id}", icon=":material/skip_next:",
                             help="one update of the run's algorithm (AEVB: algorithm 1) on the next minibatch, "
                                  "then pause"):
            pressed = "step"
        if columns[2].button("One epoch", key=f"tr_epoch_{job.id}", icon=":material/fast_forward:",
                             help="train to the end of this epoch (a whole epoch from an epoch's start), then pause"):
            pressed = "epoch"
    if columns[3].button("Stop", key=f"stop_{job.id}", icon=":material/stop:"):
        registry.stop(job.id, me)
    if pressed:
        _send(job, pressed)
    if job.state == "running" and job.paused:
        _change_form(job)


def _change_form(job: Job) -> None:
    """A new learning rate and beta for a paused run, from its next step on; recorded in metrics.jsonl and
    marked on the curves."""
    lr, beta = job.in_force
    wake_sleep = job.spec.train.algorithm == "wake-sleep"
    with st.form(f"tr_change_{job.id}", border=False):
        left, mid, right = st.columns([1, 1, 1], vertical_alignment="bottom")
        new_lr = left.number_input("Learning rate from here", min_value=0.0, value=float(lr), format="%.6f",
                                   step=lr / 2, key=f"tr_lr_{job.id}_{lr}")
        new_beta = mid.number_input("β from here", min_value=0.0, value=float(beta), step=0.1, format="%.3f",
                                    key=f"tr_beta_{job.id}_{beta}", disabled=wake_sleep,
                                    help="wake-sleep trains no KL term: its β stays 1" if wake_sleep else
                                    "the KL term's weight (1: the ELBO, eq. 3)")
        if not right.form_submit_button("Change"):
            return
    changed = {k: v for k, v, was in (("lr", new_lr, lr), ("beta", new_beta, beta)) if v != was}
    if not changed:
        st.caption("Nothing to change: both are the values in force.")
        return
    _send(job, "change", **changed)


def _send(job: Job, command: str, **values) -> None:
    try:
        state.registry().control(job.id, state.session_id(), command, **values)
    except (RunError, PermissionError) as err:
        fail(str(err))
