"""Screenshots of a report's trust blocks (the verdict's and one method's), for the docs.

Explains a pair with ``facexplain.api.explain_pair`` (default: the demo's LFW impostor pair and
a genuine LFW pair, occlusion and per-face occlusion on sface), writes the HTML report and
photographs its top (verdict and its trust block) and the first method's trust table with
Debian's Chromium through Playwright.
Usage: .venv/bin/python bench/report_screenshot.py [--out docs/figures/report-trust.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from facexplain import settings
from facexplain.api import explain_pair
from facexplain.method_info import ExplainOptions
from facexplain.report.html import write_explanation

LFW = settings.current().lfw_images
PAIR = (LFW / "Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg",
        LFW / "Dean_Barker/Dean_Barker_0001.jpg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/figures/report-trust.png"))
    parser.add_argument("--methods", default="occlusion,occlusion-per-face")
    parser.add_argument("photos", nargs="*", type=Path, default=list(PAIR))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    result = explain_pair(*args.photos, methods=args.methods, options=ExplainOptions())
    report = write_explanation(result, Path(tempfile.mkdtemp(prefix="report-shot-")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        page.goto(report.as_uri())
        page.screenshot(path=str(args.out), full_page=False)
        table = page.locator("table.trust-table").first
        if table.count():
            table.screenshot(path=str(args.out.with_name(args.out.stem + "-method.png")))
        browser.close()
    print(f"report: {report}\nscreenshots: {args.out}")


if __name__ == "__main__":
    main()
