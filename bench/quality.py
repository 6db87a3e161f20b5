#!/usr/bin/env python3
"""Quality benchmark: retrieval choices and end-to-end answers on the dev sets, beside the published pipeline.

    python bench/quality.py [--bench ../shared/bench] [--out bench/results/quality.json]

In one run, on ``cq_dev`` and ``qasper_dev`` (each question restricted to its paper):

* retrieval variants, scored on their top excerpts up to the 4,000-character budget (never abstaining,
  like the published pipeline): dense only, hybrid (reciprocal rank fusion) with and without answer-type
  query expansion, the RRF constant, and k;
* the published pipeline's retrieval (PDFMiner, 1000/50 chunks, top 4);
* paperchat end to end (extractive answerer): abstention, answer rate, support/recall on all shown
  excerpts and on cited excerpts only, and per question. The support model was fitted on these dev sets
  (``bench/fit_support.py``), so each paper's questions are answered by the model fitted without that
  paper (the fold models in ``bench/results/support_fit.json``): the figures are cross-validated. The
  shipped model's own figures on the same rows (fitted on them, so optimistic) are reported beside.

Prints a table and writes JSON. This is how the defaults in ``Settings``/``PaperRetriever`` were chosen.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
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


def extract_with_models(index: Any, rows: list[dict], doc_of: dict[str, str], out: Path,
                        models: dict[str, Any] | None) -> float:
    """``paperchat extract`` over the rows, each paper's questions answered with ``models[paper]`` (a fold
    model, fitted without that paper) or, without ``models``, the shipped model. Returns seconds."""
    from paperchat.chain import create_qa_chain
    from paperchat.extract import Task, run_extraction
    from paperchat.extractive import FETCH, ExtractiveAnswerer
    from paperchat.support import SupportModel
    from paperchat.vectorstore.retriever import PaperRetriever

    retriever = PaperRetriever(index=index, k=6)
    by_paper: dict[str, list[dict]] = {}
    for r in rows:
        by_paper.setdefault(r["paper_file"], []).append(r)
    start = time.perf_counter()
    for paper, paper_rows in by_paper.items():
        if models is not None and paper not in models:
            raise SystemExit(f"no fold model for {paper}: rerun bench/fit_support.py")
        model = SupportModel.from_json(models[paper]) if models is not None else None
        answerer = ExtractiveAnswerer(model=model)
        chain = create_qa_chain(retriever, extractive=answerer)
        tasks = [Task(r["id"], r["paper_file"], r["question"], doc_of[Path(r["paper_file"]).name]) for r in paper_rows]
        run_extraction(retriever, chain, tasks, out, fetch=FETCH)  # as `paperchat extract` does without an LLM
    return time.perf_counter() - start


def per_question(rows: list[dict], preds: dict[str, dict]) -> list[dict[str, Any]]:
    """Per question (cq_dev: the same question asked of each paper): share answered, share abstained where
    the paper does not answer, and reference support."""
    from paperchat.evaluate import score_predictions

    kinds: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("answerable") is not None:
            kinds.setdefault(r["id"].rsplit("-", 1)[-1], []).append(r)
    table = []
    for _, kind_rows in sorted(kinds.items()):
        answered = [not preds.get(r["id"], {"abstained": True})["abstained"] for r in kind_rows]
        unanswerable = [r for r in kind_rows if r["answerable"] is False]
        metrics = score_predictions(kind_rows, preds)
        table.append({
            "question": re.sub(r"\s*\(e\.g\..*", "", kind_rows[0]["question"]).rstrip("?") + "?",
            "pairs": len(kind_rows),
            "answerable": sum(r["answerable"] is True for r in kind_rows),
            "answered": round(sum(answered) / len(kind_rows), 2),
            "abstained": round(1 - sum(answered) / len(kind_rows), 2),
            "abstained_where_unanswerable": (f"{sum(preds.get(r['id'], {'abstained': True})['abstained'] for r in unanswerable)}"
                                             f"/{len(unanswerable)}") if unanswerable else "-",
            "support": (metrics.get("reference_support") or {}).get("mean"),
        })
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality.json")
    ap.add_argument("--embedder", default="minilm", help="minilm (default) or minilm-int8")
    ap.add_argument("--support-fit", type=Path, default=ROOT / "bench" / "results" / "support_fit.json",
                    help="the fold models of bench/fit_support.py (cross-validated end-to-end figures)")
    args = ap.parse_args()
    if not (args.bench / "corpus").is_dir():
        sys.exit(f"benchmark data not found: {args.bench}")

    from paperchat.baseline import baseline_predictions
    from paperchat.evaluate import headline, read_jsonl, score_predictions
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
        folds = json.loads(args.support_fit.read_text())["fold_models"] if args.support_fit.exists() else None
        if folds is None:
            sys.exit(f"{args.support_fit} not found: run bench/fit_support.py first")
        end_to_end: dict[str, Any] = {}
        questions: dict[str, Any] = {}
        for name, rows in sets.items():
            for label, models in (("cross-validated", folds), ("shipped model (fitted on these rows)", None)):
                pred_path = Path(tmp) / f"{name}-{'cv' if models else 'shipped'}.jsonl"
                seconds = extract_with_models(index, rows, doc_of, pred_path, models)
                preds = {p["id"]: p for p in read_jsonl(pred_path)}
                cited = {k: {**p, "citations": [c for c in p["citations"] if c.get("cited")]} for k, p in preds.items()}
                row = {
                    "all shown excerpts": headline(score_predictions(rows, preds)),
                    "cited excerpts only": headline(score_predictions(rows, cited)),
                    "excluding CONFLICT rows": headline(score_predictions(rows, preds, exclude_conflicts=True)),
                    "seconds": round(seconds, 1),
                }
                end_to_end.setdefault(name, {})[label] = row
                if name == "cq_dev" and models:
                    questions[name] = per_question(rows, preds)
    results["retrieval (top excerpts to 4,000 chars, never abstaining)"] = table
    results["paperchat extractive, end to end"] = end_to_end
    results["per question (cq_dev, cross-validated)"] = questions

    print(f"{'retrieval variant':<58}{'cq support':>11}{'qasper recall':>14}{'hit':>7}")
    for label, row in table.items():
        print(f"{label:<58}{row['cq_dev']['reference_support']:>11.3f}{row['qasper_dev']['evidence_recall']:>14.3f}"
              f"{row['qasper_dev']['evidence_hit_rate']:>7.3f}")
    print("\nend to end (extractive):")
    for name, by_model in end_to_end.items():
        for model_label, row in by_model.items():
            for label in ("all shown excerpts", "cited excerpts only", "excluding CONFLICT rows"):
                print(f"  {name:<11} {model_label[:15]:<16} {label:<24} {json.dumps(row[label])}")
    print("\nper question (cq_dev, cross-validated):")
    for q in questions.get("cq_dev", []):
        print(f"  {q['question'][:70]:<72} answered {q['answered']:.2f} abstained {q['abstained']:.2f} "
              f"(where unanswerable {q['abstained_where_unanswerable']}) support {q['support']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
