"""How many torch threads a training run uses when it is not told: it times its own steps and picks.

Why measure: torch's intra-op pool waits for all its threads at the end of every operation, so when
another program holds one of two cores, a 2-thread pool stalls on its descheduled thread at every one
of the hundreds of small operations in a step. Fashion-MNIST 784-400-20 at batch 128 then ran at 0.32x
the speed of one thread (issue 10); on an idle machine two threads can be the faster choice. No fixed
number is right for both, and the load changes while a run trains, so the run measures.

How: a probe runs a few ordinary training steps with each candidate count (1 .. the cores this process
may use), interleaved A B B A so that a load that rises or falls during the probe weighs on every
candidate alike; the first step after each switch is not counted (a new pool starts its threads). The
probe's steps are real steps of the run, so nothing is thrown away but the extra time of the slower
candidates' few steps, and a candidate leaves the probe as soon as even its fastest step is `drop`
times slower per sample than another's average (an oversubscribed pool can be 30x slower, and then its
steps are the probe's whole cost). More threads win only when clearly faster (by `margin`): fewer
threads leave a core to the rest of the machine, and lose little when the two are close.

When: at the start; then again after `interval` seconds of training, that wait doubling (up to
`max_interval`) each time the choice stays the same, and long enough that the probe's extra time (its
steps at the counts not chosen, beyond what the chosen count would have taken) stays within `budget` of
training (on a loaded machine two threads ran 30x slower: two such steps cost a second); and as soon as
the chosen count's last `window` steps run `drift` times slower than it measured (another program has
started), if `interval` seconds have passed since the last probe. The clock is training time, not epochs:
a small data set's short epochs are not spent probing, and a large one's long epochs still notice a
change within seconds. Only a rising load is costly to miss (more threads than free cores), and that one
is caught at once.

The chooser holds no torch: the trainer asks `next_threads()` before each step and reports the step's
time with `record(seconds, samples)`, so tests drive it with made-up timings.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field


def candidate_counts(cores: int | None = None) -> tuple[int, ...]:
    """1 .. the cores this process may run on (beyond 4: powers of two and the total, to keep probes short)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = max(1, cores)
    if cores <= 4:
        return tuple(range(1, cores + 1))
    return tuple(sorted({2 ** k for k in range(cores.bit_length()) if 2 ** k <= cores} | {cores}))


def pick(rates: dict[int, float], margin: float) -> int:
    """The fewest threads, unless more are faster than the current pick by more than `margin` (0.1 = 10%)."""
    counts = sorted(rates)
    best = counts[0]
    for n in counts[1:]:
        if rates[n] > rates[best] * (1 + margin):
            best = n
    return best


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    rates: dict[int, float] = field(default_factory=dict)  # samples/s measured for each candidate
    why: str = "measured"  # "measured", "only one core", "given" (an explicit count), or "kept: ..."

    def describe(self) -> str:
        """One line for stderr: the choice and what it rests on."""
        if not self.rates:
            return f"torch threads: {self.threads} ({self.why})"
        measured = ", ".join(f"{n} -> {r:,.0f}" for n, r in sorted(self.rates.items()))
        return f"torch threads: {self.threads} (measured samples/s with {measured})"

    def to_dict(self) -> dict:
        return {"threads": self.threads, "why": self.why,
                "samples_per_s": {str(n): round(r, 1) for n, r in sorted(self.rates.items())}}


class ThreadChooser:
    """Chooses the torch thread count of a training run from timings of its own steps (see the module)."""

    def __init__(self, candidates: tuple[int, ...] | None = None, *, steps: int = 4, rounds: int = 2,
                 margin: float = 0.1, drop: float = 1.5, interval: float = 2.0, max_interval: float = 60.0,
                 budget: float = 0.03, drift: float = 1.5, window: int = 30):
        self.candidates = tuple(sorted(set(candidates or candidate_counts())))
        self.steps, self.rounds, self.margin, self.drop = steps, rounds, margin, drop
        self.interval, self.max_interval, self.drift, self.window = interval, max_interval, drift, window
        self.budget = budget
        self.choice: ThreadChoice | None = None
        self.probes = 0  # probes started so far
        self._wait = interval  # training seconds until the next probe (it backs off while nothing changes)
        self._since_probe = 0.0  # training seconds since the last probe started
        self._recent: list[float] = []  # seconds per sample of the latest steps at the chosen count
        self._plan: list[tuple[int, bool]] = []  # the probe's remaining steps: (threads, counted)
        self._sums: dict[int, list[float]] = {}  # per candidate: [seconds, samples] of its counted steps
        self._fastest: dict[int, float] = {}  # per candidate: its fastest counted step, seconds per sample
        self._probe_steps: list[tuple[int, float, int]] = []  # every step of the probe: (threads, seconds, samples)
        if len(self.candidates) == 1:
            self.choice = ThreadChoice(self.candidates[0], why="only one core")
        else:
            self._start_probe()

    @property
    def probing(self) -> bool:
        return bool(self._plan)

    def next_threads(self) -> int:
        """The thread count to run the next step with."""
        return self._plan[0][0] if self._plan else self.choice.threads

    def record(self, seconds: float, samples: int) -> ThreadChoice | None:
        """The step just run (with `next_threads()`) took `seconds` for `samples` examples.
        Returns the choice when a probe has just ended (changed or not), else None."""
        self._since_probe += seconds
        if self._plan:
            threads, counted = self._plan.pop(0)
            self._probe_steps.append((threads, seconds, samples))
            if counted:
                self._count(threads, seconds, samples)
            return None if self._plan else self._finish_probe()
        self._recent = (self._recent + [seconds / max(samples, 1)])[-self.window:]
        slowed = len(self._recent) == self.window and self._slowed()
        if self._due(self._wait) or (slowed and self._due(self.interval)):
            self._start_probe()
        return None

    # -- inside ------------------------------------------------------------------------------------
    def _due(self, wait: float) -> bool:
        return len(self.candidates) > 1 and self._since_probe >= wait

    def _slowed(self) -> bool:
        measured = self.choice.rates.get(self.choice.threads) if self.choice else None
        return bool(measured) and sum(self._recent) / len(self._recent) > self.drift / measured

    def _start_probe(self) -> None:
        """A B B A ...: in each round every candidate runs `steps` counted steps, after an uncounted
        one where the count has just changed."""
        self.probes += 1
        self._since_probe, self._recent, self._sums, self._fastest, self._probe_steps = 0.0, [], {}, {}, []
        plan: list[tuple[int, bool]] = []
        for r in range(self.rounds):
            for n in (self.candidates if r % 2 == 0 else self.candidates[::-1]):
                if not plan or plan[-1][0] != n:
                    plan.append((n, False))
                plan += [(n, True)] * self.steps
        self._plan = plan

    def _count(self, threads: int, seconds: float, samples: int) -> None:
        sums = self._sums.setdefault(threads, [0.0, 0])
        sums[0] += seconds
        sums[1] += samples
        per_sample = seconds / max(samples, 1)
        self._fastest[threads] = min(self._fastest.get(threads, per_sample), per_sample)
        others = [s / n for m, (s, n) in self._sums.items() if m != threads and n]
        if others and self._fastest[threads] > self.drop * min(others):  # clearly slower: stop paying for it
            self._plan = [(n, c) for n, c in self._plan if n != threads]
            if len({n for n, _ in self._plan}) <= 1 and set(self._sums) == set(self.candidates):
                self._plan = []  # one candidate left and every one measured: nothing left to compare

    def _finish_probe(self) -> ThreadChoice:
        self._plan = []
        rates = {n: samples / max(seconds, 1e-12) for n, (seconds, samples) in self._sums.items()}
        threads = pick(rates, self.margin)
        same = self.choice is not None and self.choice.threads == threads
        extra = sum(s - n / rates[threads] for t, s, n in self._probe_steps if t != threads)
        wait = min(2 * self._wait, self.max_interval) if same else self.interval
        self._wait = min(max(wait, extra / self.budget), self.max_interval)
        self.choice = ThreadChoice(threads, rates)
        return self.choice
