"""Measured speed and quality of each option, its ranks, and whether they agree with the book.

Every comparison is a paired one over the seeds both options ran (`dnnlab.stats`), as the
exercise's verdicts are: a direction is claimed only when the 95% interval excludes "no
difference" and the gap is at least the aspect's `SAME` threshold; the two are called the same
when the whole interval lies within that threshold; otherwise they are not distinguishable.
- Quality: the per-seed difference in validation accuracy of the best epoch; the same within
  `QUALITY_SAME` (1 point, the exercise's same-model gap).
- Speed: the per-seed ratio of epochs to the common target (`results.common_target`); the
  same within `SPEED_SAME` (1.25x either way). Epochs, not seconds: the workers share the cores,
  so a cell's seconds depend on what ran beside it, its epochs do not (the report gives both).
  Only options whose every seed reached the target are compared on speed.
- Rank on an aspect: 1 + the number of options measured better on it. Options that nothing
  separates share a rank; an option not measured on speed has no speed rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dnnlab import stats
from dnnlab.exercise.prose import MIN_ACCURACY_GAP
from dnnlab.study.book import BETTER, QUALITY, SAME, SPEED, WORSE, Claim, book_rating, claims
from dnnlab.study.options import reference, title
from dnnlab.study.results import OptionResults

QUALITY_SAME = MIN_ACCURACY_GAP  # validation accuracy, absolute: the exercise's 1 point
SPEED_SAME = 1.25  # ratio of epochs to the target

UNDECIDED, UNMEASURED = "undecided", "unmeasured"
AGREES, DISAGREES, NOT_DISTINGUISHABLE = "agrees", "disagrees", "not distinguishable"
OUTCOMES = {stats.HIGHER: BETTER, stats.LOWER: WORSE, stats.SAME: SAME, stats.UNDECIDED: UNDECIDED}


@dataclass(frozen=True)
class Comparison:
    """How `option` measured against `versus` on one aspect."""

    aspect: str
    option: str
    versus: str
    outcome: str  # BETTER, WORSE, SAME, UNDECIDED, or UNMEASURED (with `note` saying why)
    verdict: stats.Verdict | None = None
    note: str = ""

    def phrase(self, versus: str) -> str:
        """The measurement and how sure it is, against `versus` (the other option's title), e.g.
        "validation accuracy vs Nadam at +1.2 points (95% CI +0.3 to +2.1, 3 seeds)"."""
        if self.verdict is None:
            return self.note
        if self.aspect == QUALITY:
            return f"validation accuracy vs {versus} at {stats.evidence(self.verdict, unit='points')}"
        return f"epochs to the target vs {versus} at {stats.evidence(self.verdict, unit='×')}"


def compare_quality(mine: OptionResults, theirs: OptionResults) -> Comparison:
    diffs = stats.paired_differences(theirs.by_seed("valid_accuracy"), mine.by_seed("valid_accuracy"))
    if not diffs:
        return Comparison(QUALITY, mine.name, theirs.name, UNMEASURED, note="no seed finished in both")
    verdict = stats.decide(diffs, min_effect=QUALITY_SAME)
    return Comparison(QUALITY, mine.name, theirs.name, OUTCOMES[verdict.direction], verdict)


def compare_speed(mine: OptionResults, theirs: OptionResults, target: float | None) -> Comparison:
    epochs = {o.name: o.epochs_to_target(target) for o in (mine, theirs)}
    common = sorted(set(epochs[mine.name]) & set(epochs[theirs.name]))
    missed = {name: sum(epochs[name][s] is None for s in common) for name in epochs}
    if not common or any(missed.values()):
        why = " and ".join(
            f"{n} of {len(common)} seeds of {name} never reached the target" for name, n in missed.items() if n
        )
        return Comparison(SPEED, mine.name, theirs.name, UNMEASURED, note=why or "no seed finished in both")
    ratios = stats.paired_ratios(epochs[theirs.name], epochs[mine.name])
    verdict = stats.decide(ratios, null=1.0, ratio=True, min_effect=math.log(SPEED_SAME))
    # More epochs (a ratio above 1) is slower: worse.
    outcome = {stats.HIGHER: WORSE, stats.LOWER: BETTER}.get(verdict.direction, OUTCOMES[verdict.direction])
    return Comparison(SPEED, mine.name, theirs.name, outcome, verdict)


def compare(aspect: str, mine: OptionResults, theirs: OptionResults, target: float | None) -> Comparison:
    return compare_speed(mine, theirs, target) if aspect == SPEED else compare_quality(mine, theirs)


def measured_on_speed(option: OptionResults, target: float | None) -> bool:
    hits = option.epochs_to_target(target)
    return bool(hits) and all(hit is not None for hit in hits.values())


def ranks(options: dict[str, OptionResults], aspect: str, target: float | None) -> dict[str, int | None]:
    """1 + how many options measured better than each; None where the aspect was not measured."""
    measured = [o for o in options.values() if o.cells and (aspect == QUALITY or measured_on_speed(o, target))]
    result: dict[str, int | None] = {name: None for name in options}
    for option in measured:
        better = sum(compare(aspect, other, option, target).outcome == BETTER for other in measured if other != option)
        result[option.name] = 1 + better
    return result


def agreement(claim: Claim, measured: Comparison) -> str:
    if measured.outcome in (UNDECIDED, UNMEASURED):
        return NOT_DISTINGUISHABLE
    return AGREES if measured.outcome in claim.agree else DISAGREES


@dataclass(frozen=True)
class Row:
    """One option of the report: the book beside the measurements, and one sentence on their agreement."""

    name: str
    title: str
    book_speed: str
    book_quality: str
    speed_rank: int | None
    quality_rank: int | None
    verdict: str  # AGREES, DISAGREES, NOT_DISTINGUISHABLE, "reference" or "no claim"
    sentence: str


ADJECTIVES = {SPEED: ("faster", "slower", "fast"), QUALITY: ("better", "worse", "good")}
SAME_WITHIN = {SPEED: f"within {SPEED_SAME:g}×", QUALITY: f"within {100 * QUALITY_SAME:g} point"}


def expected_words(claim: Claim, versus: str) -> str:
    """What the book says, e.g. "slower than Nadam" or "at least as good as Constant"."""
    better, worse, plain = ADJECTIVES[claim.aspect]
    if claim.agree == {SAME}:
        return f"as {plain} as {versus}"
    if SAME in claim.agree:
        return f"at least as {plain} as {versus}" if BETTER in claim.agree else f"no {better} than {versus}"
    return f"{better if BETTER in claim.agree else worse} than {versus}"


def measured_words(measured: Comparison, versus: str) -> str:
    """What was measured, e.g. "it was slower, with epochs to the target vs Nadam at 2.41× (95% CI ...)"."""
    if measured.outcome == UNMEASURED:
        return f"it could not be measured: {measured.note}"
    if measured.outcome == UNDECIDED:
        return f"the two could not be told apart, with {measured.phrase(versus)}"
    better, worse, plain = ADJECTIVES[measured.aspect]
    words = {BETTER: better, WORSE: worse, SAME: f"as {plain} ({SAME_WITHIN[measured.aspect]})"}
    return f"it was {words[measured.outcome]}, with {measured.phrase(versus)}"


def row(kind: str, name: str, options: dict[str, OptionResults], target: float | None, ranked: dict) -> Row:
    names = tuple(options)
    ref = reference(kind, names)
    book_speed, book_quality = book_rating(kind, name)
    tested = [
        (claim, compare(claim.aspect, options[name], options[claim.versus], target))
        for claim in claims(kind, name, ref, names)
    ]
    if tested:
        outcomes = {agreement(claim, measured) for claim, measured in tested}
        verdict = DISAGREES if DISAGREES in outcomes else AGREES if outcomes == {AGREES} else NOT_DISTINGUISHABLE
        clauses = [
            f"on {claim.aspect} the book has it {expected_words(claim, title(kind, claim.versus))} ({claim.text}), "
            f"and {measured_words(measured, title(kind, claim.versus))}: {agreement(claim, measured)}"
            for claim, measured in tested
        ]
        sentence = f"{title(kind, name)}: {'; '.join(clauses)}."
    elif name == ref:
        verdict = "reference"
        sentence = f"{title(kind, name)} is the reference: the other rows are measured against it."
    else:
        verdict = "no claim"
        measured = [compare(aspect, options[name], options[ref], target) for aspect in (SPEED, QUALITY)]
        shown = "; ".join(f"on {m.aspect}, {measured_words(m, title(kind, ref))}" for m in measured)
        sentence = f"{title(kind, name)}: the book makes no claim about it; against {title(kind, ref)}, {shown}."
    capped, cells = sum(cell.cap_limited for cell in options[name].cells), len(options[name].cells)
    if capped:
        which = (
            "its one cell was"
            if cells == 1
            else f"all {cells} of its cells were"
            if capped == cells
            else (f"{capped} of its {cells} cells were")
        )
        sentence += (
            f" {which.capitalize()} cap-limited (best epoch within the patience of the epoch cap), so it might have "
            "improved further."
        )
    ranks_of = (ranked[SPEED][name], ranked[QUALITY][name])
    return Row(name, title(kind, name), book_speed, book_quality, *ranks_of, verdict, sentence)


def rows(kind: str, options: dict[str, OptionResults], target: float | None) -> list[Row]:
    """One `Row` per option, in the catalogue's order."""
    ranked = {aspect: ranks(options, aspect, target) for aspect in (SPEED, QUALITY)}
    return [row(kind, name, options, target, ranked) for name in options]
