#!/usr/bin/env python3
"""Batch extraction benchmark: 28 methodology questions asked of every paper, pairs per second.

    python bench/extract.py [--bench ../shared/bench] [--questions methodology|FILE]
                            [--embedder minilm] [--out bench/results/extract.json]

Indexes the benchmark corpus (11 PDFs, 10 QASPER Markdown papers) and ``sample_docs/`` into a fresh
store, then asks every question of every paper (each pair restricted to its paper), three ways:

* ``paperchat extract``, extractive answerer: the questions embedded once for the whole run, retrieval
  for a paper in one filtered pass, sentence vectors reused between the questions of a paper;
* ``paperchat extract`` with an LLM: ``ChatOpenAI`` against a local fake endpoint that answers at once,
  so the figure is paperchat's own cost per pair;
* one ``chain.invoke`` per pair (what a script without ``extract`` would do), on the first five papers:
  the amortisation that ``extract`` brings.

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--questions", default="methodology", help="a question file, or the shipped list 'methodology'")
    ap.add_argument("--embedder", default="minilm", help="minilm (default) or minilm-int8")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extract.json")
    args = ap.parse_args()
    if not (args.bench / "corpus").is_dir():
        sys.exit(f"benchmark data not found: {args.bench}")

    from langchain_openai import ChatOpenAI

    from paperchat.chain import create_qa_chain
    from paperchat.extract import read_questions, run_extraction, tasks_for
    from paperchat.extractive import FETCH, ExtractiveAnswerer
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings
    from tests.fake_openai import fake_openai_server

    questions = read_questions(args.questions)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "embedder": args.embedder, "questions": len(questions),
    }
    with tempfile.TemporaryDirectory() as tmp:
        index = PaperIndex.open(Settings(db=Path(tmp) / "db", embedder=args.embedder))
        report = index_paths(index, [args.bench / "corpus", ROOT / "sample_docs"])
        assert report.ok, report.failed
        papers = index.list_documents()
        retriever = PaperRetriever(index=index, k=6)
        tasks = tasks_for(questions, papers)
        result["papers"], result["pairs"] = len(papers), len(tasks)
        result["indexing_seconds"] = round(report.seconds, 1)

        answerer = ExtractiveAnswerer()  # the sentence rater, shared by the chains

        def run(label: str, chain: Any, subset: list[Any], fetch: int | None = None) -> dict[str, Any]:
            index.vector_cache.clear()
            answerer.scorer.vectors.clear()
            out = Path(tmp) / f"{label}.jsonl"
            summary = run_extraction(retriever, chain, subset, out, fetch=fetch)
            assert summary.failed == 0, summary.errors[:3]
            row = {"pairs": len(subset), "seconds": round(summary.seconds, 2), "pairs_per_s": round(summary.pairs_per_s, 2),
                   "answered": summary.answered, "abstained": summary.abstained}
            print(f"{label:<44}{row['pairs']:>7}{row['seconds']:>9}{row['pairs_per_s']:>10}{row['answered']:>10}{row['abstained']:>10}")
            return row

        print(f"{'':<44}{'pairs':>7}{'seconds':>9}{'pairs/s':>10}{'answered':>10}{'abstained':>10}")
        extractive = create_qa_chain(retriever, extractive=answerer)
        result["extract, extractive answerer"] = run("extract, extractive answerer", extractive, tasks, FETCH)  # as `extract` reads
        with fake_openai_server() as llm:
            llm.default = {"content": "The model was trained on a GPU [1]."}
            chat = ChatOpenAI(model="fake", base_url=llm.base_url, api_key="sk-bench", max_retries=0, timeout=10)
            result["extract, LLM (instant fake endpoint)"] = run(
                "extract, LLM (instant fake endpoint)", create_qa_chain(retriever, llm=chat, extractive=answerer), tasks)
        first = [t for t in tasks if t.doc_id in {p.id for p in papers[:5]}]
        index.vector_cache.clear()
        answerer.scorer.vectors.clear()
        start = time.perf_counter()
        for task in first:
            extractive.invoke({"question": task.question, "papers": [task.doc_id]})
        seconds = time.perf_counter() - start
        result["one invoke per pair, extractive (5 papers)"] = {
            "pairs": len(first), "seconds": round(seconds, 2), "pairs_per_s": round(len(first) / seconds, 2)}
        print(f"{'one invoke per pair, extractive (5 papers)':<44}{len(first):>7}{seconds:>9.2f}{len(first) / seconds:>10.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
