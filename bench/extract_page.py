#!/usr/bin/env python3
"""The Extract page's targets: 28 questions x 100 papers in the background runner, a 500 x 28 matrix on the page,
memory during a long run.

    python bench/extract_page.py [--bench ../shared/bench] [--papers 100] [--render-papers 500]
                                 [--out bench/results/extract_page.json] [--no-browser]

1. **Run**: 100 papers of 100 chunks each, made of the real chunks of the benchmark corpus and ``sample_docs/``
   (``tests/synthetic.py``: words varied, vectors perturbed, so no sentence is answered from a cache), and the
   28 shipped methodology questions asked of every paper by :class:`paperchat.runner.Workspace` (the page's
   background thread, the engine of ``paperchat extract``), extractive answerer. Seconds, pairs/s, and the
   process's memory sampled through the run (it should stay flat: rows go to disk as they come).
2. **Render**: 500 papers x 28 questions of answers (the run's real rows, replicated over 500 document
   records), the Extract page run by Streamlit's AppTest (the script's time, first visit and a rerun) and, unless
   ``--no-browser``, opened in headless Chromium from navigation to the matrix and the heat map drawn.

Prints a table and writes JSON. The machine is shared: figures are indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RUN_S, TARGET_RENDER_S = 90.0, 2.0


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def run_benchmark(bench: Path, work: Path, n_papers: int) -> tuple[dict[str, Any], Path]:
    """28 questions x ``n_papers`` through the background runner; returns the figures and the results file."""
    from paperchat.chain import create_qa_chain
    from paperchat.extract import tasks_for
    from paperchat.extractive import ExtractiveAnswerer
    from paperchat.manifest import build_manifest
    from paperchat.questions import preset
    from paperchat.runner import Workspace
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings
    from tests.synthetic import build_synthetic, seed_chunks

    texts, metas, vectors = seed_chunks([bench / "corpus", ROOT / "sample_docs"], work)
    settings = Settings(db=work / "db", collection="papers")
    built = build_synthetic(n_papers * 100, texts, metas, vectors, settings)
    index = PaperIndex.open(settings)
    retriever = PaperRetriever(index=index, k=settings.k)
    answerer = ExtractiveAnswerer()
    chain = create_qa_chain(retriever, extractive=answerer)
    index.embedder.embed_query("warm up")
    questions = preset()
    papers = index.list_documents()
    tasks = tasks_for(questions, papers)
    ws = Workspace.for_settings(settings)
    samples: list[tuple[float, float, int, int]] = []  # seconds, RSS MB, pairs done, vectors cached
    cpu = time.process_time()
    start = time.perf_counter()
    ws.start(retriever, chain, tasks, build_manifest(settings, "extractive", index, questions), settings)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append((time.perf_counter() - start, rss_mb(), ws.state().done, len(index.vector_cache._vectors) + len(answerer.scorer.vectors._vectors)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    ws.wait()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu  # every thread of this process: the runner's and the embedder's
    done.set()
    sampler.join()
    state = ws.state()
    assert state.status == "finished" and state.done == len(tasks), state
    rows = [json.loads(x) for x in ws.results.read_text(encoding="utf-8").splitlines()]
    quarters, cached = {}, {}
    for share in (0.1, 0.25, 0.5, 0.75, 1.0):
        at = next((s for s in samples if s[2] >= share * len(tasks)), samples[-1] if samples else (0, rss_mb(), 0, 0))
        quarters[f"{int(share * 100)}%"], cached[f"{int(share * 100)}%"] = round(at[1]), at[3]
    return {
        "papers": len(papers), "questions": len(questions), "pairs": len(tasks), "chunks": built["chunks"],
        "seconds": round(seconds, 1), "pairs_per_s": round(len(tasks) / seconds, 1),
        "cpu_seconds": round(cpu, 1), "cpu_ms_per_pair": round(1000 * cpu / len(tasks), 1),
        "target_seconds": TARGET_RUN_S,
        "met": seconds <= TARGET_RUN_S if (len(papers), len(questions)) == (100, 28) else None,
        "reported": sum(r["status"] == "reported" for r in rows),
        "not_reported": sum(r["status"] == "not_reported" for r in rows),
        "rss_mb_by_progress": quarters,
        # question and sentence vectors (the index's and the answerer's caches), each kept up to 20,000 (about
        # 35 MB): what memory grows by
        "vectors_cached_by_progress": cached, "vector_cache_bound": index.vector_cache.size + answerer.scorer.vectors.size,
        "rss_mb_min_max": [round(min(s[1] for s in samples)), round(max(s[1] for s in samples))] if samples else None,
    }, ws.results


def render_collection(work: Path, rows_file: Path, n_papers: int) -> tuple[Path, int]:
    """An index of ``n_papers`` document records and an extraction workspace holding 28 answers for each."""
    from paperchat.questions import preset
    from paperchat.runner import Workspace
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.settings import Settings

    settings = Settings(db=work / "render-db", collection="papers")
    index = PaperIndex.open(settings)
    ids = [f"paper{i:04d}" for i in range(n_papers)]
    index._docs.add(ids=ids, embeddings=[[1.0]] * len(ids),
                    metadatas=[{"file": f"{d}_{2000 + i % 25}.pdf", "title": f"A study of methods, number {i}",
                                "pages": 12, "sha256": d, "chunks": 50, "status": "complete", "path": f"/p/{d}.pdf"}
                               for i, d in enumerate(ids)])
    by_column: dict[str, list[dict[str, Any]]] = {}
    for line in rows_file.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_column.setdefault(row["column"], []).append(row)
    ws = Workspace.for_settings(settings)
    ws.folder.mkdir(parents=True)
    ws.save_questions(preset())
    written = 0
    with ws.results.open("w", encoding="utf-8") as fh:
        for i, d in enumerate(ids):
            for q in preset():
                source = by_column[q.column][i % len(by_column[q.column])]
                fh.write(json.dumps({**source, "id": f"{d}_{2000 + i % 25}.pdf::{q.column}", "paper": f"{d}_{2000 + i % 25}.pdf"},
                                    ensure_ascii=False) + "\n")
                written += 1
    return settings.db, written


def render_apptest(db: Path) -> dict[str, Any]:
    from streamlit.testing.v1 import AppTest

    os.environ["PAPERCHAT_DB"], os.environ["PAPERCHAT_COLLECTION"] = str(db), "papers"
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=600)
    at.run()  # the chat page loads the models; the Extract page's own time is what is measured
    at.switch_page("extract.py")
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    assert not at.exception, at.exception
    frame = next(d.value for d in at.dataframe if "paper" in d.value.columns)
    start = time.perf_counter()
    at.run()
    again = time.perf_counter() - start
    return {"matrix_shape": list(frame.shape), "first_visit_s": round(first, 2), "rerun_s": round(again, 2)}


def render_browser(db: Path, work: Path, n_papers: int) -> dict[str, Any]:
    import subprocess

    from playwright.sync_api import sync_playwright

    from tests.conftest import free_port
    from tests.faults import clean_env, paperchat_command
    from tests.servers import http_ok

    port = free_port()
    env = {**clean_env(), "PAPERCHAT_DB": str(db), "PAPERCHAT_COLLECTION": "papers"}
    log = (work / "ui.log").open("wb")
    proc = subprocess.Popen(paperchat_command("ui", "--port", str(port)), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while not http_ok(f"{url}/_stcore/health"):
            assert proc.poll() is None, "paperchat ui did not start"
            time.sleep(0.2)
        out = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            page.get_by_placeholder("Ask a question about the papers").wait_for(timeout=300_000)  # models loaded
            for visit in ("first_visit", "second_visit"):
                start = time.perf_counter()
                page.get_by_role("link", name="Extract").click()
                page.get_by_text(f"{n_papers} papers x 28 questions").wait_for(timeout=120_000)
                page.locator('.st-key-matrix-grid [data-testid="stDataFrame"]').get_by_text("purpose").first.wait_for(
                    state="attached", timeout=120_000)
                matrix_s = time.perf_counter() - start
                # the heat map draws the first 100 papers unless asked for all; over 2,000 marks Streamlit draws on
                # a canvas (SVG below): wait for either
                heat = page.locator('[data-testid="stVegaLiteChart"]').nth(1)
                heat.locator("canvas, svg").first.wait_for(timeout=300_000)
                drawn = heat.locator("canvas, svg").first
                out[visit] = {"matrix_s": round(matrix_s, 2), "heat_map_s": round(time.perf_counter() - start, 2),
                              "heat_map": drawn.evaluate("e => e.tagName.toLowerCase()"),
                              "heat_map_px": drawn.evaluate("e => [e.clientWidth, e.clientHeight]")}
                page.get_by_role("link", name="Chat").click()
                page.get_by_placeholder("Ask a question about the papers").wait_for(timeout=120_000)
            browser.close()
        return out
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--papers", type=int, default=100)
    ap.add_argument("--render-papers", type=int, default=500)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extract_page.json")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--work", type=Path, help="keep the collections in this folder (default: a temporary one)")
    ap.add_argument("--render-only", action="store_true", help="reuse the run's rows kept in --work")
    args = ap.parse_args()
    if not (args.bench / "corpus").is_dir():
        sys.exit(f"benchmark data not found: {args.bench}")
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"),
                              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                              "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if args.render_only:
            rows_file = work / "db" / "extract" / "papers" / "results.jsonl"
        else:
            run, rows_file = run_benchmark(args.bench, work, args.papers)
            result["run"] = run
            print(f"run: {run['pairs']} pairs ({run['papers']} papers x {run['questions']} questions, extractive) in "
                  f"{run['seconds']} s, {run['pairs_per_s']} pairs/s (target for 100 x 28 <= {TARGET_RUN_S:.0f} s); "
                  f"RSS by progress {run['rss_mb_by_progress']} MB, vectors cached {run['vectors_cached_by_progress']}")
        shutil.rmtree(work / "render-db", ignore_errors=True)
        db, written = render_collection(work, rows_file, args.render_papers)
        render = {"papers": args.render_papers, "questions": 28, "cells": written,
                  "results_file_mb": round(Path(db / "extract" / "papers" / "results.jsonl").stat().st_size / 1e6, 1)}
        render["apptest"] = render_apptest(db)
        print(f"render (AppTest, the page's script): {render['apptest']}")
        if not args.no_browser:
            render["browser"] = render_browser(db, work, args.render_papers)
            print(f"render (Chromium, navigation to matrix and heat map): {render['browser']}")
        render["target_seconds"] = TARGET_RENDER_S
        result["render"] = render
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
