"""Sparsity and selectivity of neurons (DeepID2+, Sec. "sparse" and "selective").

A neuron is *activated* on an image when its response is > 0 (for a node after a ReLU-like
nonlinearity that is "it fired"). Sparsity: the share of neurons an image activates and the
share of images a neuron fires on (the paper finds about half for both). Selectivity: a single
neuron, thresholded, tells one identity or an attribute from the rest; its balanced accuracy on
held-out images is compared with a linear classifier on hand-crafted features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facexplain.errors import InvalidArgument
from facexplain.search.binary import BinaryCodes, popcount, unpack_bits


@dataclass(frozen=True)
class Sparsity:
    """Per-image and per-neuron activation fractions of one layer."""

    per_image: np.ndarray
    per_neuron: np.ndarray

    def summary(self) -> dict[str, float | int]:
        return {
            "n_images": int(self.per_image.size),
            "n_neurons": int(self.per_neuron.size),
            "mean_active_per_image": round(float(self.per_image.mean()), 4),
            "std_active_per_image": round(float(self.per_image.std()), 4),
            "mean_images_per_neuron": round(float(self.per_neuron.mean()), 4),
            "std_images_per_neuron": round(float(self.per_neuron.std()), 4),
            "dead_neurons": int((self.per_neuron == 0).sum()),
            "always_on_neurons": int((self.per_neuron == 1).sum()),
        }


def sparsity(activations: np.ndarray) -> Sparsity:
    """Activation fractions from real responses (n_images, n_neurons): activated means > 0."""
    x = np.asarray(activations)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidArgument(f"expected (n_images, n_neurons) activations, got {x.shape}")
    active = x > 0
    return Sparsity(active.mean(axis=1), active.mean(axis=0))


def sparsity_of_codes(codes: BinaryCodes, chunk: int = 512) -> Sparsity:
    """The same from packed activation bits (big intermediate layers are stored so)."""
    if len(codes) == 0:
        raise InvalidArgument("no codes")
    per_image = popcount(codes.words).sum(axis=1) / codes.n_bits
    counts = np.zeros(codes.n_bits, dtype=np.int64)
    for start in range(0, len(codes), chunk):  # unpack a chunk at a time: bounded memory
        counts += unpack_bits(codes.words[start : start + chunk], codes.n_bits).sum(axis=0)
    return Sparsity(per_image.astype(np.float64), counts / len(codes))


@dataclass(frozen=True)
class NeuronRule:
    """'positive when polarity * (x[neuron] - threshold) > 0', chosen on training images."""

    neuron: int
    threshold: float
    polarity: int
    train_accuracy: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        v = x[:, self.neuron] - self.threshold
        return v > 0 if self.polarity > 0 else v < 0


class SortedColumns:
    """Each neuron's training responses sorted once, reused for every label set (63 tasks)."""

    def __init__(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] < 2:
            raise InvalidArgument(f"expected (n >= 2, d) responses, got {x.shape}")
        self.order = np.argsort(x, axis=0, kind="stable")
        self.values = np.take_along_axis(x, self.order, axis=0)
        # A cut between sorted rows i and i+1 is only real where their values differ.
        self.valid = self.values[1:] > self.values[:-1]


def balanced_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean of the true-positive and true-negative rates (robust to 1-vs-12,000 imbalance)."""
    y, pred = np.asarray(y, dtype=bool), np.asarray(pred, dtype=bool)
    if y.all() or not y.any():
        raise InvalidArgument("balanced accuracy needs both classes")
    return float(0.5 * (pred[y].mean() + (~pred[~y]).mean()))


def best_single_neuron(sorted_train: SortedColumns, y_train: np.ndarray) -> NeuronRule:
    """The neuron, threshold and polarity with the best balanced accuracy on the training set.

    For every neuron and every cut between distinct sorted responses, counts of positives
    below the cut give both rates at once (cumulative sums), so all neurons are scored in one
    vectorised pass.
    """
    y = np.asarray(y_train, dtype=bool)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise InvalidArgument("a neuron rule needs positive and negative training images")
    ys = y[sorted_train.order]                       # (n, d) labels in each neuron's order
    pos_below = np.cumsum(ys, axis=0, dtype=np.int32)[:-1]
    neg_below = np.arange(1, y.size, dtype=np.int32)[:, None] - pos_below
    # Rule "x > cut is positive": TPR = positives above / P, TNR = negatives below / N.
    bacc = 0.5 * ((n_pos - pos_below) / n_pos + neg_below / n_neg)
    score = np.where(sorted_train.valid, np.abs(bacc - 0.5), -1.0)
    flat = int(np.argmax(score))
    cut, neuron = divmod(flat, score.shape[1])
    if score[cut, neuron] < 0:
        raise InvalidArgument("all neurons are constant on the training images")
    vals = sorted_train.values[:, neuron]
    acc = float(bacc[cut, neuron])
    return NeuronRule(
        neuron=int(neuron), threshold=float((vals[cut] + vals[cut + 1]) / 2),
        polarity=1 if acc >= 0.5 else -1, train_accuracy=max(acc, 1.0 - acc),
    )


@dataclass(frozen=True)
class ConstantNeurons:
    """Neurons active on at least ``level`` of a group's images (excited) or at most
    ``1 - level`` of them (inhibited), ordered from the most to the least constant."""

    excited: np.ndarray
    inhibited: np.ndarray
    rate: np.ndarray


def constant_neurons(activations: np.ndarray, members: np.ndarray,
                     level: float = 0.9) -> ConstantNeurons:
    """Neurons constantly excited / inhibited on the images of one identity or attribute."""
    m = np.asarray(members, dtype=bool)
    if not m.any():
        raise InvalidArgument("the group has no images")
    rate = (np.asarray(activations)[m] > 0).mean(axis=0)
    excited = np.flatnonzero(rate >= level)
    inhibited = np.flatnonzero(rate <= 1.0 - level)
    return ConstantNeurons(
        excited=excited[np.argsort(-rate[excited], kind="stable")],
        inhibited=inhibited[np.argsort(rate[inhibited], kind="stable")],
        rate=rate,
    )


def linear_probe_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
    c: float = 0.1,
) -> float:
    """Held-out balanced accuracy of a class-balanced linear SVM (the paper's LBP baseline)."""
    from sklearn.svm import LinearSVC

    clf = LinearSVC(C=c, class_weight="balanced", dual=True, max_iter=5000)
    clf.fit(x_train, np.asarray(y_train, dtype=bool))
    return balanced_accuracy(clf.predict(x_test), y_test)


def split_within_groups(groups: np.ndarray, rng: np.random.Generator,
                        train_share: float = 0.5) -> np.ndarray:
    """Train mask holding about ``train_share`` of each group's items (the rest held out), so
    every identity has images on both sides; single-image groups go to either side at random."""
    groups = np.asarray(groups)
    train = np.zeros(groups.shape[0], dtype=bool)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        rng.shuffle(idx)
        n_train = int(np.floor(train_share * idx.size + rng.random()))
        train[idx[:n_train]] = True
    return train


def split_by_group(groups: np.ndarray, rng: np.random.Generator,
                   train_share: float = 0.5) -> np.ndarray:
    """Train mask over whole groups: no identity is on both sides (for attribute tests)."""
    groups = np.asarray(groups)
    names = np.unique(groups)
    rng.shuffle(names)
    chosen = set(names[: int(round(train_share * names.size))].tolist())
    return np.asarray([g in chosen for g in groups], dtype=bool)
