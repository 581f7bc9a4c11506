"""Save a screenshot of one page of a running app, for the README: the Paper figures page is taken this
way on real reproductions (the browser tests only make tiny ones).

    VAE_RUNS_DIR=runs streamlit run app.py --server.port 8650 &
    python bench/screenshot_page.py http://127.0.0.1:8650/reproduce docs/screenshots/reproduce.png

Needs Chromium (Debian: apt-get install chromium) and the playwright package (the [test] extra).
"""
from __future__ import annotations

import argparse
import shutil

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--wait-for", default="What does figure 2 show?",
                        help="the title of the page's closing expander: the page has finished drawing")
    args = parser.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(args.url)
        main_area = page.locator('[data-testid="stMain"]')
        main_area.locator('[data-testid="stExpander"]').filter(has_text=args.wait_for).wait_for(timeout=180_000)
        height = int(page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"))
        page.set_viewport_size({"width": 1400, "height": max(1000, height)})
        page.mouse.move(1395, 5)
        page.wait_for_timeout(1500)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
