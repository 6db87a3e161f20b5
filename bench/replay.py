#!/usr/bin/env python3
"""Replay benchmark: the study's own LLM replies through paperchat's chain, without an LLM.

    python bench/replay.py [--bench ../shared/bench] [--out bench/results/replay.json] [--scorer]

The published study's Mixtral-8x22B replies to the ``cq_dev`` questions (``cq_dev_replies.jsonl``) are
served by the fake OpenAI-compatible server of the tests; each question is asked of its own paper through
the chain, once with the strict prompt and once with the published preset, and the chain's output is scored
against ``cq_dev.jsonl``. What is measured is what paperchat's checks make of real LLM replies: abstention
(a reply grounded in no excerpt, or saying the papers do not say, is "I don't know"), answer rate, and the
support of the excerpts the chain marks as supporting the answer (cited or attributed, and supported), not
of everything retrieved. Replies the people judged "Generalized" (textbook content instead of what the paper
reports) should not come back as answers. The raw replies are scored too (abstaining when their wording says
the paper does not say), as the reference point. With ``--scorer`` the reference scorer is run on the same
predictions (``../shared/bench/tools/score.py``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def supporting(result: Any) -> list[dict[str, Any]]:
    """The excerpts the chain marks as supporting its answer, as benchmark citations."""
    return [c.to_row() for c in result.citations if c.cited and c.supported is not False]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "replay.json")
    ap.add_argument("--scorer", action="store_true", help="also run the benchmark's reference scorer")
    args = ap.parse_args()
    replies_path, gold_path = args.bench / "cq_dev_replies.jsonl", args.bench / "cq_dev.jsonl"
    if not replies_path.is_file():
        sys.exit(f"benchmark data not found: {replies_path}")

    from langchain_openai import ChatOpenAI

    from paperchat.abstain import is_abstention
    from paperchat.chain import create_qa_chain
    from paperchat.evaluate import headline, read_jsonl, score_predictions
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings
    from tests.fake_openai import fake_openai_server

    gold = read_jsonl(gold_path)
    rows = read_jsonl(replies_path)
    reply_of = {r["question"] + "\x00" + r["paper_file"]: r["reply"] for r in rows}
    out: dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version(),
                           "date": time.strftime("%Y-%m-%d"), "n_replies": len(rows), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp, fake_openai_server() as server:
        index = PaperIndex.open(settings=Settings(db=Path(tmp) / "db", collection="replay"))
        papers = sorted({r["paper_file"] for r in rows})
        report = index_paths(index, [args.bench / "corpus" / p for p in papers])
        assert report.ok, report.failed
        doc_of = {Path(r.path).name: r.doc_id for r in report.results}
        asking: dict[str, str] = {}

        def respond(payload: dict[str, Any]) -> dict[str, Any]:
            return {"content": reply_of[asking["now"]]}

        server.responder = respond
        llm = ChatOpenAI(model="Mixtral-8x22B (replayed)", base_url=server.base_url, api_key="sk-replay",
                         max_retries=0, timeout=30, temperature=0, streaming=True)
        predictions: dict[str, dict[str, dict[str, Any]]] = {"raw replies": {}}
        for r in rows:
            predictions["raw replies"][r["id"]] = {"id": r["id"], "answer": r["reply"], "abstained": is_abstention(r["reply"]),
                                                   "citations": []}
        for preset in ("strict", "published"):
            chain = create_qa_chain(PaperRetriever(index=index, k=6), llm=llm, prompt=preset)
            preds, details = {}, []
            start = time.perf_counter()
            for r in rows:
                asking["now"] = r["question"] + "\x00" + r["paper_file"]
                result = chain.invoke({"question": r["question"], "papers": [doc_of[Path(r["paper_file"]).name]]})
                preds[r["id"]] = {"id": r["id"], "answer": result.answer, "abstained": result.abstained,
                                  "citations": supporting(result)}
                details.append({"id": r["id"], "verdict": r["human_verdict"], "abstained": result.abstained,
                                "confidence": result.confidence, "notice": result.notice})
            predictions[preset] = preds
            out["runs"][preset] = {"seconds": round(time.perf_counter() - start, 2), "rows": details}

    generalized = {r["id"] for r in rows if r["human_verdict"].lower() == "generalized"}
    table = {}
    for name, preds in predictions.items():
        metrics = score_predictions(gold, preds)
        shown = sum(not preds[i]["abstained"] for i in generalized)
        table[name] = {**headline(metrics), "abstention_precision": metrics["abstention"]["precision"],
                       "abstention_recall": metrics["abstention"]["recall"],
                       "generic_presented": f"{shown} of {len(generalized)}"}
        out.setdefault("metrics", {})[name] = metrics
        if args.scorer:
            pred_path = args.out.parent / f"replay-predictions-{name.replace(' ', '-')}.jsonl"
            pred_path.parent.mkdir(parents=True, exist_ok=True)
            pred_path.write_text("".join(json.dumps(p) + "\n" for p in preds.values()), encoding="utf-8")
            done = subprocess.run([sys.executable, str(args.bench / "tools" / "score.py"), "--gold", str(gold_path),
                                   "--pred", str(pred_path)], capture_output=True, text=True, check=True)
            out.setdefault("reference_scorer", {})[name] = json.loads(done.stdout)
            pred_path.unlink()
    out["table"] = table

    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    print(f"{'cq_dev replies, ' + str(len(rows)) + ' rows':42} " + " ".join(f"{n:>14}" for n in table))
    for metric in ("abstention_f1", "abstention_precision", "abstention_recall", "answer_rate", "reference_support",
                   "generic_presented"):
        print(f"{metric:42} " + " ".join(f"{fmt(table[n][metric]):>14}" for n in table))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
