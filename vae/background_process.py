"""The process that computes the app's derived results (`python -m vae.background_process`), one per server.

Why a process: UMAP, t-SNE, IW curves and the Estimator lab's gradient studies are many small numpy and
torch calls with Python in between, so in a thread of the server they take the interpreter lock from
every page script many times a second: a pure-Python loop in the server ran at a median 0.45x its idle
speed while a Latent space visit's UMAP and IW curve computed in a thread, 0.94x with them in this process;
a cold Estimator lab visit held its page script 18-27 s, now 0.1 s (a throwaway AppTest script, medians
of 3 interleaved, on a busy two-core machine). Here they hold only their own interpreter, niced a little.

What they say to each other, JSON lines both ways (nothing either side reads is executed, nothing pickled):
- server -> child (stdin): {"id": int, "task": NAME, "args": {...}}, NAME a key of `vae.derived.TASKS`;
  args carry "runs_root", "checkpoint" (a file's path), its "sha256" (checked: a run rewritten since the
  server opened it is refused) and the function's own arguments. End of input means the server has
  closed it or gone (even killed with -9): the child exits at once, whatever it is computing; every cache
  write is atomic, so a cut-short task leaves no half-written result (at most a stray temporary file).
- child -> server (stdout): {"id": int, "ok": true} once the result is in `<runs>/cache/<sha256>/`, or
  {"id": int, "error": "one sentence"}. Anything else the child prints goes to stderr.
Tasks run one at a time, in the order they arrive; the process lives on between them, keeping the last
few checkpoints and data sets it loaded (importing torch alone takes seconds).
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import sys
import threading
from collections import OrderedDict
from pathlib import Path

# Page scripts come first when the cores are busy. Beside a busy-loop process (a training child) on two cores, a
# page's Python loop ran at a median 0.62x with the background process at nice 0, 0.83-0.99x at 5 and 0.96x at
# 10, while one Estimator-lab cell took 5.5 s, 10-19 s and 44 s: 10 nearly starves the numbers pages wait for.
NICE = 5
KEEP = 4  # checkpoints (and data sets) kept loaded between tasks


# -- both sides -------------------------------------------------------------------------------
def task_line(task_id: int, name: str, args: dict) -> bytes:
    return (json.dumps({"id": int(task_id), "task": name, "args": args}) + "\n").encode()


# -- the child --------------------------------------------------------------------------------
class _Recent(OrderedDict):
    """The last `KEEP` values by key: a small LRU."""

    def get_or_make(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        while len(self) > KEEP:
            self.popitem(last=False)
        return value


class Loaded:
    """Checkpoints by SHA-256 and data sets by what a checkpoint names, loaded once."""

    def __init__(self):
        self._checkpoints, self._datasets = _Recent(), _Recent()

    def checkpoint(self, path: str, sha256: str):
        return self._checkpoints.get_or_make(sha256, lambda: _load_checkpoint(Path(path), sha256))

    def dataset(self, checkpoint):
        from .evaluate import checkpoint_dataset
        info = checkpoint.dataset or {}
        key = (str(info.get("name")), str(info.get("source")), tuple(checkpoint.model_config.image_shape))
        return self._datasets.get_or_make(key, lambda: checkpoint_dataset(checkpoint))


def _load_checkpoint(path: Path, sha256: str):
    from .checkpoint import CheckpointError, load_checkpoint_bytes
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path.name} could not be read: {err.strerror or err}.") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(f"{path.name} has changed since the page opened it; reload the page.")
    checkpoint = load_checkpoint_bytes(data, path.name, path)
    checkpoint.model.requires_grad_(False)  # inference; the lab's study copies the model and turns it back on
    return checkpoint


def run_task(message: dict, loaded: Loaded) -> dict:
    """Do one task line's work; the answer line (never raises)."""
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .derived import TASKS
    task_id = message.get("id")
    try:
        fn = TASKS.get(message.get("task"))
        if fn is None:
            return {"id": task_id, "error": f"there is no background task named {message.get('task')!r}."}
        args = dict(message["args"])
        runs_root, path, sha256 = args.pop("runs_root"), args.pop("checkpoint"), args.pop("sha256")
        checkpoint = loaded.checkpoint(path, sha256)
        fn(runs_root, checkpoint, loaded.dataset(checkpoint), **args)
        return {"id": task_id, "ok": True}
    except (CheckpointError, DataError, ConfigError) as err:
        return {"id": task_id, "error": str(err)}
    except OSError as err:
        return {"id": task_id, "error": f"the runs folder's cache could not be written: {err.strerror or err}."}
    except Exception as err:  # every task gets an answer, so no page waits for ever
        return {"id": task_id, "error": f"{type(err).__name__}: {err}."}


def _read_input(tasks: queue.Queue) -> None:
    """Task lines into the queue; at the end of input the server has gone or shut down: exit now."""
    for line in sys.stdin.buffer:
        tasks.put(line)
    os._exit(0)  # not sys.exit: the main thread may be in the middle of a task that nobody will read


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)  # the real stdout carries only the protocol's lines
    os.dup2(2, 1)  # whatever else is printed (warnings, libraries, numba) goes to stderr
    tasks: queue.Queue = queue.Queue()
    threading.Thread(target=_read_input, args=(tasks,), name="vae-background-stdin", daemon=True).start()
    os.nice(NICE)
    import torch
    torch.set_num_threads(1)  # deliberate: two cores, and the server's page scripts need one
    loaded = Loaded()
    while True:
        line = tasks.get()
        try:
            message = json.loads(line)
        except ValueError:
            print(f"vae.background_process: ignored a line that is not JSON: {line[:80]!r}", file=sys.stderr)
            continue
        answer = run_task(message, loaded) if isinstance(message, dict) else {"id": None, "error": "not a task."}
        try:
            protocol.write(json.dumps(answer) + "\n")
        except OSError:  # nobody is reading any more: the server has gone
            os._exit(0)


if __name__ == "__main__":
    main()
