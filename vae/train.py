"""The AEVB loop (Kingma & Welling 2013, algorithm 1) over tensors held in memory.

The trainer knows nothing about the UI: it reports through callbacks, which the
command line (a progress bar) and the app (a background job) both subscribe to.
All randomness (shuffling, eps, binarisation) comes from two seeded generators
that are saved with the optimiser state, so a run repeats exactly and a resumed
run continues the same random stream. A non-finite loss stops the run and the
last good checkpoint stays on disk.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .checkpoint import checkpoint_history, load_resume_state, save_checkpoint, save_resume_state
from .config import ConfigError, ModelConfig, TrainConfig
from .data import Dataset
from .distributed import DistContext
from .metrics import as_tensor, evaluate_elbo
from .model import VAE, build_model, elbo_parts
from .runs import RunDir, RunLock, append_metrics, open_run_dir, read_metrics, truncate_metrics
from .snapshots import drop_after, make_probe, save_snapshot, snapshot_dir, take_snapshot
from .threads import ThreadChoice, ThreadChooser


@dataclass
class TrainEvent:
    kind: str  # "step" (a train record), "epoch" (train and test records of a finished epoch), "end"
    records: list[dict]
    model: VAE
    progress: float  # fraction of the run's total steps done, 0..1
    samples_per_s: float
    result: "TrainResult | None" = None
    threads: ThreadChoice | None = None  # the torch thread count in use and what it rests on


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
    checkpoint: Path | None = None
    history: list[dict] = field(default_factory=list)
    threads: ThreadChoice | None = None  # the last thread choice (a measured one, or the given count)

    def summary(self) -> dict:
        return {"status": self.status, "reason": self.reason, "epochs": self.epochs, "step": self.step,
                "train_elbo": self.train_elbo, "test_elbo": self.test_elbo,
                "samples_per_s": round(self.samples_per_s, 1), "seconds": round(self.seconds, 2),
                "threads": self.threads.threads if self.threads else None}


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda' or 'auto' (CUDA when present): CPU is the default everywhere."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("CUDA was asked for but no CUDA device is available here; use --device cpu or auto.")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"device must be cpu, cuda or auto, got {name!r}.")
    return torch.device(name)


def make_optimizer(model: VAE, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or Adagrad (the paper's choice, section 5), fused: one kernel per step over all parameters.
    On two cores the unfused update's sqrt and div passes cost a fifth of a batch-128 step."""
    cls = torch.optim.Adagrad if config.optimizer == "adagrad" else torch.optim.Adam
    try:
        return cls(model.parameters(), lr=config.lr, fused=True)
    except (RuntimeError, TypeError):  # a device or build without the fused kernel
        return cls(model.parameters(), lr=config.lr)


def prepare_inputs(x: torch.Tensor, mode: str, seed: int) -> torch.Tensor:
    """Static binarisation draws x ~ Bernoulli(pixel) once, from a fixed seed; other modes keep grey pixels."""
    if mode != "static":
        return x
    gen = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=gen)


def test_inputs(data: Dataset, config: TrainConfig, device="cpu") -> torch.Tensor:
    """The test images as the run saw them: binarised runs (static or dynamic) are evaluated on one
    fixed binarisation of the test set, so that epochs, and `vae eval` afterwards, compare."""
    mode = "static" if config.binarize != "none" else "none"
    return prepare_inputs(as_tensor(data.x_test, device), mode, config.seed + 3)


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


class _Objective(nn.Module):
    """The minibatch objective as a module, so that DistributedDataParallel can wrap it.

    `scale` turns the summed loss of this rank's rows into its share of the global batch mean.
    """

    def __init__(self, model: VAE, estimator: str):
        super().__init__()
        self.model, self.estimator = model, estimator

    def forward(self, x, eps, beta: float, scale: float):
        parts = elbo_parts(self.model, x, estimator=self.estimator, beta=beta, eps=eps)
        loss = -(parts.recon - beta * parts.kl).sum() * scale
        return loss, parts.elbo.detach(), parts.recon.detach(), parts.kl.detach()


class Trainer:
    """One training run: `model` on `data` with `config`, optionally saving into a run folder."""

    def __init__(self, model: VAE, data: Dataset, config: TrainConfig, *, run: RunDir | None = None,
                 callbacks: Sequence[Callback] = (), device: str = "cpu", threads: int | None = None,
                 stop_event: threading.Event | None = None, dist: DistContext | None = None):
        self.dist = dist or DistContext(device=resolve_device(device))
        self.device = self.dist.device
        if tuple(data.image_shape) != tuple(model.config.image_shape):
            raise ConfigError(f"the model expects {model.config.image_shape} images but {data.name} has "
                              f"{data.image_shape}.")
        self.model, self.data, self.config, self.run = model.to(self.device), data, config, run
        self.callbacks = list(callbacks)
        self.threads = threads  # a count, or None: measured while training (vae.threads)
        self.thread_choice: ThreadChoice | None = None
        self.stop_event = stop_event or threading.Event()
        self.optimizer = make_optimizer(self.model, config)
        objective = _Objective(self.model, config.estimator)
        self.objective = DistributedDataParallel(objective, device_ids=[self.device] if self.device.type == "cuda"
                                                 else None) if self.dist.active else objective
        self.shuffle_gen = torch.Generator().manual_seed(config.seed)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.step, self.epoch, self.seconds = 0, 0, 0.0
        self.history: list[dict] = []

    # -- resume ------------------------------------------------------------------------
    def restore(self, state) -> None:
        """Continue from a resume state: weights, optimiser state, step and generator states."""
        self.model.load_state_dict(state.model.state_dict())
        self.optimizer.load_state_dict(state.optimizer_state)
        for group in self.optimizer.param_groups:  # a resumed run may ask for another learning rate
            group["lr"] = self.config.lr
        self.shuffle_gen.set_state(state.generator_states["shuffle"])  # always a CPU generator
        try:
            self.noise_gen.set_state(state.generator_states["noise"])
        except RuntimeError:
            # Saved on another device (CUDA and CPU generator states differ): the run goes on with a
            # fresh stream, seeded from the step, so it stays repeatable but not identical to one device.
            self.noise_gen.manual_seed(self.config.seed + 1 + state.step)
        self.step, self.epoch = state.step, state.epoch
        if self.run is not None and self.dist.is_main:
            truncate_metrics(self.run.metrics, self.step)
            drop_after(snapshot_dir(self.run.checkpoint), self.epoch)
            self.history = read_metrics(self.run.metrics)
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
        cfg, model = self.config, self.model
        x_train = prepare_inputs(as_tensor(self.data.x_train, self.device), cfg.binarize, cfg.seed + 2)
        x_test = test_inputs(self.data, cfg, self.device)
        n, bs = x_train.shape[0], cfg.batch_size
        steps_per_epoch = math.ceil(n / bs)
        total_steps = cfg.epochs * steps_per_epoch
        warmup_steps = cfg.kl_warmup * steps_per_epoch
        status, reason = "finished", f"reached {cfg.epochs} epochs"
        train_seconds, samples_done = 0.0, 0
        last = {"train": None, "test": None}
        probe = make_probe(x_test, self.data.y_test, model.config.latent_dim, cfg.seed)
        if self.epoch == 0:
            self._snapshot(probe, None)  # the untrained model: where the replay starts
        model.train()
        while self.epoch < cfg.epochs and status == "finished":
            perm = torch.randperm(n, generator=self.shuffle_gen).to(self.device)
            epoch_meter, log_meter = _Meter(self.device), _Meter(self.device)
            for i in range(steps_per_epoch):
                if self.stop_event.is_set():
                    status, reason = "stopped", f"stopped by the user during epoch {self.epoch + 1}"
                    break
                self._use_threads(chooser)
                t0 = time.perf_counter()
                beta = cfg.beta * min(1.0, (self.step + 1) / warmup_steps) if warmup_steps > 0 else cfg.beta
                out = self._step(x_train[perm[i * bs:(i + 1) * bs]], beta)
                if out is None:
                    status = "diverged"
                    reason = (f"the loss became non-finite at step {self.step + 1} (epoch {self.epoch + 1}); "
                              f"try a lower learning rate than {cfg.lr:g}")
                    break
                n_global = min(bs, n - i * bs)
                epoch_meter.add(*out, n_global)
                log_meter.add(*out, n_global)
                dt = time.perf_counter() - t0
                self._timed(chooser, dt, n_global)
                train_seconds += dt
                self.seconds += dt
                samples_done += n_global
                if self.step % cfg.log_every == 0:
                    record = self._record("train", "step", log_meter.means(self.dist), beta)
                    log_meter = _Meter(self.device)
                    self._log([record])
                    self._notify("step", [record], samples_done / max(train_seconds, 1e-9), total_steps)
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
            self._log(records)
            self._save(records)  # the checkpoint, then the callbacks: a listener may open the new file
            self._snapshot(probe, records[1]["elbo"])
            self._notify("epoch", records, samples_done / max(train_seconds, 1e-9), total_steps)
        result = TrainResult(status=status, reason=reason, epochs=self.epoch, step=self.step,
                             train_elbo=last["train"], test_elbo=last["test"],
                             samples_per_s=samples_done / max(train_seconds, 1e-9), seconds=self.seconds,
                             checkpoint=self.run.checkpoint if self.run and self.run.checkpoint.exists() else None,
                             history=self.history, threads=self.thread_choice)
        self._notify("end", [], result.samples_per_s, total_steps, result)
        return result

    def _step(self, xb: torch.Tensor, beta: float):
        """One AEVB update on the global minibatch xb; this process handles its shard of it.

        Every rank draws the same binarisation and eps for the whole batch (the same generators), then
        keeps its rows, so N processes follow the single-process run. Returns this shard's per-example
        (elbo, recon, kl), or None when the loss is not finite on some rank.
        """
        cfg = self.config
        if cfg.binarize == "dynamic":
            xb = torch.bernoulli(xb, generator=self.noise_gen)
        eps = torch.randn((cfg.n_samples, xb.shape[0], self.model.config.latent_dim), device=self.device,
                          generator=self.noise_gen)
        rows = self.dist.shard(xb.shape[0])
        loss, elbo, recon, kl = self.objective(xb[rows], eps[:, rows], beta, self.dist.world_size / xb.shape[0])
        if not torch.isfinite(self.dist.all_sum(loss.detach().clone())):
            return None
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DistributedDataParallel averages the gradients across processes here
        self.optimizer.step()
        self.step += 1
        return elbo, recon, kl

    def _record(self, split: str, kind: str, values: dict, beta: float) -> dict:
        steps_per_epoch = math.ceil(self.data.x_train.shape[0] / self.config.batch_size)
        return {"step": self.step, "epoch": round(self.step / steps_per_epoch, 4), "split": split,
                "kind": kind, **{k: round(v, 4) for k, v in values.items() if v is not None}, "beta": round(beta, 4),
                "samples": self.step * self.config.batch_size, "seconds": round(self.seconds, 3),
                **({"threads": self._threads_now()} if split == "train" else {})}

    def _threads_now(self) -> int:
        """The chosen count (during a run's first probe, the count of the step just run)."""
        return self.thread_choice.threads if self.thread_choice else torch.get_num_threads()

    def _log(self, records: list[dict]) -> None:
        self.history.extend(records)
        if self.run is not None and self.dist.is_main:
            append_metrics(self.run.metrics, records)

    def _notify(self, kind: str, records: list[dict], samples_per_s: float, total_steps: int,
                result: TrainResult | None = None) -> None:
        if not self.dist.is_main:
            return
        event = TrainEvent(kind=kind, records=records, model=self.model, samples_per_s=samples_per_s,
                           progress=min(1.0, self.step / max(1, total_steps)), result=result,
                           threads=self.thread_choice)
        for callback in self.callbacks:
            callback(event)

    def _snapshot(self, probe, test_elbo: float | None) -> None:
        """The map, samples and reconstructions at this epoch, for the app's replay (rank 0 only)."""
        if self.run is None or not self.dist.is_main:
            return
        save_snapshot(snapshot_dir(self.run.checkpoint), self.epoch, self.step, take_snapshot(self.model, probe),
                      test_elbo)

    def _save(self, epoch_records: list[dict]) -> None:
        """End of an epoch: the checkpoint and the resume state, each replaced atomically (rank 0 only)."""
        if self.run is None or not self.dist.is_main:
            return
        train, test = epoch_records
        summary = {"epochs": self.epoch, "step": self.step, "seconds": round(self.seconds, 2),
                   "train_elbo": train["elbo"], "test_elbo": test["elbo"],
                   "threads": self.thread_choice.to_dict() if self.thread_choice else None}
        save_resume_state(self.run.resume, self.model, self.optimizer, step=self.step, epoch=self.epoch,
                          generators={"shuffle": self.shuffle_gen, "noise": self.noise_gen},
                          train_config=self.config.to_dict())
        save_checkpoint(self.run.checkpoint, self.model, train_config=self.config.to_dict(),
                        dataset=self.data.info(), history=checkpoint_history(self.history),
                        summary=summary)


def train_run(out: str | Path, data: Dataset, model_config: ModelConfig, config: TrainConfig, *,
              resume: bool = False, callbacks: Sequence[Callback] = (), device: str = "cpu",
              threads: int | None = None, stop_event: threading.Event | None = None,
              dist: DistContext | None = None) -> TrainResult:
    """Train into a run folder: refused when it holds a run unless `resume`; with `resume`,
    `config.epochs` is the total to reach. The folder is locked while training; with several
    processes, every rank checks the folder, then rank 0 alone locks and writes it."""
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
        trainer = Trainer(build_model(model_config, config.seed), data, config, run=run, callbacks=callbacks,
                          threads=threads, stop_event=stop_event, dist=dist)
        if state is not None:
            trainer.restore(state)
        return trainer.fit()
    finally:
        lock.release()
