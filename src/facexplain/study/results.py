"""What the study's analysis finds, per participant and per condition.

Why apart from ``analyze``: the figures draw these rows and the analysis makes them; kept here,
neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParticipantResult:
    """One participant over the real pairs (catch trials only in ``catch_correct``)."""

    id: str
    condition: str
    answered: tuple[int, int]  # real pairs answered, before and after
    accuracy: tuple[float, float]  # before, after
    auc: tuple[float, float]
    median_ms: tuple[float, float]
    catch_correct: int = 0  # over both rounds
    catch_answered: int = 0
    finished: bool = False  # every pair of both rounds, catch trials included
    kept: bool = False  # finished and passed the screening rule


@dataclass(frozen=True)
class ConditionResult:
    condition: str
    n: int  # kept participants
    before_mean: float
    before_std: float
    after_mean: float
    after_std: float
    gain_mean: float
    gain_ci95: tuple[float, float]
    t_p: float
    wilcoxon_p: float
    auc_before: float
    auc_after: float
    finished: int = 0  # before screening
