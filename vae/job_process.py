"""The process a training job runs in (`python -m vae.job_process`), and the lines it exchanges with the server.

Why a process and not a thread: a training step is many small torch calls with Python in between, so a
thread needs the interpreter lock between every two of them, and page scripts hold that lock for most of
each second: on two cores, a training thread beside four busy Plotly-building threads ran at 0.13x its
idle speed and a child process at 0.88x (`python bench/job_process.py`, medians of 3).

Why a plain subprocess and not `multiprocessing`: its spawn re-imports the parent's `__main__`, which in
a Streamlit server is the app script itself, and it pickles what it sends. Here both directions are JSON
lines of numbers and strings, so nothing either side reads is ever executed:
- server -> child (stdin): one line, the job; later any of the Train page's controls, a line each
  (vae/control.py): "pause", "resume", "step" (one minibatch, then pause), "epoch" (the rest of the
  epoch, then pause), "change {"lr": .., "beta": ..}", and "stop". End of input (the server has gone,
  even killed with -9) stops the run too, the way the Stop button does. A line it does not know is
  ignored, said on stderr.
- child -> server (stdout): {"kind": "step"|"epoch"|"pause"|"change", "records", "progress",
  "samples_per_s"} after each logged step, epoch, pause or change, and last {"end": state, "message":
  sentence}. Anything else the child prints goes to stderr. Pictures do not travel this way: the run
  writer's snapshot files are what the Train page's live map reads (ui/live_map.py), the same files for
  every viewer and for any server on the runs folder.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from .config import ConfigError, ModelSettings, RunSettings, TrainConfig
from .control import ControlError, TrainControl

COMMANDS = ("pause", "resume", "step", "epoch", "change", "stop")  # the control lines, after the job's


# -- both sides -------------------------------------------------------------------------------
def job_line(spec, out: Path, threads: int | str) -> bytes:
    """The job as the child reads it (a JobSpec's fields, its configs as plain dicts, the run folder and the
    torch thread count, or "auto": measured while training, see `job_threads`)."""
    job = {"dataset": spec.dataset, "data_dir": spec.data_dir, "model": spec.model.to_dict(),
           "train": spec.train.to_dict(), "resume": spec.resume, "device": spec.device, "out": str(out),
           "threads": "auto" if threads == "auto" else int(threads)}
    return (json.dumps(job) + "\n").encode()


def read_job(job: dict) -> dict:
    """The child's side of `job_line` (its parsed JSON): the configs typed again, a bad one refused in one
    sentence (ConfigError). A line without "device" (bench/threads.py writes its own) trains on the CPU."""
    return {**job, "model": ModelSettings.from_dict(job["model"]), "train": TrainConfig.from_dict(job["train"]),
            "device": job.get("device", RunSettings().device)}


def death_sentence(returncode: int, process: str = "the training process") -> str:
    """Why work whose process ended without its closing line failed, in one sentence (training jobs, and
    the background process of ui/background.py)."""
    if returncode < 0:
        hint = " (the system does this when memory runs out)" if returncode == -9 else ""
        return f"{process} was killed by signal {-returncode}{hint}."
    return f"{process} ended unexpectedly with exit code {returncode}; the server's log has its error."


def child_env() -> dict[str, str]:
    """The server's environment, with this package importable wherever the server was started from."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + os.pathsep + path if path else root}


def job_threads(value) -> int | None:
    """The job's torch thread count: a number, or None for "auto" (vae.threads measures it as it trains).

    The app's default stays 1 (VAE_TORCH_THREADS): the job's measurements see only its own speed, not
    that of the page scripts sharing the two cores. Measured (`python bench/threads.py`, its job table,
    medians of 3 on a shared machine): beside two page-like threads auto chose 1 thread every time, so it
    gains nothing there (job 0.71x and pages 0.96x of threads 1: its probes' cost, measured before they
    had a time budget, and a load average between 1 and 6 from other work); on an
    idle server it chose 2 in two runs of three and trained 1.40x faster, but the first visitor would then
    meet a job on both cores until its next probe. The job line accepts "auto" (for a server that mostly
    trains); the setting that would send it (VAE_TORCH_THREADS=auto) is not offered yet."""
    return None if value == "auto" else max(1, int(value))


# -- the child --------------------------------------------------------------------------------
def run_job(job: dict, send, stop: threading.Event, control: TrainControl | None = None) -> tuple[str, str]:
    """Train the job (the parsed line), calling `send(message)` after each event; returns (state, sentence)."""
    import torch

    from .data import DataError, load_dataset
    from .runs import RunError
    from .train import CONTROL_EVENTS, PROGRESS_EVENTS, train_run

    threads = job_threads(job["threads"])
    if threads is not None:
        torch.set_num_threads(threads)  # deliberate: the server's page work shares the two cores
    try:
        job = read_job(job)
        data = load_dataset(job["dataset"], data_dir=job["data_dir"])
        model_config = job["model"].with_image_shape(data.image_shape)

        shown, searched = [], []

        def on_event(event) -> None:
            if event.threads is not None and event.threads.threads not in shown[-1:]:
                shown.append(event.threads.threads)  # the server's log: one line whenever the choice changes
                print(event.threads.describe(), file=sys.stderr, flush=True)
            if event.state is not None and event.state.lr_search is not None and not searched:
                searched.append(event.state.lr_search)  # and the step size a search chose, once
                print(event.state.lr_search.describe(), file=sys.stderr, flush=True)
            send({"kind": event.kind, "records": event.records, "progress": event.progress,
                  "samples_per_s": event.samples_per_s})

        result = train_run(Path(job["out"]), data, model_config, job["train"], resume=job["resume"],
                           callbacks=[on_event], device=job["device"], threads=threads, stop_event=stop,
                           control=control, kinds=PROGRESS_EVENTS + CONTROL_EVENTS)
        return result.status, result.reason
    except (DataError, ConfigError, RunError) as err:
        return "failed", str(err)
    except OSError as err:
        return "failed", f"could not write the run folder: {err.strerror or err}."
    except Exception as err:  # the job must always end in a readable state
        return "failed", f"training failed unexpectedly: {type(err).__name__}: {err}."


def control_line(command: str, **values) -> bytes:
    """The server's side of `obey`: one control line."""
    if command not in COMMANDS:
        raise ValueError(f"a training process takes {', '.join(COMMANDS)}, not {command!r}.")
    return (command + (" " + json.dumps(values) if command == "change" else "") + "\n").encode()


def obey(line: str, control: TrainControl, stop: threading.Event) -> None:
    """Carry out one control line (only numbers are read from it: nothing in it is ever executed)."""
    command, _, rest = line.strip().partition(" ")
    if not command:
        return
    if command == "stop":
        stop.set()
    elif command in ("pause", "resume"):
        getattr(control, command)()
    elif command == "step":
        control.step()
    elif command == "epoch":
        control.finish_epoch()
    elif command == "change":
        try:
            values = json.loads(rest)
            control.change(lr=values.get("lr"), beta=values.get("beta"))
        except (ValueError, AttributeError, ControlError) as err:  # ControlError is a ValueError too
            print(f"a change the training process could not make: {err}", file=sys.stderr, flush=True)
    else:
        print(f"a line the training process does not know was ignored: {line.strip()[:80]!r}", file=sys.stderr,
              flush=True)


def _listen(stop: threading.Event, control: TrainControl) -> None:
    """Control lines as they come; "stop", or the end of input (the server has gone), stops the run at its
    next step (a paused run within vae.control.WAIT_S). Whatever ends this thread stops the run: without it
    nothing could."""
    try:
        for line in sys.stdin:
            try:
                obey(line, control, stop)
            except Exception as err:  # noqa: BLE001 - one bad line (an overflowing number...) must not end it
                print(f"a control line the training process could not read: {type(err).__name__}", file=sys.stderr,
                      flush=True)
            if stop.is_set():
                return
    finally:
        stop.set()


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)  # the real stdout carries only the protocol's lines
    os.dup2(2, 1)  # whatever else is printed (warnings, libraries) goes to stderr
    stop, control = threading.Event(), TrainControl()
    job = json.loads(sys.stdin.readline())
    threading.Thread(target=_listen, args=(stop, control), name="vae-job-stdin", daemon=True).start()

    def send(message: dict) -> None:
        try:
            protocol.write(json.dumps(message) + "\n")
        except OSError:  # nobody is reading any more: the server has gone
            stop.set()

    state, sentence = run_job(job, send, stop, control)
    send({"end": state, "message": sentence})


if __name__ == "__main__":
    main()
