"""The training loop over tensors held in memory: AEVB (Kingma & Welling 2013, algorithm 1), or the
wake-sleep baseline of the paper's figure 2 (vae/wake_sleep.py) on the same model and records.

The trainer knows nothing about the UI or the disk: it writes no file and reports through callbacks
(minGPT's trainer), which the command line (a progress bar), the app (a background job) and the run
writer (vae/run_writer.py: metrics, checkpoint, resume state, snapshots) subscribe to. All randomness
(shuffling, eps, binarisation) comes from two seeded generators that a resume state saves with the
optimiser state, so a run repeats exactly and a resumed run continues the same random stream. A
non-finite loss stops the run before its epoch is reported, so the last good checkpoint stays.
With `lr_search`, a new run first chooses its step size (vae/lr_search.py) and trains from its start with it;
the choice is in every event's `state` (`lr_search`, and `config.lr`).

Events (`TrainEvent.kind`), in the order one run sends them, from rank 0 only:
  "start"  once, before the first step. `state.epoch` is 0 for a new run (the untrained model),
           the resumed epoch otherwise; `test_inputs` holds the test images as the run sees them.
  "step"   every `log_every` steps: `records` is [the train record of the steps since the last one].
  "epoch"  after each epoch whose weights are finite: `records` is [the train record, the test record].
  "pause"  when a run controlled by a TrainControl (vae/control.py) starts to wait: `records` is [a "pause"
           record], after a "step" event for the steps since the last logged one (so one step shows).
  "change" when the learning rate or beta changes (the controls, or a change the config schedules):
           `records` is [a "change" record with the values now in force].
  "end"    once, as `fit` returns (finished, stopped or diverged): `result` is the TrainResult.
Every event carries the model, the progress and `state` (step, epoch, seconds, the history so far, and
the live optimiser and generators: what a resume state saves; read them during the call). Callbacks
hear an event one after another in the order they were added, so the first one added (train_run's
run writer) has written the epoch's checkpoint before any later one hears that epoch. A callback
given as `callbacks=` hears the progress events ("step", "epoch", "end"); `add_callback` subscribes
to other kinds. Resuming happens before any event: `restore` takes the resume state and the records
kept up to it (train_run has the run writer drop the rest), and "start" then reports the epoch reached.
"""
from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from .binarize import batch_inputs, prepare_inputs, test_inputs
from .checkpoint import CheckpointError, load_checkpoint, load_resume_state
from .config import ConfigError, ModelConfig, TrainConfig
from .control import Change, TrainControl, in_force
from .data import Dataset
from .distributed import DistContext, resolve_device, wrap_objective
from .lr_search import LrSearch, search_lr
from .metrics import as_tensor, evaluate_elbo
from .model import VAE, build_model, parameter_prior_loss
from .run_writer import RunWriter
from .runs import RunLock, open_run_dir, read_metrics
from .threads import ThreadChoice, ThreadChooser
from .wake_sleep import wake_sleep_update

EVENTS = ("start", "step", "epoch", "pause", "change", "end")  # the kinds a run sends (module docstring)
PROGRESS_EVENTS = ("step", "epoch", "end")  # what a callback given as `callbacks=` hears, unless told otherwise
CONTROL_EVENTS = ("pause", "change")  # what the controls of vae/control.py make a run send


@dataclass(frozen=True)
class RunState:
    """Where the run stands as an event is sent: what a checkpoint's summary and a resume state save.
    `history`, `optimizer` and `generators` are the trainer's own, live: read them during the call."""
    step: int  # optimiser steps taken
    epoch: int  # epochs completed
    seconds: float  # training time so far, a resumed run's earlier time included
    history: list[dict]  # every record so far, a resumed run's earlier ones included
    optimizer: torch.optim.Optimizer
    generators: dict[str, torch.Generator]  # "shuffle" (a CPU generator) and "noise" (the device's)
    config: TrainConfig | None = None  # the run's, its lr the one a step-size search chose
    lr_search: LrSearch | None = None  # that search's scores, when the run searched


@dataclass
class TrainEvent:
    kind: str  # one of EVENTS (module docstring)
    records: list[dict]  # "step": [a train record]; "epoch": [train, test]; "pause", "change": [theirs]; else []
    model: VAE
    progress: float  # fraction of the run's total steps done, 0..1
    samples_per_s: float
    result: "TrainResult | None" = None  # "end" only
    threads: ThreadChoice | None = None  # the torch thread count in use and what it rests on
    state: RunState | None = None
    test_inputs: torch.Tensor | None = None  # "start" only: the test images as the run sees them


Callback = Callable[[TrainEvent], None]


@dataclass
class TrainResult:
    status: str  # "finished", "stopped" or "diverged"
    reason: str
    epochs: int  # completed epochs
    step: int
    train_elbo: float | None
    test_elbo: float | None
    samples_per_s: float
    seconds: float
    checkpoint: Path | None = None  # filled in by the run writer: the run's last checkpoint, if any
    history: list[dict] = field(default_factory=list)
    threads: ThreadChoice | None = None  # the last thread choice (a measured one, or the given count)

    def summary(self) -> dict:
        return {"status": self.status, "reason": self.reason, "epochs": self.epochs, "step": self.step,
                "train_elbo": self.train_elbo, "test_elbo": self.test_elbo,
                "samples_per_s": round(self.samples_per_s, 1), "seconds": round(self.seconds, 2),
                "threads": self.threads.threads if self.threads else None}


def make_optimizer(model: VAE, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or Adagrad (the paper's choice, section 5), fused: one kernel per step over all parameters.
    On two cores the unfused update's sqrt and div passes cost a fifth of a batch-128 step."""
    cls = torch.optim.Adagrad if config.optimizer == "adagrad" else torch.optim.Adam
    try:
        return cls(model.parameters(), lr=config.lr, fused=True)
    except (RuntimeError, TypeError):  # a device or build without the fused kernel
        return cls(model.parameters(), lr=config.lr)


def _model_is_finite(model: VAE) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


class _Meter:
    """Sums of elbo / recon / kl kept as a tensor, so the hot loop never waits on .item()."""

    def __init__(self, device):
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)
        self.count = 0

    def add(self, elbo: torch.Tensor, recon: torch.Tensor, kl: torch.Tensor, n_global: int):
        self.sums += torch.stack([elbo.sum(), recon.sum(), kl.sum()]).double()
        self.count += n_global

    def means(self, ctx: DistContext) -> dict:
        elbo, recon, kl = (ctx.all_sum(self.sums.clone()) / max(1, self.count)).tolist()
        return {"elbo": elbo, "recon": recon, "kl": kl}


class Trainer:
    """One training run: `model` on `data` with `config`, reported through events; it writes no file."""

    def __init__(self, model: VAE, data: Dataset, config: TrainConfig, *, callbacks: Sequence[Callback] = (),
                 device: str = "cpu", threads: int | None = None, stop_event: threading.Event | None = None,
                 dist: DistContext | None = None, control: TrainControl | None = None):
        self.dist = dist or DistContext(device=resolve_device(device))
        self.device = self.dist.device
        if config.algorithm == "wake-sleep" and self.dist.active:
            raise ConfigError("wake-sleep trains in one process only; start it without torchrun.")
        if tuple(data.image_shape) != tuple(model.config.image_shape):
            raise ConfigError(f"the model expects {model.config.image_shape} images but {data.name} has "
                              f"{data.image_shape}.")
        self.model, self.data, self.config = model.to(self.device), data, config
        self.callbacks: dict[str, list[Callback]] = defaultdict(list)
        for callback in callbacks:
            self.add_callback(callback)
        self.threads = threads  # a count, or None: measured while training (vae.threads)
        self.thread_choice: ThreadChoice | None = None
        self.stop_event = stop_event or threading.Event()
        self.control = control or TrainControl()  # nobody presses its buttons unless given one
        self.lr_now, self.beta_now = config.lr, config.beta  # what config.changes have made of them so far
        self._next_change = 0  # config.changes[:this] are made
        self.optimizer = make_optimizer(self.model, config)
        self.objective = wrap_objective(self.model, config.estimator, self.dist)
        self.shuffle_gen = torch.Generator().manual_seed(config.seed)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.step, self.epoch, self.seconds = 0, 0, 0.0
        self.history: list[dict] = []
        self.lr_search: LrSearch | None = None  # a new run's step-size search, or the resumed run's

    def add_callback(self, callback: Callback, kinds: Sequence[str] = PROGRESS_EVENTS) -> None:
        """`callback(event)` for every event of these kinds, after the callbacks added before it."""
        for kind in kinds:
            if kind not in EVENTS:
                raise ValueError(f"a trainer sends {', '.join(EVENTS)} events, not {kind!r}.")
            self.callbacks[kind].append(callback)

    # -- resume ------------------------------------------------------------------------
    def restore(self, state, history: Sequence[dict] = ()) -> None:
        """Continue from a resume state: weights, optimiser state, step and generator states. `history`
        is what the run logged up to the resume state's step (the run writer keeps it), so that the
        records' seconds, the history and the checkpoint's charts carry on from there."""
        self.model.load_state_dict(state.model.state_dict())
        self.optimizer.load_state_dict(state.optimizer_state)
        # The changes made up to the resume state's step are in force (train_run adds those made at that very
        # step, after the state was saved at the epoch's end, from their records); later ones are to come.
        self._next_change = sum(1 for c in self.config.changes if c.step <= state.step)
        self.lr_now, self.beta_now = in_force(self.config.changes[:self._next_change], state.step, self.config.lr,
                                              self.config.beta)
        for group in self.optimizer.param_groups:  # a resumed run may ask for another learning rate
            group["lr"] = self.lr_now
        self.shuffle_gen.set_state(state.generator_states["shuffle"])  # always a CPU generator
        try:
            self.noise_gen.set_state(state.generator_states["noise"])
        except RuntimeError:
            # Saved on another device (CUDA and CPU generator states differ): the run goes on with a
            # fresh stream, seeded from the step, so it stays repeatable but not identical to one device.
            self.noise_gen.manual_seed(self.config.seed + 1 + state.step)
        self.step, self.epoch = state.step, state.epoch
        self.history = list(history)
        self.seconds = max((r.get("seconds", 0.0) for r in self.history), default=0.0)

    # -- the loop ----------------------------------------------------------------------
    def fit(self) -> TrainResult:
        before = torch.get_num_threads()
        chooser = self._thread_chooser()
        try:
            return self._fit(chooser)
        finally:
            if chooser is not None:  # the process's own count again (tests and callers share the process)
                torch.set_num_threads(before)

    def _thread_chooser(self) -> ThreadChooser | None:
        """A given count is set, as asked, and so is OMP_NUM_THREADS when the environment sets it; otherwise
        a CPU run in one process measures its steps (vae.threads: an oversubscribed core slows torch
        several-fold). Several processes (torchrun sets their OMP_NUM_THREADS) and CUDA runs keep the count
        they have. A measured count may change between steps, and a thread count can change a float
        reduction's last bits: a run that must repeat bit for bit gives --threads (or OMP_NUM_THREADS)."""
        if self.threads:
            torch.set_num_threads(self.threads)  # deliberate: 2 cores shared with the app's other work
            self.thread_choice = ThreadChoice(self.threads, why="given")
            return None
        omp = os.environ.get("OMP_NUM_THREADS", "")
        if omp.isdigit() and int(omp) > 0 and not self.dist.active:  # a count the user set for every program
            torch.set_num_threads(int(omp))
            self.thread_choice = ThreadChoice(int(omp), why="kept: OMP_NUM_THREADS")
            return None
        if self.device.type != "cpu" or self.dist.active:
            why = "kept: CUDA" if self.device.type != "cpu" else "kept: one of several processes"
            self.thread_choice = ThreadChoice(torch.get_num_threads(), why=why)
            return None
        chooser = ThreadChooser()
        if chooser.choice is not None:  # one core: nothing to measure
            self.thread_choice = chooser.choice
        return chooser

    def _use_threads(self, chooser: ThreadChooser | None) -> None:
        if chooser is not None and chooser.next_threads() != torch.get_num_threads():
            torch.set_num_threads(chooser.next_threads())

    def _timed(self, chooser: ThreadChooser | None, seconds: float, samples: int) -> None:
        """A step's time for the chooser; a finished probe becomes the run's choice."""
        if chooser is not None and (choice := chooser.record(seconds, samples)) is not None:
            self.thread_choice = choice

    def _fit(self, chooser: ThreadChooser | None) -> TrainResult:
        x_train = prepare_inputs(as_tensor(self.data.x_train, self.device), self.config.binarize, self.config.seed + 2)
        x_test = test_inputs(self.data, self.config, self.device)
        if self.config.lr_search and self.step == 0:  # a resumed run keeps the step size it chose
            self._choose_lr(x_train)
        cfg, model = self.config, self.model
        n, bs = x_train.shape[0], cfg.batch_size
        steps_per_epoch = math.ceil(n / bs)
        total_steps = cfg.epochs * steps_per_epoch
        status, reason = "finished", f"reached {cfg.epochs} epochs"
        train_seconds, samples_done = 0.0, 0
        self._total_steps, self._rate, beta = total_steps, 0.0, self._beta()
        last = {"train": None, "test": None}
        self._notify("start", [], 0.0, total_steps, test_inputs=x_test)
        model.train()
        while self.epoch < cfg.epochs and status == "finished":
            perm = torch.randperm(n, generator=self.shuffle_gen).to(self.device)
            epoch_meter = _Meter(self.device)
            self._log_meter = _Meter(self.device)
            for i in range(steps_per_epoch):
                if not self.stop_event.is_set():  # paused: waits here for a step, an epoch or resume
                    self.control.wait_turn(self.epoch, self.stop_event, on_pause=lambda b=beta: self._on_pause(b),
                                           on_change=self._make_changes)
                if self.stop_event.is_set():
                    status, reason = "stopped", f"stopped by the user during epoch {self.epoch + 1}"
                    break
                self._use_threads(chooser)
                t0 = time.perf_counter()
                beta = self._beta()
                out = self._step(x_train[perm[i * bs:(i + 1) * bs]], beta)
                if out is None:
                    status = "diverged"
                    reason = (f"the loss became non-finite at step {self.step + 1} (epoch {self.epoch + 1}); "
                              f"try a lower learning rate than {self.lr_now:g}")
                    break
                n_global = min(bs, n - i * bs)
                epoch_meter.add(*out, n_global)
                self._log_meter.add(*out, n_global)
                dt = time.perf_counter() - t0
                self._timed(chooser, dt, n_global)
                train_seconds += dt
                self.seconds += dt
                samples_done += n_global
                self._rate = samples_done / max(train_seconds, 1e-9)
                if self.step % cfg.log_every == 0:
                    self._log_step(beta)
            if status != "finished":
                break
            self.epoch += 1
            model.eval()
            test = evaluate_elbo(model, x_test, estimator=cfg.estimator, seed=cfg.seed + 4)
            model.train()
            kl_per_dim = test.pop("kl_per_dim")
            records = [self._record("train", "epoch", epoch_meter.means(self.dist), beta),
                       {**self._record("test", "epoch", test, beta), "kl_per_dim": [round(v, 4) for v in kl_per_dim]}]
            last = {"train": records[0]["elbo"], "test": records[1]["elbo"]}
            if not _model_is_finite(model):
                status, reason = "diverged", f"the weights became non-finite in epoch {self.epoch}"
                break
            self.history.extend(records)
            self._notify("epoch", records, samples_done / max(train_seconds, 1e-9), total_steps)
        result = TrainResult(status=status, reason=reason, epochs=self.epoch, step=self.step,
                             train_elbo=last["train"], test_elbo=last["test"],
                             samples_per_s=samples_done / max(train_seconds, 1e-9), seconds=self.seconds,
                             history=self.history, threads=self.thread_choice)
        self._notify("end", [], result.samples_per_s, total_steps, result)
        return result

    def _beta(self) -> float:
        """The KL weight of the next step: beta (as changed so far), reached linearly over the first kl_warmup
        epochs."""
        cfg = self.config
        warmup_steps = cfg.kl_warmup * math.ceil(self.data.x_train.shape[0] / cfg.batch_size)
        return self.beta_now * min(1.0, (self.step + 1) / warmup_steps) if warmup_steps > 0 else self.beta_now

    def _log_step(self, beta: float) -> None:
        """The train record of the steps since the last one, sent as a "step" event."""
        record = self._record("train", "step", self._log_meter.means(self.dist), beta)
        self._log_meter = _Meter(self.device)
        self.history.append(record)
        self._notify("step", [record], self._rate, self._total_steps)

    # -- the controls (vae/control.py) --------------------------------------------------------
    def _on_pause(self, beta: float) -> None:
        """The run starts to wait: the steps since the last record are logged (so one step shows on the
        curves), then a "pause" record."""
        if self._log_meter.count:
            self._log_step(beta)
        record = self._control_record("pause")
        self.history.append(record)
        self._notify("pause", [record], self._rate, self._total_steps)

    def _make_changes(self) -> None:
        """Before a step: the changes its config schedules for it (a run trained again from a config that
        holds changes), then any the controls asked for, each recorded and sent as a "change" event."""
        changes = self.config.changes
        while self._next_change < len(changes) and changes[self._next_change].step <= self.step:
            self._make(changes[self._next_change])
            self._next_change += 1
        asked = self.control.take_change()
        if asked:
            change = Change(self.step, lr=asked.get("lr"), beta=asked.get("beta"))
            # In step order: a config that schedules later changes (a run trained again) keeps them to come.
            merged = tuple(sorted(changes + (change,), key=lambda c: c.step))
            try:
                self.config = replace(self.config, changes=merged)  # the config's checks
            except ConfigError:  # beta for wake-sleep: the page refuses it first; a stray one changes nothing
                return
            self._next_change = sum(1 for c in merged if c.step <= self.step)
            self._make(change)

    def _make(self, change: Change) -> None:
        self.lr_now, self.beta_now = in_force((change,), self.step, self.lr_now, self.beta_now)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_now
        record = self._control_record("change")
        self.history.append(record)
        self._notify("change", [record], self._rate, self._total_steps)

    def _control_record(self, kind: str) -> dict:
        """A "pause" or "change" record: where the run stands and the learning rate and beta in force (beta
        as set, before any KL warm-up scales it; step records carry the warmed-up value)."""
        steps_per_epoch = math.ceil(self.data.x_train.shape[0] / self.config.batch_size)
        return {"step": self.step, "epoch": round(self.step / steps_per_epoch, 4), "kind": kind,
                "lr": self.lr_now, "beta": round(self.beta_now, 6), "seconds": round(self.seconds, 3)}

    def _step(self, xb: torch.Tensor, beta: float):
        """One update on the global minibatch xb (AEVB, or wake-sleep); this process handles its shard of it.

        Every rank draws the same binarisation and eps for the whole batch (the same generators), then
        keeps its rows, so N processes follow the single-process run. Returns this shard's per-example
        (elbo, recon, kl) before the update, or None when the loss is not finite on some rank.
        """
        cfg = self.config
        xb = batch_inputs(xb, cfg.binarize, self.noise_gen)
        eps = torch.randn((cfg.n_samples, xb.shape[0], self.model.config.latent_dim), device=self.device,
                          generator=self.noise_gen)
        out = self._aevb_update(xb, eps, beta) if cfg.algorithm == "aevb" else self._wake_sleep_update(xb, eps)
        if out is not None:
            self.step += 1
        return out

    def aevb_loss(self, xb: torch.Tensor, eps: torch.Tensor, beta: float = 1.0):
        """What an AEVB step descends on the global minibatch xb with noise eps [L, B, D]: this rank's share of
        the batch's mean negative bound (vae.model.minibatch_loss), plus section 5's weight decay when
        `weight_decay` is set; and this shard's per-example (elbo, recon, kl), the bound alone."""
        rows = self.dist.shard(xb.shape[0])
        loss, elbo, recon, kl = self.objective(xb[rows], eps[:, rows], beta, self.dist.world_size / xb.shape[0])
        if self.config.weight_decay:  # every rank adds the whole prior term: their average is the prior's gradient
            loss = loss + self._prior_loss(self.model.parameters())
        return loss, elbo, recon, kl

    def _aevb_update(self, xb: torch.Tensor, eps: torch.Tensor, beta: float):
        """Algorithm 1's update: a gradient step on `aevb_loss`."""
        loss, elbo, recon, kl = self.aevb_loss(xb, eps, beta)
        if not torch.isfinite(self.dist.all_sum(loss.detach().clone())):
            return None
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DistributedDataParallel averages the gradients across processes here
        self.optimizer.step()
        return elbo, recon, kl

    def _wake_sleep_update(self, xb: torch.Tensor, eps: torch.Tensor):
        """The baseline's wake and sleep updates (vae/wake_sleep.py); the records' bound as AEVB's records it."""
        penalty = self._prior_loss if self.config.weight_decay else None
        parts = wake_sleep_update(self.model, self.optimizer, xb, eps, self.noise_gen, estimator=self.config.estimator,
                                  penalty=penalty)
        return None if parts is None else (parts.elbo.detach(), parts.recon.detach(), parts.kl.detach())

    def _prior_loss(self, parameters) -> torch.Tensor:
        """Section 5's weight decay, scaled for a per-example loss (vae.model.parameter_prior_loss)."""
        return parameter_prior_loss(parameters, self.config.weight_decay, self.data.x_train.shape[0])

    # -- the step-size search (vae/lr_search.py) ------------------------------------------------
    def _choose_lr(self, x_train: torch.Tensor) -> None:
        """Score each candidate from this start, then train from the same start with the best one."""
        start = {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                 "shuffle": self.shuffle_gen.get_state(), "noise": self.noise_gen.get_state()}

        def probe(lr: float, steps: int) -> float:
            self._back_to(start, lr)
            return self._probe(x_train, steps)

        self.lr_search = search_lr(probe)
        self._back_to(start, self.lr_search.chosen)
        self.config = replace(self.config, lr=self.lr_search.chosen)
        self.lr_now = self.lr_search.chosen

    def _back_to(self, start: dict, lr: float) -> None:
        """The run as it stood before the search (weights, generators, step 0), with a fresh optimiser at lr."""
        self.model.load_state_dict(start["model"])
        self.shuffle_gen.set_state(start["shuffle"])
        self.noise_gen.set_state(start["noise"])
        self.step = 0
        self.optimizer = make_optimizer(self.model, replace(self.config, lr=lr))

    def _probe(self, x_train: torch.Tensor, steps: int) -> float:
        """Train `steps` steps on the run's own minibatches; their mean ELBO, or -inf if the loss diverged."""
        n, bs = x_train.shape[0], self.config.batch_size
        meter = _Meter(self.device)
        for rows in itertools.islice(self._minibatches(n, bs), steps):
            if self.stop_event.is_set():
                break
            out = self._step(x_train[rows], self._beta())
            if out is None:
                return -math.inf
            meter.add(*out, rows.shape[0])
        return meter.means(self.dist)["elbo"] if meter.count else -math.inf

    def _minibatches(self, n: int, bs: int):
        """The rows of each minibatch, epoch after epoch, shuffled as `_fit` shuffles them."""
        while True:
            perm = torch.randperm(n, generator=self.shuffle_gen).to(self.device)
            for i in range(math.ceil(n / bs)):
                yield perm[i * bs:(i + 1) * bs]

    def _record(self, split: str, kind: str, values: dict, beta: float) -> dict:
        steps_per_epoch = math.ceil(self.data.x_train.shape[0] / self.config.batch_size)
        return {"step": self.step, "epoch": round(self.step / steps_per_epoch, 4), "split": split,
                "kind": kind, **{k: round(v, 4) for k, v in values.items() if v is not None}, "beta": round(beta, 4),
                "samples": self.step * self.config.batch_size, "seconds": round(self.seconds, 3),
                **({"threads": self._threads_now()} if split == "train" else {})}

    def _threads_now(self) -> int:
        """The chosen count (during a run's first probe, the count of the step just run)."""
        return self.thread_choice.threads if self.thread_choice else torch.get_num_threads()

    def _notify(self, kind: str, records: list[dict], samples_per_s: float, total_steps: int,
                result: TrainResult | None = None, test_inputs: torch.Tensor | None = None) -> None:
        """Send one event to its callbacks, in the order they were added (rank 0 only)."""
        if not self.dist.is_main:
            return
        state = RunState(step=self.step, epoch=self.epoch, seconds=self.seconds, history=self.history,
                         optimizer=self.optimizer, generators={"shuffle": self.shuffle_gen, "noise": self.noise_gen},
                         config=self.config, lr_search=self.lr_search)
        event = TrainEvent(kind=kind, records=records, model=self.model, samples_per_s=samples_per_s,
                           progress=min(1.0, self.step / max(1, total_steps)), result=result,
                           threads=self.thread_choice, state=state, test_inputs=test_inputs)
        for callback in self.callbacks[kind]:
            callback(event)


def train_run(out: str | Path, data: Dataset, model_config: ModelConfig, config: TrainConfig, *,
              resume: bool = False, callbacks: Sequence[Callback] = (), device: str = "cpu",
              threads: int | None = None, stop_event: threading.Event | None = None,
              dist: DistContext | None = None, control: TrainControl | None = None,
              kinds: Sequence[str] = PROGRESS_EVENTS) -> TrainResult:
    """Train into a run folder: refused when it holds a run unless `resume`; with `resume`,
    `config.epochs` is the total to reach, and a config without changes goes on with those the run made
    (vae/control.py). The folder is locked while training; with several processes, every rank checks the
    folder, then rank 0 alone locks it and writes it through a RunWriter, the trainer's first callback:
    each epoch's checkpoint is on disk before `callbacks` (which hear the events of `kinds`) hear that
    epoch. `control` pauses, steps and changes the run (the Train page's buttons)."""
    dist = dist or DistContext(device=resolve_device(device))
    run = open_run_dir(out, resume=resume)
    dist.barrier()  # every rank has checked the folder before rank 0 starts writing into it
    lock = RunLock(run)
    if dist.is_main:
        lock.acquire()
    try:
        state = load_resume_state(run.resume) if resume else None
        if state is not None and state.model.config != model_config:
            model_config = state.model.config  # the run's own architecture wins over defaults
        if state is not None and config.lr_search:  # the step size its search chose when it started
            config = replace(config, lr=float(state.train_config.get("lr", config.lr)))
        if state is not None and not config.changes:  # the command line's --resume: the run's own changes
            config = replace(config, changes=TrainConfig.from_dict(state.train_config).changes)
        if state is not None:  # and those made as its last epoch ended, after the resume state was saved
            config = _with_changes_recorded_at(config, read_metrics(run.metrics), state.step)
        trainer = Trainer(build_model(model_config, config.seed), data, config, threads=threads,
                          stop_event=stop_event, dist=dist, control=control)
        if state is not None and config.lr_search:
            trainer.lr_search = _earlier_search(run.checkpoint)
        writer = RunWriter(run, data, config) if dist.is_main else None
        if writer is not None:
            writer.attach(trainer)  # first, before `callbacks`: a listener may open the epoch's new checkpoint
        for callback in callbacks:
            trainer.add_callback(callback, kinds)
        if state is not None:  # the writer forgets the abandoned future and keeps the records up to `state`
            trainer.restore(state, history=writer.resume(state.step, state.epoch) if writer is not None else ())
        return trainer.fit()
    finally:
        lock.release()


def _with_changes_recorded_at(config: TrainConfig, records: Sequence[dict], step: int) -> TrainConfig:
    """`config` with the changes recorded at `step` (a paused run's, made after the epoch's checkpoint and
    resume state were written there), unless it already holds changes at that step."""
    if any(c.step == step for c in config.changes):
        return config
    made = tuple(Change(step, lr=r.get("lr"), beta=r.get("beta")) for r in records
                 if r.get("kind") == "change" and r.get("step") == step)
    return replace(config, changes=config.changes + made) if made else config


def _earlier_search(checkpoint: Path) -> LrSearch | None:
    """The step-size search a resumed run made at its start, from its checkpoint's summary."""
    try:
        found = load_checkpoint(checkpoint).summary.get("lr_search") if checkpoint.exists() else None
        return LrSearch.from_dict(found) if found else None
    except (CheckpointError, OSError, KeyError, TypeError, ValueError):
        return None
