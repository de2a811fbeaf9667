"""Simulated participants: a noisy observer with a planted benefit from each help condition.

Why: a real study costs people's time; before spending it, the whole flow (links, two rounds,
storage, analysis) should be shown to recover a known effect. The observer is signal-detection
theory's: for each pair it sees evidence x = ±d'/2 + N(0, 1) (+ when the pair is the same
person) and says "same" when x > 0, so its expected accuracy is exactly Φ(d'/2); the five (or
seven) choices cut x at fixed confidence levels, which gives the ROC of Fig. 10. Each
participant draws a baseline accuracy; with help it becomes baseline + the planted gain.

Catch trials (``study.catch``): an attentive observer gets them right with ``CATCH_ACCURACY``;
a careless participant (``careless``) clicks a choice at random for every pair, catch trials
included, so the screening rule should remove them and only them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import norm

from facexplain.errors import InvalidArgument
from facexplain.study.store import REAL, Participant, open_study

# Confidence cuts on the evidence, highest first; the cut at 0 separates "same" choices from
# the rest (so choices 1-2 of 5 and 1-3 of 7 are exactly the observer's "same" decisions).
CUTS = {5: (1.0, 0.0, -0.4, -1.0), 7: (1.5, 0.7, 0.0, -0.3, -0.8, -1.5)}
CATCH_ACCURACY = 0.999  # the same photo twice, or a woman and a man: attention is enough


@dataclass(frozen=True)
class SimulatedParticipant:
    id: str
    condition: str
    accuracy_before: float  # expected (planted), not measured
    accuracy_after: float
    careless: bool = False  # answers at random (expected 50%), catch trials included


def choice_for(evidence: float, scale: int) -> int:
    return 1 + sum(evidence <= c for c in CUTS[scale])


def d_prime(accuracy: float) -> float:
    return 2.0 * float(norm.ppf(accuracy))


def parse_gains(text: str) -> dict[str, float]:
    """'occlusion=0.08,saliency=0' -> {'occlusion': 0.08, 'saliency': 0.0}."""
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidArgument(f"--gains wants name=number items, got '{item}'") from None
    return out


def plan(who: Participant, gains: Mapping[str, float], base: float, sd: float,
         rng: random.Random, careless: bool = False) -> SimulatedParticipant:
    before = min(max(rng.gauss(base, sd), 0.55), 0.95)
    after = min(max(before + gains.get(who.condition, 0.0), 0.51), 0.99)
    if careless:
        return SimulatedParticipant(who.id, who.condition, 0.5, 0.5, careless=True)
    return SimulatedParticipant(who.id, who.condition, before, after)


def answers_for(who: Participant, sim: SimulatedParticipant, truth: Mapping[int, bool],
                scale: int, rng: random.Random,
                kinds: Mapping[int, str] | None = None) -> list[tuple[int, int, int, int]]:
    """(phase, pair, choice, ms) for both rounds, in the participant's own orders."""
    out = []
    catch_half = d_prime(CATCH_ACCURACY) / 2
    for phase, order, acc in ((1, who.order1, sim.accuracy_before),
                              (2, who.order2, sim.accuracy_after)):
        half = d_prime(acc) / 2
        for pair in order:
            h = half if kinds is None or kinds[pair] == REAL else catch_half
            x = (h if truth[pair] else -h) + rng.gauss(0.0, 1.0)
            ms = int(1000 * math.exp(rng.gauss(math.log(3.0), 0.5)))
            choice = rng.randint(1, scale) if sim.careless else choice_for(x, scale)
            out.append((phase, pair, choice, ms))
    return out


def simulate_study(folder: Path, gains: Mapping[str, float], base: float = 0.76,
                   sd: float = 0.05, seed: int = 0, durable: bool = False,
                   log: Callable[[str], None] | None = None,
                   careless: int = 0) -> list[SimulatedParticipant]:
    """Answer every pair twice for every participant of the study, one transaction per
    answer through the same ``record`` the web app uses; ``careless`` participants (drawn by
    the seed) answer at random. ``durable=False`` skips the fsync per answer (a simulation's
    answers are not precious); returns the planted accuracies."""
    if not 0.5 < base < 1.0:
        raise InvalidArgument(f"--base must be between 0.5 and 1, got {base}")
    rng = random.Random(seed)
    planted = []
    with open_study(folder, durable=durable) as store:
        truth = {int(r["idx"]): bool(r["same"]) for r in store.pairs()}
        kinds = store.pair_kinds()
        scale = store.scale
        people = store.participants()
        unknown = set(gains) - {p.condition for p in people}
        if unknown:
            raise InvalidArgument(f"--gains names conditions not in the study: "
                                  f"{', '.join(sorted(unknown))}")
        if not 0 <= careless <= len(people):
            raise InvalidArgument(f"--careless must be 0..{len(people)}, got {careless}")
        random_ones = {p.id for p in random.Random(seed + 7).sample(people, careless)}
        for who in people:
            sim = plan(who, gains, base, sd, rng, who.id in random_ones)
            for phase, pair, choice, ms in answers_for(who, sim, truth, scale, rng, kinds):
                store.record(who, phase, pair, choice, ms)
            planted.append(sim)
            if log is not None:
                log(f"{who.id}: planted {sim.accuracy_before:.3f} -> {sim.accuracy_after:.3f}"
                    + (" (careless)" if sim.careless else ""))
    return planted
