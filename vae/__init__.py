"""VAE Explorer's backend: Kingma & Welling's AEVB in plain PyTorch, with no UI import.

Where each idea lives is in the README's "Where the code lives": config (every setting), storage
(files), data/ (data sets), model (the ELBO), train (the loop, emitting events) and run_writer,
checkpoint, latent/projections/geometry/pictures (what the pages draw), the numbers about a model
(metrics, diagnostics, estimators, evaluate, compare, inputs), jobs, reproduce/. Nothing is imported
here, so `import vae` stays cheap.
"""
__version__ = "0.1.0"
