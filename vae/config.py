"""Every setting of a model and of a training run, with its choices, default and check, in one place.

The command line's options and the Train page's fields are generated from these dataclasses (see
`FIELDS`), so both offer every setting and cannot drift apart. No torch here: the app's first page and
the CLI's --help import this module without loading PyTorch.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

ARCHS = ("mlp", "conv")
ACTIVATIONS = ("relu", "tanh")
LIKELIHOODS = ("bernoulli", "gaussian")
ESTIMATORS = ("A", "B")


class ConfigError(ValueError):
    """A model or training configuration that cannot be built; the message is one sentence."""


@dataclass(frozen=True)
class ModelConfig:
    image_shape: tuple[int, int]
    latent_dim: int = 2
    arch: Literal["mlp", "conv"] = "mlp"
    hidden: tuple[int, ...] = (400,)  # mlp: hidden widths, mirrored in the decoder
    activation: Literal["relu", "tanh"] = "relu"
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    gaussian_std: float | None = None  # gaussian decoder: None learns log sigma^2 per pixel (appendix C.2), else fixed
    init_std: float | None = None  # None: PyTorch's default init; the paper preset draws every parameter from N(0, 0.01^2)

    def __post_init__(self):
        # Coerce JSON lists back to tuples so a config read from a checkpoint compares equal.
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "hidden", tuple(int(v) for v in self.hidden))
        self.validate()

    def validate(self) -> None:
        h, w = self.image_shape if len(self.image_shape) == 2 else (0, 0)
        checks = [
            (len(self.image_shape) == 2 and h > 0 and w > 0, f"image_shape must be (height, width), got {self.image_shape}"),
            (1 <= self.latent_dim <= 1024, f"latent size must be between 1 and 1024, got {self.latent_dim}"),
            (self.arch in ARCHS, f"architecture must be one of {', '.join(ARCHS)}, got {self.arch!r}"),
            (len(self.hidden) >= 1 and all(1 <= n <= 8192 for n in self.hidden),
             f"hidden sizes must be one or more widths between 1 and 8192, got {list(self.hidden)}"),
            (self.activation in ACTIVATIONS, f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}"),
            (self.likelihood in LIKELIHOODS, f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}"),
            (self.gaussian_std is None or self.gaussian_std > 0, f"gaussian_std must be positive, got {self.gaussian_std}"),
            (self.init_std is None or self.init_std > 0, f"init_std must be positive, got {self.init_std}"),
            (self.arch != "conv" or (h % 4 == 0 and w % 4 == 0),
             f"the conv architecture needs image sides divisible by 4, got {h}x{w}; use --arch mlp"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message + ".")

    @property
    def n_pixels(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown model config fields: {', '.join(sorted(unknown))}.")
        return cls(**data)


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden widths written as "500" or "512,256" (command line and Train page alike)."""
    try:
        sizes = tuple(int(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"hidden sizes are widths separated by commas, like 500 or 512,256; got {text!r}.") from None
    if not sizes:
        raise ConfigError("hidden sizes need at least one width, like 500 or 512,256.")
    return sizes


OPTIMIZERS = ("adam", "adagrad")
BINARIZE = ("none", "dynamic", "static")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    optimizer: Literal["adam", "adagrad"] = "adam"
    estimator: Literal["A", "B"] = "B"  # SGVB estimator: A is eq. 6, B is eq. 7
    n_samples: int = 1  # L, samples of z per datapoint (the paper uses 1 with M = 100)
    beta: float = 1.0  # weight of the KL term; 1 is the ELBO
    kl_warmup: float = 0.0  # epochs over which the KL weight rises linearly from 0 to beta
    binarize: Literal["none", "dynamic", "static"] = "none"  # Bernoulli targets: grey pixels, resampled, fixed
    seed: int = 0
    log_every: int = 20  # steps between train records

    def __post_init__(self):
        checks = [
            (1 <= self.epochs <= 100_000, f"epochs must be between 1 and 100000, got {self.epochs}"),
            (1 <= self.batch_size <= 65_536, f"batch size must be between 1 and 65536, got {self.batch_size}"),
            (math.isfinite(self.lr) and self.lr > 0, f"learning rate must be a positive number, got {self.lr}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
            (self.estimator in ESTIMATORS, f"estimator must be A or B, got {self.estimator!r}"),
            (1 <= self.n_samples <= 1000, f"samples per datapoint must be between 1 and 1000, got {self.n_samples}"),
            (math.isfinite(self.beta) and self.beta >= 0, f"beta must be zero or positive, got {self.beta}"),
            (math.isfinite(self.kl_warmup) and self.kl_warmup >= 0, f"KL warm-up must be zero or more epochs, got {self.kl_warmup}"),
            (self.binarize in BINARIZE, f"binarize must be one of {', '.join(BINARIZE)}, got {self.binarize!r}"),
            (self.log_every >= 1, f"log_every must be at least 1, got {self.log_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message + ".")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})



# Named starting points for a run: model and training settings that belong together.
#
# `paper` follows section 5 of Kingma & Welling (2013): one hidden layer of 500
# tanh units in encoder and decoder, every parameter drawn from N(0, 0.01^2) (we
# read the paper's N(0, 0.01) as a standard deviation of 0.01, as the authors'
# public Theano code does), Adagrad, minibatches of M = 100 with L = 1. The paper
# picked Adagrad's step size from {0.01, 0.02, 0.1}; 0.02 is our default. The
# paper's weight-decay prior on the parameters is left out.
PRESETS: dict[str, dict] = {
    "default": {
        "model": {"arch": "mlp", "hidden": (400,), "activation": "relu", "init_std": None},
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 100},
    },
    "paper": {
        "model": {"arch": "mlp", "hidden": (500,), "activation": "tanh", "init_std": 0.01},
        "train": {"optimizer": "adagrad", "lr": 0.02, "batch_size": 100, "n_samples": 1, "estimator": "B"},
    },
}
