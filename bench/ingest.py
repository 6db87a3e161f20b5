#!/usr/bin/env python3
"""Ingest benchmark: paperchat's indexing throughput against its own embedder's ceiling.

    python bench/ingest.py [--corpus ../shared/bench/corpus] [--out bench/results/ingest.json]

Runs, in one process and on the same files:

1. ``paperchat``: the real ``index_paths`` into a fresh embedded Chroma folder (parse and chunk in the
   worker process, embed, store), with the time split it reports and the peak RSS;
2. ``embedder alone``: MiniLM embedding the very chunks paperchat produced, nothing else (the ceiling:
   indexing cannot be faster than its own embedder).

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and waited-for children), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def run_paperchat(files: list[Path], workdir: Path) -> dict[str, object]:
    from paperchat.settings import Settings
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths

    index = PaperIndex.open(Settings(db=workdir / "paperchat-db"))
    index.embedder.load()
    start = time.perf_counter()
    report = index_paths(index, files)
    seconds = time.perf_counter() - start
    assert report.ok, report.failed
    return {
        "seconds": round(seconds, 2),
        "pages": report.pages,
        "chunks": report.chunks,
        "pages_per_s": round(report.pages / seconds, 2),
        "chunks_per_s": round(report.chunks / seconds, 2),
        "split_s": {k: round(v, 2) for k, v in report.timings.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "_index": index,
    }


def run_embedder_alone(texts: list[str]) -> dict[str, object]:
    from paperchat.vectorstore.embed import MiniLMEmbeddings

    emb = MiniLMEmbeddings().load()
    start = time.perf_counter()
    emb.embed_array(texts)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "chunks": len(texts), "chunks_per_s": round(len(texts) / seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "bench" / "corpus")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    args = ap.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus}")
    pdfs = sorted(args.corpus.glob("*.pdf"))
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_paperchat(pdfs, Path(tmp))
        index = ours.pop("_index")
        texts = [d.page_content for d in index.get_chunks()]
        alone = run_embedder_alone(texts)
    ratio = ours["chunks_per_s"] / alone["chunks_per_s"]  # type: ignore[operator]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.system()}, {__import__('os').cpu_count()} CPUs, Python {platform.python_version()}",
        "corpus": f"{len(pdfs)} PDFs from {args.corpus.name}/",
        "paperchat": ours,
        "embedder_alone": alone,
        "paperchat_vs_embedder_chunks_per_s": round(ratio, 3),
    }
    print(f"{'pipeline':<18}{'pages':>7}{'chunks':>8}{'seconds':>9}{'pages/s':>9}{'chunks/s':>10}")
    print(f"{'paperchat':<18}{ours['pages']:>7}{ours['chunks']:>8}{ours['seconds']:>9}{ours['pages_per_s']:>9}{ours['chunks_per_s']:>10}")
    print(f"{'embedder alone':<18}{'':>7}{alone['chunks']:>8}{alone['seconds']:>9}{'':>9}{alone['chunks_per_s']:>10}")
    print(f"split (s): {ours['split_s']}; peak RSS {ours['peak_rss_mb']} MB; paperchat/embedder = {ratio:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
