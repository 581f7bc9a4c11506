"""Teaching notes: short, correct explanations that sit beside the pages, collapsed until asked for.

Equation numbers are those of Kingma & Welling, *Auto-Encoding Variational Bayes* (arXiv:1312.6114).
"""
from __future__ import annotations

from .widgets import explain

ELBO_TERMS = """
For one image x the model maximises the **evidence lower bound** (eq. 3):

  L(θ, φ; x) = −KL(q_φ(z|x) ‖ p(z)) + E_q(z|x)[log p_θ(x|z)]

- **Reconstruction**, E[log p(x|z)]: how well the decoder explains x from codes drawn from the encoder's
  q(z|x). Higher is better; alone it would turn the VAE into an ordinary auto-encoder.
- **KL term**, KL(q(z|x) ‖ p(z)): how far each image's posterior is from the prior N(0, I), in nats.
  It is the price of the information z carries about x, and keeps the latent space filled and smooth, so that
  sampling z from the prior decodes to plausible images. For Gaussians it has the closed form of appendix B,
  used by estimator B (eq. 7, and eq. 10 for this model).

The bound is below log p(x) by exactly KL(q(z|x) ‖ p(z|x)) (eq. 1): the better the encoder approximates the
true posterior, the tighter it is. All figures here are in nats per image; higher (less negative) is better.
"""

REPARAMETERISATION = """
The reconstruction term is an expectation over z ~ q_φ(z|x), and we need its gradient with respect to the
encoder's parameters φ. Sampling z directly is not differentiable in φ. **The reparameterisation trick**
(section 2.4, eq. 4 and its Gaussian case in section 3) writes the sample as a deterministic function of
φ and independent noise:

  z = g_φ(ε, x) = μ_φ(x) + σ_φ(x) ⊙ ε,  with ε ~ N(0, I)

Now the noise does not depend on φ, so E_q[f(z)] = E_ε[f(μ + σ ⊙ ε)] (eq. 5) and backpropagation passes
through μ and σ. The result is the SGVB estimator (eqs. 6-8), whose gradient has far lower variance than the
score-function estimator the paper compares against (section 2.2). The Estimator lab measures such variances.
"""

BETA = """
**β** multiplies the KL term: the objective becomes E[log p(x|z)] − β · KL(q(z|x) ‖ p(z)).
β = 1 is the paper's bound (eq. 3). With β > 1 every nat that z carries about x costs more: the posteriors
stay closer to the prior, more dimensions collapse, reconstructions blur, and the dimensions that stay in use
tend to capture broad, separate factors (the β-VAE of Higgins et al., 2017). With β < 1 the model
reconstructs better but the aggregate posterior can drift from the prior, so samples from the prior look
worse. For β ≠ 1 the training curve is no longer a bound on log p(x); this app always reports the true
ELBO (β = 1) for test images. **KL warm-up** raises β from 0 over the first epochs so that the decoder learns
to use z before the KL term pulls the posteriors to the prior, a common cure for posterior collapse.
"""

ANATOMY = r"""
**The bound** (eq. 3): $\mathcal{L}(x) = -D_{KL}(q_\phi(z|x)\,\|\,p(z)) + \mathbb{E}_{q_\phi(z|x)}[\log p_\theta(x|z)]$,
below $\log p(x)$ by the KL from $q$ to the true posterior (eq. 1).

**The encoder** gives $q_\phi(z|x) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)$ (eq. 9): both depend on $x$ alone,
so "New ε" never moves them. **The reparameterisation** (section 2.4, eq. 10) draws $\epsilon \sim \mathcal{N}(0, I)$
and sets $z = \mu + \sigma \odot \epsilon$: the noise sits outside the encoder, so gradients reach $\mu$ and $\sigma$.
**The decoder** gives $p_\theta(x|z)$, one factor per pixel (appendix C), so $\log p(x|z) = \sum_i \log p(x_i|z)$:
the heat map is that sum before it is taken, dark where the model pays most. **The KL** has appendix B's closed
form, one term per dimension: $\tfrac12(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)$, zero where $q$ is the prior.

**This ε's ELBO** is their difference: estimator B (eq. 7) with $L = 1$. **Estimator A** (eq. 6) samples the KL too,
$\frac1L\sum_l \log p(x, z_l) - \log q(z_l|x)$; **B** keeps it analytic and samples only $\log p(x|z_l)$. Both
see the same $L$ draws here; the spread is one draw's standard deviation, and the estimate's own error is
that over $\sqrt{L}$. **The IW bound** (Burda et al., 2015) averages $K$ weights $p(x, z_k)/q(z_k|x)$ inside the
log: $K = 1$ is the ELBO, and it rises towards $\log p(x)$ with $K$ (8 repeats give its standard error).
"""


def elbo_terms() -> None:
    explain("The ELBO's two terms (eq. 3)", ELBO_TERMS)


def reparameterisation() -> None:
    explain("Why the reparameterisation trick? (section 2.4)", REPARAMETERISATION)


def beta() -> None:
    explain("What β does", BETA)


def anatomy() -> None:
    explain("How the stages add up to the bound", ANATOMY)
