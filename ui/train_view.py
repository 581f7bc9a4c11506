"""The Train page's parts: the settings form, and the live view of a job that redraws itself."""
from __future__ import annotations

import hashlib
import re
import time

import numpy as np
import streamlit as st

from vae.checkpoint import Checkpoint, CheckpointError
from vae.config import ConfigError, TrainConfig, parse_hidden
from vae.data import BUILTIN_DATASETS, DataError, available_datasets, load_user_data
from vae.jobs import ACTIVE, Job, JobSpec, SharedJob
from vae.runs import RunError, read_metrics
from vae.storage import atomic_write_bytes

from . import state
from .figures.curves import training_curves
from .widgets import fail, show_images

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


def settings_form() -> JobSpec | None:
    """The run's settings; returns a spec when the user presses Start and everything is valid."""
    names = [d["name"] for d in available_datasets() if d["available"]]
    with st.form("train_form"):
        c1, c2, c3, c4 = st.columns(4)
        dataset = c1.selectbox("Data set", names + [UPLOAD], key="tr_data")
        file = c1.file_uploader("Your data (.npz, .npy, .zip of PNGs)", type=["npz", "npy", "zip"], key="tr_file")
        arch = c2.selectbox("Architecture", ["mlp", "conv"], key="tr_arch")
        latent = c2.number_input("Latent size", 1, 256, 2, key="tr_latent")
        hidden = c2.text_input("Hidden widths", "400", key="tr_hidden", help="e.g. 500, or 512,256")
        likelihood = c3.selectbox("Likelihood", ["bernoulli", "gaussian"], key="tr_lik")
        estimator = c3.selectbox("SGVB estimator", ["B", "A"], key="tr_est", help="B: analytic KL (eq. 7); A: Monte Carlo (eq. 6)")
        binarize = c3.selectbox("Binarise inputs", ["none", "dynamic", "static"], key="tr_bin")
        beta = c3.number_input("β (KL weight)", 0.0, 100.0, 1.0, 0.1, key="tr_beta")
        warmup = c3.number_input("KL warm-up (epochs)", 0.0, 1000.0, 0.0, 1.0, key="tr_warm")
        epochs = c4.number_input("Epochs", 1, 10_000, 10, key="tr_epochs")
        batch = c4.number_input("Batch size", 1, 8192, 100, key="tr_batch")
        lr = c4.number_input("Learning rate", 1e-6, 100.0, 1e-3, format="%.5f", key="tr_lr")
        seed = c4.number_input("Seed", 0, 10**6, 0, key="tr_seed")
        name = c1.text_input("Run name", key="tr_name", placeholder="e.g. fashion-z10")
        if not st.form_submit_button("Start training", type="primary"):
            return None
    try:
        source = _save_training_upload(file) if dataset == UPLOAD and file else dataset
        if source == UPLOAD:
            raise DataError("choose a data file to upload first.")
        run_name = name.strip() or f"{dataset if dataset != UPLOAD else 'upload'}-z{latent}-{time.strftime('%m%d-%H%M%S')}"
        return JobSpec(run_name=run_name, dataset=source,
                       model={"arch": arch, "latent_dim": int(latent), "hidden": parse_hidden(hidden),
                              "likelihood": likelihood},
                       train=TrainConfig(epochs=int(epochs), batch_size=int(batch), lr=float(lr), estimator=estimator,
                                         beta=float(beta), kl_warmup=float(warmup), binarize=binarize, seed=int(seed)))
    except (DataError, ConfigError, RunError, OSError) as err:
        fail(str(err))
    return None


def submit(spec: JobSpec) -> None:
    try:
        job = state.registry().submit(spec, state.session_id())
        if st.session_state.get("tr_watch") != job.spec.run_name:  # (a resumed run is already watched)
            st.session_state.tr_watch = job.spec.run_name
    except (RunError, ConfigError, DataError, OSError) as err:
        fail(str(err))


def _status_line(job: Job) -> str:
    if job.state == "queued":
        return f"Waiting in the queue: place {job.queue_position}."
    if job.state == "running":
        eta = job.eta_seconds
        left = f", about {eta:,.0f} s left" if eta is not None else ""
        return f"Training: {job.progress:.0%} done, {job.samples_per_s:,.0f} samples/s{left}."
    return f"{job.state.capitalize()}: {job.message.rstrip('.')}."


def _elsewhere_line(job: SharedJob, progress: float) -> str:
    if job.state == "queued":
        return f"Waiting in the queue: place {job.place} (started in another session)."
    return f"Training (started in another session): {progress:.0%} done."


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
        history = read_metrics(state.settings().runs_root / run_name / "metrics.jsonl")
        if other is not None:  # queued or training in another server process on this runs folder
            progress = _progress_from(history, other.epochs) if other.state == "running" else 0.0
            st.progress(progress, text=_elsewhere_line(other, progress))
        else:
            st.caption("Read from the run folder (not trained by this server since it started).")
    else:
        history = job.history
        st.progress(job.progress, text=_status_line(job))
        if job.state in ACTIVE and job.owner == state.session_id():
            if st.button("Stop", key=f"stop_{job.id}"):
                registry.stop(job.id, state.session_id())
    active = other is not None or (job is not None and job.state in ACTIVE)
    was_active = st.session_state.get(f"tr_active_{run_name}")
    st.session_state[f"tr_active_{run_name}"] = active
    if was_active and not active:
        st.rerun(scope="app")  # the finished run appears in the sidebar at once
    if history:
        st.plotly_chart(training_curves(history, n_pixels), key=f"curves_{run_name}")
    else:
        st.caption("The curves appear after the first logged steps.")
    if job is not None and job.preview:
        st.caption(f"After epoch {job.preview_epoch}: test images, their reconstructions, prior samples")
        p = job.preview
        show_images(np.concatenate([p["inputs"], p["reconstructions"], p["samples"]]), ncols=len(p["inputs"]),
                    target=56)


def resume_controls(run_name: str) -> Checkpoint | None:
    """A finished or stopped run can be continued to a larger number of epochs (same settings)."""
    run_dir = state.settings().runs_root / run_name
    if not (run_dir / "model.safetensors").exists():
        return None
    try:
        ck = state.open_checkpoint(f"run:{run_name}")
    except CheckpointError as err:
        fail(str(err))
        return None
    if not busy(run_name) and (run_dir / "resume.safetensors").exists():
        done = int(ck.summary.get("epochs", 0))
        c1, c2 = st.columns([1, 3])
        total = int(c1.number_input("Continue to epoch", done + 1, 100_000, done + 10, key=f"tr_to_{run_name}"))
        if c2.button(f"Resume {run_name} from epoch {done}", key=f"tr_resume_{run_name}"):
            info = ck.dataset or {}
            submit(JobSpec(run_name=run_name, resume=True,
                           dataset=info.get("name") if info.get("name") in BUILTIN_DATASETS else str(info.get("source")),
                           model={k: v for k, v in ck.model_config.to_dict().items() if k != "image_shape"},
                           train=TrainConfig.from_dict({**ck.train_config, "epochs": total})))
    return ck


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
