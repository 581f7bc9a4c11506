"""Reproducing the paper's figures 2 and 4 (Kingma & Welling 2013, section 5) with ordinary runs.

Figure 2 plots the lower bound (the ELBO, eq. 3) against the number of training samples evaluated,
train and test, for several latent sizes Nz; figure 4 shows the manifold a 2-D latent learned. A
reproduction is a `Plan`: data set, latent sizes, preset, binarisation, and a budget of training
samples per latent size (turned into whole epochs). Each latent size trains through `train_run` into
a plain run folder `<runs>/<name>-nz<K>`, so it also opens in the app's model library, and a small
manifest `<runs>/reproductions/<name>/reproduce.json` ties them together. Running a plan again
continues what is unfinished: a finished size is skipped, a stopped one resumed, and a larger
budget extends every size.

The package's interface is what this file names: `plan` (the Plan and its manifest), `run` (training or
submitting what is unfinished), `results` (reading the series back, beside the paper's values) and
`manifold` (figure 4's picture).
"""
from .manifold import manifold_picture, write_manifold_png
from .plan import (
    CONTINUOUS_DATASETS,
    DEFAULT_BUDGET,
    FIG4_LATENT_DIM,
    FIGURES,
    FREY_LATENT_DIMS,
    MANIFEST,
    MANIFOLD_PNG,
    MAX_BUDGET,
    PAPER_BUDGET,
    PAPER_LATENT_DIMS,
    SAMPLES_PER_S_ONE_CORE,
    SERIES_CSV,
    Plan,
    list_reproductions,
    paper_latent_dims,
    read_manifest,
    reproduction_dir,
    write_manifest,
)
from .results import (
    PAPER_FIG2_MNIST,
    ReferencePoint,
    Series,
    comparison,
    figure_series,
    series_csv,
    short,
    write_series_csv,
)
from .run import completed_epochs, job_spec, run_plan, submit_plan

__all__ = ["CONTINUOUS_DATASETS", "DEFAULT_BUDGET", "FIG4_LATENT_DIM", "FIGURES", "FREY_LATENT_DIMS", "MANIFEST",
           "MANIFOLD_PNG", "MAX_BUDGET", "PAPER_BUDGET", "PAPER_FIG2_MNIST", "PAPER_LATENT_DIMS", "Plan",
           "ReferencePoint", "SAMPLES_PER_S_ONE_CORE", "SERIES_CSV", "Series", "comparison",
           "completed_epochs", "figure_series", "job_spec", "list_reproductions", "manifold_picture",
           "paper_latent_dims", "read_manifest", "reproduction_dir", "run_plan", "series_csv", "short",
           "submit_plan", "write_manifest", "write_manifold_png", "write_series_csv"]
