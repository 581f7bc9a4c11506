"""The Train page's parts: the settings form, and the live view of a job that redraws itself."""
from __future__ import annotations

import hashlib
import itertools
import re
import time

import streamlit as st

from vae.checkpoint import Checkpoint, CheckpointError
from vae.config import (
    Bound,
    ConfigError,
    Setting,
    TrainConfig,
    all_settings,
    configs_from,
    preset_values,
    train_settings,
)
from vae.data import BUILTIN_DATASETS, DataError, available_datasets, load_user_data
from vae.job_spec import JobSpec
from vae.jobs import ACTIVE, Job, SharedJob, devices_here
from vae.runs import RunError, list_runs, read_metrics
from vae.storage import atomic_write_bytes

from . import state
from .figures.curves import training_curves
from .live_map import live_map
from .train_controls import owner_controls, status_line
from .widgets import fail

UPLOAD = "a file of my own…"


def _save_training_upload(file) -> str:
    """Keep an uploaded data file inside the runs folder (validated first), so the worker reads it by path."""
    data = file.getvalue()
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", file.name)[-60:]
    folder = state.settings().runs_root / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}-{safe}"
    if not path.exists():
        tmp = folder / f".check-{path.name}"
        atomic_write_bytes(tmp, data)
        try:
            load_user_data(tmp, display_name=file.name)
        finally:
            tmp.unlink(missing_ok=True)
        atomic_write_bytes(path, data)
    return str(path)


# The form's four columns; every other setting the page offers sits under "More settings", so a setting
# added to vae/config.py appears here without an edit. Settings of `python -m vae train` the page leaves
# out, each with the reason its `app` field gives: --out (the Run name names a folder in the runs folder),
# --data-dir (the server's VAE_DATA_DIR), --threads (the server's VAE_TORCH_THREADS), --resume (the Resume
# button under Watch run); init_std has no flag either: the chosen preset sets it.
COLUMNS = (("dataset", "algorithm"), ("arch", "latent_dim", "hidden", "activation"),
           ("likelihood", "estimator", "binarize", "beta", "kl_warmup"),
           ("epochs", "batch_size", "lr", "optimizer", "seed"))
PRESET_KEY = "tr_preset"


def offered() -> dict[str, Setting]:
    """The settings of the command line's `train` that the page offers, by name, in its --help order."""
    return {s.name: s for s in train_settings() if not s.app}


def _key(s: Setting) -> str:
    return "tr_data" if s.name == "dataset" else f"tr_{s.name}"


def _as_shown(s: Setting, value):
    return s.text(value) if s.shown == "text" else value


def _fill_preset() -> None:
    """Choosing a preset writes its values into the fields, as the command line fills what was not given."""
    settings = offered()
    for name, value in preset_values(st.session_state[PRESET_KEY]).items():
        if name in settings:
            st.session_state[_key(settings[name])] = _as_shown(settings[name], value)


def _start_values(settings: dict[str, Setting]) -> None:
    """Each field starts where the command line does with no flag: the default preset, then the defaults."""
    preset = st.session_state.setdefault(PRESET_KEY, settings["preset"].default)
    start = {**{name: s.default for name, s in settings.items()}, **preset_values(preset)}
    for name, s in settings.items():
        if name not in ("preset", "dataset"):
            st.session_state.setdefault(_key(s), _as_shown(s, start[name]))


def _field(where, s: Setting):
    """One setting's widget, from its table row: a switch, a choice, a number within its bounds, or text."""
    key, tip = _key(s), s.tip or s.help
    if s.shown == "switch":
        return where.toggle(s.label, key=key, help=tip)
    if s.shown == "choice":
        options = devices_here() if s.name == "device" else s.choices
        return where.selectbox(s.label, options, key=key, help=tip)
    if s.shown == "text":
        return where.text_input(s.label, key=key, help=tip)
    bound = s.bound or Bound()
    low = None if bound.low is None or bound.above else s.kind(bound.low)  # an open bound: refused by the check
    high = None if bound.high is None else s.kind(bound.high)
    step = s.kind(s.step) if s.step is not None else (1 if s.kind is int else None)
    return where.number_input(s.label, min_value=low, max_value=high, step=step, format=s.fmt, key=key, help=tip,
                              placeholder="learned" if s.optional else None)


def _changed(given: dict) -> dict:
    """The fields a user changed from what the preset filled in; the others count as not given, as on the
    command line, so that the preset decides them: its value for this data set where it has one (the paper's
    Frey Face: 200 hidden units), and a step-size search that a learning rate typed in turns off."""
    filled = preset_values(st.session_state[PRESET_KEY])
    return {n: None if n in filled and v == filled[n] else v for n, v in given.items()}


def settings_form() -> JobSpec | None:
    """The run's settings (every one of the command line's that the page can offer); returns a spec when
    the user presses Start and everything is valid."""
    settings = offered()
    _start_values(settings)
    preset = settings["preset"]
    st.columns(4)[0].selectbox(preset.label, preset.choices, key=PRESET_KEY, on_change=_fill_preset,
                               help=preset.tip or preset.help)
    names = [d["name"] for d in available_datasets() if d["available"]]
    placed = {name for column in COLUMNS for name in column}
    with st.form("train_form"):
        columns = st.columns(len(COLUMNS))
        dataset = columns[0].selectbox(settings["dataset"].label, names + [UPLOAD], key="tr_data",
                                       help=settings["dataset"].tip)
        file = columns[0].file_uploader("Your data (.npz, .npy, .zip of PNGs)", type=["npz", "npy", "zip"],
                                        key="tr_file")
        name = columns[0].text_input("Run name", key="tr_name", placeholder="e.g. fashion-z10")
        given = {n: _field(column, settings[n]) for column, group in zip(columns, COLUMNS, strict=True)
                 for n in group if n != "dataset"}
        with st.expander("More settings"):
            rest = [s for n, s in settings.items() if n not in placed and n != "preset"]
            for column, s in zip(itertools.cycle(st.columns(len(COLUMNS))), rest, strict=False):
                given[s.name] = _field(column, s)
        if not st.form_submit_button("Start training", type="primary"):
            return None
    try:
        source = _save_training_upload(file) if dataset == UPLOAD and file else dataset
        if source == UPLOAD:
            raise DataError("choose a data file to upload first.")
        given = {n: settings[n].parse(v) if settings[n].shown == "text" else v for n, v in given.items()}
        model, train = configs_from(st.session_state[PRESET_KEY], _changed(given), dataset)
        run_name = name.strip() or f"{dataset if dataset != UPLOAD else 'upload'}-z{model.latent_dim}-" \
                                   f"{time.strftime('%m%d-%H%M%S')}"
        return JobSpec(run_name=run_name, dataset=source, model=model, train=train, device=given["device"])
    except (DataError, ConfigError, RunError, OSError) as err:
        fail(str(err))
    return None


def submit(spec: JobSpec) -> None:
    if state.settings().read_only:  # the form is not drawn there; a crafted client is refused all the same
        fail("this server is read-only: it trains nothing.")
        return
    try:
        job = state.registry().submit(spec, state.session_id())
        if st.session_state.get("tr_watch") != job.spec.run_name:  # (a resumed run is already watched)
            st.session_state.tr_watch = job.spec.run_name
    except (RunError, ConfigError, DataError, OSError) as err:
        fail(str(err))


def _elsewhere_line(job: SharedJob, progress: float, history: list[dict]) -> str:
    if job.state == "queued":
        return f"Waiting in the queue: place {job.place} (started in another session)."
    last = next((r for r in reversed(history) if r.get("kind") != "change"), {})  # a change leaves it paused
    if last.get("kind") == "pause":  # its pause record is the last: it waits for its owner's next press
        return (f"Paused at step {last['step']:,} (epoch {last['epoch']:.2f}) by the session that started it: "
                f"{progress:.0%} done.")
    return f"Training (started in another session): {progress:.0%} done."


@st.cache_resource(max_entries=16, show_spinner=False)
def _shared_history(path: str, stamp: tuple) -> list[dict]:
    """A run folder's records, read once per change of its metrics file (`stamp`: size and time) for every
    viewer of the server: a class watching one run reads it once a second, not once per student. Shared,
    so never changed by a reader."""
    return read_metrics(path)


def _history_key(history: list[dict]) -> tuple:
    """What tells two states of one run's records apart (records are only ever appended, or cut on resume)."""
    last = history[-1]
    return len(history), last.get("step"), last.get("kind"), last.get("split"), last.get("seconds")


@st.cache_resource(max_entries=16, show_spinner=False)
def _curves(run_name: str, key: tuple, n_pixels: int, _history: list[dict]):
    """The curves of one state of a run, built once for every viewer (a class watching a run redraws them
    every second; building them was a quarter of a watched server's time, py-spy). `_history` is not hashed:
    `key` names its state."""
    return training_curves(_history, n_pixels)


def run_history(run_name: str) -> list[dict]:
    path = state.settings().runs_root / run_name / "metrics.jsonl"
    try:
        info = path.stat()
    except OSError:
        return []
    return _shared_history(str(path), (info.st_size, info.st_mtime_ns))


def _progress_from(history: list[dict], epochs: int) -> float:
    """How far a run trained by another server process is, from its metrics file (epochs are fractional)."""
    done = max((float(r.get("epoch", 0)) for r in history), default=0.0)
    return min(1.0, done / epochs) if epochs > 0 else 0.0


@st.fragment(run_every=1.0)
def live_view(run_name: str, n_pixels: int) -> None:
    """Redraws every second from the registry (never from the worker thread); reads the run folder
    when the job is not in this server's memory (another replica's job, a restarted server, a
    command-line run)."""
    registry = state.registry()
    job = registry.active_for(run_name)
    other = None if job else next((j for j in registry.elsewhere() if j.run_name == run_name), None)
    job = job or (None if other else _latest_job(run_name))
    if job is None:
        history = run_history(run_name)
        if other is not None:  # queued or training in another server process on this runs folder
            progress = _progress_from(history, other.epochs) if other.state == "running" else 0.0
            st.progress(progress, text=_elsewhere_line(other, progress, history))
        else:
            st.caption("Read from the run folder (not trained by this server since it started).")
    else:
        history = job.history
        waiting = sum(1 for j in registry.jobs() if j.state == "queued") + sum(
            1 for j in registry.elsewhere() if j.state == "queued")
        st.progress(job.progress, text=status_line(job, waiting))
        if job.state in ACTIVE and job.owner == state.session_id():
            owner_controls(job)
    active = other is not None or (job is not None and job.state in ACTIVE)
    was_active = st.session_state.get(f"tr_active_{run_name}")
    st.session_state[f"tr_active_{run_name}"] = active
    if was_active and not active:
        st.rerun(scope="app")  # the finished run appears in the sidebar at once
    if history:
        st.plotly_chart(_curves(run_name, _history_key(history), n_pixels, history), key=f"curves_{run_name}")
    else:
        st.caption("The curves appear after the first logged steps.")
    live_map(state.settings().runs_root / run_name)  # the newest snapshot's map, from the run folder's files


def run_checkpoint(run_name: str) -> Checkpoint | None:
    """The run's last checkpoint, or None before its first epoch ends (or when it cannot be read: said)."""
    if not (state.settings().runs_root / run_name / "model.safetensors").exists():
        return None
    try:
        return state.open_checkpoint(f"run:{run_name}")
    except CheckpointError as err:
        fail(str(err))
        return None


def resume_controls(run_name: str) -> Checkpoint | None:
    """A finished or stopped run can be continued to a larger number of epochs (same settings)."""
    run_dir = state.settings().runs_root / run_name
    ck = run_checkpoint(run_name)
    if ck is None:
        return None
    if not busy(run_name) and (run_dir / "resume.safetensors").exists():
        done = int(ck.summary.get("epochs", 0))
        c1, c2 = st.columns([1, 3])
        most = int(all_settings()["epochs"].bound.high)  # the config's own limit
        total = int(c1.number_input("Continue to epoch", done + 1, most, done + 10, key=f"tr_to_{run_name}"))
        if c2.button(f"Resume {run_name} from epoch {done}", key=f"tr_resume_{run_name}"):
            info = ck.dataset or {}
            dataset = info.get("name") if info.get("name") in BUILTIN_DATASETS else str(info.get("source"))
            last = _latest_job(run_name)  # a run this server started resumes on the device it trained on
            submit(JobSpec(run_name=run_name, resume=True, dataset=dataset, model=ck.model_config.settings,
                           train=TrainConfig.from_dict({**ck.train_config, "epochs": total}),
                           device=last.spec.device if last else "cpu"))
    return ck


def run_names() -> list[str]:
    """The runs to watch, those training in another server first (a class's read-only server lists the
    teacher's run at the top), then this server's jobs, newest first, then the runs folder's."""
    registry = state.registry()
    elsewhere = registry.elsewhere()
    return list(dict.fromkeys([j.run_name for j in elsewhere if j.state == "running"]
                              + [j.spec.run_name for j in reversed(registry.jobs())]
                              + [j.run_name for j in elsewhere]
                              + [r.name for r in list_runs(state.settings().runs_root)]))


@st.fragment(run_every=3.0)
def follow_runs(known: tuple) -> None:
    """The whole page again when the list of runs changes: a run started since (here or by another server on
    the runs folder) can be watched, and a link that named it before it started now opens on it."""
    if tuple(run_names()) != known:
        st.rerun(scope="app")


def busy(run_name: str) -> bool:
    """Queued or training, in this server process or another on the same runs folder."""
    registry = state.registry()
    return registry.active_for(run_name) is not None or any(j.run_name == run_name for j in registry.elsewhere())


def queue_line(jobs: list[Job], elsewhere: list[SharedJob]) -> str | None:
    """The whole queue of the runs folder (every replica's jobs), in order: "Queue: 1. a, 2. b"."""
    queued = sorted([(j.queue_position, j.spec.run_name) for j in jobs if j.state == "queued"]
                    + [(j.place, j.run_name) for j in elsewhere if j.state == "queued"])
    return "Queue: " + ", ".join(f"{place}. {name}" for place, name in queued) if queued else None


def _latest_job(run_name: str) -> Job | None:
    jobs = [j for j in state.registry().jobs() if j.spec.run_name == run_name]
    return jobs[-1] if jobs else None
