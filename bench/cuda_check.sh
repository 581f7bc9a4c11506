#!/usr/bin/env bash
# A short CUDA check of `--device auto`, for a machine with a GPU (run from the repo root).
# Trains on the GPU, evaluates there, resumes on the CPU from the GPU's resume state, and
# prints samples/s on CUDA and on the CPU for the same Fashion-MNIST run.
# Needs the Fashion-MNIST IDX files under $VAE_DATA_DIR/fashion-mnist/.
set -euo pipefail
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$(pwd) PYTHONUNBUFFERED=1
OUT=${OUT:-$(mktemp -d)}
python3 - <<'PY'
import torch
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
python3 -m vae datasets
python3 -m vae train --dataset fashion-mnist --latent-dim 20 --hidden 400 --epochs 3 --batch-size 128 \
  --device auto --out "$OUT/gpu" 2>"$OUT/gpu.log" | tee "$OUT/gpu.json"
python3 -m vae eval "$OUT/gpu" --device auto --iw-samples 1000 --json | tee "$OUT/gpu-eval.json"
python3 -m vae train --dataset fashion-mnist --out "$OUT/gpu" --epochs 4 --resume --device cpu \
  --threads 8 2>"$OUT/resume.log" | tee "$OUT/resume-on-cpu.json"
python3 -m vae train --dataset fashion-mnist --latent-dim 20 --hidden 400 --epochs 3 --batch-size 128 \
  --device cpu --threads 8 --out "$OUT/cpu" 2>"$OUT/cpu.log" | tee "$OUT/cpu.json"
python3 - "$OUT" <<'PY'
import json, sys, torch
from vae.checkpoint import load_checkpoint
out = sys.argv[1]
gpu, cpu = (json.loads(open(f"{out}/{k}.json").read().splitlines()[-1]) for k in ("gpu", "cpu"))
print(f"samples/s: cuda {gpu['samples_per_s']:,.0f}, cpu(8 threads) {cpu['samples_per_s']:,.0f}, "
      f"ratio {gpu['samples_per_s'] / cpu['samples_per_s']:.1f}x; test ELBO after 3 epochs: "
      f"cuda {gpu['test_elbo']:.2f}, cpu {cpu['test_elbo']:.2f}")
ck = load_checkpoint(f"{out}/gpu")
print("GPU-trained checkpoint loads on the CPU:", next(ck.model.parameters()).device, ck.summary)
PY
