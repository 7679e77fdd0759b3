"""What the textbook says about the options, as data: the optimizer table's stars and the schedules' claims.

A claim says how one option compares with another on one aspect, and which measured outcomes
agree with it: "better" (faster, for speed), "worse" or "same". The optimizer table's stars
become claims against the study's reference option (`star_claims`); the schedule section's
sentences are claims as written (`SCHEDULE_CLAIMS`).
"""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZER_SOURCE = 'Géron, Hands-On Machine Learning, 3rd ed., ch. 11, Table 11-2 "Optimizer comparison"'
SCHEDULE_SOURCE = (
    'Géron, Hands-On Machine Learning, 3rd ed., ch. 11, "Learning Rate Scheduling" (reporting Senior et al. 2013, '
    "momentum optimization on speech recognition)"
)

BETTER, WORSE, SAME = "better", "worse", "same"  # an option against another; for speed, better is faster
SPEED, QUALITY = "speed", "quality"


@dataclass(frozen=True)
class Stars:
    """A rating of one to three stars; "** or ***" is low 2, high 3."""

    low: int
    high: int | None = None
    note: str = ""

    @property
    def top(self) -> int:
        return self.low if self.high is None else self.high

    def text(self) -> str:
        stars = "★" * self.low if self.top == self.low else f"{'★' * self.low} or {'★' * self.top}"
        return f"{stars} ({self.note})" if self.note else stars

    def against(self, other: Stars) -> frozenset[str]:
        """The outcomes that agree with rating an option `self` and another `other`."""
        if (self.low, self.top) == (other.low, other.top):
            return frozenset({SAME})
        if self.low > other.top:
            return frozenset({BETTER})
        if self.top < other.low:
            return frozenset({WORSE})
        # Overlapping ranges ("***" against "** or ***"): the same, or better on the side that reaches further.
        outcomes = {SAME}
        if self.low >= other.low and self.top >= other.top:
            outcomes.add(BETTER)
        if self.low <= other.low and self.top <= other.top:
            outcomes.add(WORSE)
        return frozenset(outcomes)


# Table 11-2: (convergence speed, convergence quality). The table lists SGD, momentum, Nesterov,
# AdaGrad, RMSProp, Adam, AdaMax, Nadam and AdamW with these stars.
OPTIMIZER_STARS: dict[str, tuple[Stars, Stars]] = {
    "sgd": (Stars(1), Stars(3)),
    "momentum": (Stars(2), Stars(3)),
    "nesterov": (Stars(2), Stars(3)),
    "adagrad": (Stars(3), Stars(1, note="stops too early")),
    "rmsprop": (Stars(3), Stars(2, 3)),
    "adam": (Stars(3), Stars(2, 3)),
    "adamax": (Stars(3), Stars(2, 3)),
    "nadam": (Stars(3), Stars(2, 3)),
    "adamw": (Stars(3), Stars(2, 3)),
}


@dataclass(frozen=True)
class Claim:
    """The book's claim that an option compares with `versus` on `aspect` in one of `agree` ways."""

    aspect: str  # SPEED or QUALITY
    versus: str  # the other option's name
    agree: frozenset[str]  # the measured outcomes (BETTER, WORSE, SAME) that agree with the book
    text: str  # the claim in words, for the report


def star_claims(name: str, reference: str) -> tuple[Claim, ...]:
    """The optimizer table's stars as claims of `name` against `reference` (none for the reference itself)."""
    if name == reference:
        return ()
    claims = []
    for index, aspect in enumerate((SPEED, QUALITY)):
        mine, theirs = OPTIMIZER_STARS[name][index], OPTIMIZER_STARS[reference][index]
        claims.append(Claim(aspect, reference, mine.against(theirs), f"{mine.text()} vs {theirs.text()}"))
    return tuple(claims)


# The schedule section's verdicts: exponential and performance scheduling "performed well" (read
# here as: at least as good as a constant LR), exponential "converged slightly faster" than
# performance scheduling, and 1cycle "seems to perform even better".
SCHEDULE_CLAIMS: dict[str, tuple[Claim, ...]] = {
    "exponential": (
        Claim(QUALITY, "constant", frozenset({BETTER, SAME}), "performs well: at least as good as a constant LR"),
        Claim(SPEED, "performance", frozenset({BETTER, SAME}), "converges slightly faster than performance"),
    ),
    "performance": (
        Claim(QUALITY, "constant", frozenset({BETTER, SAME}), "performs well: at least as good as a constant LR"),
    ),
    "1cycle": (
        Claim(QUALITY, "exponential", frozenset({BETTER}), "better still than exponential"),
        Claim(QUALITY, "performance", frozenset({BETTER}), "better still than performance"),
    ),
}


def claims(kind: str, name: str, reference: str, names: tuple[str, ...]) -> tuple[Claim, ...]:
    """The book's claims about option `name` that this study can test (their other option ran)."""
    found = star_claims(name, reference) if kind == "optimizers" else SCHEDULE_CLAIMS.get(name, ())
    return tuple(claim for claim in found if claim.versus in names)


def book_rating(kind: str, name: str) -> tuple[str, str]:
    """What the report prints as the book's (speed, quality) for `name`."""
    if kind == "optimizers":
        speed, quality = OPTIMIZER_STARS[name]
        return speed.text(), quality.text()
    texts = {
        aspect: [c.text for c in SCHEDULE_CLAIMS.get(name, ()) if c.aspect == aspect] for aspect in (SPEED, QUALITY)
    }
    return "; ".join(texts[SPEED]) or "no claim", "; ".join(texts[QUALITY]) or "no claim"
