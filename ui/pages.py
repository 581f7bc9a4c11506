"""The app's pages, in the order of its navigation: the one list that `app.py`, the tests and the benches read.

Each page is one file in `app_pages/` (Streamlit's own name for an `st.navigation` app's pages: a folder
named `pages/` beside app.py switches Streamlit into its legacy multipage mode until the first
st.navigation() call of the process, which breaks a deep link opened first on a fresh server).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

FOLDER = "app_pages"


@dataclass(frozen=True)
class PageSpec:
    name: str  # the file's stem in app_pages/
    title: str  # the navigation's label
    icon: str
    default: bool = False  # served at the root URL
    trains: bool = False  # starts training jobs: a read-only server shows it as `watch` (or hides it)
    watch: str = ""  # its title on a read-only server, where it only watches runs; empty: hidden there

    @property
    def path(self) -> str:
        return f"{FOLDER}/{self.name}.py"

    @property
    def url_path(self) -> str:
        """What the browser's address shows (Streamlit derives it from the file name; the default is the root)."""
        return "" if self.default else self.name


PAGES: tuple[PageSpec, ...] = (
    PageSpec("latent_space", "Latent space", ":material/scatter_plot:", default=True),
    PageSpec("interpolate", "Interpolate", ":material/swap_horiz:"),
    PageSpec("samples", "Samples", ":material/grid_view:"),
    PageSpec("replay", "Replay training", ":material/replay:"),
    PageSpec("compare", "Compare", ":material/compare:"),
    PageSpec("reproduce", "Paper figures", ":material/history_edu:"),
    PageSpec("your_input", "Your input", ":material/draw:"),
    PageSpec("anatomy", "ELBO anatomy", ":material/account_tree:"),
    PageSpec("estimator_lab", "Estimator lab", ":material/science:"),
    PageSpec("train", "Train", ":material/model_training:", trains=True, watch="Watch training"),
)


def visible_pages(read_only: bool) -> list[PageSpec]:
    """The pages a server shows, as it titles them: a read-only classroom server (VAE_READ_ONLY=1) starts no
    training, so a page that trains is shown as its watching view (the Train page: "Watch training", where
    students follow a run that the teacher's server trains into the same runs folder) or not at all."""
    return [replace(p, title=p.watch) if read_only and p.trains else p
            for p in PAGES if not (read_only and p.trains and not p.watch)]


def page(name: str) -> PageSpec:
    return next(p for p in PAGES if p.name == name)
