"""How far the unfrozen trial moved the backbone's weights: ‖W − W₀‖ / ‖W₀‖ per weight of each
unfrozen part-filter head (``facexplain train parts --unfreeze``), against the pretrained ones.

Usage: .venv/bin/python bench/tail_moved.py HEAD.safetensors [...] [--json docs/results/...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facexplain.heads.parts import load_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("heads", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    out: dict[str, dict[str, float]] = {}
    for path in args.heads:
        head, _ = load_head(path)
        if head.tail is None:
            raise SystemExit(f"{path} is not an unfrozen head (trained without --unfreeze)")
        out[path.stem] = {k: round(v, 4) for k, v in head.tail.relative_change().items()}
        print(path.stem, out[path.stem])
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
