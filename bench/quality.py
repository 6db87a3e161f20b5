#!/usr/bin/env python3
"""Quality benchmark: retrieval choices and end-to-end answers on the dev sets, beside the published pipeline.

    python bench/quality.py [--bench ../shared/bench] [--out bench/results/quality.json]

In one run, on ``cq_dev`` and ``qasper_dev`` (each question restricted to its paper):

* retrieval variants, scored on their top excerpts up to the 4,000-character budget (never abstaining,
  like the published pipeline): dense only, hybrid (reciprocal rank fusion) with and without answer-type
  query expansion, the RRF constant, and k;
* the published pipeline's retrieval (PDFMiner, 1000/50 chunks, top 4);
* paperchat end to end (extractive answerer): abstention, answer rate, support/recall on all shown
  excerpts and on cited excerpts only.

Prints a table and writes JSON. This is how the defaults in ``Settings``/``PaperRetriever`` were chosen.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def retrieval_predictions(retriever: Any, rows: list[dict], doc_of: dict[str, str]) -> dict[str, dict]:
    """Never-abstaining predictions whose citations are the retrieved excerpts, in rank order."""
    out = {}
    for row in rows:
        docs = retriever.invoke(row["question"], papers=[doc_of[Path(row["paper_file"]).name]])
        out[row["id"]] = {"id": row["id"], "answer": "", "abstained": False,
                          "citations": [{"text": d.page_content, "source": d.metadata["file"], "page": d.metadata["page"]}
                                        for d in docs]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality.json")
    ap.add_argument("--embedder", default="minilm", help="minilm (default) or minilm-int8")
    args = ap.parse_args()
    if not (args.bench / "corpus").is_dir():
        sys.exit(f"benchmark data not found: {args.bench}")

    from paperchat.baseline import baseline_predictions
    from paperchat.chain import create_qa_chain
    from paperchat.evaluate import headline, read_jsonl, score_predictions
    from paperchat.extract import Task, run_extraction
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings

    sets = {name: read_jsonl(args.bench / f"{name}.jsonl") for name in ("cq_dev", "qasper_dev")}
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "embedder": args.embedder,
                               "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, Python {platform.python_version()}"}
    with tempfile.TemporaryDirectory() as tmp:
        index = PaperIndex.open(Settings(db=Path(tmp) / "db", embedder=args.embedder))
        files = sorted({args.bench / "corpus" / r["paper_file"] for rows in sets.values() for r in rows})
        report = index_paths(index, files)
        assert report.ok, report.failed
        doc_of = {r.file: r.id for r in index.list_documents()}

        def variant(**kw: Any) -> PaperRetriever:
            return PaperRetriever(index=index, **kw)

        variants: dict[str, PaperRetriever] = {
            "dense, k=6": variant(mode="dense", k=6),
            "hybrid RRF, no expansion, k=6": variant(k=6, expand_queries=False),
            "hybrid RRF + answer-type expansion, k=4": variant(k=4),
            "hybrid RRF + answer-type expansion, k=6 (default)": variant(k=6),
            "hybrid RRF + answer-type expansion, k=8": variant(k=8),
            "hybrid RRF (k_rrf=20) + expansion, k=6": variant(k=6, rrf_k=20),
        }
        table: dict[str, dict[str, Any]] = {}
        for label, retriever in variants.items():
            table[label] = {name: headline(score_predictions(rows, retrieval_predictions(retriever, rows, doc_of)))
                            for name, rows in sets.items()}
        table["published pipeline retrieval (PDFMiner, 1000/50, top 4)"] = {
            name: headline(score_predictions(rows, baseline_predictions(rows, args.bench / "corpus", index.embedder)))
            for name, rows in sets.items()
        }
        retriever = PaperRetriever(index=index, k=6)
        chain = create_qa_chain(retriever)
        end_to_end: dict[str, Any] = {}
        for name, rows in sets.items():
            pred_path = Path(tmp) / f"{name}.jsonl"
            tasks = [Task(r["id"], r["paper_file"], r["question"], doc_of[Path(r["paper_file"]).name]) for r in rows]
            start = time.perf_counter()
            run_extraction(retriever, chain, tasks, pred_path)
            seconds = time.perf_counter() - start
            preds = {p["id"]: p for p in read_jsonl(pred_path)}
            cited = {k: {**p, "citations": [c for c in p["citations"] if c.get("cited")]} for k, p in preds.items()}
            end_to_end[name] = {
                "all shown excerpts": headline(score_predictions(rows, preds)),
                "cited excerpts only": headline(score_predictions(rows, cited)),
                "excluding CONFLICT rows": headline(score_predictions(rows, preds, exclude_conflicts=True)),
                "seconds": round(seconds, 1),
            }
    results["retrieval (top excerpts to 4,000 chars, never abstaining)"] = table
    results["paperchat extractive, end to end"] = end_to_end

    print(f"{'retrieval variant':<58}{'cq support':>11}{'qasper recall':>14}{'hit':>7}")
    for label, row in table.items():
        print(f"{label:<58}{row['cq_dev']['reference_support']:>11.3f}{row['qasper_dev']['evidence_recall']:>14.3f}"
              f"{row['qasper_dev']['evidence_hit_rate']:>7.3f}")
    print("\nend to end (extractive):")
    for name, row in end_to_end.items():
        for label in ("all shown excerpts", "cited excerpts only", "excluding CONFLICT rows"):
            print(f"  {name:<11} {label:<24} {json.dumps(row[label])}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
