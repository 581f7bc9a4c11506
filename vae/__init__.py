"""VAE Explorer's backend: Kingma & Welling's AEVB in plain PyTorch, with no UI import.

Modules: model (encoder, decoder, ELBO, IWAE), data (data sets), train (the
AEVB loop), checkpoint (safetensors files), runs (run folders), metrics,
explore (what the pages draw), jobs (background training), presets.
Nothing is imported here, so `import vae` stays cheap.
"""
__version__ = "0.1.0"
