"""One table of every explanation method on one backbone, from the result files in docs/results
(``facexplain.benchmarks.method_table``; docs/BENCHMARKS.md gets it from ``facexplain benchmark
tables``, this script writes the standalone copies).

Usage: .venv/bin/python bench/method_table.py [--backbone sface] [--json OUT] [--markdown OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facexplain.benchmarks.method_table import build, markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backbone", default="sface")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    doc = build(args.backbone)
    text = markdown(doc)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
