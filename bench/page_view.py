"""The page view: how often a chunk's sentences are found on their page, and how long a page takes to show.

For every PDF of the corpus (default ``../shared/bench/corpus``), paperchat's own parse and chunking give
the chunks, as citations carry them (cleaned text: ligatures spelled out, hyphenation joined, running
headers removed). Every sentence of every chunk outside the references is looked up on the chunk's pages
(``vectorstore/pages.py``), with the excerpt around it, as the chat app does:

* **found**: share of sentences located (on the chunk's first page or, for a chunk that runs over a page
  break, its last), and, as a control, how many are "found" on a page of another paper (should be none);
* **time per page** (wall clock, and CPU time of the process, which is what a quiet machine's wall clock
  shows for this single-threaded work), at 150 dpi: the first view of a page (nothing cached: render, read the characters
  and their boxes, find, draw, encode as JPEG) and a page already viewed (cached render and characters:
  find, draw, encode), p50 / p95 / max in ms over the pages of the corpus.

Usage::

    python bench/page_view.py [--corpus DIR] [--out bench/results/page_view.json]

Timings on a machine shared with other work are indicative.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paperchat.vectorstore import pages as page_view
from paperchat.vectorstore.chunk import chunk_document
from paperchat.vectorstore.parse import parse_file
from paperchat.vectorstore.sentences import split_sentences
from paperchat.vectorstore.tokens import count_tokens

DEFAULT_CORPUS = ROOT / ".." / "shared" / "bench" / "corpus"


def _clear_caches() -> None:
    for cached in (page_view._document, page_view._chars, page_view._rendered):  # a cold start
        cached.cache_clear()


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--dpi", type=int, default=page_view.VIEW_DPI)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "page_view.json")
    args = parser.parse_args(argv)
    pdfs = sorted(args.corpus.resolve().glob("*.pdf"))
    if not pdfs:
        print(f"no PDFs in {args.corpus}", file=sys.stderr)
        return 2

    found = total = false_found = 0
    false_examples: list[dict[str, object]] = []
    missed: list[dict[str, object]] = []
    cold_ms: list[float] = []
    warm_ms: list[float] = []
    cold_cpu_ms: list[float] = []  # CPU time of this process: what a quiet machine's wall clock would show
    per_file: dict[str, dict[str, int]] = {}
    for pdf in pdfs:
        doc = parse_file(pdf, ocr="never")
        chunks = [c for c in chunk_document(doc, 200, 30, lambda texts: [count_tokens(t) for t in texts], 256)
                  if not c.in_references]
        by_page: dict[int, list[tuple[str, list[str], int]]] = {}
        for c in chunks:
            by_page.setdefault(c.page_start, []).append((c.text, split_sentences(c.text), c.page_end))
        stats = per_file.setdefault(pdf.name, {"sentences": 0, "found": 0})
        for number, items in sorted(by_page.items()):
            # the first view of this page: nothing cached
            _clear_caches()
            excerpt, sentences, _ = items[0]
            t0, c0 = time.perf_counter(), time.process_time()
            view = page_view.highlighted_page(pdf, number, sentences[:1], excerpt=excerpt, dpi=args.dpi)
            view.jpeg()
            cold_ms.append(1000 * (time.perf_counter() - t0))
            cold_cpu_ms.append(1000 * (time.process_time() - c0))
            t0 = time.perf_counter()
            view = page_view.highlighted_page(pdf, number, sentences[1:2] or sentences[:1], excerpt=excerpt, dpi=args.dpi)
            view.jpeg()
            warm_ms.append(1000 * (time.perf_counter() - t0))
            for excerpt, sentences, page_end in items:
                for sentence in sentences:
                    if len(sentence) < 20:
                        continue  # a heading or a fragment: nothing to point at
                    chars = page_view.page_chars(pdf, number, args.dpi)
                    hit = bool(page_view.locate(sentence, chars.text))
                    if not hit and page_end != number:
                        hit = bool(page_view.locate(sentence, page_view.page_chars(pdf, page_end, args.dpi).text))
                    total += 1
                    found += hit
                    # the negative control: the same sentence looked up on a page of another paper
                    other = pdfs[(pdfs.index(pdf) + 1) % len(pdfs)]
                    other_page = 1 + number % page_view.page_count(other)
                    if page_view.locate(sentence, page_view.page_chars(other, other_page, args.dpi).text):
                        false_found += 1
                        false_examples.append({"sentence": sentence[:200], "file": other.name, "page": other_page})
                    stats["sentences"] += 1
                    stats["found"] += hit
                    if not hit and len(missed) < 30:
                        missed.append({"file": pdf.name, "page": number, "sentence": sentence[:200]})
        print(f"{pdf.name:60} {stats['found']:4}/{stats['sentences']:4} sentences found", flush=True)

    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "python": platform.python_version(), "dpi": args.dpi, "pdfs": len(pdfs), "pages": len(cold_ms),
        "sentences": total, "found": found, "found_share": round(found / max(1, total), 4),
        "found_on_another_papers_page": false_found, "found_elsewhere_examples": false_examples,
        "first_view_ms": {"p50": round(statistics.median(cold_ms)), "p95": round(_pct(cold_ms, 0.95)),
                          "max": round(max(cold_ms))},
        "first_view_cpu_ms": {"p50": round(statistics.median(cold_cpu_ms)), "p95": round(_pct(cold_cpu_ms, 0.95)),
                              "max": round(max(cold_cpu_ms))},
        "cached_view_ms": {"p50": round(statistics.median(warm_ms)), "p95": round(_pct(warm_ms, 0.95)),
                           "max": round(max(warm_ms))},
        "per_file": per_file, "missed_examples": missed,
        "note": "timings on a shared 2-core machine are indicative",
    }
    print(f"\n{found}/{total} sentences ({result['found_share']:.1%}) of {len(pdfs)} PDFs found on their pages; "
          f"{false_found} 'found' on a page of another paper (the negative control)")
    print(f"page view at {args.dpi} dpi over {len(cold_ms)} pages: first view p50 {result['first_view_ms']['p50']} ms, "
          f"p95 {result['first_view_ms']['p95']} ms, max {result['first_view_ms']['max']} ms; "
          f"cached p50 {result['cached_view_ms']['p50']} ms, p95 {result['cached_view_ms']['p95']} ms")
    print(f"CPU time of a first view: p50 {result['first_view_cpu_ms']['p50']} ms, p95 {result['first_view_cpu_ms']['p95']} ms, "
          f"max {result['first_view_cpu_ms']['max']} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
