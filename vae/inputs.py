"""One image of the user's own (a drawing or an uploaded file) as the model's input, and how typical it is.

`read_image` turns uploaded bytes (PNG, JPEG, or a NumPy .npy array) into pixels, never running
anything from the file; `prepare_input` applies MNIST's own preprocessing (LeCun et al.: the ink
size-normalised into a 20x20 box keeping its aspect ratio, anti-aliased, then centred by its centre
of mass in the 28x28 field), or, for other image shapes, fits the ink into the whole frame.
`ood_score` compares the input's importance-weighted log-likelihood with that of test images.
Every refusal is an `InputError` of one sentence.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from .data.images import ImageError, decode_image, luma
from .metrics import as_tensor
from .model import VAE, iw_log_likelihood

DIGIT_SETS = ("mnist-5k", "mnist", "digits")  # what the canvas and MNIST's preprocessing are made for
MAX_BYTES = 10 * 2**20  # one image: a phone photo fits, a video does not
MAX_SIDE = 4096  # pixels; checked before a PNG or JPEG is decoded (decompression bombs)
MNIST_SHAPE = (28, 28)
MNIST_BOX = 20  # MNIST digits were size-normalised into 20x20 ...
MNIST_CENTRE = (14.0, 14.0)  # ... and centred so their centre of mass sits here (measured on mnist-5k: 14.0, 14.0)
MIN_CONTRAST = 0.1  # ink must differ from the background by a tenth of the range, else nothing was drawn
INK_THRESHOLD = 0.2  # the bounding box holds the pixels at least this dark (of the darkest), ignoring faint specks
_NPY_MAGIC, _PNG_MAGIC, _JPEG_MAGIC = b"\x93NUMPY", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


class InputError(ValueError):
    """A drawing or file that cannot be used; str(err) is one sentence saying why."""


# -- reading a file ------------------------------------------------------------------------------
def read_image(data: bytes, name: str) -> np.ndarray:
    """Pixels of an uploaded PNG, JPEG or .npy as float32 in [0, 1]: [H, W] grey, or [H, W, C] colour."""
    if len(data) > MAX_BYTES:
        raise InputError(f"{name} is {len(data) / 2**20:.1f} MB, over the {MAX_BYTES // 2**20} MB limit for one image.")
    if data.startswith(_NPY_MAGIC):
        return _read_npy(data, name)
    if data.startswith(_PNG_MAGIC) or data.startswith(_JPEG_MAGIC):
        return _read_picture(data, name)
    raise InputError(f"{name} is not a PNG, JPEG or .npy file; upload one of those.")


def _check_npy_header(data: bytes, name: str) -> None:
    """The header's shape and dtype must describe exactly the bytes that follow: np.load would otherwise
    allocate whatever size a crafted header claims before reading a single value."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        shape, _, dtype = (np.lib.format.read_array_header_1_0(stream) if version == (1, 0)
                           else np.lib.format.read_array_header_2_0(stream))
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{name} is not a readable NumPy file ({err}).") from err
    if dtype.hasobject:
        return  # np.load below refuses it, with the sentence about pickles
    if len(shape) > 3 or any(n > MAX_SIDE for n in shape[:2]):
        raise InputError(f"{name} has shape {shape}; expected one image, at most {MAX_SIDE} pixels on a side.")
    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(data) - stream.tell():
        raise InputError(f"{name} is cut short or padded: its header does not match its size.")


def _read_npy(data: bytes, name: str) -> np.ndarray:
    _check_npy_header(data, name)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)  # a pickle could run code: refused, never loaded
    except ValueError as err:
        if "pickle" in str(err):
            raise InputError(f"{name} holds pickled Python objects, which are never loaded because unpickling "
                             "can run code; save a plain numeric array instead.") from err
        raise InputError(f"{name} is not a readable NumPy file ({err}).") from err
    except (OSError, EOFError) as err:
        raise InputError(f"{name} is not a readable NumPy file ({err}).") from err
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} has dtype {arr.dtype}; expected numbers (uint8 0-255, or floats in [0, 1]).")
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]  # one image saved as a stack of one
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))):
        raise InputError(f"{name} has shape {arr.shape}; expected one image shaped (H, W), (H, W, 3) or (H, W, 4).")
    if max(arr.shape[:2]) > MAX_SIDE or min(arr.shape[:2]) < 1:
        raise InputError(f"{name} is {arr.shape[1]}x{arr.shape[0]} pixels; give between 1 and {MAX_SIDE} on a side.")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255)
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values.")
    if arr.min() < 0 or arr.max() > 1:
        raise InputError(f"{name} holds values from {arr.min():g} to {arr.max():g}; "
                         "expected uint8 0-255 or floats in [0, 1].")
    return arr


def _read_picture(data: bytes, name: str) -> np.ndarray:
    try:
        return decode_image(data, name, max_side=MAX_SIDE, keep_alpha=True, upright=True).pixels
    except ImageError as err:
        raise InputError(str(err)) from err


# -- MNIST's preprocessing -----------------------------------------------------------------------
def ink(image: np.ndarray, what: str = "the drawing") -> np.ndarray:
    """Light ink on a black background, [H, W] in [0, 1], whatever the image's colours or polarity.

    Transparency, where an image has it, marks the ink (a stroke on a transparent sheet); otherwise the
    grey level does, and the border's typical level is taken as the paper: dark-on-light is inverted.
    """
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[2] == 4 and image[..., 3].min() < 0.99:
        grey = image[..., 3]
    elif image.ndim == 3 and image.shape[2] >= 3:
        grey = luma(image)
    elif image.ndim == 3:
        grey = image[..., 0]
    else:
        grey = image
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    if paper > 0.5:  # dark ink on light paper: MNIST is the other way round
        grey, paper = 1.0 - grey, 1.0 - paper
    contrast = float(grey.max()) - paper
    if contrast < MIN_CONTRAST:
        raise InputError(f"{what.capitalize()} is empty: draw a digit, or give an image with visible strokes.")
    return np.clip((grey - paper) / contrast, 0.0, 1.0).astype(np.float32)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image
    # Bilinear in PIL widens its kernel when shrinking, so a 280-pixel stroke is averaged, not sampled
    # (MNIST's grey levels come from the same kind of anti-aliasing).
    resized = Image.fromarray(np.ascontiguousarray(image, np.float32), mode="F").resize((width, height), Image.BILINEAR)
    return np.clip(np.asarray(resized, np.float32), 0.0, 1.0)


def _fit(crop: np.ndarray, box_h: int, box_w: int) -> np.ndarray:
    """Scale the crop so that it just fits a box_h x box_w box, keeping its aspect ratio."""
    scale = min(box_h / crop.shape[0], box_w / crop.shape[1])
    h = max(1, min(box_h, round(crop.shape[0] * scale)))
    w = max(1, min(box_w, round(crop.shape[1] * scale)))
    fitted = _resize(crop, h, w)
    peak = fitted.max()
    return fitted / peak if peak > 0 else fitted  # MNIST strokes reach full intensity


def _place(small: np.ndarray, shape: tuple[int, int], centre: tuple[float, float]) -> np.ndarray:
    """Paste `small` into a blank frame so that its centre of mass lands on `centre` (never cut off)."""
    rows, cols = np.indices(small.shape, dtype=np.float64)
    mass = small.sum()
    cy, cx = (rows * small).sum() / mass, (cols * small).sum() / mass
    top = int(np.clip(round(centre[0] - cy), 0, shape[0] - small.shape[0]))
    left = int(np.clip(round(centre[1] - cx), 0, shape[1] - small.shape[1]))
    out = np.zeros(shape, np.float32)
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return out


def prepare_input(image: np.ndarray, image_shape, what: str = "the drawing") -> np.ndarray:
    """The model's input [H, W] in [0, 1] from a drawing or picture of any size and polarity.

    28x28 models get MNIST's preprocessing: crop to the ink, fit into 20x20 keeping the aspect ratio,
    centre by centre of mass in 28x28. Other shapes (e.g. scikit-learn's 8x8 digits, which fill their
    frame) get the ink fitted into the whole frame and centred the same way.
    """
    shape = (int(image_shape[0]), int(image_shape[1]))
    strokes = ink(image, what)
    rows = np.flatnonzero(strokes.max(1) >= INK_THRESHOLD)
    cols = np.flatnonzero(strokes.max(0) >= INK_THRESHOLD)
    crop = strokes[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    if shape == MNIST_SHAPE:
        return _place(_fit(crop, MNIST_BOX, MNIST_BOX), shape, MNIST_CENTRE)
    return _place(_fit(crop, *shape), shape, ((shape[0] - 1) / 2, (shape[1] - 1) / 2))


# -- where the input lands in the latent space -----------------------------------------------------
def posterior_ellipse(centre_2d: np.ndarray, jacobian: np.ndarray, logvar: np.ndarray, *,
                      n_std: float = 1.0, n_points: int = 60) -> np.ndarray:
    """The n_std contour of q(z|x) = N(mu, diag sigma^2) seen through a linear 2-D map with `jacobian`
    [2, D] (the identity for a 2-D latent, the PCA axes otherwise): its covariance is J diag(sigma^2) J^T.
    Returns the closed outline [n_points, 2]."""
    cov = jacobian @ np.diag(np.exp(np.asarray(logvar, np.float64))) @ jacobian.T
    values, vectors = np.linalg.eigh(cov)
    t = np.linspace(0.0, 2 * np.pi, n_points)
    circle = np.stack([np.cos(t), np.sin(t)])
    outline = vectors @ (n_std * np.sqrt(np.clip(values, 0, None))[:, None] * circle)
    return (np.asarray(centre_2d, np.float64)[:, None] + outline).T.astype(np.float32)


def map_with_input(map_mu: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coordinates of the map's points [N, 2], the input's mean on that map [2], the map's jacobian [2, D]).

    The map is the latent itself for a 2-D latent, else the PCA the other pages draw (vae.projections'
    `pca_with_path`, fitted on the same means): the input goes through that same projection."""
    from .projections import pca_with_path
    mu = np.asarray(mu, np.float32).reshape(-1)
    d = mu.shape[0]
    # The map is linear, so images of mu + e_i give its columns: this reuses the pages' projection as it is.
    probes = np.vstack([mu[None, :], mu[None, :] + np.eye(d, dtype=np.float32)])
    coords, probed = pca_with_path(np.asarray(map_mu, np.float32), probes)
    centre = probed[0]
    jacobian = (probed[1:] - centre).T.astype(np.float64)
    return coords, centre, jacobian


# -- is it like the training data? -----------------------------------------------------------------
@dataclass(frozen=True)
class OODScore:
    log_likelihood: float  # the input's importance-weighted estimate of log p(x), nats
    k: int  # importance samples, the same for the input and the reference images
    percentile: float  # % of reference images whose estimate is lower than the input's
    n_reference: int
    unusual: bool  # in the lowest 5% of the reference images
    verdict: str  # one plain sentence


@torch.no_grad()
def iw_log_likelihoods(model: VAE, x, k: int, *, seed: int = 0, batch_size: int = 50) -> np.ndarray:
    """Each image's importance-weighted log-likelihood with K samples (Burda et al. 2015), nats [N]."""
    device = next(model.parameters()).device
    x = as_tensor(x, device)
    if x.ndim == 2:
        x = x[None]
    gen = torch.Generator(device=device).manual_seed(seed)
    parts = [iw_log_likelihood(model, x[i:i + batch_size], k, generator=gen).double().cpu()
             for i in range(0, x.shape[0], batch_size)]
    return torch.cat(parts).numpy()


INPUT_REPEATS = 8  # independent IW estimates of one input: its SE from their spread (7 degrees of freedom)


def input_log_likelihood(model: VAE, x, k: int, *, seed: int = 0, repeats: int = INPUT_REPEATS) -> tuple[float, float]:
    """One image's IW log-likelihood with K samples and its Monte Carlo standard error: the mean of `repeats`
    independent estimates (each the same bound, so the mean ranks against the test images' single ones)
    and their spread / sqrt(repeats). One image has no test set to average its noise over, and its
    weights can be heavy-tailed (an unusual drawing), so it is repeated, not split: 8 x K decodes of
    one image take milliseconds."""
    x = as_tensor(x)
    if x.ndim == 2:
        x = x[None]
    values = iw_log_likelihoods(model, x[:1].expand(repeats, *x.shape[1:]), k, seed=seed)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(repeats))


def verdict(log_likelihood: float, reference: np.ndarray, k: int) -> OODScore:
    """Where one estimate falls among the reference images' estimates (the same K), in plain words."""
    reference = np.asarray(reference, np.float64)
    if reference.size == 0:
        raise InputError("There are no reference images to compare the input with.")
    below = 100.0 * float(np.mean(reference < log_likelihood))
    if below < 1.0:
        words = "lower than 99% of test images: probably unlike the training data"
    elif below < 5.0:
        words = "lower than 95% of test images: unusual for this model"
    elif below > 99.0:  # Nalisnick et al. (2019): a very high likelihood can be odd too (nearly blank images)
        words = ("higher than 99% of test images: simpler than nearly all of them "
                 "(a very high likelihood fits a thin 1, or a nearly blank image)")
    else:
        words = f"higher than {below:.0f}% of test images: typical of the training data"
    return OODScore(log_likelihood=float(log_likelihood), k=int(k), percentile=below,
                    n_reference=int(reference.size), unusual=below < 5.0, verdict=words)


def ood_score(model: VAE, x, reference_x, k: int, *, seed: int = 0) -> OODScore:
    """The input's IW log-likelihood and its percentile among the reference images' (a few hundred test
    images, the same K and seed). A low value suggests the input is unlike the training data."""
    own = iw_log_likelihoods(model, x, k, seed=seed)
    return verdict(float(own[0]), iw_log_likelihoods(model, reference_x, k, seed=seed), k)


def reference_images(x_test: np.ndarray, n: int) -> np.ndarray:
    """n test images spread evenly over the test split (it is stored class by class in some sets)."""
    x_test = np.asarray(x_test)
    index = np.unique(np.linspace(0, len(x_test) - 1, min(n, len(x_test))).astype(int))
    return x_test[index]
