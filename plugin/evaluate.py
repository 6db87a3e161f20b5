"""Metrics of answers against a labelled question set (the format of ``../shared/bench/*.jsonl``).

Implemented from the benchmark's written definitions (README, "Metrics"); ``paperchat eval --scorer``
also runs the benchmark's own reference scorer on the same predictions, for a cross-check.

* **Abstention** (positive class: the question should be abstained on, ``answerable=false``): accuracy,
  precision, recall, F1.
* **Answer rate on answerable**: the share of answerable questions that got an answer.
* **Reference support**: for answerable rows with a reference answer, the share of the reference's
  salient terms (content words not in the question) found in the cited excerpts; mean over rows.
* **Evidence recall** (QASPER): for answerable rows with gold evidence paragraphs, the share of
  paragraphs found, a paragraph counting as found when at least half of its content words occur in one
  cited excerpt; mean over rows. Hit rate: rows with at least one paragraph found.
* **Citations from the target paper**: share of cited excerpts that come from the asked-about paper.

Cited excerpts count up to a budget of 4,000 characters, in order (the published pipeline shows four
chunks of up to 1,000 characters), so showing more text cannot score more. Rows with ``answerable=null``
are skipped; a row without a prediction counts as an abstention without citations.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from paperchat.confusion import Confusion, ratio
from paperchat.vectorstore.text import content_tokens, salient_terms

BUDGET_CHARS = 4000
EVIDENCE_FOUND_SHARE = 0.5


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def within_budget(citations: list[dict[str, Any]], budget: int | None = BUDGET_CHARS) -> list[dict[str, Any]]:
    """Citations in order until the budget of excerpt characters is spent (the last one cut to fit)."""
    if not budget:
        return citations
    kept: list[dict[str, Any]] = []
    used = 0
    for cit in citations:
        if used >= budget:
            break
        text = cit.get("text") or ""
        kept.append({**cit, "text": text[: budget - used]})
        used += len(text)
    return kept


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def score_predictions(
    gold: Iterable[dict[str, Any]],
    predictions: dict[str, dict[str, Any]],
    exclude_conflicts: bool = False,
    budget: int | None = BUDGET_CHARS,
) -> dict[str, Any]:
    """The metrics (module docstring) of predictions keyed by id against gold rows."""
    abstention = Confusion()  # predicted: abstained; actual: the paper does not answer
    missing = 0
    support: list[float] = []
    recall: list[float] = []
    hits: list[float] = []
    cited = on_target = 0
    for row in gold:
        answerable = row.get("answerable")
        if answerable is None or (exclude_conflicts and "CONFLICT" in (row.get("label_note") or "")):
            continue
        pred = predictions.get(row["id"])
        if pred is None:
            missing += 1
            pred = {"abstained": True, "citations": []}
        abstention.add(bool(pred.get("abstained")), answerable is False)
        cits = within_budget(pred.get("citations") or [], budget)
        target = os.path.basename(row.get("paper_file") or "")
        cited += len(cits)
        on_target += sum(os.path.basename(str(c.get("source") or "")) == target for c in cits)
        excerpt_words = [content_tokens(c.get("text") or "") for c in cits]
        if answerable is True and row.get("reference"):
            terms = salient_terms(row["reference"], row.get("question", ""))
            if terms:
                union = set().union(*excerpt_words) if excerpt_words else set()
                support.append(len(terms & union) / len(terms))
        if answerable is True and row.get("evidence"):
            found = []
            for paragraph in row["evidence"]:
                words = content_tokens(paragraph)
                found.append(bool(words) and any(len(words & ex) / len(words) >= EVIDENCE_FOUND_SHARE for ex in excerpt_words))
            recall.append(sum(found) / len(found))
            hits.append(1.0 if any(found) else 0.0)
    c = abstention
    out: dict[str, Any] = {
        "n_scored": c.n,
        "n_should_abstain": c.tp + c.fn,
        "n_answerable": c.fp + c.tn,
        "n_missing_predictions": missing,
        "abstention": c.as_dict(),
        "answer_rate_on_answerable": ratio(c.tn, c.tn + c.fp),
        "citations_from_target_paper": ratio(on_target, cited),
    }
    if support:
        out["reference_support"] = {"mean": _mean(support), "n": len(support)}
    if recall:
        out["evidence_recall"] = {"mean": _mean(recall), "n": len(recall), "hit_rate": _mean(hits)}
    return out


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The few numbers worth a table row."""
    return {
        "abstention_f1": metrics["abstention"]["f1"],
        "abstention_accuracy": metrics["abstention"]["accuracy"],
        "answer_rate": metrics["answer_rate_on_answerable"],
        "reference_support": (metrics.get("reference_support") or {}).get("mean"),
        "evidence_recall": (metrics.get("evidence_recall") or {}).get("mean"),
        "evidence_hit_rate": (metrics.get("evidence_recall") or {}).get("hit_rate"),
    }
