"""Screenshot of the `make demo` report's top: the verdict and the "Facial components" section
that leads it (sentence, table, outlines), for the README and docs.

Photographs an existing report (default ``out/demo/report.html``, written by ``make demo``)
with Debian's Chromium through Playwright, from the top down to the end of the components
section (the whole first screen when the report has none).
Usage: .venv/bin/python bench/demo_screenshot.py [--report out/demo/report.html]
       [--out docs/figures/report-demo-components.png]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--report", type=Path, default=Path("out/demo/report.html"))
    parser.add_argument("--out", type=Path, default=Path("docs/figures/report-demo-components.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    if not args.report.is_file():
        raise SystemExit(f"no report at {args.report}: run `make demo` first")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        page.goto(args.report.resolve().as_uri())
        page.wait_for_load_state("load")
        section = page.locator("section#components")
        if section.count():
            box = section.bounding_box()
            assert box is not None
            page.screenshot(path=str(args.out), full_page=True,
                            clip={"x": 0, "y": 0, "width": 1000,
                                  "height": box["y"] + box["height"] + 10})
        else:
            page.screenshot(path=str(args.out), full_page=False)
        browser.close()
    print(f"screenshot: {args.out}")


if __name__ == "__main__":
    main()
