"""Every setting of a model and of a training run, once: its flag, help, choices, default, bounds and how
the Train page shows it.

Each setting is a dataclass field whose metadata is a `Setting`: `ModelSettings` (what a person chooses
of a model; `ModelConfig` adds the image shape, which the data decides), `TrainConfig`, and `RunSettings`
(the data set, the preset, the device: what a run needs beside its two configs). The command line's
`train` options (vae/__main__.py) and the Train page's fields (ui/train_view.py) are generated from
`train_settings()`, and the configs' checks read the same bounds, so none of them can drift. No torch
here: the app's first page and the CLI's --help import this module without loading PyTorch.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Mapping, get_args, get_origin, get_type_hints

from .control import Change, ControlError

Arch = Literal["mlp", "conv"]
Activation = Literal["relu", "tanh"]
Likelihood = Literal["bernoulli", "gaussian"]  # appendix C.1 and C.2
Estimator = Literal["A", "B"]  # SGVB estimator: A is eq. 6, B is eq. 7
Optimizer = Literal["adam", "adagrad"]
Binarize = Literal["none", "dynamic", "static"]  # Bernoulli targets: grey pixels, resampled, fixed
Algorithm = Literal["aevb", "wake-sleep"]  # the paper's algorithm 1, and figure 2's baseline (Hinton et al. 1995)

ARCHS: tuple[str, ...] = get_args(Arch)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
LIKELIHOODS: tuple[str, ...] = get_args(Likelihood)
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
BINARIZE: tuple[str, ...] = get_args(Binarize)
ALGORITHMS: tuple[str, ...] = get_args(Algorithm)
DEVICES = ("cpu", "auto", "cuda")  # auto: CUDA when present; the command line also takes cuda:N


class ConfigError(ValueError):
    """A model or training configuration that cannot be built; the message is one sentence."""


# -- what a setting is ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Bound:
    """The numbers a setting admits: the configs' checks and the page's limits read this one record."""
    low: float | None = None
    high: float | None = None
    above: bool = False  # low itself is refused ("positive")
    says: str = ""  # the refusal's words where the numbers alone read badly; may name {low} and {high}

    def admits(self, value) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return False
        return self.high is None or value <= self.high

    def words(self) -> str:
        if self.says:
            return self.says.format(low=self.low, high=self.high)
        if self.high is not None:
            return f"between {self.low} and {self.high}"
        return "positive" if self.above else f"at least {self.low}"


@dataclass(frozen=True)
class Setting:
    """One setting as the command line, the Train page and the configs' checks all see it."""
    label: str  # the Train page's label
    flag: str | None = None  # the command line's; None: no flag (init_std is set by a preset only)
    help: str | None = None  # the command line's help; None: --help lists the flag alone
    tip: str | None = None  # the page's tooltip where the help's wording names flags; None: the help
    noun: str = ""  # how a refusal names it ("latent size"); empty: the field's name
    bound: Bound | None = None
    says: str = ""  # a choice's refusal words where "one of a, b" reads badly
    choices: tuple = ()  # empty: the field's Literal
    also: str = ""  # a pattern of further values the command line takes (device: cuda:1); no argparse choices
    required: bool = False  # the command line needs it (--out)
    step: float | None = None  # the page's number input
    fmt: str | None = None
    app: str = ""  # why the Train page does not offer it; empty: it does
    # Filled in from the dataclass field by `_settings_of`:
    name: str = ""
    group: str = ""  # "model", "train" or "run": ModelSettings, TrainConfig or RunSettings
    default: Any = None
    kind: type = str  # int, float, str, bool, or tuple (widths, written "512,256")
    optional: bool = False  # None is a value: "not given" (the preset's or the default), or "learned"

    @property
    def shown(self) -> str:
        """How the page shows it: "choice", "switch", "number" or "text"."""
        if self.choices:
            return "choice"
        return {bool: "switch", int: "number", float: "number"}.get(self.kind, "text")

    @property
    def preset_fills(self) -> bool:
        """A preset sets it: the command line's default is None (not given), so that the preset's value wins."""
        return self.name in PRESET_FILLED

    @property
    def cli_default(self):
        return None if self.preset_fills else self.default

    def text(self, value) -> str:
        """A value as the page's text field holds it: widths as "500,400"."""
        return ",".join(str(v) for v in value) if self.kind is tuple else ("" if value is None else str(value))

    def parse(self, text: str):
        """The inverse of `text` (the command line's --hidden and the page's "Hidden widths")."""
        return parse_hidden(text) if self.kind is tuple else text

    def refusal(self, value) -> str | None:
        """The one sentence that refuses `value`, or None when the setting admits it."""
        if value is None and self.optional:
            return None
        if self.choices:
            ok = value in self.choices or bool(self.also and isinstance(value, str) and re.fullmatch(self.also, value))
            words, shown = self.says or f"one of {', '.join(self.choices)}", repr(value)
        elif self.bound is not None:
            items = value if self.kind is tuple else (value,)
            ok = len(items) >= 1 and all(self.bound.admits(v) for v in items)
            words, shown = self.bound.words(), list(value) if self.kind is tuple else value
        else:
            return None
        return None if ok else f"{self.noun} must be {words}, got {shown}."


def setting(default, **meta) -> Any:
    """A dataclass field with its `Setting` (name, default and choices come from the field itself)."""
    return field(default=default, metadata={"setting": Setting(**meta)})


def _kind(hint) -> tuple[type, tuple, bool]:
    """(kind, choices, optional) from a field's type: `float | None`, `Literal[...]`, `tuple[int, ...]`."""
    args = get_args(hint)
    optional = type(None) in args and get_origin(hint) is not Literal
    if optional:
        hint = next(a for a in args if a is not type(None))
    if get_origin(hint) is Literal:
        return str, get_args(hint), optional
    if get_origin(hint) is tuple:
        return tuple, (), optional
    return hint, (), optional


@functools.cache
def _settings_of(cls, group: str) -> dict[str, Setting]:
    """The settings of one of the dataclasses below, in field order (cached: every check reads them)."""
    hints = get_type_hints(cls)
    found = {}
    for f in fields(cls):
        meta = f.metadata.get("setting")
        if meta is None:  # image_shape: the data decides it, nobody sets it
            continue
        kind, choices, optional = _kind(hints[f.name])
        found[f.name] = replace(meta, name=f.name, group=group, default=f.default, kind=kind, optional=optional,
                                choices=meta.choices or choices, noun=meta.noun or f.name)
    return found


def _refuse(config, settings: Mapping[str, Setting]) -> None:
    """Raise the first refusal, in field order (the order of the sentences a user has always seen)."""
    for s in settings.values():
        message = s.refusal(getattr(config, s.name))
        if message:
            raise ConfigError(message)


# -- presets: named starting points whose values fill what the user did not give -----------------
# `paper` follows section 5 of Kingma & Welling (2013): one hidden layer of 500
# tanh units in encoder and decoder, every parameter drawn from N(0, 0.01^2) (we
# read the paper's N(0, 0.01) as a standard deviation of 0.01, as the authors'
# public Theano code does), Adagrad, minibatches of M = 100 with L = 1, "plus a
# small weight decay term corresponding to a prior p(theta) = N(0, I)"
# (weight_decay = 1: TrainConfig says how it is scaled), and Adagrad's global
# step size "chosen from {0.01, 0.02, 0.1} based on performance on the training
# set in the first few iterations" (lr_search; vae/lr_search.py); 0.02 is the
# step size a run uses when the search is off. Frey Face gets 200 hidden units
# instead of 500 (PRESET_DATASET_VALUES).
# The authors' public code (dpkingma/anglepy, models/VAE_Z_X.py and wzoptim.py)
# differs in ways we note and do not copy: its init draws the weights and the
# hidden layers' biases from N(0, 0.01^2) but sets to zero the encoder's whole
# log-variance layer (weights and bias) and the decoder's output biases (the
# Bernoulli logits' and, for the Gaussian decoder, the mean's and the log
# variance's); its prior N(0, 1) covers the weight matrices only, not the biases
# (we put it on every parameter, as the paper's p(theta) reads); and its Adagrad
# only accumulates squared gradients for its first 100 steps before it moves.
PRESETS: dict[str, dict] = {
    "default": {
        "model": {"arch": "mlp", "hidden": (400,), "activation": "relu", "init_std": None},
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 100},
    },
    "paper": {
        "model": {"arch": "mlp", "hidden": (500,), "activation": "tanh", "init_std": 0.01},
        "train": {"optimizer": "adagrad", "lr": 0.02, "batch_size": 100, "n_samples": 1, "estimator": "B",
                  "weight_decay": 1.0, "lr_search": True},
    },
}
# What a preset sets for one data set in place of its own value: the paper's Frey Face models had 200
# hidden units where MNIST's had 500, "to prevent overfitting, since it is a considerably smaller data
# set" (section 5). Any other data set (MNIST, Fashion-MNIST, a user's file) gets the preset's own.
PRESET_DATASET_VALUES: dict[str, dict[str, dict[str, Any]]] = {"paper": {"frey": {"hidden": (200,)}}}
Preset = Literal[tuple(PRESETS)]  # the names of PRESETS, as a Literal: the table reads a setting's choices from it
PRESET_FILLED = frozenset(name for p in PRESETS.values() for part in p.values() for name in part)


# -- the configs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSettings:
    """A model as a person chooses it: everything but the image shape, which the data decides."""
    latent_dim: int = setting(2, label="Latent size", flag="--latent-dim", noun="latent size", bound=Bound(1, 1024))
    arch: Arch = setting("mlp", label="Architecture", flag="--arch", noun="architecture")
    hidden: tuple[int, ...] = setting(  # mlp: hidden widths, mirrored in the decoder
        (400,), label="Hidden widths", flag="--hidden", noun="hidden sizes", help="hidden widths, e.g. 400 or 512,256",
        tip="e.g. 500, or 512,256", bound=Bound(1, 8192, says="one or more widths between {low} and {high}"))
    activation: Activation = setting("relu", label="Activation", flag="--activation")
    likelihood: Likelihood = setting("bernoulli", label="Likelihood", flag="--likelihood")
    gaussian_std: float | None = setting(  # None learns log sigma^2 per pixel (appendix C.2), else fixed
        None, label="Gaussian std", flag="--gaussian-std", bound=Bound(0, above=True), step=0.01,
        help="fixed decoder std for --likelihood gaussian (default: learned)",
        tip="fixed decoder std of the Gaussian likelihood; empty: learned per pixel (appendix C.2)")
    init_std: float | None = setting(  # None: PyTorch's default init; the paper preset: every parameter N(0, 0.01^2)
        None, label="Init std", bound=Bound(0, above=True),
        app="no flag either: a preset sets it (paper: N(0, 0.01^2)), the page keeps the chosen preset's")

    def __post_init__(self):
        # Coerce JSON lists back to tuples so a config read from a checkpoint compares equal.
        object.__setattr__(self, "hidden", tuple(int(v) for v in self.hidden))
        self.validate()

    def validate(self) -> None:
        _refuse(self, _settings_of(ModelSettings, "model"))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(ModelSettings)}

    @classmethod
    def from_dict(cls, data: dict):
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown model config fields: {', '.join(sorted(unknown))}.")
        return cls(**data)

    def with_image_shape(self, image_shape: tuple[int, int]) -> "ModelConfig":
        return ModelConfig(image_shape=image_shape, **ModelSettings.to_dict(self))


@dataclass(frozen=True)
class ModelConfig(ModelSettings):
    """A buildable model: its settings and the shape of the images it reads (checkpoints store `to_dict`)."""
    image_shape: tuple[int, int] = field(kw_only=True)

    def __post_init__(self):
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        super().__post_init__()

    def validate(self) -> None:
        h, w = self.image_shape if len(self.image_shape) == 2 else (0, 0)
        if not (len(self.image_shape) == 2 and h > 0 and w > 0):
            raise ConfigError(f"image_shape must be (height, width), got {self.image_shape}.")
        super().validate()
        if self.arch == "conv" and (h % 4 or w % 4):
            raise ConfigError(f"the conv architecture needs image sides divisible by 4, got {h}x{w}; use --arch mlp.")

    @property
    def n_pixels(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    @property
    def settings(self) -> ModelSettings:
        return ModelSettings(**ModelSettings.to_dict(self))

    def to_dict(self) -> dict:
        return {"image_shape": self.image_shape, **ModelSettings.to_dict(self)}  # the key order checkpoints hold


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden widths written as "500" or "512,256" (command line and Train page alike)."""
    try:
        sizes = tuple(int(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"hidden sizes are widths separated by commas, like 500 or 512,256; got {text!r}.") from None
    if not sizes:
        raise ConfigError("hidden sizes need at least one width, like 500 or 512,256.")
    return sizes


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = setting(10, label="Epochs", flag="--epochs", bound=Bound(1, 100_000),
                          help="epochs to train; with --resume, the total to reach",
                          tip="epochs to train (a resumed run: the total to reach)")
    batch_size: int = setting(100, label="Batch size", flag="--batch-size", noun="batch size", bound=Bound(1, 65_536))
    lr: float = setting(1e-3, label="Learning rate", flag="--lr", noun="learning rate", fmt="%.5f",
                        bound=Bound(0, above=True, says="a positive number"))
    optimizer: Optimizer = setting("adam", label="Optimizer", flag="--optimizer")
    estimator: Estimator = setting("B", label="SGVB estimator", flag="--estimator", says="A or B",
                                   help="SGVB estimator: A (eq. 6) or B (eq. 7, default)",
                                   tip="B: analytic KL (eq. 7); A: Monte Carlo (eq. 6)")
    n_samples: int = setting(1, label="Samples per datapoint (L)", flag="--samples", noun="samples per datapoint",
                             bound=Bound(1, 1000), help="L, samples of z per datapoint")  # the paper: 1, with M = 100
    beta: float = setting(1.0, label="β (KL weight)", flag="--beta", bound=Bound(0, says="zero or positive"),
                          step=0.1)  # 1 is the ELBO
    kl_warmup: float = setting(0.0, label="KL warm-up (epochs)", flag="--kl-warmup", noun="KL warm-up", step=1.0,
                               bound=Bound(0, says="zero or more epochs"),
                               help="epochs over which the KL weight rises from 0 to beta")
    binarize: Binarize = setting("none", label="Binarise inputs", flag="--binarize")
    seed: int = setting(0, label="Seed", flag="--seed")
    log_every: int = setting(20, label="Log every (steps)", flag="--log-every", bound=Bound(1),
                             help="steps between logged train records")
    # Snapshots (vae/snapshots.py) are what Replay and the Train page's live map show. 100 steps: a mnist-5k
    # epoch (40 steps at M = 100) is shorter, so it keeps one per epoch (11 frames in 10 epochs); a full MNIST
    # epoch (600 steps) gets 6 (5 between its ends), so the map is seen forming inside the first epoch. A
    # snapshot of 28x28 images is ~50 KB, and a run writes at most MAX_STEP_SNAPSHOTS = 1000 between epoch ends
    # (wider spacing for a longer run): 100 epochs of full MNIST write 500 + 101 files, ~30 MB, and no run
    # more than ~50 MB of them besides its epochs' own.
    snapshot_every: int = setting(
        100, label="Snapshot every (steps)", flag="--snapshot-every", noun="snapshot spacing",
        bound=Bound(0, says="zero or more steps"),
        help="steps between snapshots of the latent map (Replay, the Train page's live map), taken at logged "
             "steps (--log-every) and at every epoch's end; at most 1,000 between epoch ends per run, spaced "
             "further for a longer run (~50 KB each); 0: at epoch ends only",
        tip="steps between snapshots of the latent map, at logged steps and every epoch's end (~50 KB each, at most "
            "1,000 a run); 0: at epoch ends only")
    # The prior p(theta) = N(0, I) of section 5 on every parameter, times this weight (0: none; 1: the paper's).
    # The paper maximises sum_i ELBO(x_i) + log p(theta) over the N training images; a minibatch of M
    # estimates it as sum_batch ELBO + (M / N) log p(theta), and our loss is the batch's mean negative
    # ELBO, so the term added to it is -(weight / N) log p(theta) = (weight / N) * 0.5 * sum theta^2,
    # less the constant (P / 2N) log 2 pi, which has no gradient (vae.model.parameter_prior_loss); the
    # authors' code scales it so too (anglepy's wzoptim.py adds n_batch / n_tot of the prior's gradient).
    # A weight w is the prior N(0, I / w). The recorded ELBO stays the bound, without this term.
    weight_decay: float = setting(
        0.0, label="Weight decay", flag="--weight-decay", noun="weight decay", step=0.1,
        bound=Bound(0, says="zero or positive"),
        help="weight of the prior N(0, I) on every parameter, as in section 5: 1 the paper's (the paper preset's), "
             "0 none (default); the loss per image gains weight * sum(theta^2) / 2N, N the training images",
        tip="1: the paper's prior N(0, I) on every parameter (section 5), scaled by 1/N per image; 0: none")
    # Section 5: Adagrad's step size "chosen from {0.01, 0.02, 0.1} based on performance on the training set
    # in the first few iterations": each candidate trains a few steps from the same start (vae/lr_search.py).
    lr_search: bool = setting(
        False, label="Step-size search", flag="--lr-search",
        help="choose the step size from 0.01, 0.02 and 0.1 by the training ELBO of 100 steps with each, from "
             "the same start, as section 5 did (the paper preset's, unless --lr is given); printed on stderr "
             "and kept in the checkpoint",
        tip="try 0.01, 0.02 and 0.1 for 100 steps each from the same start and train with the best (section 5)")
    algorithm: Algorithm = setting(
        "aevb", label="Algorithm", flag="--algorithm",
        help="aevb (default; the paper's algorithm 1) or wake-sleep (Hinton et al. 1995, figure 2's baseline: "
             "the same networks, its bound estimated as AEVB's)",
        tip="aevb: the paper's algorithm 1; wake-sleep: figure 2's baseline, with the same encoder and decoder")
    # What the Train page's pause-and-change controls did (vae/control.py), in step order: `lr` and `beta`
    # above are the values the run started with. Not a setting: no flag, no field; a checkpoint keeps it, so a
    # resumed run goes on with the values in force and a run trained again from this config repeats it.
    changes: tuple[Change, ...] = ()

    def __post_init__(self):
        _refuse(self, _settings_of(TrainConfig, "train"))
        try:
            changes = tuple(Change.from_dict(c) for c in self.changes)
        except (ControlError, TypeError) as err:
            raise ConfigError(str(err) if isinstance(err, ControlError) else "a change is a step with a learning "
                              "rate and/or beta.") from None
        if any(b.step < a.step for a, b in zip(changes, changes[1:], strict=False)):
            raise ConfigError("a run's changes must be in step order.")
        object.__setattr__(self, "changes", changes)
        if self.algorithm == "wake-sleep" and (self.beta != 1.0 or self.kl_warmup > 0
                                               or any(c.beta not in (None, 1.0) for c in changes)):
            raise ConfigError("beta and the KL warm-up weigh AEVB's KL term, which wake-sleep does not train; "
                              "use beta 1 and no warm-up with it.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RunSettings:
    """What `python -m vae train` needs beside the two configs. The Train page offers those with no `app`
    reason; it names the run instead of --out, and its Resume button stands for --resume."""
    dataset: str = setting("mnist-5k", label="Data set", flag="--dataset",
                           help="mnist-5k (default), digits, fashion-mnist, mnist, or a .npz/.npy/.zip/folder of PNGs",
                           tip="the data sets found on this server, or a file of your own")
    data_dir: str | None = setting(None, label="IDX folder", flag="--data-dir",
                                   help="folder holding the four IDX files of --dataset",
                                   app="the server finds data sets through VAE_DATA_DIR; a visitor does not name "
                                       "the server's folders")
    out: str | None = setting(None, label="Run folder", flag="--out", required=True,
                              help="run folder to create (or continue with --resume)",
                              app="the page trains into the runs folder, in a folder named by its Run name")
    preset: Preset = setting("default", label="Preset", flag="--preset",
                             help="paper: 500 tanh units (200 for frey), N(0, 0.01^2) init, Adagrad with its step "
                                  "size searched, weight decay, as in section 5 of the paper",
                             tip="fills the fields below; paper: 500 tanh units (200 for frey), N(0, 0.01^2) init, "
                                 "Adagrad with its step size searched from 0.01, 0.02, 0.1, weight decay 1, as in "
                                 "section 5 of the paper; default: 400 relu units, Adam")
    threads: int | None = setting(
        None, label="Torch threads", flag="--threads", bound=Bound(1),
        help="torch intra-op threads (default: measured: a few timed steps with each count at the start and again "
             "as the load changes, fewest unless more are clearly faster; printed on stderr)",
        app="the server's VAE_TORCH_THREADS decides: page scripts share its cores with every job")
    device: str = setting("cpu", label="Device", flag="--device", choices=DEVICES, also=r"cuda:\d+",
                          says="cpu, cuda or auto", help="cpu (default), cuda, or auto (CUDA when present)")
    resume: bool = setting(False, label="Resume", flag="--resume",
                           help="continue the run in --out from its saved state",
                           app="a stopped or finished run has its own Resume button under Watch run")

    def __post_init__(self):
        _refuse(self, _settings_of(RunSettings, "run"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunSettings":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# -- every setting, and the rule that joins a preset with what the user gave -----------------------
# The order of `python -m vae train --help` (kept as it was when the options were written out by hand).
# The settings added since sit beside their kin: the algorithm after the preset, the step-size search after
# --lr, the weight decay after the optimizer, the snapshot spacing after the logging's.
TRAIN_COMMAND = ("dataset", "data_dir", "out", "preset", "algorithm", "latent_dim", "epochs", "arch", "hidden",
                 "activation", "likelihood", "gaussian_std", "binarize", "estimator", "n_samples", "beta", "kl_warmup",
                 "batch_size", "lr", "lr_search", "optimizer", "weight_decay", "seed", "log_every", "snapshot_every",
                 "threads", "device", "resume")


def all_settings() -> dict[str, Setting]:
    """Every setting by name: the model's, the training's, the run's (init_std too, which has no flag)."""
    return {**_settings_of(ModelSettings, "model"), **_settings_of(TrainConfig, "train"),
            **_settings_of(RunSettings, "run")}


def train_settings() -> tuple[Setting, ...]:
    """The options of `python -m vae train`, in its --help order: every setting with a flag."""
    every = all_settings()
    return tuple(every[name] for name in TRAIN_COMMAND)


def preset_settings(preset: str, dataset: str | None = None) -> dict[str, dict[str, Any]]:
    """What `preset` sets, {"model": {...}, "train": {...}}, with what it sets for `dataset` in place of its
    own values (PRESET_DATASET_VALUES: the paper's Frey Face models had 200 hidden units)."""
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}.")
    instead = PRESET_DATASET_VALUES.get(preset, {}).get(dataset or "", {})
    return {part: {name: instead.get(name, value) for name, value in values.items()}
            for part, values in PRESETS[preset].items()}


def preset_values(preset: str, dataset: str | None = None) -> dict[str, Any]:
    """What choosing `preset` sets: its values, and the defaults of what another preset sets and it does not."""
    every = all_settings()
    chosen = {name: v for part in preset_settings(preset, dataset).values() for name, v in part.items()}
    return {name: chosen.get(name, every[name].default) for name in sorted(PRESET_FILLED)}


def configs_from(preset: str, given: Mapping[str, Any],
                 dataset: str | None = None) -> tuple[ModelSettings, TrainConfig]:
    """The configs of a run on `dataset`: the preset's values (those it sets for this data set where it has
    its own), every setting the user gave (not None) over them, and the defaults for the rest. The command
    line's rule, and the Train page's (which gives only the fields a user changed from the preset's).

    A step size given (--lr) is the run's: it turns off a preset's step-size search, and giving both
    --lr and --lr-search is refused, since both would choose the step size."""
    filled = {name: v for part in preset_settings(preset, dataset).values() for name, v in part.items()}
    gave = {k: v for k, v in given.items() if v is not None}
    if "lr" in gave and gave.get("lr_search"):
        raise ConfigError("a learning rate and a step-size search both choose the step size; give one of them.")
    if "lr" in gave:
        gave.setdefault("lr_search", False)
    chosen = {**filled, **gave}
    model = {k: v for k, v in chosen.items() if k in ModelSettings.__dataclass_fields__}
    train = {k: v for k, v in chosen.items() if k in TrainConfig.__dataclass_fields__}
    return ModelSettings(**model), TrainConfig(**train)
