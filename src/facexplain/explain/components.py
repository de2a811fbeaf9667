"""Component comparison: which facial components drive the verdict, in an examiner's words.

The first paper's deep difference analysis at the scale of a facial component: each component
(``types.COMPONENTS``; masks from the 68 landmarks of each face, ``datasets.face_components``)
is hidden in both faces and the similarity recomputed; Δ_c = s(hidden) − s(clean) > 0 means
the faces look more alike without it, i.e. they differ there. The fill is shape-aware: the
component is inpainted from the skin around it (a normalised convolution: the blurred face
outside the mask divided by the blurred outside weight), feathered at the mask's edge, so no
new edge or colour is added that the network could react to.

Variants (``VARIANTS``): "hide" (above); "swap": face A's component warped onto B (a similarity
fit of the component's landmarks) and B's onto A, feathered in; the score is the mean gain in
similarity of the two swaps (a differing component, made the same, raises the similarity);
"hide+swap": the mean of both. The default is picked by a planted game on LFW folds 1-5 only
(``bench/component_variants.py``, docs/results/component-variants.json; folds 6-10 are the
held-out game's): on 32 planted pairs of sface, top-1 0.69 (hide), 0.72 (swap), 0.75
(hide+swap), top-2 0.75 / 0.81 / 0.88; hide+swap also had the fewest genuine pairs with a
false finding. Its cost, landmarks and the assessability check included, was 0.22-0.37 of
pairwise occlusion at (16, 8) on the same pairs (all three variants, measured in one process),
so the best of the game is affordable. Swapping alone misses what a look-alike's component
shares with the other face; hiding alone misses what the network reads from the component's
context; their mean is steadier than either.

Each score is compared with its own Θ_c (``component_theta``): above it the component
"differs", below it is "consistent"; components are ranked by score / Θ_c (a large component
moves the similarity more for every pair, so raw Δ would rank the cheeks first on any pair).
A component that either photo's assessability check flags is "not assessable" with the
reason, and is never scored. Without a stored Θ_c (a user's model), the score is kept, Θ_c is
None and the finding is "not assessable" with the reason "not calibrated".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from facexplain.align.landmarks68 import Landmarks68Net
from facexplain.align.templates import Template
from facexplain.datasets.component_assess import COMPONENT_POINTS, assess_components
from facexplain.datasets.face_components import component_masks
from facexplain.datasets.face_regions import eye_distance
from facexplain.errors import InvalidArgument
from facexplain.explain.base import Explainer, ExplanationMaps
from facexplain.explain.component_theta import ComponentTheta
from facexplain.explain.fills import gaussian_blur
from facexplain.explain.scorer import PairScorer, clean_score
from facexplain.progress import check_in
from facexplain.scoring import cosine
from facexplain.types import COMPONENTS, ComponentFinding, MethodDetails, PairScore

VARIANTS = ("hide", "swap", "hide+swap")
DEFAULT_VARIANT = "hide+swap"
INPAINT_SIGMA = 0.35  # eye distances: how far the surrounding skin is drawn from
FEATHER = 0.05  # eye distances: the soft edge of the hidden or swapped component
NOT_CALIBRATED = ("not calibrated: no Θ_c is stored for these weights (run `facexplain "
                  "benchmark component-theta --backbone NAME --write`)")
Landmarker = Callable[[torch.Tensor], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class ComponentDetails(MethodDetails):
    """The findings (rank 1 first, not-assessable last) and how they were computed."""

    components: tuple[ComponentFinding, ...] = ()
    variant: str = DEFAULT_VARIANT
    population: str | None = None  # Θ_c's population (None: not calibrated)
    n_forward: int = 0


def _soft(mask: np.ndarray, sigma: float) -> torch.Tensor:
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    if sigma > 0:
        m = gaussian_blur(m, sigma).clamp(0, 1)
        m = torch.maximum(m, torch.from_numpy(mask.astype(np.float32))[None, None])
    return m[0]


def inpaint(face: torch.Tensor, mask: np.ndarray, sigma: float) -> torch.Tensor:
    """(3, H, W) ``face`` with ``mask``'s pixels drawn from the skin around them."""
    keep = torch.from_numpy((~mask).astype(np.float32))[None, None]
    num = gaussian_blur(face[None] * keep, sigma)
    den = gaussian_blur(keep, sigma).clamp_min(1e-3)
    filled = num / den
    far = den < 0.02  # deep inside a large component: fall back to a wide blur of the face
    if bool(far.any()):
        wide = gaussian_blur(face[None], 3 * sigma)
        filled = torch.where(far.expand_as(filled), wide, filled)
    return filled[0]


def _warp_component(donor: torch.Tensor, donor_pts: np.ndarray, target_pts: np.ndarray
                    ) -> torch.Tensor:
    from facexplain.datasets.blend import align_donor

    return torch.from_numpy(align_donor(donor.numpy(), donor_pts, target_pts))


class ComponentComparison(Explainer):
    """Scores, Θ_c and findings for the seven components of a pair (see module docstring)."""

    name = "components"

    def __init__(self, score_fn: PairScore, landmarker: Landmarker,
                 theta: ComponentTheta | None, variant: str = DEFAULT_VARIANT,
                 assess: bool = True, template: Template | None = None) -> None:
        super().__init__(score_fn)
        if variant not in VARIANTS:
            raise InvalidArgument(f"unknown component variant '{variant}'; valid: "
                                  f"{', '.join(VARIANTS)}")
        self.landmarker = landmarker
        self.theta = theta
        self.variant = variant
        self.assess = assess
        self.template = template  # where the alignment put the detector's five points

    def _scores(self, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> np.ndarray:
        a = torch.stack([p[0] for p in pairs])
        b = torch.stack([p[1] for p in pairs])
        with torch.no_grad():
            return self.score_fn(a, b).reshape(-1).double().numpy()

    def _one_side(self, x: torch.Tensor, changed: list[torch.Tensor], side: int) -> np.ndarray:
        """Scores of pairs in which only face ``side`` changed: a backbone's scorer embeds the
        unchanged face once (its clean embedding), a bare pair score gets whole pairs."""
        if isinstance(self.score_fn, PairScorer):
            emb = self.score_fn.embed_pair(x)
            check_in()
            with torch.no_grad():
                new = self.score_fn.model(torch.stack(changed))
            other = emb[1 - side:2 - side].expand_as(new)
            return cosine(new, other).reshape(-1).double().numpy()
        fixed = x[1 - side]
        pairs = [(c, fixed) if side == 0 else (fixed, c) for c in changed]
        return self._scores(pairs)

    def raw_scores(self, pair: torch.Tensor, marks: np.ndarray,
                   names: Sequence[str] = COMPONENTS) -> tuple[dict[str, float], int]:
        """Δ per component for ``variant`` (before Θ_c), and the pairs evaluated."""
        x = pair.detach().float()
        size = int(x.shape[-1])
        base = clean_score(self.score_fn, x)
        masks = [component_masks(m, size) for m in marks]
        units = [eye_distance(m) for m in marks]
        out: dict[str, list[float]] = {c: [] for c in names}
        evaluated = 0
        if self.variant in ("hide", "hide+swap"):
            hidden = []
            for c in names:
                faces = []
                for f in (0, 1):
                    soft = _soft(masks[f][c], FEATHER * units[f])
                    filled = inpaint(x[f], masks[f][c], INPAINT_SIGMA * units[f])
                    faces.append(x[f] * (1 - soft) + filled * soft)
                hidden.append((faces[0], faces[1]))
            for c, s in zip(names, self._scores(hidden), strict=True):
                out[c].append(float(s) - base)
            evaluated += len(hidden)
        if self.variant in ("swap", "hide+swap"):
            new_b, new_a = [], []
            for c in names:
                pts = list(COMPONENT_POINTS[c])
                b_gets_a = _warp_component(x[0], marks[0][pts], marks[1][pts])
                a_gets_b = _warp_component(x[1], marks[1][pts], marks[0][pts])
                sb = _soft(masks[1][c], FEATHER * units[1])
                sa = _soft(masks[0][c], FEATHER * units[0])
                new_b.append(x[1] * (1 - sb) + b_gets_a * sb)
                new_a.append(x[0] * (1 - sa) + a_gets_b * sa)
            gain = (self._one_side(x, new_b, 1) + self._one_side(x, new_a, 0)) / 2 - base
            for c, g in zip(names, gain, strict=True):
                out[c].append(float(g))
            evaluated += 2 * len(names)
        return {c: float(np.mean(v)) for c, v in out.items()}, evaluated

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        if pair.ndim != 4 or pair.shape[:2] != (2, 3) or pair.shape[2] != pair.shape[3]:
            raise InvalidArgument(f"pair must be a (2, 3, S, S) tensor, got {tuple(pair.shape)}")
        start = time.perf_counter()
        x = pair.detach().float()
        marks = self.landmarker(x)
        hidden = self._not_assessable(x, marks) if self.assess else {}
        scored = [c for c in COMPONENTS if c not in hidden]
        raw, evaluated = self.raw_scores(x, marks, scored) if scored else ({}, 0)
        thetas = self.theta.values if self.theta is not None else {}
        findings = rank_findings(raw, thetas, hidden)
        size = int(x.shape[-1])
        delta = torch.zeros(2, size, size)
        for f in (0, 1):
            masks = component_masks(marks[f], size)
            for c, v in raw.items():
                delta[f][torch.from_numpy(masks[c])] = float(v)
        details = ComponentDetails(
            components=findings, variant=self.variant,
            population=self.theta.population if self.theta is not None else None,
            n_forward=evaluated, seconds=time.perf_counter() - start)
        return ExplanationMaps(self.name, {"delta": delta}, clean_score(self.score_fn, x),
                               details)

    def _not_assessable(self, x: torch.Tensor, marks: np.ndarray) -> dict[str, str]:
        """Either photo's reasons, naming the photo ("photo A: out of the crop")."""
        reasons: dict[str, list[str]] = {}
        expected = None
        if self.template is not None:
            expected = self.template.as_array() * (x.shape[-1] / self.template.size)
        for f, label in ((0, "A"), (1, "B")):
            crop = x[f].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
            for c, why in assess_components(crop, marks[f], expected=expected).items():
                reasons.setdefault(c, []).append(f"photo {label}: {why}")
        return {c: "; ".join(v) for c, v in reasons.items()}


def rank_findings(raw: dict[str, float], thetas: dict[str, float],
                  hidden: dict[str, str]) -> tuple[ComponentFinding, ...]:
    """Findings ranked by score / Θ_c (raw score without Θ_c), not-assessable ones last."""
    def key(c: str) -> float:
        t = thetas.get(c)
        return raw[c] / t if t else raw[c]

    rows = []
    for rank, c in enumerate(sorted(raw, key=key, reverse=True), start=1):
        t = thetas.get(c)
        if t is None:
            rows.append(ComponentFinding(c, raw[c], None, "not assessable", rank,
                                         NOT_CALIBRATED))
        else:
            rows.append(ComponentFinding(c, raw[c], t, "differs" if raw[c] > t
                                         else "consistent", rank))
    for c in COMPONENTS:
        if c in hidden:
            rows.append(ComponentFinding(c, None, thetas.get(c), "not assessable", None,
                                         hidden[c]))
    return tuple(rows)


def landmarks_of(net: Landmarks68Net) -> Landmarker:
    """A landmarker from face-api's 68-point net (``align.landmarks68``)."""
    def run(x: torch.Tensor) -> np.ndarray:
        from facexplain.align.landmarks68 import landmarks68

        return landmarks68(x, net).numpy().astype(np.float64)

    return run


def weights_key(score_fn: PairScore) -> str | None:
    """The fingerprint Θ_c is stored under (None for a bare pair score)."""
    return score_fn.fingerprint() if isinstance(score_fn, PairScorer) else None
