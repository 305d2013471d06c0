"""Did the campaign work? Conversion of contacted vs held-out contacts, and the uplift.

The uplift is the difference of two independent proportions, contacted minus held out.
Its 95% interval is Newcombe's hybrid score interval (method 10 in Newcombe 1998,
"Interval estimation for the difference between independent proportions", Statistics in
Medicine 17:873–890), built from the Wilson score interval of each arm. Unlike the
textbook Wald interval it stays inside [-1, 1], does not collapse to a point when an arm
has no conversions, and keeps close to its nominal 95% coverage with the small control
groups a small shop has.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

Z_95 = 1.959963984540054  # the 97.5% quantile of the standard normal distribution

# Below these, the interval is too wide to say anything a shop could act on.
MIN_PER_ARM = 30
MIN_CONVERSIONS = 5


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``successes / trials``."""
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}, not {successes}")
    z2 = z * z
    centre = (successes + z2 / 2) / (trials + z2)
    half = z / (trials + z2) * math.sqrt(successes * (trials - successes) / trials + z2 / 4)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(
    x1: int, n1: int, x2: int, n2: int, z: float = Z_95
) -> tuple[float, float, float]:
    """``x1/n1 − x2/n2`` and Newcombe's hybrid score interval: (difference, low, high)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, max(-1.0, low), min(1.0, high)


@dataclass(frozen=True)
class Conversion:
    """Contacted vs held-out conversion of one campaign, and what it means.

    ``verdict`` is one of: ``no_control`` (nobody was held out, so nothing to compare
    with), ``too_small`` (fewer than 30 in an arm or fewer than 5 conversions in all: the
    interval would be too wide to tell), ``better`` (the whole interval is above zero),
    ``worse`` (the whole interval is below zero) or ``unclear`` (the interval spans zero).
    """

    contacted: int
    contacted_converted: int
    held_out: int
    held_out_converted: int
    contacted_rate: float | None
    holdout_rate: float | None
    uplift: float | None
    ci_low: float | None
    ci_high: float | None
    relative_uplift: float | None
    incremental_conversions: float | None
    cost: float | None
    cost_per_incremental_conversion: float | None
    too_small: bool
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    contacted: int,
    contacted_converted: int,
    held_out: int,
    held_out_converted: int,
    *,
    cost: float | None = None,
) -> Conversion:
    """Compare the two arms; ``cost`` is what the contacted arm's deliveries cost in total."""
    contacted_rate = contacted_converted / contacted if contacted else None
    holdout_rate = held_out_converted / held_out if held_out else None
    uplift = ci_low = ci_high = relative = incremental = per_incremental = None
    if contacted and held_out:
        uplift, ci_low, ci_high = difference_interval(
            contacted_converted, contacted, held_out_converted, held_out
        )
        assert holdout_rate is not None
        relative = uplift / holdout_rate if holdout_rate > 0 else None
        incremental = uplift * contacted
        if cost is not None and incremental > 0:
            per_incremental = cost / incremental
    too_small = (
        min(contacted, held_out) < MIN_PER_ARM
        or contacted_converted + held_out_converted < MIN_CONVERSIONS
    )
    if not held_out or not contacted:
        verdict = "no_control" if not held_out else "too_small"
    elif too_small:
        verdict = "too_small"
    elif ci_low is not None and ci_low > 0:
        verdict = "better"
    elif ci_high is not None and ci_high < 0:
        verdict = "worse"
    else:
        verdict = "unclear"
    return Conversion(
        contacted=contacted,
        contacted_converted=contacted_converted,
        held_out=held_out,
        held_out_converted=held_out_converted,
        contacted_rate=contacted_rate,
        holdout_rate=holdout_rate,
        uplift=uplift,
        ci_low=ci_low,
        ci_high=ci_high,
        relative_uplift=relative,
        incremental_conversions=incremental,
        cost=cost,
        cost_per_incremental_conversion=per_incremental,
        too_small=too_small,
        verdict=verdict,
    )


# the one wording of each verdict, for the text, the page and its chart: what it says, and
# what to do about it where there is something to do
VERDICTS = {
    "no_control": ("no control group", "set `holdout` in the campaign to measure its effect"),
    "too_small": ("too few contacts to tell yet", ""),
    "better": ("contacted customers converted more: the campaign works", ""),
    "worse": ("contacted customers converted less", ""),
    "unclear": ("no clear difference yet", ""),
}


def explain(verdict: str) -> str:
    """One plain sentence for a verdict (the report's ``summary``)."""
    label, advice = VERDICTS[verdict]
    return f"{label} ({advice})" if advice else label


def verdict_label(verdict: str) -> str:
    """The verdict alone, as a chart labels it: :func:`explain` without the advice."""
    return VERDICTS[verdict][0]
