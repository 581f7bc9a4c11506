"""How many digits a number may show: as many as its standard error allows, and no more.

One rule for every bound the command line and the app print (test ELBO, IW log-likelihood): the
standard error is rounded to one or two significant digits by the Particle Data Group's rule (Review
of Particle Physics, "Rounding": look at its three leading digits; 100-354 keep two significant digits,
355-949 keep one, 950-999 round up to 1000 and keep two), and the value is rounded to the same
decimal place. So -115.8127 with an SE of 0.0412 reads "-115.81 ± 0.04", and with 0.14, "-115.81 ± 0.14".

A number with no standard error at hand (a training curve's points, a run's logged test ELBO) is
shown with FIXED_DECIMALS: one draw of eps per image on a test set of about a thousand images has a
Monte Carlo error of 0.1-0.2 nats, and a minibatch's value a larger one, so a second decimal would
only be noise.
"""
from __future__ import annotations

import math

FIXED_DECIMALS = 1  # nats shown when no standard error is known (see above)


def se_decimals(se: float | None) -> int | None:
    """The decimal place (negative: tens, hundreds...) that an SE rounded by the PDG rule ends at; None when
    the SE is unknown, zero, or not finite (the caller falls back to FIXED_DECIMALS)."""
    if se is None or not math.isfinite(se) or se <= 0:
        return None
    exponent = math.floor(math.log10(se))
    leading = round(se / 10 ** (exponent - 2))  # the three leading digits, 100..1000
    if leading >= 1000:  # 0.09996 rounds to 1000 x 10^(e-2): one decade up
        exponent, leading = exponent + 1, 100
    if leading <= 354:
        significant = 2
    elif leading <= 949:
        significant = 1
    else:  # 950-999 become 1000: two significant digits of the next decade ("0.0096" -> "0.010")
        exponent, significant = exponent + 1, 2
    return significant - 1 - exponent


def _round(value: float, decimals: int) -> float:
    return round(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0, so "-0.00" is never printed


def round_bound(value: float, se: float | None) -> tuple[float, float | None]:
    """(value, se) rounded by the rule above, for JSON; with no usable SE, the value to FIXED_DECIMALS."""
    decimals = se_decimals(se)
    if decimals is None:
        return _round(value, FIXED_DECIMALS), se
    return _round(value, decimals), _round(se, decimals)


def format_bound(value: float, se: float | None = None, unit: str = "") -> str:
    """"-115.81 ± 0.04" (unit appended after a space when given): the value and its SE to the SE's digits;
    without an SE (or a zero one), the value alone to FIXED_DECIMALS."""
    if value is None or not math.isfinite(value):
        text = "n/a"
    else:
        decimals = se_decimals(se)
        shown = FIXED_DECIMALS if decimals is None else decimals
        value, rounded_se = round_bound(value, se)
        places = max(0, shown)
        text = f"{value:.{places}f}" + ("" if decimals is None else f" ± {rounded_se:.{places}f}")
    return f"{text} {unit}" if unit else text
