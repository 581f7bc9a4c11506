"""ELBO anatomy benchmark: what one image's stages and estimators cost, and the page's script time.

    python bench/anatomy.py [--repeats 7] [--threads 1]

`vae.anatomy.anatomy` on a test image for the bundled models at the page's defaults (L = 100, K = 100) and its
limits (L = K = 1000), and on an untrained 1024-dimensional conv model (the largest latent the Train page allows);
then the whole app script (app.py, the sidebar and the page) rerun in AppTest for each way of choosing the image.
Medians; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
from common import REPO, median, table

from vae.anatomy import anatomy
from vae.checkpoint import load_checkpoint
from vae.config import ConfigError, ModelConfig
from vae.data import load_dataset
from vae.model import build_model

SETTINGS = [(100, 100), (600, 100), (1000, 1000)]  # (L, K): the defaults, a conv model's most, the limits


def compute_rows(repeats: int) -> list[list]:
    x = load_dataset("mnist-5k").x_test[42]
    models = {name: load_checkpoint(REPO / "assets" / f"mnist-5k-{name}.safetensors").model for name in ("z2", "z16")}
    models["conv z1024 (untrained)"] = build_model(ModelConfig(image_shape=(28, 28), latent_dim=1024, arch="conv",
                                                               hidden=(256,))).requires_grad_(False)
    rows = []
    for name, model in models.items():
        for n_samples, k in SETTINGS:
            try:
                anatomy(model, x, n_samples=n_samples, k=k)  # warm
            except ConfigError as err:  # over vae.anatomy.DECODE_BUDGET
                rows.append([name, n_samples, k, f"refused: {err}"])
                continue
            times = []
            for seed in range(repeats):
                t0 = time.perf_counter()
                anatomy(model, x, seed=seed, n_samples=n_samples, k=k)
                times.append(time.perf_counter() - t0)
            rows.append([name, n_samples, k, f"{1000 * median(times):.0f}"])
    return rows


def page_rows(repeats: int) -> list[list]:
    from streamlit.testing.v1 import AppTest
    from streamlit.typing import PlotlyState
    rows = []
    for model in ("asset:mnist-5k-z2.safetensors", "asset:mnist-5k-z16.safetensors"):
        for way in ("index", "class", "map"):
            at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
            at.session_state["model_key"], at.session_state["an_way"] = model, way
            at.run()
            at.switch_page("app_pages/anatomy.py").run()
            times = []
            for seed in range(repeats):  # each rerun a new draw of eps: the page's numbers are computed again
                at.session_state["an_eps"] = seed + 1
                if way == "map":
                    at.session_state["an_map"] = PlotlyState({"selection": {"points": [{"customdata": 7 + seed}]}})
                t0 = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - t0)
            assert not at.exception, [e.value for e in at.exception]
            rows.append([model.removeprefix("asset:"), way, f"{1000 * median(times):.0f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the app's default is 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("VAE_RUNS_DIR", str(REPO / "runs"))
    print(table(["model", "L", "K", "anatomy() ms"], compute_rows(args.repeats)))
    print(f"\nOne MNIST test image, {args.threads} torch thread(s), median of {args.repeats} seeds.\n")
    print(table(["model", "chosen", "app script ms"], page_rows(args.repeats)))
    print("\nThe whole script of a rerun (app.py, sidebar, page) in AppTest at L = K = 100, a new eps each time; "
          "the first run (loading, encoding the test set) is not counted.")


if __name__ == "__main__":
    main()
