"""First contact (issue 10): the server as the README starts it watches no files, and a fresh install
computes nothing for the bundled models' pages: their derived results ship with them."""
import json
import os
from pathlib import Path

import pytest

from tests.browser.support import DRAWN, VIEWPORT, running_app, url_of, wait_for_images, wait_for_plots
from ui.pages import PAGES
from vae.bundle import MANIFEST, derived_dir
from vae.checkpoint import load_checkpoint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Every page that draws a bundled model; Train needs no model, Your input computes only for an input.
EXPLORING = [p.name for p in PAGES if p.name not in ("train", "your_input")]
# Pages that draw no plot here (Samples draws images): Paper figures before any reproduction, Replay for a
# model without snapshots.
PLOTLESS = {("reproduce", "mnist-5k-z2.safetensors"), ("reproduce", "mnist-5k-z16.safetensors"),
            ("replay", "mnist-5k-z16.safetensors")}


def process_tree(root: int) -> dict[int, str]:
    """pid -> command line of `root` and every process below it."""
    parents, commands = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        tree[pid] = commands.get(pid, "")
        todo += [p for p, parent in parents.items() if parent == pid]
    return tree


def inotify_instances(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd) == "anon_inode:inotify")


def test_the_shipped_config_turns_the_watchers_off(repo):
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in Python 3.11 and later")
    config = tomllib.loads((repo / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none" and config["server"]["runOnSave"] is False
    assert config["runner"]["postScriptGC"] is False


def test_a_fresh_install_draws_every_page_of_the_bundled_models_computing_nothing(browser, repo, tmp_path,
                                                                                 all_bundled_assets):
    assets = {p.name: load_checkpoint(p).sha256 for p in all_bundled_assets}
    with running_app(repo, tmp_path) as app:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        for asset in assets:
            for name in EXPLORING:
                page.goto(f"{url_of(app.url, name)}?model=asset:{asset}")
                main = page.locator('[data-testid="stMain"]')
                main.locator('[data-testid="stExpander"]').filter(has_text=DRAWN[name][1]).wait_for(timeout=90_000)
                if name == "samples":
                    wait_for_images(page, 3)
                elif (name, asset) not in PLOTLESS:
                    wait_for_plots(page, 1)
                note = main.get_by_text("being computed in the background")
                assert note.count() == 0, f"{name} on {asset} waits for a background result: {note.all_inner_texts()}"
        tree = process_tree(app.pid)
        assert not [c for c in tree.values() if "vae.background_process" in c], \
            f"a background process was started: {tree}"
        assert inotify_instances(app.pid) == 0, "the server watches files"
        context.close()
        # Nothing was written to the runs folder's cache but the shipped files, seeded.
        for asset, sha in assets.items():
            shipped = set(json.loads((derived_dir(repo / "assets" / asset) / MANIFEST).read_text())["files"])
            folder = app.runs / "cache" / sha
            written = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
            assert written == shipped, \
                f"{asset}: computed {sorted(written - shipped)}, unused {sorted(shipped - written)}"
