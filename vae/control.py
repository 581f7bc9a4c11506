"""Taking a run one step at a time: pause, step one minibatch or one epoch, resume, and change the step size
and beta in between (GAN Lab's way of teaching a generative model: Kahng et al., IEEE VIS 2018).

A `TrainControl` is shared by whoever presses the buttons (the training process's stdin listener, fed by
the Train page) and the trainer, which asks it before every step whether it may take one (`wait_turn`) and
which settings to change first (`take_change`). Thread-safe; no torch, no UI.

A change is a `Change`: from step `step` on (after `step` updates, before the next), the learning rate
and/or beta are these. The run's TrainConfig keeps every change it made (`changes`), so its checkpoint
says what was done, a resumed run goes on with the values in force, and a run trained again from that
config repeats the same changes at the same steps.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

WAIT_S = 0.2  # how often a paused run looks at its stop event (the Stop button, or the server gone)
# A paused run that nobody has pressed a button of for this long resumes by itself: only the session that
# started it may press them, and a reload or a closed tab loses that session, so without a lease a forgotten
# pause would hold its training slot, and the queue of every server on the runs folder, until a restart.
PAUSE_LEASE_S = 30 * 60


class ControlError(ValueError):
    """A change that cannot be made; the message is one sentence."""


@dataclass(frozen=True)
class Change:
    """From `step` on (after that many updates), the learning rate and/or beta are these; None keeps one."""
    step: int
    lr: float | None = None
    beta: float | None = None

    def __post_init__(self):
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 0:
            raise ControlError(f"a change's step must be a whole number of steps, zero or more, got {self.step!r}.")
        if self.lr is None and self.beta is None:
            raise ControlError("a change must set the learning rate, beta or both.")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ControlError(f"the learning rate must be a positive number, got {self.lr!r}.")
        if self.beta is not None and not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta)
                                          and self.beta >= 0):
            raise ControlError(f"beta must be zero or positive, got {self.beta!r}.")

    @classmethod
    def from_dict(cls, data) -> "Change":
        if isinstance(data, Change):
            return data
        if not isinstance(data, dict) or set(data) - {"step", "lr", "beta"}:
            raise ControlError(f"a change is a step with a learning rate and/or beta, got {data!r}.")
        return cls(**data)


def in_force(changes, step: int, lr: float, beta: float) -> tuple[float, float]:
    """(lr, beta) after `step` updates of a run that started with `lr` and `beta` and made `changes`."""
    for change in changes:
        if change.step <= step:
            lr = change.lr if change.lr is not None else lr
            beta = change.beta if change.beta is not None else beta
    return lr, beta


class TrainControl:
    """The buttons' side (`pause`, `resume`, `step`, `finish_epoch`, `change`) and the trainer's
    (`wait_turn`, which uses `may_step`, and `take_change`), under one lock."""

    def __init__(self, paused: bool = False, lease_s: float = PAUSE_LEASE_S):
        self._lock = threading.Condition()
        self._paused = paused
        self.lease_s = lease_s
        self._pressed = time.monotonic()  # the last press of a button (a lease runs from there)
        self._presses = 0  # how many: a press that leaves the run waiting is said again (wait_turn)
        self._steps = 0  # steps granted while paused
        self._epoch = False  # granted: the rest of the epoch in progress
        self._until_epoch: int | None = None  # the trainer's epoch count at which that grant ends
        self._change: dict[str, float] = {}

    # -- the buttons ---------------------------------------------------------------------
    def pause(self) -> None:
        with self._lock:
            self._paused, self._steps, self._epoch, self._until_epoch = True, 0, False, None
            self._press()

    def resume(self) -> None:
        with self._lock:
            self._paused, self._steps, self._epoch, self._until_epoch = False, 0, False, None
            self._press()

    def step(self, n: int = 1) -> None:
        """Take `n` more minibatches, then pause (pausing first if the run was going)."""
        with self._lock:
            if not self._paused:
                self._paused, self._epoch, self._until_epoch = True, False, None
            self._steps += max(1, int(n))
            self._press()

    def finish_epoch(self) -> None:
        """Train to the end of the epoch in progress (a whole epoch at an epoch's start), then pause."""
        with self._lock:
            self._paused, self._steps, self._epoch, self._until_epoch = True, 0, True, None
            self._press()

    def change(self, lr: float | None = None, beta: float | None = None) -> None:
        """Use these from the next step on; refused in one sentence when a value cannot be used."""
        Change(0, lr=lr, beta=beta)  # the checks, before anything is kept
        with self._lock:
            self._change.update({k: float(v) for k, v in (("lr", lr), ("beta", beta)) if v is not None})
            self._press(moves=False)  # a paused run makes the change at once

    def _press(self, moves: bool = True) -> None:
        """(With the lock held.) A button was pressed: the lease starts again, and a waiting run looks; a
        press that `moves` the run (all but a change) is counted, for wait_turn."""
        self._pressed = time.monotonic()
        self._presses += moves
        self._lock.notify_all()

    def paused_now(self) -> bool:
        with self._lock:
            return self._paused

    # -- the trainer -------------------------------------------------------------------------
    def take_change(self) -> dict[str, float]:
        """The settings changed since the trainer last asked ({} when none)."""
        with self._lock:
            change, self._change = self._change, {}
            return change

    def may_step(self, epoch: int) -> bool:
        """Whether the next step may run now; a grant of steps is used up by the answer. `epoch` is the
        trainer's count of completed epochs."""
        with self._lock:
            if not self._paused:
                return True
            if self._epoch:
                if self._until_epoch is None:
                    self._until_epoch = epoch + 1
                if epoch < self._until_epoch:
                    return True
                self._epoch, self._until_epoch = False, None
            if self._steps > 0:
                self._steps -= 1
                return True
            return False

    def wait_turn(self, epoch: int, stop: threading.Event, on_pause: Callable[[], None],
                  on_change: Callable[[], None]) -> None:
        """Return when the next step may run or `stop` is set. `on_pause()` is called as the run starts to
        wait, and again after any press that leaves it waiting (a Pause that cancelled a Resume or a step not
        yet taken), so whoever follows the run hears that it waits; `on_change()` before it and whenever the
        buttons may have changed a setting, so that a paused run makes (and records) a change at once, not at
        its next step. A pause nobody presses a button of for `lease_s` ends: the run resumes."""
        on_change()
        if self.may_step(epoch):
            return
        said = self._presses  # read first: a press while on_pause runs is said again below
        on_pause()
        while not stop.is_set():
            on_change()
            if self.may_step(epoch):
                return
            with self._lock:
                if time.monotonic() - self._pressed > self.lease_s:
                    self._paused, self._steps, self._epoch, self._until_epoch = False, 0, False, None
                    continue
                if self._presses != said:
                    said = self._presses
                    again = True
                else:
                    again = False
                    if not self._change:
                        self._lock.wait(WAIT_S)
            if again:
                on_pause()
