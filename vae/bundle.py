"""Bundled models: a checkpoint in assets/ shipped with everything its pages compute once per checkpoint.

    python -m vae bundle runs/mnist-5k-z2 --name mnist-5k-z2 --snapshots   # a run becomes an asset
    python -m vae bundle assets/mnist-5k-z16.safetensors                      # refresh an asset's results

A fresh install must draw its first plot without computing anything (issue 10): the IW curve alone is
12-23 CPU seconds, UMAP and t-SNE more. So the command that makes an asset also runs, with the very
functions the app's background process runs (`vae.derived.TASKS`), every derived result that the pages
ask for at their default settings, and keeps the files in `assets/NAME.derived/` beside the checkpoint
(as its snapshots are kept in `assets/NAME.snapshots/`), with a manifest naming the checkpoint's SHA-256
and each file's. When the app opens a bundled model, `seed_cache` copies them into the runs folder's
cache, where every reader already looks; a file that does not match its manifest is not copied.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from .checkpoint import load_checkpoint
from .snapshots import snapshot_dir
from .storage import atomic_write_bytes, cache_dir

DERIVED = ".derived"  # assets/NAME.derived/
SNAPSHOTS = ".snapshots"  # assets/NAME.snapshots/
MANIFEST = "manifest.json"


class BundleError(ValueError):
    """A bundle that cannot be made; str(err) is one sentence."""


def derived_dir(asset: Path) -> Path:
    return asset.with_name(asset.stem + DERIVED)


def derive(asset: Path, *, command: str) -> Path:
    """Compute the pages' derived results for `asset` and keep them in `assets/NAME.derived/`."""
    from .derived import TASKS, page_defaults
    from .evaluate import checkpoint_dataset

    checkpoint = load_checkpoint(asset)
    data = checkpoint_dataset(checkpoint)
    with tempfile.TemporaryDirectory(prefix="vae-bundle-") as tmp:
        for name, args in page_defaults(checkpoint, data):
            TASKS[name](tmp, checkpoint, data, **args)
        made = cache_dir(tmp, checkpoint.sha256)
        files = sorted(p for p in made.iterdir() if p.is_file()) if made.is_dir() else []
        target = derived_dir(asset)
        fresh = target.with_name(target.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        for path in files:
            shutil.copyfile(path, fresh / path.name)
    manifest = {"checkpoint": asset.name, "sha256": checkpoint.sha256, "made_by": command,
                "files": {p.name: _sha256(fresh / p.name) for p in files}}
    (fresh / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    fresh.rename(target)
    return target


def bundle(source: Path, assets: Path, name: str | None, *, snapshots: bool, command: str) -> Path:
    """Copy a run's checkpoint (and its snapshots) into `assets` as NAME, then `derive` its results.
    A checkpoint already in `assets` is only derived again."""
    source = Path(source)
    checkpoint_file = source / "model.safetensors" if source.is_dir() else source
    if not checkpoint_file.is_file():
        raise BundleError(f"{source} is neither a run folder with a model.safetensors nor a checkpoint file.")
    load_checkpoint(checkpoint_file)  # refuses anything that is not a checkpoint of ours, in one sentence
    name = name or (source.name if source.is_dir() else checkpoint_file.stem)
    asset = Path(assets) / f"{name}.safetensors"
    if checkpoint_file.resolve() != asset.resolve():
        asset.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(asset, checkpoint_file.read_bytes())
        if snapshots:
            folder = snapshot_dir(checkpoint_file)
            if not folder.is_dir():
                raise BundleError(f"{source} has no snapshots folder to ship.")
            shutil.rmtree(asset.with_name(name + SNAPSHOTS), ignore_errors=True)
            shutil.copytree(folder, asset.with_name(name + SNAPSHOTS))
    derive(asset, command=command)
    return asset


def seed_cache(runs_root, asset: Path, sha256: str) -> int:
    """Copy an asset's shipped results into `<runs>/cache/<sha256>/` where absent; returns how many were
    copied. Results made for another version of the file, or damaged, are left behind."""
    folder = derived_dir(Path(asset))
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return 0
    if manifest.get("sha256") != sha256 or not isinstance(manifest.get("files"), dict):
        return 0
    target, copied = cache_dir(runs_root, sha256), 0
    for filename, digest in manifest["files"].items():
        source, dest = folder / Path(filename).name, target / Path(filename).name
        try:
            if dest.exists() or not source.is_file() or _sha256(source) != digest:
                continue
            target.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(dest, source.read_bytes())
        except OSError:  # an unwritable runs folder: the pages compute what they need, as before
            continue
        copied += 1
    return copied


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
