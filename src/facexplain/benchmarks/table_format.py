"""Number formats shared by the generated tables (``benchmarks.table_kinds``)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def half_up(x: float, places: int = 2) -> str:
    """``x`` (a number the benchmark stored already rounded) rounded half up, as a person
    rounds its printed digits: 2.275 -> 2.28 (binary floats would give 2.27)."""
    return str(Decimal(str(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def sci(x: float) -> str:
    """7.078e-08 -> '7.1e-8'."""
    return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e+")
