#!/usr/bin/env python3
"""Reliability benchmark: kills survived, fuzzed inputs tried, concurrent sessions held.

    python bench/reliability.py [--kills 30] [--fuzz 2000] [--chunks 100000] [--sessions 8] [--turns 25]
                                [--out bench/results/reliability.json]

1. **Kills**: ``paperchat index`` over ``sample_docs/`` and the sources of its PDFs, SIGKILLed at random
   moments, the store checked by a fresh reader after each kill (no complete document with chunks
   missing, no partial document in any query, none in the keyword index), then rerun and compared with
   a clean build: the same documents, the same chunk ids, no duplicate, nothing left over
   (``tests/faults.py``).
2. **Fuzzing**: mutated PDFs (byte flips, cuts, insertions, repeated slices of the sample PDFs) and random
   bytes as PDF, Markdown and text, each parsed in the isolated worker with its time limit and memory cap:
   every input must end indexed or with one clear per-file error. Reports counts, the slowest input and
   this process's memory before and after.
3. **Load**: concurrent chat sessions (threads sharing one chain, as the chat app does) against a
   synthetic collection of real chunks (``tests/synthetic.py``), extractive answers: errors and latency.

The same checks run in the test suite with small numbers (``tests/integration/test_faults.py``,
``test_hostile.py``, ``test_load.py``). Prints a summary and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))



def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def kills(n: int, work: Path, seed: int) -> dict[str, Any]:
    from tests.faults import kill_and_rerun, paper_folder

    start = time.perf_counter()
    report = kill_and_rerun(paper_folder(work / "papers"), work, kills=n, seed=seed)
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["result"] = "every rerun matched the clean build"
    return report


def fuzz(n: int, work: Path, seed: int) -> dict[str, Any]:
    from paperchat.vectorstore.errors import DocumentError
    from paperchat.vectorstore.worker import ParseJob, ParseWorker
    from tests.faults import CLEAR, SEEDS, mutate

    rng = random.Random(seed)
    job = ParseJob(max_pages=2000, max_bytes=50_000_000, chunk_tokens=200, chunk_overlap=30, tokenizer_path=None,
                   embedder_max_tokens=256, memory_mb=2048)
    counts = {"indexed": 0, "refused": 0}
    reasons: dict[str, int] = {}
    unclear: list[str] = []
    slowest = 0.0
    before = rss_mb()
    with ParseWorker(job, timeout_s=30) as worker:
        for i in range(n):
            if i % 4 == 3:
                suffix = rng.choice([".pdf", ".md", ".txt"])
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(4096)))
            else:
                suffix = ".pdf"
                edits = [(rng.randrange(4), rng.randrange(10**7), rng.randrange(256)) for _ in range(rng.randint(1, 8))]
                data = mutate(SEEDS[rng.randrange(len(SEEDS))], edits)
            path = work / f"fuzz{suffix}"
            path.write_bytes(data)
            start = time.perf_counter()
            try:
                result = worker.parse(path)
                assert result.chunks
                counts["indexed"] += 1
            except DocumentError as exc:
                counts["refused"] += 1
                key = re.sub(r"\(.*", "", exc.reason)[:60].strip()
                reasons[key] = reasons.get(key, 0) + 1
                if not CLEAR.search(exc.reason):
                    unclear.append(exc.reason)
            slowest = max(slowest, time.perf_counter() - start)
    return {"inputs": n, **counts, "unclear_errors": unclear[:10], "slowest_s": round(slowest, 2),
            "parent_rss_mb_before": round(before, 1), "parent_rss_mb_after": round(rss_mb(), 1),
            "top_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:8])}


def load(chunks: int, sessions: int, turns: int, work: Path) -> dict[str, Any]:
    from paperchat.chain import create_qa_chain
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings
    from tests.load import LOAD_QUESTIONS, run_sessions
    from tests.synthetic import build_synthetic, seed_chunks, synthetic_doc_id

    corpus = ROOT.parent / "shared" / "bench" / "corpus"
    texts, metas, vectors = seed_chunks([p for p in (corpus, ROOT / "sample_docs") if p.is_dir()], work)
    settings = Settings(db=work / "load-db", collection="load")
    built = build_synthetic(chunks, texts, metas, vectors, settings)
    chain = create_qa_chain(PaperRetriever(index=PaperIndex.open(settings), k=6))
    papers = [synthetic_doc_id(i) for i in range(0, chunks // 100, 3)]
    chain.invoke({"question": "warm up"})
    report = run_sessions(chain, LOAD_QUESTIONS, papers, sessions=sessions, turns=turns, seed=5, time_limit_s=1800)
    return {"chunks": built["chunks"], "build_s": built["seconds"], **report, "rss_mb": round(rss_mb(), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--fuzz", type=int, default=2000)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--turns", type=int, default=25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reliability.json")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.kills:
            (work / "kills").mkdir()
            result["kills"] = kills(args.kills, work / "kills", args.seed)
            print(f"kills: {json.dumps(result['kills'])}", flush=True)
        if args.fuzz:
            (work / "fuzz").mkdir()
            result["fuzz"] = fuzz(args.fuzz, work / "fuzz", args.seed)
            print(f"fuzz: {json.dumps(result['fuzz'])}", flush=True)
        if args.sessions:
            (work / "load").mkdir()
            result["load"] = load(args.chunks, args.sessions, args.turns, work / "load")
            print(f"load: {json.dumps(result['load'])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
