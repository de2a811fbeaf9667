"""The library's use cases, one per question; every front end (CLI, web, ``/api/v1``, batch on
Ray, search) calls these and only translates arguments and prints.

- ``verify`` / ``verdict_for_pair`` (``api.verdict``): same person? The one ``Verdict``.
- ``plan_explanation`` / ``explain_pair`` (``api.explanation``): and why, method by method.
- ``search_gallery`` (``api.search``): who is this, among a gallery's identities?
"""

from facexplain.api.explanation import (
    ExplanationPlan,
    explain_pair,
    plan_explanation,
    resolve_methods,
    skipped_methods,
)
from facexplain.api.search import SearchResult, search_gallery
from facexplain.api.verdict import calibration_of, embed_face, verdict_for_pair, verify

__all__ = ["ExplanationPlan", "SearchResult", "calibration_of", "embed_face", "explain_pair",
           "plan_explanation", "resolve_methods", "search_gallery", "skipped_methods",
           "verdict_for_pair", "verify"]
