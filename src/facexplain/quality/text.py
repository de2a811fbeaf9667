"""A verdict's photo quality in plain words, for the CLI and the report."""

from __future__ import annotations

from typing import Any


def quality_lines(quality: dict[str, dict[str, Any]] | None) -> list[str]:
    """One line per photo: its score (share of calibration photos it beats) and, for a photo
    outside the calibration photos' range, why (empty without a stored profile)."""
    if not quality:
        return []
    lines = []
    for label in ("a", "b"):
        q = quality.get(label)
        if q is None:
            continue
        score = q.get("score")
        shown = "n/a" if score is None else f"{score:.2f}"
        if q.get("failing"):
            lines.append(f"photo {label.upper()} quality {shown}: outside the calibration photos' "
                         f"range: {'; '.join(q.get('reasons', []))}")
        else:
            lines.append(f"photo {label.upper()} quality {shown}: within the calibration "
                         "photos' range")
    return lines
