"""Command line: `python -m vae train|eval|datasets|reproduce|serve`. It calls the same functions as the app.

Errors exit with status 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from .config import ConfigError, Setting, all_settings, parse_hidden, train_settings


def _hidden(text: str) -> tuple[int, ...]:
    try:
        return parse_hidden(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_setting(parser: argparse.ArgumentParser, setting: Setting, **changes) -> None:
    """One option of vae/config.py's table; `changes` are a command's own default or help (reproduce's)."""
    kw = {"dest": setting.name, "help": setting.help}
    if setting.kind is bool and setting.preset_fills:  # --lr-search / --no-lr-search; not given: the preset's
        kw.update(action=argparse.BooleanOptionalAction, default=None)
    elif setting.kind is bool:
        kw["action"] = "store_true"
    else:
        kw.update(default=setting.cli_default, required=setting.required)
        if setting.choices and not setting.also:  # a setting that also takes a pattern (cuda:1) is checked later
            kw["choices"] = setting.choices
        elif setting.kind in (int, float):
            kw["type"] = setting.kind
        elif setting.kind is tuple:
            kw["type"] = _hidden
    parser.add_argument(setting.flag, **{**kw, **changes})


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (`--help` still shows the full usage)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help).\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m vae", description="Train, evaluate and list data for VAE Explorer.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    t = sub.add_parser("train", help="train a VAE into a run folder")
    for setting in train_settings():  # every setting, its flag, default and help: vae/config.py
        add_setting(t, setting)

    e = sub.add_parser("eval", help="evaluate a checkpoint on its data set's test split")
    e.add_argument("path", help="a run folder or a .safetensors checkpoint")
    e.add_argument("--iw-samples", type=int, help="K for the importance-weighted log-likelihood estimate")
    e.add_argument("--max-points", type=int, help="evaluate on the first N test images only")
    e.add_argument("--seed", type=int, default=0, help="seed of the eps draws (another seed: another estimate, "
                   "within its standard error)")
    e.add_argument("--data-dir")
    e.add_argument("--threads", type=int)
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", action="store_true", help="print one JSON object")

    d = sub.add_parser("datasets", help="list the data sets and where they were found")
    d.add_argument("--data-dir")
    d.add_argument("--json", action="store_true")

    _add_reproduce(sub)

    b = sub.add_parser("bundle", help="ship a run (or refresh a bundled checkpoint) in assets/, with every result "
                       "its pages compute once per checkpoint")
    b.add_argument("source", type=Path, help="a run folder, or a .safetensors checkpoint (one in assets/ is refreshed)")
    b.add_argument("--name", help="the asset's name (default: the run folder's or file's name)")
    b.add_argument("--assets", type=Path, default=Path(__file__).resolve().parents[1] / "assets",
                   help="the assets folder (default: the app's)")
    b.add_argument("--snapshots", action="store_true", help="ship the run's snapshots too (Replay)")
    _add_serve(sub)
    return parser


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the budget must be a number of training samples such as 1e7, "
                                         f"got {text!r}") from None
    return value


def _add_reproduce(sub) -> None:
    # Defaults stay in vae.reproduce.Plan (None here means "the plan's"); the numbers in the help are
    # written out so that --help and usage errors answer without importing torch.
    r = sub.add_parser(
        "reproduce", help="reproduce the paper's figure 2 (bound vs samples) or figure 4 (2-D manifold)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reproduce a figure of Kingma & Welling (2013), section 5, with ordinary runs.\n\n"
                    "fig2: trains one run per latent size (the paper's Nz = 3 5 10 20 200 for MNIST, 2 5 10 20 for\n"
                    "      Frey Face) for --budget training\n"
                    "      samples each and gathers the lower bound against samples seen, train and test.\n"
                    "fig4: trains a 2-D latent and writes the learned manifold as a PNG.\n\n"
                    "Runs land in --out as <name>-nz<K> (the app lists them as models); the manifest\n"
                    "(reproduce.json), the series as CSV and the PNG in <out>/reproductions/<name>/. Running the\n"
                    "same command again continues: finished sizes are skipped, stopped ones resumed, and a\n"
                    "larger --budget extends them. The paper does not say how it binarised MNIST: --binarize\n"
                    "none trains on grey pixels as Bernoulli targets, dynamic draws new binary images each step.")
    r.add_argument("figure", choices=("fig2", "fig4"), help="fig2: lower bound vs training samples; fig4: 2-D manifold")
    shared = all_settings()  # train's settings, with reproduce's own defaults and help where they differ
    add_setting(r, shared["dataset"], default="mnist",
                help="mnist (default), frey (Gaussian decoder), fashion-mnist, mnist-5k or digits")
    add_setting(r, shared["data_dir"])
    r.add_argument("--out", required=True, help="the runs folder to train into (the app reads runs/ or $VAE_RUNS_DIR)")
    r.add_argument("--name", help="runs are named <name>-nz<K> (default: <figure>-<dataset>-<preset>-<binarize>)")
    r.add_argument("--latent-dims", type=int, nargs="+",
                   help="latent sizes (fig2 default: 3 5 10 20 200, the paper's MNIST panels; 2 5 10 20 for frey; "
                        "fig4: 2)")
    r.add_argument("--budget", type=_budget,
                   help="training samples per latent size, rounded up to whole epochs (default 1e7; the paper "
                        "ran to 2e8); about 13,000 samples/s on one CPU core")
    add_setting(r, shared["preset"], default="paper", help="paper: 500 tanh units, N(0, 0.01^2) init, Adagrad with "
                "its step size searched, weight decay (default); default: the project's 400 relu, Adam")
    add_setting(r, shared["binarize"], help="none: grey pixels as Bernoulli targets (default); dynamic: resampled "
                "each step; static: once")
    add_setting(r, shared["algorithm"], help="aevb (default) or wake-sleep, the baseline figure 2 compares with")
    add_setting(r, shared["seed"])
    r.add_argument("--grid", type=int, default=20,
                   help="fig4: images per side of the manifold (default 20, as in the paper)")
    add_setting(r, shared["threads"], help="torch intra-op threads (default: measured while training, as in train)")
    add_setting(r, shared["device"])


def _add_serve(sub) -> None:
    v = sub.add_parser("serve", help="serve a class: N Streamlit replicas behind nginx, with sticky sessions",
                       description="Start N `streamlit run app.py` replicas on free loopback ports and nginx in front "
                                   "of them on --address:--port, with sticky sessions, one runs folder, one cookie "
                                   "secret and one training queue; Ctrl-C stops them all. Settings default to the "
                                   "environment (VAE_RUNS_DIR, VAE_READ_ONLY, VAE_MAX_JOBS, VAE_TORCH_THREADS).")
    v.add_argument("--replicas", type=int, help="Streamlit processes (default: one per core)")
    v.add_argument("--port", type=int, default=8501, help="the port nginx listens on (default 8501)")
    v.add_argument("--address", default="127.0.0.1",
                   help="the address nginx listens on (default 127.0.0.1, this machine only; 0.0.0.0 for a room)")
    v.add_argument("--runs-dir", help="the shared runs folder (default: $VAE_RUNS_DIR, else ./runs)")
    v.add_argument("--read-only", action="store_true", help="no training, no uploads (as VAE_READ_ONLY=1)")
    v.add_argument("--max-jobs", type=int,
                   help="training jobs at once across all replicas (default: $VAE_MAX_JOBS, else 1)")
    v.add_argument("--torch-threads", type=int,
                   help="torch threads per replica and job (default: $VAE_TORCH_THREADS, else 1)")
    v.add_argument("--log-dir", help="keep each replica's log here (default: a temporary folder, removed at the end)")
    v.add_argument("--upstream", action="append", default=[], metavar="HOST:PORT",
                   help="also proxy to a replica started by hand on another machine (repeatable; see the README)")


def _configs(args):
    """The run's settings and its two configs: the preset fills what the command line did not give."""
    from .config import RunSettings, configs_from

    run = RunSettings.from_dict(vars(args))  # --threads and --device refused here, in one sentence
    model, train = configs_from(run.preset, vars(args), run.dataset)  # the paper's Frey Face: 200 hidden units
    return run, model, train


def cmd_train(args) -> int:
    from tqdm import tqdm

    from . import distributed
    from .data import load_dataset
    from .distributed import resolve_device
    from .train import train_run

    run, model_settings, train_config = _configs(args)
    data = load_dataset(run.dataset, data_dir=run.data_dir)
    model_config = model_settings.with_image_shape(data.image_shape)
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    dist = distributed.init(resolve_device(run.device))  # a no-op unless started by torchrun
    bar = tqdm(total=1000, desc=f"training {data.name}", unit="‰", file=sys.stderr,
               disable=None if dist.is_main else True,
               bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    shown = []  # the thread counts printed so far: one line whenever the choice changes
    searched = []  # the step-size search, once printed

    def on_event(event):
        if event.threads is not None and event.threads.threads not in shown[-1:]:
            shown.append(event.threads.threads)
            bar.write(event.threads.describe(), file=sys.stderr)
        if event.state is not None and event.state.lr_search is not None and not searched:
            searched.append(event.state.lr_search)
            bar.write(event.state.lr_search.describe(), file=sys.stderr)
        bar.update(round(event.progress * 1000) - bar.n)
        test = [r for r in event.records if r["split"] == "test"]
        post = {"elbo": f"{event.records[-1]['elbo']:.1f}"} if event.records else {}
        if test:
            post["test"] = f"{test[-1]['elbo']:.1f}"
        post["samples/s"] = f"{event.samples_per_s:,.0f}"
        bar.set_postfix(post, refresh=False)

    stop = threading.Event()
    try:
        result = train_run(run.out, data, model_config, train_config, resume=run.resume, callbacks=[on_event],
                           threads=run.threads, stop_event=stop, dist=dist)
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
                      "threads": summary["threads"], "status": result.status, "out": str(run.out)}))
    if result.status == "diverged":
        print(f"error: training diverged: {result.reason}; the last good checkpoint was kept.", file=sys.stderr)
        return 3
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate_checkpoint
    from .precision import format_bound

    report = evaluate_checkpoint(args.path, iw_samples=args.iw_samples, max_points=args.max_points,
                                 data_dir=args.data_dir, device=args.device, threads=args.threads, seed=args.seed)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            if key.endswith("_se"):
                continue  # printed with its value: "-115.78 ± 0.04"
            if f"{key}_se" in report:
                value = format_bound(value, report[f"{key}_se"], "nats")
            elif key == "kl_per_dim":
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


def cmd_reproduce(args) -> int:
    from tqdm import tqdm

    from .config import RunSettings
    from .data import load_dataset
    from .reproduce import MANIFEST, Plan, reproduction_dir, run_plan, write_manifold_png, write_series_csv
    from .train import train_run

    dims = args.latent_dims or ((2,) if args.figure == "fig4" else None)
    given = {"latent_dims": tuple(dims) if dims else None, "budget": args.budget}
    plan = Plan(figure=args.figure, dataset=args.dataset, preset=args.preset, binarize=args.binarize, seed=args.seed,
                algorithm=args.algorithm,
                data_dir=args.data_dir, name=args.name or "", **{k: v for k, v in given.items() if v is not None})
    if not 2 <= args.grid <= 60:
        raise ConfigError(f"the manifold grid must have 2 to 60 images per side, got {args.grid}.")
    RunSettings(threads=args.threads, device=args.device)  # refused as `train` refuses them, in one sentence
    data = load_dataset(plan.dataset, data_dir=plan.data_dir)
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{plan.figure}: {len(plan.latent_dims)} latent size(s), {plan.epochs(len(data.x_train))} epochs of "
          f"{len(data.x_train):,} images each, into {args.out}", file=sys.stderr)
    summaries: dict[str, dict] = {}

    def train(spec, out):
        bar = tqdm(total=1000, desc=f"Nz={spec.model.latent_dim}", unit="‰", file=sys.stderr, disable=None,
                   bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

        def on_event(event):
            bar.update(round(event.progress * 1000) - bar.n)
            test = [r for r in event.records if r["split"] == "test"]
            if test:
                bar.set_postfix({"test": f"{test[-1]['elbo']:.1f}", "samples/s": f"{event.samples_per_s:,.0f}"},
                                refresh=False)

        model_config = spec.model.with_image_shape(data.image_shape)
        try:
            result = train_run(out, data, model_config, spec.train, resume=spec.resume, callbacks=[on_event],
                               threads=args.threads, device=args.device)
        finally:
            bar.close()
        summaries[str(spec.model.latent_dim)] = {**result.summary(), "run": spec.run_name}
        return result

    def skipped(k):
        summaries[str(k)] = {"status": "already done", "run": plan.run_name(k)}

    try:
        run_plan(plan, args.out, data, train=train, on_skip=skipped)
    except KeyboardInterrupt:
        print("error: interrupted; finished epochs are kept, and the same command continues the reproduction.",
              file=sys.stderr)
        return 130
    folder = reproduction_dir(args.out, plan.name)
    out = {"figure": plan.figure, "name": plan.name, "out": str(args.out), "manifest": str(folder / MANIFEST),
           "csv": str(write_series_csv(args.out, plan.name)), "sizes": summaries}
    diverged = [k for k, s in summaries.items() if s.get("status") == "diverged"]
    if plan.figure == "fig4" and not diverged:
        out["png"] = str(write_manifold_png(args.out, plan.name, plan.run_name(plan.latent_dims[0]), args.grid))
    print(json.dumps(out))
    if diverged:
        print(f"error: training diverged for Nz = {', '.join(diverged)}; the last good checkpoints were kept.",
              file=sys.stderr)
        return 3
    return 0


def cmd_bundle(args) -> int:
    from .bundle import bundle

    command = " ".join(["python -m vae bundle", str(args.source)] + (["--name", args.name] if args.name else [])
                       + (["--snapshots"] if args.snapshots else []))
    asset = bundle(args.source, args.assets, args.name, snapshots=args.snapshots, command=command)
    print(json.dumps({"asset": str(asset), "derived": str(asset.with_name(asset.stem + ".derived"))}))
    return 0


def cmd_serve(args) -> int:
    import os

    from .serve import ServeError, serve, settings_from

    try:
        settings = settings_from(dict(os.environ), runs_dir=args.runs_dir, read_only=args.read_only,
                                 max_jobs=args.max_jobs, torch_threads=args.torch_threads)
        replicas = args.replicas if args.replicas is not None else os.cpu_count() or 1
        return serve(replicas, args.address, args.port, settings, args.log_dir, args.upstream)
    except ServeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    from .bundle import BundleError
    from .checkpoint import CheckpointError
    from .data import DataError
    from .runs import RunError

    args = build_parser().parse_args(argv)
    command = {"train": cmd_train, "eval": cmd_eval, "datasets": cmd_datasets, "reproduce": cmd_reproduce,
               "serve": cmd_serve, "bundle": cmd_bundle}[args.command]
    try:
        return command(args)
    except (DataError, ConfigError, CheckpointError, RunError, BundleError) as err:
        print(f"error: {err}", file=sys.stderr)
    except OSError as err:
        print(f"error: {err.strerror or err} ({err.filename or 'file system'}).", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
