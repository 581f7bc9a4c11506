"""Adagrad's step size chosen as section 5 of the paper chose it: "from {0.01, 0.02, 0.1} based on
performance on the training set in the first few iterations".

Each candidate trains LR_SEARCH_STEPS steps from the same start: the same initial weights, the same
minibatches and the same noise (the run's seeded generators, set back before each candidate), so the
choice repeats with the seed. Its score is the mean training ELBO of those minibatches, each estimated
before its update as the train records are (its bound alone, without the weight-decay term); a candidate
whose loss became non-finite scores -inf. The best score wins (a tie: the smaller step). The run then
starts again from the same start with the chosen step size, so it trains exactly as a run given that
step size would. The search costs 3 x 100 steps, half an epoch of MNIST at M = 100 (about 5 s on one
shared core for the paper's 784-500-20 network). A resumed run keeps the choice it made at its start.

The trainer runs the steps (`Trainer._probe`); this module holds the candidates, the rule and the record.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

LR_CANDIDATES = (0.01, 0.02, 0.1)  # section 5's
LR_SEARCH_STEPS = 100  # "the first few iterations": steps of training with each candidate


@dataclass(frozen=True)
class LrSearch:
    """The candidates' scores (mean training ELBO of their steps, nats; -inf: diverged) and the choice."""
    scores: dict[float, float]
    steps: int

    @property
    def chosen(self) -> float:
        return max(sorted(self.scores), key=lambda lr: self.scores[lr])  # max keeps the first of a tie

    def describe(self) -> str:
        """One line for stderr."""
        tried = ", ".join(f"{lr:g} -> {s:.6g}" if math.isfinite(s) else f"{lr:g} -> diverged"
                          for lr, s in sorted(self.scores.items()))
        return f"step size: {self.chosen:g} (mean training ELBO of {self.steps} steps with {tried})"

    def to_dict(self) -> dict:
        """As a checkpoint's summary keeps it (JSON: a diverged candidate's score is null)."""
        scores = {f"{lr:g}": round(s, 4) if math.isfinite(s) else None for lr, s in sorted(self.scores.items())}
        return {"chosen": self.chosen, "steps": self.steps, "scores": scores}

    @classmethod
    def from_dict(cls, data: dict) -> "LrSearch":
        return cls(scores={float(lr): -math.inf if s is None else float(s) for lr, s in data["scores"].items()},
                   steps=int(data["steps"]))


def search_lr(probe: Callable[[float, int], float], candidates: tuple[float, ...] | None = None,
              steps: int | None = None) -> LrSearch:
    """Score each candidate with `probe(lr, steps)` (which trains from the same start each time)."""
    candidates = LR_CANDIDATES if candidates is None else candidates  # read now: a test may replace them
    steps = LR_SEARCH_STEPS if steps is None else steps
    return LrSearch(scores={float(lr): probe(float(lr), steps) for lr in candidates}, steps=steps)
