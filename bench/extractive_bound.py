#!/usr/bin/env python3
"""How many sentences the extractive answerer embeds, and what the cascade that skips the rest costs in answers.

    python bench/extractive_bound.py [--bench ../shared/bench] [--out bench/results/extractive_bound.json]

On the dev sets' papers, each question asked of its own paper and of a random other one (off topic), with
the excerpts the answerer reads (``paperchat.extractive.FETCH``):

1. the answers with every sentence embedded and with the cascade of ``paperchat.support`` (every other
   feature first, the sentence's own meaning only where its bound could still matter): how many differ,
   and how many sentences each embeds per question (mean and 95th percentile);
2. the distribution of (a sentence's cosine to the question) - (its excerpt's cosine), of which the
   cascade's margin is the 99.9th percentile (``bench/fit_support.py`` sets it);
3. the cost of one embedding call of 1, 4 and 8 sentences, and of rating a question's sentences without
   embedding them (CPU time of this process; the machine may be shared, so indicative only).

Prints a summary and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_ms(fn: Any, repeat: int) -> float:
    """Median CPU milliseconds (all threads of this process) of ``fn()``."""
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        samples.append((time.process_time() - start) * 1000)
    return round(float(np.median(samples)), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extractive_bound.json")
    args = ap.parse_args()
    if not (args.bench / "corpus").is_dir():
        sys.exit(f"benchmark data not found: {args.bench}")

    from paperchat.evaluate import read_jsonl
    from paperchat.extractive import FETCH, ExtractiveAnswerer
    from paperchat.support import candidate_sentences, cheap_features, rating_embedder
    from paperchat.vectorstore.embed import VectorCache
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings

    rows = [r for name in ("cq_dev", "qasper_dev") for r in read_jsonl(args.bench / f"{name}.jsonl")]
    with tempfile.TemporaryDirectory() as tmp:
        index = PaperIndex.open(Settings(db=Path(tmp) / "db"))
        assert index_paths(index, sorted({args.bench / "corpus" / r["paper_file"] for r in rows})).ok
        docs = index.list_documents()
        doc_of = {d.file: d.id for d in docs}
        retriever = PaperRetriever(index=index, k=FETCH)
        rng = random.Random(0)
        cases = []
        for r in rows:
            own = doc_of[Path(r["paper_file"]).name]
            other = rng.choice([d.id for d in docs if d.id != own])
            for paper, kind in ((own, "own paper"), (other, "off topic")):
                cases.append((r["question"], kind, retriever.invoke(r["question"], papers=[paper])))

        rating = rating_embedder()  # what the answerer rates sentences with

        class Counting:
            def __init__(self) -> None:
                self.n = 0

            def embed_array(self, texts: list[str]) -> np.ndarray:
                self.n += len(texts)
                return rating.embed_array(texts)

        counting = Counting()
        every = ExtractiveAnswerer(counting, vectors=VectorCache(counting, 0), bounded=False)
        bounded = ExtractiveAnswerer(counting, vectors=VectorCache(counting, 0))
        embedded: dict[str, dict[str, list[int]]] = {"all sentences": {}, "cascade": {}}
        gaps: list[float] = []
        differ = 0
        for question, kind, context in cases:
            answers = []
            for label, answerer in (("all sentences", every), ("cascade", bounded)):
                counting.n = 0
                found = answerer.answer(question, context)
                embedded[label].setdefault(kind, []).append(counting.n - 1)  # minus the question
                answers.append((found.abstained, [c.text for c in found.sentences]))
            differ += answers[0] != answers[1]
            for cand in every.rate(question, context).candidates:
                if cand.embedded:
                    gaps.append(cand.features["meaning"] - cand.features["excerpt_similarity"])

        sentences = [c.text for _, _, ctx in cases for c in candidate_sentences(ctx)]
        embedder = rating
        embedder.embed_array(sentences[:16])  # warm
        calls = {f"{n} sentences per call": cpu_ms(lambda n=n: embedder.embed_array(rng.sample(sentences, n)), 15)
                 for n in (1, 4, 8)}
        question, _, context = cases[0]

        def rate_without_embedding() -> None:
            cands = candidate_sentences(context)
            cheap_features(question, cands, context)

        calls["rating a question's sentences without embedding them"] = cpu_ms(rate_without_embedding, 30)

    def pct(values: list[float]) -> dict[str, float]:
        return {f"p{p}": round(float(np.percentile(values, p)), 3) for p in (50, 90, 99, 99.9, 100)}

    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "excerpts_read": FETCH,
        "meaning_margin": bounded.scorer.meaning_margin,
        "max_embedded": bounded.scorer.max_embedded,
        "questions": len(cases),
        "answers_that_differ": differ,
        "sentences_embedded_per_question": {
            label: {kind: {"mean": round(float(np.mean(v)), 1), "p95": float(np.percentile(v, 95))} for kind, v in per_kind.items()}
            for label, per_kind in embedded.items()},
        "sentence_minus_excerpt_similarity": {"sentences": len(gaps), **pct(gaps)},
        "cpu_ms_indicative": calls,
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
