#!/usr/bin/env python3
"""Fit paperchat's sentence-support model, selected and reported by leave-one-paper-out cross-validation.

    python bench/fit_support.py [--bench ../shared/bench] [--workdir DIR] [--out plugin/data/support_model.json]

Training signal, each question asked of its own paper through paperchat's retriever (the excerpts an
answer would see), every sentence of those excerpts a case:

* ``bench/labels/methodology_labels.jsonl``: the project's hand labels (28 methodology questions x 9
  papers); a sentence containing a labelled evidence quote is positive, the others negative;
* ``qasper_dev.jsonl`` (read by path): sentences inside a gold evidence paragraph are positive;
* ``cq_dev.jsonl`` (read by path, weak labels): a sentence sharing enough of the reference answer's salient
  terms (or containing the evidence quoted in the label note) is positive; unanswerable rows have no
  positive; rows marked CONFLICT are left out.

Selection: for each candidate feature set and L2 strength, every paper is held out in turn, the model
fitted on the other papers' sentences, and the held-out paper's sentences rated; the answer-level
calibration (confidence that the best-rated sentence answers) is fitted the same way on those held-out
ratings. The set with the lowest cross-validated sentence log loss (the model's output is the sentence
probability) is fitted on all data and written
with the calibration, the decision threshold and the cascade bounds; ``bench/results/support_fit.json``
holds the cross-validated figures and one model per held-out paper, which ``bench/quality.py`` uses so
that its dev figures are cross-validated too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = ROOT / "bench" / "labels" / "methodology_labels.jsonl"
#: Features tried, from the fewest to all (every set includes the ones before it).
FEATURE_SETS: dict[str, list[str]] = {
    "meaning+excerpt": ["meaning", "excerpt_similarity", "excerpt_gap", "rank", "keyword_match"],
    "+words and type": ["words", "words_gap", "words_as_written", "focus_missing", "type", "example", "typed_question"],
    "+what the sentence is": ["related", "general", "done", "first_person",
                              "number", "unit", "link", "length"],
    "+section": ["section_intro", "section_methods", "section_results", "section_discussion"],
}
L2_GRID = (1.0, 10.0, 100.0, 300.0, 1000.0, 3000.0)
#: Weight of a weakly labelled case (cq_dev references) relative to a hand-labelled or QASPER one.
WEAK_WEIGHT = 0.5


@dataclass
class Pair:
    """One question about one paper, with what is known about its answer."""

    source: str  # "hand", "qasper" or "cq"
    paper: str
    question: str
    answerable: bool
    quotes: list[str] = field(default_factory=list)  # evidence sentences (hand labels, cq notes)
    paragraphs: list[str] = field(default_factory=list)  # QASPER evidence paragraphs
    reference: str = ""  # cq reference answer (weak)
    id: str = ""


@dataclass
class Case:
    """A pair's retrieved context, its rated sentences and their labels."""

    pair: Pair
    features: np.ndarray  # (n sentences, n features), every sentence embedded
    labels: np.ndarray  # 1 if the sentence answers
    future: np.ndarray  # sentences never quoted
    texts: list[str]
    n_excerpts: int
    excerpt_of: np.ndarray
    context: list[Any] = field(default_factory=list)  # the retrieved excerpts (Documents)

    @property
    def answered_by_context(self) -> bool:
        """The paper answers and an answering sentence is among the excerpts: what the confidence predicts."""
        return bool(self.pair.answerable and self.labels.any())


def _norm(text: str) -> str:
    text = re.sub(r"[\u2018\u2019\u201c\u201d]", "'", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def read_pairs(bench: Path) -> list[Pair]:
    """The labelled pairs of the three sources."""
    from paperchat.evaluate import read_jsonl

    pairs = [Pair("hand", r["paper"], r["question"], r["answerable"], quotes=r["evidence"], id=f"hand-{r['paper']}-{r['q']}")
             for r in read_jsonl(LABELS)]
    for r in read_jsonl(bench / "qasper_dev.jsonl"):
        pairs.append(Pair("qasper", r["paper_file"], r["question"], bool(r["answerable"]), paragraphs=r.get("evidence") or [],
                          id=r["id"]))
    for r in read_jsonl(bench / "cq_dev.jsonl"):
        note = r.get("label_note") or ""
        if r["answerable"] is None or "CONFLICT" in note:
            continue
        evidence = note.split("evidence:", 1)[1] if "evidence:" in note else ""
        quotes = re.findall(r"'([^']{15,})'", evidence)
        reference = r.get("reference") or ("" if quotes else evidence)
        pairs.append(Pair("cq", r["paper_file"], r["question"], bool(r["answerable"]), quotes=quotes, reference=reference,
                          id=r["id"]))
    return pairs


def sentence_label(pair: Pair, sentence: str) -> bool:
    """Whether a sentence of the pair's excerpts answers its question (see the module docstring)."""
    from paperchat.vectorstore.text import content_tokens, salient_terms, terms

    if not pair.answerable:
        return False
    s = _norm(sentence)
    for quote in pair.quotes:
        q = _norm(quote)
        if q in s or (len(s) > 40 and s in q):
            return True
    for paragraph in pair.paragraphs:
        p = _norm(paragraph)
        if s in p:
            return True
        words = set(terms(sentence))
        if len(words) >= 4 and len(words & set(terms(paragraph))) >= 0.8 * len(words):
            return True
    if pair.reference:
        # weak: the sentence is mostly made of the reference answer's salient terms
        salient = salient_terms(pair.reference, pair.question)
        own = content_tokens(sentence) - content_tokens(pair.question)
        shared = salient & own
        return len(shared) >= 2 and len(shared) >= 0.4 * len(own)
    return False


def build_index(bench: Path, workdir: Path, papers: set[str]) -> tuple[Any, dict[str, str]]:
    """An index of the papers (reused from ``workdir`` when it is complete)."""
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths
    from paperchat.vectorstore.settings import Settings

    index = PaperIndex.open(Settings(db=workdir / "db", collection="support"))
    have = {r.file for r in index.list_documents()}
    wanted = {Path(p).name for p in papers}
    if not wanted <= have:
        report = index_paths(index, sorted(bench / "corpus" / p for p in papers))
        assert report.ok, report.failed
    return index, {r.file: r.id for r in index.list_documents()}


class DiskVectors:
    """Sentence vectors kept in a file between runs (the corpus's sentences do not change)."""

    def __init__(self, embedder: Any, path: Path) -> None:
        self.embedder = embedder
        self.path = path
        self.store: dict[str, np.ndarray] = {}
        if path.exists():
            data = np.load(path)
            self.store = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        self.new = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        if missing:
            vectors = self.embedder.embed_array([texts[i] for i in missing])
            for i, v in zip(missing, vectors, strict=True):
                self.store[keys[i]] = v
            self.new += len(missing)
        return np.stack([self.store[k] for k in keys]) if texts else np.zeros((0, 384), np.float32)

    def save(self) -> None:
        if self.new:
            keys = list(self.store)
            np.savez(self.path, keys=np.array(keys), vectors=np.stack([self.store[k] for k in keys]))


def collect(pairs: list[Pair], bench: Path, workdir: Path) -> tuple[list[Case], list[str]]:
    """Every pair's context through paperchat's retriever, every sentence's features and label."""
    from paperchat.extractive import FETCH
    from paperchat.support import SupportModel, SupportScorer, rating_embedder
    from paperchat.vectorstore.retriever import PaperRetriever

    names = [n for group in FEATURE_SETS.values() for n in group]
    index, doc_of = build_index(bench, workdir, {p.paper for p in pairs})
    retriever = PaperRetriever(index=index, k=FETCH)  # what the extractive answerer reads
    embedder = rating_embedder()  # the model rates with this embedder's vectors
    vectors = DiskVectors(embedder, workdir / f"vectors-{embedder.name}.npz")
    zeros = np.zeros(len(names))
    blank = SupportModel(tuple(names), zeros, 0.0, zeros, zeros + 1)  # features only: every sentence is embedded
    scorer = SupportScorer(embedder, model=blank, vectors=vectors)  # type: ignore[arg-type]
    cases = []
    for pair in pairs:
        context = retriever.invoke(pair.question, papers=[doc_of[Path(pair.paper).name]])
        support = scorer.score(pair.question, context, embed_all=True)
        cands = [c for c in support.candidates if c.quotable]  # speculative sentences are never quoted: no case
        if not cands:
            continue
        cases.append(Case(
            pair=pair,
            features=np.array([[c.features[n] for n in names] for c in cands]),
            labels=np.array([sentence_label(pair, c.text) for c in cands], dtype=float),
            future=np.array([bool(c.features["future"]) for c in cands]),
            texts=[c.text for c in cands],
            n_excerpts=len(context),
            excerpt_of=np.array([c.excerpt for c in cands]),
            context=list(context),
        ))
    vectors.save()
    return cases, names


# -- fitting --------------------------------------------------------------------------------------------


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Weighted L2-penalised logistic regression (Newton's method) on standardised features."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(design @ beta, -30, 30)))
        grad = design.T @ (w * (p - y)) + penalty * beta
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[:-1], float(beta[-1])


def case_weights(cases: list[Case]) -> np.ndarray:
    return np.concatenate([np.full(len(c.labels), WEAK_WEIGHT if c.pair.source == "cq" else 1.0) for c in cases])


def fit_sentences(cases: list[Case], columns: list[int], names: list[str], l2: float) -> Any:
    """A :class:`~paperchat.support.SupportModel` (sentence part) fitted on the cases."""
    from paperchat.support import SupportModel

    x = np.vstack([c.features[:, columns] for c in cases])
    y = np.concatenate([c.labels for c in cases])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    weights, bias = fit_logistic((x - mean) / scale, y, case_weights(cases), l2)
    return SupportModel(tuple(names[i] for i in columns), weights, bias, mean, scale)


def best_logits(model: Any, cases: list[Case], columns: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per case, the logit of the best-rated sentence, and whether the excerpts answer the question."""
    tops = np.array([float(np.max(model.logits(c.features[:, columns]))) for c in cases])
    return tops, np.array([float(c.answered_by_context) for c in cases])


def fit_calibration(top: np.ndarray, hit: np.ndarray) -> tuple[float, float]:
    """Platt scaling of the best sentence's logit to P(the excerpts answer)."""
    top = np.where(np.isfinite(top), top, -30.0)
    coef, intercept = fit_logistic(top[:, None], hit, np.ones_like(hit), 1e-3)
    return float(coef[0]), intercept


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _auc(score: np.ndarray, y: np.ndarray) -> float | None:
    pos, neg = score[y == 1], score[y == 0]
    if not len(pos) or not len(neg):
        return None
    order = np.argsort(np.concatenate([pos, neg]))
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def cross_validate(cases: list[Case], columns: list[int], names: list[str], l2: float) -> dict[str, Any]:
    """Leave-one-paper-out: out-of-fold sentence logits, then out-of-fold answer calibration."""
    papers = sorted({c.pair.paper for c in cases})
    oof_top = np.zeros(len(cases))
    oof_hit = np.zeros(len(cases))
    sentence_p, sentence_y = [], []
    for paper in papers:
        train = [c for c in cases if c.pair.paper != paper]
        held = [i for i, c in enumerate(cases) if c.pair.paper == paper]
        model = fit_sentences(train, columns, names, l2)
        top, hit = best_logits(model, [cases[i] for i in held], columns)
        oof_top[held], oof_hit[held] = top, hit
        for i in held:
            sentence_p.append(1 / (1 + np.exp(-model.logits(cases[i].features[:, columns]))))
            sentence_y.append(cases[i].labels)
    conf = np.zeros(len(cases))
    for paper in papers:
        train = np.array([c.pair.paper != paper for c in cases])
        slope, intercept = fit_calibration(oof_top[train], oof_hit[train])
        top = np.where(np.isfinite(oof_top[~train]), oof_top[~train], -30.0)
        conf[~train] = 1 / (1 + np.exp(-(slope * top + intercept)))
    p, y = np.concatenate(sentence_p), np.concatenate(sentence_y)
    return {
        "sentence_log_loss": round(_log_loss(p, y), 4),
        "sentence_auc": round(_auc(p, y) or 0.0, 4),
        "answer_log_loss": round(_log_loss(conf, oof_hit), 4),
        "answer_auc": round(_auc(conf, oof_hit) or 0.0, 4),
        "confidence": conf,
        "hit": oof_hit,
        "top_logit": oof_top,
    }


def decision_report(cases: list[Case], confidence: np.ndarray, hit: np.ndarray, threshold: float) -> dict[str, Any]:
    """Answer/abstain figures per source at a confidence threshold (out-of-fold)."""
    out: dict[str, Any] = {}
    for source in sorted({c.pair.source for c in cases}):
        idx = [i for i, c in enumerate(cases) if c.pair.source == source]
        answerable = np.array([cases[i].pair.answerable for i in idx])
        answered = confidence[idx] >= threshold
        tp = int(np.sum(~answered & ~answerable))
        fp = int(np.sum(~answered & answerable))
        fn = int(np.sum(answered & ~answerable))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        out[source] = {
            "pairs": len(idx),
            "answer_rate_on_answerable": round(float(answered[answerable].mean()), 3) if answerable.any() else None,
            "abstention_f1": round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0,
            "answered_where_the_excerpts_answer": round(float(hit[idx][answered].mean()), 3) if answered.any() else None,
            "calibration_mean_confidence": round(float(confidence[idx].mean()), 3),
            "calibration_hit_rate": round(float(hit[idx].mean()), 3),
        }
    return out


def collection_check(cases: list[Case], columns: list[int], names: list[str], l2: float) -> dict[str, Any]:
    """Does comparing a paper's evidence with the same question's evidence across the collection help?

    Batch extraction asks one question of many papers. Beside the best sentence's logit, the answer-level
    calibration gets how far it stands above the same question's best logits in the other papers (their
    median, mean or maximum); both calibrations are fitted and scored leave-one-paper-out on the pairs
    whose question was asked of at least three papers (the hand labels and cq_dev)."""
    papers = sorted({c.pair.paper for c in cases})
    top = np.zeros(len(cases))
    for paper in papers:
        model = fit_sentences([c for c in cases if c.pair.paper != paper], columns, names, l2)
        for i, c in enumerate(cases):
            if c.pair.paper == paper:
                top[i] = float(np.max(model.logits(c.features[:, columns])))
    hit = np.array([float(c.answered_by_context) for c in cases])
    peers = [[j for j, o in enumerate(cases) if o.pair.question == c.pair.question and o.pair.paper != c.pair.paper]
             for c in cases]
    scored = np.array([len(p) >= 2 for p in peers])
    out: dict[str, Any] = {"pairs": int(scored.sum())}
    for kind, summary in (("best logit only", None), ("minus the median of the other papers", np.median),
                          ("minus the mean", np.mean), ("minus the maximum", np.max)):
        x = top[:, None] if summary is None else np.column_stack(
            [top, [top[i] - summary(top[p]) if len(p) >= 2 else 0.0 for i, p in enumerate(peers)]])
        conf = np.zeros(len(cases))
        for paper in papers:
            train = np.array([c.pair.paper != paper for c in cases]) & scored
            held = np.array([c.pair.paper == paper for c in cases])
            mean, scale = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
            coef, intercept = fit_logistic((x[train] - mean) / scale, hit[train], np.ones(int(train.sum())), 1e-3)
            conf[held] = 1 / (1 + np.exp(-(intercept + ((x[held] - mean) / scale) @ coef)))
        out[kind] = {"answer_log_loss": round(_log_loss(conf[scored], hit[scored]), 4),
                     "answer_auc": round(_auc(conf[scored], hit[scored]) or 0.0, 4)}
    return out


class StoredMeaning:
    """Vectors whose dot products reproduce each sentence's stored similarity to the question, so that the
    real cascade (:class:`~paperchat.support.SupportScorer`) can be replayed on collected cases."""

    def __init__(self, question: str, meaning: dict[str, float]) -> None:
        self.question = question
        self.meaning = meaning

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 2))
        for i, t in enumerate(texts):
            m = 1.0 if t == self.question else self.meaning[t]
            out[i] = (m, math.sqrt(max(0.0, 1 - m * m)))
        return out


def replay_cascade(model: Any, cases: list[Case], names: list[str], margin: float, max_embedded: int) -> dict[str, Any]:
    """The extractive answerer with the cascade on the collected cases against rating every sentence: how
    often the answer (abstention, quoted sentences) is the same, and how many sentences it embeds."""
    from paperchat.extractive import ExtractiveAnswerer

    meaning = names.index("meaning")
    same = same_decision = 0
    embedded = []
    for c in cases:
        vectors = StoredMeaning(c.pair.question, dict(zip(c.texts, c.features[:, meaning], strict=True)))
        answers = []
        for bounded in (False, True):
            answerer = ExtractiveAnswerer(None, model=model, vectors=vectors, bounded=bounded)  # type: ignore[arg-type]
            answerer.scorer.meaning_margin, answerer.scorer.max_embedded = margin, max_embedded
            found = answerer.answer(c.pair.question, c.context)
            answers.append((found.abstained, [s.text for s in found.sentences]))
        same += answers[0] == answers[1]
        same_decision += answers[0][0] == answers[1][0] and answers[0][1][:1] == answers[1][1][:1]
        embedded.append(found.embedded)
    return {"max_embedded": max_embedded, "same_answer": round(same / len(cases), 4),
            "same_decision_and_first_quote": round(same_decision / len(cases), 4),
            "embedded_mean": round(float(np.mean(embedded)), 1), "embedded_p95": float(np.percentile(embedded, 95))}


def per_question(cases: list[Case], confidence: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """Per hand-labelled question (asked of each of the 9 papers), out-of-fold: share answered, share
    abstained where the paper does not answer, and share answered where the excerpts hold the answer."""
    table = []
    for q in sorted({c.pair.question for c in cases if c.pair.source == "hand"},
                    key=lambda q: next(c.pair.id for c in cases if c.pair.question == q).split("-")[-1].zfill(2)):
        idx = [i for i, c in enumerate(cases) if c.pair.source == "hand" and c.pair.question == q]
        answered = confidence[idx] >= threshold
        answerable = np.array([cases[i].pair.answerable for i in idx])
        held = np.array([cases[i].answered_by_context for i in idx])
        table.append({
            "question": q, "papers": len(idx), "answerable": int(answerable.sum()),
            "answered": round(float(answered.mean()), 2),
            "abstained_where_unanswerable": f"{int((~answered & ~answerable).sum())}/{int((~answerable).sum())}",
            "answered_where_answerable": f"{int((answered & answerable).sum())}/{int(answerable.sum())}",
            "answered_and_excerpts_answer": f"{int((answered & held).sum())}/{int(answered.sum())}",
        })
    return table


def calibration_table(confidence: np.ndarray, hit: np.ndarray, bins: int = 5) -> list[dict[str, Any]]:
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (confidence >= lo) & (confidence < hi if hi < 1 else confidence <= hi)
        if sel.any():
            rows.append({"confidence": f"{lo:.1f}-{hi:.1f}", "pairs": int(sel.sum()),
                         "mean_confidence": round(float(confidence[sel].mean()), 3), "answers": round(float(hit[sel].mean()), 3)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--workdir", type=Path, help="keep the index and sentence vectors here between runs")
    ap.add_argument("--out", type=Path, default=ROOT / "plugin" / "data" / "support_model.json")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "support_fit.json")
    args = ap.parse_args()
    if not (args.bench / "corpus").is_dir():
        sys.exit(f"benchmark data not found: {args.bench}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="paperchat-support-"))
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pairs = read_pairs(args.bench)
    from paperchat.support import rating_embedder

    embedder_name = rating_embedder().name  # the vectors collect() rates with (recorded in the model)
    cases, names = collect(pairs, args.bench, workdir)
    print(f"{len(cases)} pairs, {sum(len(c.labels) for c in cases)} sentences, "
          f"{int(sum(c.labels.sum() for c in cases))} positive ({time.perf_counter() - start:.0f} s)")
    for source in ("hand", "qasper", "cq"):
        sel = [c for c in cases if c.pair.source == source]
        found = sum(c.labels.any() for c in sel if c.pair.answerable)
        print(f"  {source}: {len(sel)} pairs, {sum(c.pair.answerable for c in sel)} answerable, "
              f"{found} with an answering sentence retrieved")

    selection: list[dict[str, Any]] = []
    chosen: tuple[float, list[int], float, str] | None = None
    used: list[str] = []
    for label, group in FEATURE_SETS.items():
        used = used + group
        columns = [names.index(n) for n in used]
        for l2 in L2_GRID:
            cv = cross_validate(cases, columns, names, l2)
            row = {"features": label, "l2": l2, **{k: v for k, v in cv.items() if not isinstance(v, np.ndarray)}}
            selection.append(row)
            print(f"  {label:<24} l2={l2:<6} {json.dumps({k: row[k] for k in row if k not in ('features', 'l2')})}")
            # the model's output is the sentence probability: chosen by its cross-validated log loss
            if chosen is None or cv["sentence_log_loss"] < chosen[0]:
                chosen = (cv["sentence_log_loss"], columns, l2, label)
    assert chosen is not None
    _, columns, l2, label = chosen
    cv = cross_validate(cases, columns, names, l2)
    threshold = 0.5  # the confidence is calibrated: answer when the quoted sentence more likely answers than not
    # the gate before an LLM call: a lower bar that (cross-validated) almost no answered pair falls under
    answered = cv["hit"] == 1
    gate = math.floor(float(np.percentile(cv["confidence"][answered], 1)) * 100) / 100
    gate_report = {"min_confidence": gate, "answered_pairs_stopped": int(np.sum(cv["confidence"][answered] < gate)),
                   "answered_pairs": int(answered.sum()), "other_pairs_stopped": int(np.sum(cv["confidence"][~answered] < gate)),
                   "other_pairs": int((~answered).sum())}
    model = fit_sentences(cases, columns, names, l2)
    top, hit = best_logits(model, cases, columns)
    slope, intercept = fit_calibration(top, hit)
    folds = {}
    for paper in sorted({c.pair.paper for c in cases}):
        train = [c for c in cases if c.pair.paper != paper]
        fold = fit_sentences(train, columns, names, l2)
        fold_slope, fold_intercept = fit_calibration(*best_logits(fold, train, columns))
        folds[paper] = {**fold.to_json(), "answer_slope": fold_slope, "answer_intercept": fold_intercept, "threshold": threshold}

    from dataclasses import replace

    collection = collection_check(cases, columns, names, l2)
    print("collection-level calibration:", json.dumps(collection))
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "collection_level_calibration": collection,
        "gate": gate_report,
        "chosen": {"features": label, "l2": l2},
        "pairs": len(cases),
        "sentences": int(sum(len(c.labels) for c in cases)),
        "cross_validated": {
            "sentence_log_loss": cv["sentence_log_loss"], "sentence_auc": cv["sentence_auc"],
            "answer_log_loss": cv["answer_log_loss"], "answer_auc": cv["answer_auc"],
            "decisions_at_threshold": decision_report(cases, cv["confidence"], cv["hit"], threshold),
            "calibration": calibration_table(cv["confidence"], cv["hit"]),
            "per_question_hand_labels": per_question(cases, cv["confidence"], threshold),
        },
        "selection": selection,
    }
    info = {"fitted_by": "bench/fit_support.py", "date": report["date"], "pairs": len(cases), "gate_confidence": gate,
            "embedder": embedder_name,
            "sentences": report["sentences"], "l2": l2, "cross_validated": {k: report["cross_validated"][k] for k in
                                                                             ("sentence_auc", "answer_auc", "answer_log_loss")}}
    final = replace(model, answer_slope=slope, answer_intercept=intercept, threshold=threshold, info=info)
    # the cascade's bound: how far a sentence's similarity to the question exceeds its excerpt's
    gap = np.concatenate([c.features[:, names.index("meaning")] - c.features[:, names.index("excerpt_similarity")]
                          for c in cases])
    margin = round(float(np.percentile(gap, 99.9)), 3)
    replays = [replay_cascade(final, cases, names, margin, n) for n in (4, 6, 8, 10, 12, 16, 24)]
    # the smallest cap that changes (almost) no answer: latency is bounded, answers are not traded for it
    cap = next((r for r in replays if r["same_answer"] >= 0.99), replays[-1])
    print("cascade:", json.dumps({"meaning_margin": margin, "replays": replays}))
    info["cascade"] = {"meaning_margin": margin, "max_embedded": cap["max_embedded"], "same_answer": cap["same_answer"],
                       "embedded_mean": cap["embedded_mean"], "embedded_p95": cap["embedded_p95"]}
    report["cascade"] = {"meaning_margin": margin, "meaning_gap_p99": round(float(np.percentile(gap, 99)), 3),
                         "meaning_gap_max": round(float(gap.max()), 3), "replays": replays}
    final = replace(final, info=info)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(final.to_json(), indent=1) + "\n")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({**report, "fold_models": folds}, indent=1) + "\n")
    print(json.dumps(report["cross_validated"], indent=1))
    print(f"wrote {args.out} and {args.results}")


if __name__ == "__main__":
    main()
