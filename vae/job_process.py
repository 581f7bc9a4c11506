"""The process a training job runs in, and the plain messages it sends back to the registry.

Why a process and not a thread: a training step is many small torch calls with Python in between, so a
thread needs the interpreter lock between every two of them. Ten sessions' page scripts hold that lock
for most of each second: on two cores, a training thread beside four busy Plotly-building threads ran at
0.13x its idle speed and a child process at 0.88x (`python bench/job_process.py`, medians of 3). The child has its own
interpreter; the server keeps one supervising thread per job that only copies messages into the job.

Messages (the `multiprocessing` queue pickles them between these two processes only; nothing here reads
a user's file as code):
- ("event", kind, records, progress, samples_per_s, preview or None): after each logged step or epoch;
- ("end", state, message): last, always, unless the process was killed.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch

from .data import DataError, load_dataset
from .model import ConfigError, ModelConfig
from .runs import RunError
from .train import TrainEvent, train_run

PREVIEW_COUNT = 8
ORPHAN_CHECK_S = 1.0


def train_in_child(spec, out: str, threads: int, messages, stop) -> None:
    """The child's whole life: train `spec` into `out`, reporting on `messages`; `stop` is set by the
    registry (the owner pressed Stop) or by the orphan watch below (the server died)."""
    torch.set_num_threads(threads)  # deliberate: the server's own work shares the two cores
    _stop_when_orphaned(stop, messages)
    try:
        data = load_dataset(spec.dataset, data_dir=spec.data_dir)
        model_config = ModelConfig(image_shape=data.image_shape, **spec.model)
        inputs = np.array(data.x_test[:PREVIEW_COUNT], np.float32)  # a writable copy for torch
        result = train_run(Path(out), data, model_config, spec.train, resume=spec.resume,
                           callbacks=[lambda event: messages.put(event_message(event, inputs))],
                           threads=threads, stop_event=stop)
        state, message = result.status, result.reason
    except (DataError, ConfigError, RunError) as err:
        state, message = "failed", str(err)
    except OSError as err:
        state, message = "failed", f"could not write the run folder: {err.strerror or err}."
    except Exception as err:  # the job must always end in a readable state
        state, message = "failed", f"training failed unexpectedly: {type(err).__name__}: {err}."
    messages.put(("end", state, message))


def event_message(event: TrainEvent, inputs: np.ndarray) -> tuple:
    """A TrainEvent as plain data: the model itself stays in the child; an epoch brings a preview strip."""
    preview = preview_images(event.model, inputs) if event.kind == "epoch" else None
    return ("event", event.kind, event.records, event.progress, event.samples_per_s, preview)


@torch.no_grad()
def preview_images(model, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Reconstructions of a few test images and prior samples, for the strip that refreshes each epoch."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    x = torch.from_numpy(inputs).to(device)
    z = torch.randn(PREVIEW_COUNT, model.config.latent_dim, generator=torch.Generator().manual_seed(0)).to(device)
    out = {"inputs": inputs, "reconstructions": model(x).cpu().numpy(),
           "samples": model.decode_mean(z).cpu().numpy()}
    model.train(was_training)
    return out


def _stop_when_orphaned(stop, messages) -> None:
    """A server killed with -9 cannot stop its children: each notices its parent has gone and stops the
    run the way the Stop button does (the last epoch's checkpoint stays). Its messages have no reader
    any more, so the process must not wait at exit for them to be sent."""
    parent = os.getppid()

    def watch() -> None:
        while not stop.wait(ORPHAN_CHECK_S):
            if os.getppid() != parent:
                messages.cancel_join_thread()
                stop.set()

    threading.Thread(target=watch, name="vae-orphan-watch", daemon=True).start()
