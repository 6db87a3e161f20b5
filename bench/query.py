#!/usr/bin/env python3
"""Query benchmark: latency of retrieval, of the extractive answer and of the whole chain, at 10k-1M chunks.

    python bench/query.py [--sizes 10000 100000 1000000] [--queries 200] [--embedder minilm]
                          [--server] [--workdir DIR [--reuse]] [--out bench/results/query.json]

The large indexes are built from the real chunks of ``../shared/bench/corpus`` (and ``sample_docs/``),
replicated across synthetic documents of 100 chunks each, every copy varied so that nothing is trivially
cached (``tests/synthetic.py``).

Each query is a distinct real methodology or QASPER question from the dev sets (each asked once per size,
with a random paper as filter), timed warm (after 20 warm-up queries: models loaded, caches of the
operating system and SQLite filled) but cold for paperchat's own vector cache, which is emptied before
every query (copies of a chunk share most sentences, so it would otherwise flatter the extractive answer):

* retrieval: ``PaperRetriever.invoke`` (query embedding, dense + BM25, fusion);
* extractive answer: the chain with the extractive answerer, end to end;
* whole chain with an LLM: the chain with ``ChatOpenAI`` against a local fake endpoint that answers at
  once, so only paperchat's own overhead is measured;

each with one paper as filter and over the whole collection. The queries run in a fresh process, whose
peak RSS is that of a process that only queries. Prints a table and writes JSON with p50/p95, build
times and peak RSS. ``--server`` runs the largest size against a ``chroma run`` server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """This process's own peak RSS. Not ``getrusage``: Linux carries ``ru_maxrss`` over fork and exec, so a
    process started by a larger one (the benchmark that built the collection) reports that one's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1000
    return {"p50_ms": round(float(np.percentile(arr, 50)), 1), "p95_ms": round(float(np.percentile(arr, 95)), 1),
            "n": len(samples)}


def measure(settings: Any, questions: list[str], n_docs: int, llm_url: str) -> dict[str, Any]:
    from langchain_openai import ChatOpenAI

    from paperchat.chain import create_qa_chain
    from paperchat.extractive import ExtractiveAnswerer
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.retriever import PaperRetriever
    from tests.synthetic import synthetic_doc_id

    index = PaperIndex.open(settings)
    retriever = PaperRetriever(index=index, k=settings.k)
    retriever.prepare_lexical()  # a sidecar copied and current before timing (a first copy is made here)
    lexical = retriever.lexical()
    if lexical is not None:  # warm: the term frequencies that a running app reads once are read
        lexical.vocabulary_loaded(timeout=600)
    answerer = ExtractiveAnswerer()  # the sentence rater, shared by both chains
    extractive = create_qa_chain(retriever, extractive=answerer)
    llm = ChatOpenAI(model="fake", base_url=llm_url, api_key="sk-bench", max_retries=0, timeout=10)
    with_llm = create_qa_chain(retriever, llm=llm, extractive=answerer)
    rng = random.Random(7)
    timings: dict[str, list[float]] = {}

    def run(name: str, fn: Any) -> None:
        index.vector_cache.clear()  # cold: no question or sentence vector from an earlier query
        answerer.scorer.vectors.clear()
        start = time.perf_counter()
        fn()
        timings.setdefault(name, []).append(time.perf_counter() - start)

    for warm in questions[:20]:
        extractive.invoke({"question": warm, "papers": [synthetic_doc_id(rng.randrange(n_docs))]})
    timings.clear()
    for q in questions:
        paper = synthetic_doc_id(rng.randrange(n_docs))
        run("retrieval, one paper", lambda: retriever.invoke(q, papers=[paper]))
        run("retrieval, whole collection", lambda: retriever.invoke(q))
        run("extractive answer, one paper", lambda: extractive.invoke({"question": q, "papers": [paper]}))
        run("extractive answer, whole collection", lambda: extractive.invoke({"question": q}))
        run("chain with LLM (fake endpoint), one paper", lambda: with_llm.invoke({"question": q, "papers": [paper]}))
    return {name: percentiles(values) for name, values in timings.items()}


def build_or_reuse(n: int, texts: list[str], metas: list[dict[str, Any]], vectors: np.ndarray, settings: Any,
                   reuse: bool) -> dict[str, Any]:
    """Build the synthetic index of ``n`` chunks, or (``--reuse``) take the one a previous run left."""
    from paperchat.vectorstore.index import PaperIndex
    from tests.synthetic import CHUNKS_PER_DOC, build_synthetic

    if reuse and Path(settings.db).exists():
        index = PaperIndex.open(settings)
        if index.count_chunks() == n:
            return {"seconds": None, "chunks": n, "documents": (n + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC, "reused": True}
    return build_synthetic(n, texts, metas, vectors, settings)


def _measure_child(settings_json: str, questions: list[str], n_docs: int, llm_url: str) -> dict[str, Any]:
    from paperchat.vectorstore.settings import Settings

    timing: dict[str, Any] = measure(Settings.model_validate_json(settings_json), questions, n_docs, llm_url)
    timing["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return timing


def measure_in_child(settings: Any, questions: list[str], n_docs: int, llm_url: str) -> dict[str, Any]:
    """``measure`` in a fresh process, so that its memory is that of a process that only queries."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure_child, settings.model_dump_json(), questions, n_docs, llm_url).result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=200, help="at most this many distinct dev questions")
    ap.add_argument("--server", action="store_true", help="serve the largest size with `chroma run`")
    ap.add_argument("--workdir", type=Path, help="keep the built indexes here (default: a temporary folder)")
    ap.add_argument("--embedder", default="minilm", help="minilm (default) or minilm-int8")
    ap.add_argument("--reuse", action="store_true", help="reuse indexes of that size left in --workdir")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "query.json")
    args = ap.parse_args()

    from paperchat.evaluate import read_jsonl
    from paperchat.vectorstore.settings import Settings
    from tests.fake_openai import fake_openai_server
    from tests.synthetic import seed_chunks

    # distinct questions only, so that no per-question cache makes a repeat look fast
    questions = list(dict.fromkeys(
        r["question"] for name in ("cq_dev", "qasper_dev") for r in read_jsonl(args.bench / f"{name}.jsonl")))
    asked = questions[: args.queries]
    random.Random(3).shuffle(asked)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="paperchat-query-bench-"))
    texts, metas, vectors = seed_chunks([args.bench / "corpus", ROOT / "sample_docs"], work, args.embedder)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "seed_chunks": len(texts), "queries": len(asked), "embedder": args.embedder, "sizes": {},
    }
    with fake_openai_server() as llm:
        llm.default = {"content": "The model was trained on a GPU [1]."}
        for n in args.sizes:
            server = args.server and n == max(args.sizes)
            settings = Settings(db=work / f"db-{n}", collection=f"bench-{n}", embedder=args.embedder)
            if server:
                from tests.integration.chroma_server import chroma_server

                with chroma_server(work / f"server-{n}") as port:
                    settings = Settings(db=work / f"db-{n}", collection=f"bench-{n}", chroma_host="127.0.0.1",
                                        chroma_port=port, embedder=args.embedder)
                    built = build_or_reuse(n, texts, metas, vectors, settings, args.reuse)
                    timing = measure_in_child(settings, asked, built["documents"], llm.base_url)
            else:
                built = build_or_reuse(n, texts, metas, vectors, settings, args.reuse)
                timing = measure_in_child(settings, asked, built["documents"], llm.base_url)
            peak = timing.pop("peak_rss_mb")
            results["sizes"][str(n)] = {"build": built, "latency": timing, "mode": "server" if server else "embedded",
                                        "query_process_peak_rss_mb": peak}
            print(f"\n{n:,} chunks ({'chroma server' if server else 'embedded'}), built in {built['seconds']} s; "
                  f"querying process peak RSS {peak:.0f} MB")
            for name, p in timing.items():
                print(f"  {name:<45} p50 {p['p50_ms']:>7.1f} ms   p95 {p['p95_ms']:>7.1f} ms")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
