"""Command line: `python -m vae train|eval|datasets`. It calls the same functions as the app.

Errors exit with status 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading


def _hidden(text: str) -> tuple[int, ...]:
    from .model import ConfigError, parse_hidden
    try:
        return parse_hidden(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (`--help` still shows the full usage)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help).\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m vae", description="Train, evaluate and list data for VAE Explorer.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    t = sub.add_parser("train", help="train a VAE into a run folder")
    t.add_argument("--dataset", default="mnist-5k", help="mnist-5k (default), digits, fashion-mnist, mnist, or a .npz/.npy/.zip/folder of PNGs")
    t.add_argument("--data-dir", help="folder holding the four IDX files of --dataset")
    t.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    t.add_argument("--preset", choices=("default", "paper"), default="default",
                   help="paper: 500 tanh units, N(0, 0.01^2) init, Adagrad, as in section 5 of the paper")
    t.add_argument("--latent-dim", type=int, default=2)
    t.add_argument("--epochs", type=int, default=10, help="epochs to train; with --resume, the total to reach")
    t.add_argument("--arch", choices=("mlp", "conv"))
    t.add_argument("--hidden", type=_hidden, help="hidden widths, e.g. 400 or 512,256")
    t.add_argument("--activation", choices=("relu", "tanh"))
    t.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli")
    t.add_argument("--gaussian-std", type=float, help="fixed decoder std for --likelihood gaussian (default: learned)")
    t.add_argument("--binarize", choices=("none", "dynamic", "static"), default="none")
    t.add_argument("--estimator", choices=("A", "B"), help="SGVB estimator: A (eq. 6) or B (eq. 7, default)")
    t.add_argument("--samples", type=int, dest="n_samples", help="L, samples of z per datapoint")
    t.add_argument("--beta", type=float, default=1.0)
    t.add_argument("--kl-warmup", type=float, default=0.0, help="epochs over which the KL weight rises from 0 to beta")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--optimizer", choices=("adam", "adagrad"))
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--log-every", type=int, default=20, help="steps between logged train records")
    t.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    t.add_argument("--device", default="cpu", help="cpu (default), cuda, or auto (CUDA when present)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its saved state")

    e = sub.add_parser("eval", help="evaluate a checkpoint on its data set's test split")
    e.add_argument("path", help="a run folder or a .safetensors checkpoint")
    e.add_argument("--iw-samples", type=int, help="K for the importance-weighted log-likelihood estimate")
    e.add_argument("--max-points", type=int, help="evaluate on the first N test images only")
    e.add_argument("--data-dir")
    e.add_argument("--threads", type=int)
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", action="store_true", help="print one JSON object")

    d = sub.add_parser("datasets", help="list the data sets and where they were found")
    d.add_argument("--data-dir")
    d.add_argument("--json", action="store_true")
    return parser


def _configs(args):
    from .model import ModelConfig
    from .presets import PRESETS
    from .train import TrainConfig

    preset = PRESETS[args.preset]
    model_kw = dict(preset["model"])
    train_kw = dict(preset["train"])
    for key in ("arch", "hidden", "activation"):
        if getattr(args, key) is not None:
            model_kw[key] = getattr(args, key)
    for key in ("batch_size", "lr", "optimizer", "estimator", "n_samples"):
        if getattr(args, key) is not None:
            train_kw[key] = getattr(args, key)
    train_kw.update(epochs=args.epochs, beta=args.beta, kl_warmup=args.kl_warmup, binarize=args.binarize,
                    seed=args.seed, log_every=args.log_every)
    return model_kw, TrainConfig(**train_kw)


def cmd_train(args) -> int:
    from tqdm import tqdm

    from . import distributed
    from .data import load_dataset
    from .model import ModelConfig
    from .train import resolve_device, train_run

    model_kw, train_config = _configs(args)
    data = load_dataset(args.dataset, data_dir=args.data_dir)
    model_config = ModelConfig(image_shape=data.image_shape, latent_dim=args.latent_dim,
                               likelihood=args.likelihood, gaussian_std=args.gaussian_std, **model_kw)
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    dist = distributed.init(resolve_device(args.device))  # a no-op unless started by torchrun
    bar = tqdm(total=1000, desc=f"training {data.name}", unit="‰", file=sys.stderr,
               disable=None if dist.is_main else True,
               bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def on_event(event):
        bar.update(round(event.progress * 1000) - bar.n)
        test = [r for r in event.records if r["split"] == "test"]
        post = {"elbo": f"{event.records[-1]['elbo']:.1f}"} if event.records else {}
        if test:
            post["test"] = f"{test[-1]['elbo']:.1f}"
        post["samples/s"] = f"{event.samples_per_s:,.0f}"
        bar.set_postfix(post, refresh=False)

    stop = threading.Event()
    try:
        result = train_run(args.out, data, model_config, train_config, resume=args.resume, callbacks=[on_event],
                           threads=args.threads, stop_event=stop, dist=dist)
    except KeyboardInterrupt:
        bar.close()
        print("error: interrupted; the checkpoint of the last finished epoch is kept (continue with --resume).",
              file=sys.stderr)
        return 130
    finally:
        distributed.shutdown(dist)
    bar.close()
    if not dist.is_main:
        return 0 if result.status != "diverged" else 3
    summary = result.summary()
    print(json.dumps({"samples_per_s": summary["samples_per_s"], "train_elbo": result.train_elbo,
                      "test_elbo": result.test_elbo, "seconds": summary["seconds"], "epochs": result.epochs,
                      "status": result.status, "out": str(args.out)}))
    if result.status == "diverged":
        print(f"error: training diverged: {result.reason}; the last good checkpoint was kept.", file=sys.stderr)
        return 3
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(args.path, iw_samples=args.iw_samples, max_points=args.max_points,
                                 data_dir=args.data_dir, device=args.device, threads=args.threads)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            if key == "kl_per_dim":
                value = " ".join(f"{v:.2f}" for v in value)
            print(f"{key:>20}: {value}")
    return 0


def cmd_datasets(args) -> int:
    from .data import available_datasets

    rows = available_datasets(args.data_dir)
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        mark = "yes" if row["available"] else "no "
        print(f"{row['name']:<14} {mark}  {row['description']}\n{'':<19}{row['where']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .data import DataError
    from .model import ConfigError
    from .runs import RunError

    args = build_parser().parse_args(argv)
    command = {"train": cmd_train, "eval": cmd_eval, "datasets": cmd_datasets}[args.command]
    try:
        return command(args)
    except (DataError, ConfigError, CheckpointError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
    except OSError as err:
        print(f"error: {err.strerror or err} ({err.filename or 'file system'}).", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
