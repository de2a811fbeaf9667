"""Screenshot of a participant's second round with the paper's help picture, for the docs.

Makes a one-participant study of the first look-alike impostor and the first genuine pair of a
pair set (occlusion at the default k=16, s=8, so the Θ-normalised map), answers round 1,
serves it on the loopback address and photographs round 2 with Debian's Chromium.
Usage: .venv/bin/python bench/study_screenshot.py [--pairs out/study/sllfw-like-200.json]
       [--out docs/figures/study-round2-help.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.study.server import Server  # noqa: E402

from facexplain.benchmarks.lookalike import read_pairs_file, write_pairs  # noqa: E402
from facexplain.study.create import create_study  # noqa: E402
from facexplain.study.store import open_study  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=Path, default=Path("out/study/sllfw-like-200.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/figures/study-round2-help.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="study-shot-"))
    pairs, meta = read_pairs_file(args.pairs)
    two = [p for p in pairs if not p.same][:1] + [p for p in pairs if p.same][:1]
    made = create_study(write_pairs(root / "p.json", two, meta), root / "s", ("occlusion",), 1,
                        catch=0)  # two pairs: too few photos for catch trials
    who = made.participants[0]
    with open_study(made.folder) as store:
        for pair in who.order1:
            store.record(who, 1, pair, 3, 1000)
    server = Server(made.folder, root / "w")
    server.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox"])
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            page.goto(f"{server.url}/p/{who.token}")
            page.wait_for_timeout(500)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        server.stop()
    shown = two[who.order2[0]]
    print(f"{args.out}: {shown.a} vs {shown.b} (same={shown.same})")


if __name__ == "__main__":
    main()
