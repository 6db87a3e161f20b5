#!/usr/bin/env python3
"""How many sentences the extractive answerer must embed, and the bound that lets it skip the rest.

    python bench/extractive_bound.py [--bench ../shared/bench] [--out bench/results/extractive_bound.json]

On the dev sets' papers, each question asked of its own paper and of a random other one (off topic):

1. the distribution of (a sentence's cosine to the question) - (its excerpt's cosine), for sentences with
   the question's focus words or answer type and for the others: the margins of
   ``paperchat.extractive`` are chosen from it;
2. the answers with every sentence embedded and with the bound, side by side: how many differ, and how
   many sentences each embeds per question.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extractive_bound.json")
    args = ap.parse_args()
    if not (args.bench / "corpus").is_dir():
        sys.exit(f"benchmark data not found: {args.bench}")

    from paperchat import extractive
    from paperchat.evaluate import read_jsonl
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
        retriever = PaperRetriever(index=index, k=6)
        rng = random.Random(0)
        cases = []
        for r in rows:
            own = doc_of[Path(r["paper_file"]).name]
            other = rng.choice([d.id for d in docs if d.id != own])
            for paper, kind in ((own, "own paper"), (other, "off topic")):
                cases.append((r["question"], kind, retriever.invoke(r["question"], papers=[paper])))

        class Counting:
            def __init__(self) -> None:
                self.n = 0

            def embed_array(self, texts: list[str]) -> np.ndarray:
                self.n += len(texts)
                return index.embedder.embed_array(texts)

        counting = Counting()
        every = extractive.ExtractiveAnswerer(counting, bound_margins=None, vectors=VectorCache(counting, 0))
        bounded = extractive.ExtractiveAnswerer(counting, vectors=VectorCache(counting, 0))
        deltas: dict[str, list[float]] = {"related": [], "unrelated": []}
        embedded: dict[str, dict[str, list[int]]] = {"all sentences": {}, "bounded": {}}
        differ = 0
        for question, kind, context in cases:
            similarity = [float(d.metadata.get("similarity", 0.0)) for d in context]
            candidates = extractive.candidate_sentences(context)
            if candidates:
                every.score(question, candidates, len(context), similarity)
                for c in candidates:
                    key = "related" if extractive._related(c) else "unrelated"
                    deltas[key].append(c.parts["meaning"] - similarity[c.excerpt])
            answers = []
            for label, answerer in (("all sentences", every), ("bounded", bounded)):
                counting.n = 0
                found = answerer.answer(question, context)
                embedded[label].setdefault(kind, []).append(counting.n - 1)  # minus the question
                answers.append((found.abstained, [c.text for c in found.sentences]))
            differ += answers[0] != answers[1]

    def pct(values: list[float]) -> dict[str, float]:
        return {f"p{p}": round(float(np.percentile(values, p)), 3) for p in (50, 90, 99, 99.9, 100)}

    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "margins": {"related": extractive.BOUND_MARGIN, "unrelated": extractive.BOUND_MARGIN_UNRELATED},
        "sentence_minus_excerpt_similarity": {k: {"sentences": len(v), **pct(v)} for k, v in deltas.items()},
        "questions": len(cases),
        "answers_that_differ": differ,
        "sentences_embedded_per_question": {
            label: {kind: round(float(np.mean(v)), 1) for kind, v in per_kind.items()} for label, per_kind in embedded.items()},
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
