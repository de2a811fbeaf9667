"""Learned binary codes: balanced bits, ITQ's objective, more bits than dims, and a planted
anisotropic example where learned codes verify better than the paper's sign codes."""

from __future__ import annotations

import numpy as np
import pytest

from facexplain.benchmarks.codes import CodeScore, choose
from facexplain.errors import InvalidArgument
from facexplain.metrics.verification import kfold_accuracy
from facexplain.search.binary import hamming, hamming_similarity
from facexplain.search.codes import (
    CodeRecipe,
    encoder_from_arrays,
    fit_encoder,
    itq_rotation,
    random_orthonormal,
)


def planted_faces(n_ids: int, per_id: int, rng: np.random.Generator,
                  noise: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Identities in a 6-d subspace of 32 dims, two of them carrying most of the variance, on
    top of a large shared offset that makes most raw signs constant (as in dlib-resnet)."""
    d = 32
    basis = random_orthonormal(d, 6, rng)
    scale = np.array([4.0, 3.0, 0.6, 0.5, 0.4, 0.3])
    centres = (rng.standard_normal((n_ids, 6)) * scale) @ basis.T
    offset = np.zeros(d)
    offset[:24] = 3.0
    ids = np.repeat(np.arange(n_ids), per_id)
    x = centres[ids] + noise * rng.standard_normal((ids.size, d)) + offset
    return x.astype(np.float32), ids


def pair_accuracy(recipe: CodeRecipe, fit: np.ndarray, x: np.ndarray, ids: np.ndarray,
                  rng: np.random.Generator) -> float:
    enc = fit_encoder(fit, recipe)
    n = 2000
    i = rng.integers(0, len(x), n)
    same = rng.random(n) < 0.5
    j = np.where(same, i ^ 1, rng.integers(0, len(x), n))  # per_id = 2: i ^ 1 is the twin
    same = ids[i] == ids[j]
    sim = hamming_similarity(enc.encode(x[i]), enc.encode(x[j]))
    return kfold_accuracy(sim, same, np.arange(n) % 10).accuracy_mean


def test_learned_codes_beat_sign_codes_on_planted_anisotropic_faces() -> None:
    rng = np.random.default_rng(0)
    fit, _ = planted_faces(500, 1, rng)
    x, ids = planted_faces(1000, 2, rng)
    sign = pair_accuracy(CodeRecipe("sign"), fit, x, ids, np.random.default_rng(1))
    itq = pair_accuracy(CodeRecipe("itq"), fit, x, ids, np.random.default_rng(1))
    wide = pair_accuracy(CodeRecipe("rotation", 128), fit, x, ids, np.random.default_rng(1))
    assert sign < 0.84  # the offset leaves few informative sign bits
    assert itq > sign + 0.06 and wide > sign + 0.06


def test_learned_bits_are_balanced_on_the_fitting_set() -> None:
    rng = np.random.default_rng(2)
    fit, _ = planted_faces(800, 1, rng)
    for recipe in (CodeRecipe("itq", 16), CodeRecipe("itq", 64), CodeRecipe("median")):
        rate = fit_encoder(fit, recipe).encode(fit).bits().mean(axis=0)
        assert np.all(np.abs(rate - 0.5) < 0.1), (recipe, rate)
    assert fit_encoder(fit, CodeRecipe("sign")).encode(fit).bits().mean(axis=0)[:24].min() > 0.9


def test_itq_recovers_a_planted_rotation_of_hypercube_corners() -> None:
    """Points near the corners of a rotated cube: ITQ's rotation undoes it, so the codes are
    the planted corners and the quantisation error falls to the noise level."""
    rng = np.random.default_rng(3)
    corners = np.where(rng.random((600, 8)) < 0.5, -1.0, 1.0)
    planted = random_orthonormal(8, 8, rng).astype(np.float64)
    v = (corners + 0.05 * rng.standard_normal(corners.shape)) @ planted
    rot = itq_rotation(v, 50, np.random.default_rng(9))
    assert np.allclose(rot @ rot.T, np.eye(8), atol=1e-8)
    p = v @ rot
    # the recovered axes are the planted ones up to order and sign: each code column equals
    # one corner column or its negation
    agree = (np.sign(p).T @ corners) / len(v)
    assert np.all(np.abs(agree).max(axis=1) > 0.99)
    assert np.linalg.norm(np.sign(p) - p) < 0.2 * np.linalg.norm(np.sign(v) - v)


def test_more_bits_than_dims_estimate_the_angle() -> None:
    """SimHash: with b random hyperplanes, Hamming / b -> angle / pi (here within 0.03)."""
    rng = np.random.default_rng(4)
    fit = rng.standard_normal((2000, 16)).astype(np.float32)
    enc = fit_encoder(fit, CodeRecipe("rotation", 16 * 64))
    a = rng.standard_normal((50, 16)).astype(np.float32)
    b = (a + rng.standard_normal((50, 16)) * 0.8).astype(np.float32)
    pa, pb = enc.project(a), enc.project(b)  # centred unit vectors through the projection
    ua, ub = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1,
                                                                                keepdims=True)
    ca, cb = ua - enc.mean, ub - enc.mean
    cos = (ca * cb).sum(1) / np.linalg.norm(ca, axis=1) / np.linalg.norm(cb, axis=1)
    frac = hamming(enc.encode(a), enc.encode(b)) / enc.n_bits
    assert pa.shape == (50, 1024) and pb.shape == (50, 1024)
    assert np.abs(frac - np.arccos(np.clip(cos, -1, 1)) / np.pi).max() < 0.03


def test_simhash_estimates_the_raw_angle() -> None:
    """Without centring, Hamming / bits -> the angle of the vectors as given (the one cosine
    verification compares), here within 0.03 at 1024 bits."""
    rng = np.random.default_rng(6)
    fit = (rng.standard_normal((500, 16)) + 2.0).astype(np.float32)  # far from centred
    enc = fit_encoder(fit, CodeRecipe("simhash", 1024))
    a = fit[:50]
    b = (a + rng.standard_normal((50, 16))).astype(np.float32)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    frac = hamming(enc.encode(a), enc.encode(b)) / enc.n_bits
    assert np.abs(frac - np.arccos(np.clip(cos, -1, 1)) / np.pi).max() < 0.03
    assert not np.any(enc.mean)


def test_encoder_round_trips_through_arrays() -> None:
    rng = np.random.default_rng(5)
    fit = rng.standard_normal((300, 12)).astype(np.float32)
    for recipe in (CodeRecipe("itq", 24), CodeRecipe("median"), CodeRecipe("sign"),
                   CodeRecipe("simhash", 40)):
        enc = fit_encoder(fit, recipe)
        back = encoder_from_arrays(enc.to_arrays())
        assert np.array_equal(back.encode(fit).words, enc.encode(fit).words)


def test_bad_recipes_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown code method"):
        CodeRecipe("lsh")
    with pytest.raises(InvalidArgument, match="one bit per dimension"):
        fit_encoder(np.ones((5, 4), dtype=np.float32), CodeRecipe("sign", 8))
    enc = fit_encoder(np.random.default_rng(0).standard_normal((9, 4)), CodeRecipe("itq"))
    with pytest.raises(InvalidArgument, match=r"\(n, 4\)"):
        enc.encode(np.ones((2, 5), dtype=np.float32))


def test_choice_takes_fewest_bits_within_the_target_on_dev_folds_only() -> None:
    def score(label: str, bits: int, dev: float, test: float) -> CodeScore:
        return CodeScore(label, bits, np.array([dev] * 5 + [test] * 5))

    cands = [score("itq-128", 128, 0.980, 0.999), score("rot-256", 256, 0.9905, 0.95),
             score("itq-256", 256, 0.992, 0.90), score("itq-512", 512, 0.995, 0.99)]
    assert choose(cands, 0.995, 0.5).label == "itq-256"  # test folds play no part
    assert choose(cands, 0.999, 0.1).label == "itq-512"  # none within: the best on dev
