"""Screenshots of the labelling pages for docs/LABELLING.md, taken in headless Debian Chromium.

python examples/labelling_screenshots.py RUN_FOLDER docs/img/labelling
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from rewardlab.label.app import comparisons_from_run, make_app
from rewardlab.label.store import Store


def main(run: str, out: str) -> None:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = Store(Path(tempfile.mkdtemp()) / "labels.sqlite")
    token = store.add_labeller("ann")
    rows = comparisons_from_run(run, 20, seed=0)
    store.add_items("ann", "comparison", rows)
    store.add_items("ann", "rating", [dict(prompt=r["prompt"], a=r["a"]) for r in rows[:5]])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(store, run), port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    time.sleep(1.5)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1000, "height": 520})
        page.goto(f"http://127.0.0.1:{port}/")
        page.screenshot(path=str(out_dir / "login.png"))
        page.fill("#token", token)
        page.click("#go")
        page.wait_for_selector("#progress:has-text('0 / 20')")
        page.keyboard.press("1")
        page.wait_for_selector("#progress:has-text('1 / 20')")
        page.screenshot(path=str(out_dir / "comparison.png"))
        page.goto(f"http://127.0.0.1:{port}/rate")
        page.wait_for_selector("#progress:has-text('0 / 5')")
        page.screenshot(path=str(out_dir / "rating.png"))
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
