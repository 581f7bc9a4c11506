"""The wake-sleep algorithm (Hinton, Dayan, Frey & Neal 1995), the baseline of the paper's figure 2, on the
same model as AEVB: the decoder p(x|z) is the generative model and the encoder q(z|x) the recognition model.

One step of it is two updates, each on its own half of the parameters:
  wake   on the data: z ~ q(z|x) for the minibatch (the encoder held fixed), and the decoder climbs
         log p(x|z) + log p(z), whose second term has no decoder parameter;
  sleep  on dreams: M pairs z ~ p(z), x ~ p(x|z) (a Bernoulli draw of the pixels for the Bernoulli decoder,
         a Gaussian one for the Gaussian decoder; the decoder held fixed), and the encoder climbs log q(z|x).

Why the recognition model does not optimise the bound: the ELBO's gap is KL(q(z|x) || p(z|x)) on the
data, and AEVB lowers exactly that. The sleep phase instead maximises E_{p(x, z)} log q(z|x), that is it
minimises KL(p(z|x) || q(z|x)) averaged over x drawn from the model, p(x): the reverse KL (which prefers a
q that covers every mode of the posterior to one that sits inside it), and on the model's own dreams, not
on the training images. Only the wake phase climbs the bound (in the decoder), so the two halves follow
two different objectives and no single function rises; the records' ELBO is estimator B (eq. 7) of the
same bound as AEVB's on the minibatch before its update (and the test set's, vae.metrics), so the curves
compare. The authors' public code (anglepy's wzoptim.py) clips a Gaussian dream to [0, 1]; this does not.

Section 5's weight decay, when set, is split the same way: the decoder's prior term joins the wake loss,
the encoder's the sleep loss. AEVB's beta and KL warm-up weigh a KL term that neither phase has, so
vae.config refuses them with wake-sleep.

Both phases step one optimiser: its state is per parameter, and a phase leaves the other half's gradients
unset (None), which Adam and Adagrad skip, so it is two optimisers with the same settings in one object,
which the resume state saves as it saves AEVB's.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from .model import VAE, ELBOParts, elbo_parts_given, log_normal

# The weight-decay term of the parameters a phase updates (vae.model.parameter_prior_loss), or None.
Penalty = Callable[[Iterable[torch.nn.Parameter]], torch.Tensor] | None


def wake_loss(model: VAE, x: torch.Tensor, eps: torch.Tensor, estimator: str = "B") -> tuple[torch.Tensor, ELBOParts]:
    """The wake phase's loss, -mean log p(x|z) with z = mu + sigma * eps drawn from the encoder held fixed
    (no gradient reaches it), and the minibatch's bound as estimated on the way (the records' ELBO)."""
    with torch.no_grad():
        mu, logvar = model.encode(x)
    parts = elbo_parts_given(model, x, mu, logvar, estimator=estimator, eps=eps)
    return -parts.recon.mean(), parts


@torch.no_grad()
def dream(model: VAE, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n pairs from the generative model: z ~ p(z) = N(0, I) [n, D] and x ~ p(x|z) [n, H, W]."""
    device = next(model.parameters()).device
    z = torch.randn((n, model.config.latent_dim), device=device, generator=generator)
    params, logvar = model.decode(z)
    if model.config.likelihood == "bernoulli":
        return z, torch.bernoulli(torch.sigmoid(params), generator=generator)
    if logvar is None:
        logvar = torch.full_like(params, 2 * math.log(model.config.gaussian_std))
    noise = torch.randn(params.shape, device=device, generator=generator)
    return z, params + torch.exp(0.5 * logvar) * noise


def sleep_loss(model: VAE, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The sleep phase's loss, -mean log q(z|x) over n dreamed pairs (x, z); only the encoder has a gradient."""
    z, x = dream(model, n, generator)
    mu, logvar = model.encode(x)
    return -log_normal(z, mu, logvar).mean()


def _descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params, penalty: Penalty = None) -> bool:
    """One step down `loss` (plus the weight-decay prior on `params`, the phase's own); False, and no step,
    when it is not finite."""
    if penalty is not None:
        loss = loss + penalty(params)
    if not torch.isfinite(loss):
        return False
    optimizer.zero_grad(set_to_none=True)  # None, not zero: the other phase's parameters are skipped
    loss.backward()
    optimizer.step()
    return True


def wake_update(model: VAE, optimizer: torch.optim.Optimizer, x: torch.Tensor, eps: torch.Tensor, *,
                estimator: str = "B", penalty: Penalty = None) -> ELBOParts | None:
    """One wake update of the decoder; the minibatch's bound before it, or None when the loss is not finite."""
    loss, parts = wake_loss(model, x, eps, estimator)
    return parts if _descend(optimizer, loss, model.decoder.parameters(), penalty) else None


def sleep_update(model: VAE, optimizer: torch.optim.Optimizer, n: int, generator: torch.Generator | None = None, *,
                 penalty: Penalty = None) -> bool:
    """One sleep update of the encoder on n dreams; False (and no update) when the loss is not finite."""
    return _descend(optimizer, sleep_loss(model, n, generator), model.encoder.parameters(), penalty)


def wake_sleep_update(model: VAE, optimizer: torch.optim.Optimizer, x: torch.Tensor, eps: torch.Tensor,
                      generator: torch.Generator | None = None, *, estimator: str = "B",
                      penalty: Penalty = None) -> ELBOParts | None:
    """One wake-sleep step on the minibatch x: wake, then sleep on as many dreams as x has images (the sleep
    phase dreams with the decoder the wake phase just moved). The bound's parts, or None if a loss diverged."""
    parts = wake_update(model, optimizer, x, eps, estimator=estimator, penalty=penalty)
    if parts is None or not sleep_update(model, optimizer, x.shape[0], generator, penalty=penalty):
        return None
    return parts
