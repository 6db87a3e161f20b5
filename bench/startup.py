#!/usr/bin/env python3
"""Start-up benchmark: from launching ``paperchat ui`` on an existing index to the first answer on screen.

    python bench/startup.py [--runs 3] [--out bench/results/startup.json]

Indexes ``sample_docs/`` once (not timed), then, ``--runs`` times: starts ``paperchat ui`` (a new process:
Python, Streamlit, the index and the embedding model all load), opens the page in headless Chromium
(Debian's ``chromium``, driven by Playwright), asks a question as soon as the chat box appears, and
waits until the answer and its sources are shown. Reports the time to the page being ready and to the
first answer, from the moment the command was started.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTION = "Which GPU were the QRNNs trained on?"


def one_run(browser: Any, db: Path, env: dict[str, str]) -> dict[str, float]:
    from tests.conftest import free_port
    from tests.faults import paperchat_command
    from tests.servers import http_ok

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    proc = subprocess.Popen(paperchat_command("ui", "--db", str(db), "--port", str(port)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not http_ok(f"{url}/_stcore/health"):  # the server gives no other signal that it listens
            if proc.poll() is not None:
                raise RuntimeError("paperchat ui exited")
            time.sleep(0.05)
        listening = time.perf_counter() - start
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        box = page.get_by_placeholder("Ask a question about the papers")
        box.wait_for(timeout=120_000)
        ready = time.perf_counter() - start
        box.fill(QUESTION)
        box.press("Enter")
        page.get_by_text("Sources: pick a number").last.wait_for(timeout=120_000)
        answered = time.perf_counter() - start
        context.close()
        return {"server_listening_s": round(listening, 2), "page_ready_s": round(ready, 2), "first_answer_s": round(answered, 2)}
    finally:
        proc.terminate()
        proc.wait(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from tests.faults import clean_env, paperchat_command

    env = clean_env()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db"
        subprocess.run(paperchat_command("index", str(ROOT / "sample_docs"), "--db", str(db), "--quiet"), env=env,
                       check=True, stdout=subprocess.DEVNULL)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            runs = [one_run(browser, db, env) for _ in range(args.runs)]
            browser.close()
    result = {"date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              "question": QUESTION, "runs": runs,
              "worst_first_answer_s": max(r["first_answer_s"] for r in runs)}
    for r in runs:
        print(f"listening {r['server_listening_s']:>5} s   page ready {r['page_ready_s']:>5} s   first answer {r['first_answer_s']:>5} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
