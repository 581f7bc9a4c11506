"""The shared sidebar: which model, where it came from, download, upload, rename and delete."""
from __future__ import annotations

import hashlib

import streamlit as st

from vae.checkpoint import CheckpointError
from vae.runs import RunDir, RunError, delete_run, rename_run

from . import state
from .widgets import describe


def _upload() -> None:
    """Validate an uploaded checkpoint; on failure keep the previous model and say why in one sentence."""
    file = st.sidebar.file_uploader("Open a checkpoint (.safetensors)", type=["safetensors"], key="upload_ckpt",
                                    help="Only VAE Explorer safetensors files; pickles (.pt, .pth, .ckpt) are "
                                         "refused unopened.")
    if file is None:  # nothing in the uploader (or the user removed the file): no stale refusal
        st.session_state.pop("upload_error", None)
        st.session_state.pop("rejected_upload", None)
        return
    data = file.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    uploads = st.session_state.setdefault("uploads", {})
    if sha in uploads or st.session_state.get("rejected_upload") == sha:
        return
    try:
        if len(data) > state.MAX_UPLOAD_MB * 2**20:
            raise CheckpointError(f"{file.name} is larger than the {state.MAX_UPLOAD_MB} MB upload limit.")
        state.checkpoint_from_bytes(data, file.name)
    except CheckpointError as err:
        st.session_state.rejected_upload = sha
        st.session_state.upload_error = str(err)
        return
    uploads[sha] = (file.name, data)
    st.session_state.model_key = f"upload:{sha}"
    st.session_state.pop("upload_error", None)


def _choose() -> None:
    st.session_state.model_key = st.session_state.model_select


def _manage_run(name: str) -> None:
    with st.sidebar.expander("Rename or delete this run"):
        new = st.text_input("New name", value=name, key="rename_to")
        if st.button("Rename", key="rename_btn") and new != name:
            try:
                rename_run(RunDir(state.settings().runs_root / name), new)
                st.session_state.model_key = f"run:{new}"
                st.rerun()
            except (RunError, OSError) as err:
                st.error(str(err))
        sure = st.checkbox("Yes, delete it for every user of this server", key="delete_sure")
        if st.button("Delete", key="delete_btn", disabled=not sure):
            try:
                delete_run(RunDir(state.settings().runs_root / name))
                st.session_state.pop("model_key", None)
                st.rerun()
            except (RunError, OSError) as err:
                st.error(str(err))


def render() -> None:
    settings = state.settings()
    st.sidebar.title("VAE Explorer")
    if not settings.read_only:
        _upload()
    if st.session_state.get("upload_error"):
        st.sidebar.error(st.session_state.upload_error)
    items = state.library()
    if not items:
        st.sidebar.warning("No model yet: train one on the Train page.")
        return
    key = state.current_key()
    # The choice lives in a plain session key ("model_key") that every page reads; the widget mirrors it.
    if st.session_state.get("model_select") != key:
        st.session_state.model_select = key  # e.g. after an upload or a rename chose another model
    # The widget's own default is this session's model too: a browser that mounts the box from its default
    # and misses the value set above (seen once in four load tests, a new session opened while a run ended)
    # would show the first model, and send it back as a choice on the next page.
    st.sidebar.selectbox("Model", list(items), index=list(items).index(key), format_func=items.get,
                         key="model_select", on_change=_choose)
    try:
        ck = state.open_checkpoint(key)
    except CheckpointError as err:
        st.sidebar.error(str(err))
        return
    st.sidebar.caption(describe(ck))
    st.sidebar.caption(f"{ck.model.n_parameters():,} parameters · file {ck.sha256[:10]}")
    kind, _, ident = key.partition(":")
    # A callable: the file (1.5 MB for the bundled model) is read and sent only when the button is pressed.
    # Passed as bytes, every run of every page sent it to the media store again: a third of a new
    # visitor's server CPU on the home page (issue 10).
    # Streamlit calls it on a thread with no session: an upload's bytes are taken now, not looked up then.
    upload = st.session_state["uploads"][ident][1] if kind == "upload" else None
    data = (lambda: upload) if upload is not None else ck.path.read_bytes
    st.sidebar.download_button("Download checkpoint", data, file_name=f"{ck.label}.safetensors",
                               mime="application/octet-stream", on_click="ignore")
    if kind == "run" and not settings.read_only:
        _manage_run(ident)
