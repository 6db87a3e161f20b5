#!/usr/bin/env python3
"""Group benchmark: one ``chroma run`` server shared by the clients and writers of several machines.

    python bench/group.py [--chunks 1000000] [--queries 200] [--papers 5] [--workdir DIR [--reuse]]
                          [--skip-queries] [--out bench/results/group.json]

"Machines" are processes with working folders of their own (their own keyword sidecar, nothing shared but
the server), started by this script:

1. **Collection**: ``--chunks`` synthetic chunks made of the real chunks of ``../shared/bench/corpus`` and
   ``sample_docs/`` (``tests/synthetic.py``), written to the server (or reused from ``--workdir``).
2. **A new client's keyword index**: ``paperchat sync`` in an empty working folder, its own process:
   seconds (as the command reports them) and the process's peak RSS.
3. **Queries through the server**: ``bench/query.py``'s measurement (retrieval, extractive answer, chain
   with an instant fake LLM; one paper and the whole collection; p50/p95) in a fresh process using the
   keyword index of 2.
4. **Seeing another machine's paper**: a warm reader process asks, over and over, a question only a new
   paper answers, while another process indexes that paper; from the moment the paper is complete on the
   server to the reader listing it, finding it with the question, and holding it in its keyword index.
5. **Two writers on two machines**: the benchmark corpus's PDFs on one machine, its QASPER papers and
   ``sample_docs/`` (three of whose PDFs are also in the corpus) on another, indexed at the same time into
   one collection, against one writer indexing both folders into another: every document indexed exactly
   once (one ``write`` in the change log each), the same documents and chunk ids, no lease left; wall
   time and throughput.

Prints a summary and writes JSON. The machine is shared: the numbers are what this run measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def server_settings(work: Path, port: int, collection: str) -> Any:
    from paperchat.vectorstore.settings import Settings

    return Settings(db=work / ".paperchat", collection=collection, chroma_host="127.0.0.1", chroma_port=port)


def cli(*args: str) -> list[str]:
    from tests.faults import paperchat_command

    return paperchat_command(*args)


def env() -> dict[str, str]:
    from tests.faults import clean_env

    return clean_env()


# -- children: each step's client runs in a process of its own --------------------------------------


def child_sync(work: str, port: str, collection: str) -> None:
    """``paperchat sync`` in this process; prints the command's output, then one JSON line."""
    from bench.query import peak_rss_mb
    from paperchat.cli import main

    os.chdir(work)
    started = time.perf_counter()
    code = main(["sync", "--chroma-host", "127.0.0.1", "--chroma-port", port, "--collection", collection, "--quiet"])
    seconds = time.perf_counter() - started
    from paperchat.vectorstore.lexical import LexicalIndex

    last = LexicalIndex(Path(work) / ".paperchat" / f"lexical-127.0.0.1_{port}_{collection}.sqlite").last_build() or {}
    print(json.dumps({"exit": code, "wall_s": round(seconds, 1), "build": last,
                      "peak_rss_mb": round(peak_rss_mb(), 1)}), flush=True)


def child_follow(work: str, port: str, collection: str) -> None:
    """A warm reader: for each ``doc_id<TAB>question`` line, ask until the paper shows; print when it did."""
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.retriever import PaperRetriever

    index = PaperIndex.open(server_settings(Path(work), int(port), collection))
    retriever = PaperRetriever(index=index, k=6)
    retriever.prepare_lexical()
    retriever.invoke("warm up: which GPU was used?")
    print("ready", flush=True)
    for line in sys.stdin:
        doc_id, question = line.rstrip("\n").split("\t", 1)
        seen: dict[str, float] = {}
        asked = 0
        while len(seen) < 3:
            found = retriever.invoke(question)
            asked += 1
            now = time.time()
            if "listed" not in seen and doc_id in index.complete_ids():
                seen["listed"] = now
            if "answered" not in seen and any(d.metadata.get("doc_id") == doc_id for d in found):
                seen["answered"] = now
            lexical = retriever.lexical()
            if "keyword" not in seen and lexical is not None and doc_id in lexical.documents():
                seen["keyword"] = now
        print(json.dumps({"doc_id": doc_id, "seen": seen, "questions_asked": asked}), flush=True)


# -- steps ---------------------------------------------------------------------------------------------


def build_collection(n: int, work: Path, port: int, reuse: bool) -> dict[str, Any]:
    from paperchat.vectorstore.index import PaperIndex
    from tests.synthetic import CHUNKS_PER_DOC, build_synthetic, seed_chunks

    settings = server_settings(work / "builder", port, f"group-{n}")
    if reuse:
        index = PaperIndex.open(settings)
        if index.count_chunks() == n:
            return {"seconds": None, "chunks": n, "documents": (n + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC, "reused": True}
    bench = ROOT.parent / "shared" / "bench"
    texts, metas, vectors = seed_chunks([bench / "corpus", ROOT / "sample_docs"], work / "seed")
    return build_synthetic(n, texts, metas, vectors, settings)


def new_client_sidecar(work: Path, port: int, collection: str) -> dict[str, Any]:
    folder = work / "client-new"
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child-sync", str(folder), str(port), collection],
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    result["reported"] = [ln for ln in done.stderr.splitlines() if "keyword index built" in ln]
    result["folder"] = str(folder)
    return result


def queries(folder: Path, port: int, collection: str, n_docs: int, n_questions: int) -> dict[str, Any]:
    from bench.query import measure_in_child
    from paperchat.evaluate import read_jsonl
    from tests.fake_openai import fake_openai_server

    bench = ROOT.parent / "shared" / "bench"
    questions = list(dict.fromkeys(r["question"] for name in ("cq_dev", "qasper_dev") for r in read_jsonl(bench / f"{name}.jsonl")))
    asked = questions[:n_questions]
    random.Random(3).shuffle(asked)
    with fake_openai_server() as llm:
        llm.default = {"content": "The model was trained on a GPU [1]."}
        return measure_in_child(server_settings(folder, port, collection), asked, n_docs, llm.base_url)


def time_to_see(work: Path, port: int, collection: str, client_folder: Path, papers: int) -> dict[str, Any]:
    import chromadb

    reader = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child-follow", str(client_folder), str(port),
                               collection], cwd=ROOT, env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdin is not None
    assert reader.stdout.readline().strip() == "ready"
    docs = chromadb.HttpClient(host="127.0.0.1", port=port).get_collection(collection + "__documents")
    writer_folder = work / "machine-writer"
    writer_folder.mkdir(parents=True, exist_ok=True)
    source = (ROOT / "sample_docs" / "tang2018_neural_language_model_tradeoffs.md").read_text(encoding="utf-8")
    rows = []
    for i in range(papers):
        marker = f"zqv{os.getpid()}x{i}"
        paper = writer_folder / f"new-paper-{marker}.md"
        paper.write_text(f"# A new paper {marker}\n\nThe {marker} models were trained on one GPU.\n\n{source}", encoding="utf-8")
        doc_id = hashlib.sha256(paper.read_bytes()).hexdigest()[:16]
        reader.stdin.write(f"{doc_id}\tWhich GPU were the {marker} models trained on?\n")
        reader.stdin.flush()
        writer = subprocess.Popen(cli("index", str(paper), "--chroma-host", "127.0.0.1", "--chroma-port", str(port),
                                      "--collection", collection, "--quiet"), cwd=writer_folder, env=env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        complete = None
        while complete is None:  # the moment the paper is complete on the server (polled every 20 ms)
            got = docs.get(ids=[doc_id], include=["metadatas"])
            if got["ids"] and got["metadatas"][0].get("status") == "complete":
                complete = time.time()
            elif writer.poll() not in (None, 0):
                raise RuntimeError(f"the writer failed: {writer.stderr.read() if writer.stderr else ''}")
            else:
                time.sleep(0.02)
        writer.wait(timeout=600)
        seen = json.loads(reader.stdout.readline())
        rows.append({kind: round(t - complete, 2) for kind, t in seen["seen"].items()})
    reader.stdin.close()
    reader.wait(timeout=120)
    return {"papers": papers, "seconds_after_complete": rows,
            "max": {kind: max(r[kind] for r in rows) for kind in rows[0]},
            "mean": {kind: round(sum(r[kind] for r in rows) / len(rows), 2) for kind in rows[0]}}


def writers(work: Path, port: int) -> dict[str, Any]:
    import chromadb

    bench = ROOT.parent / "shared" / "bench" / "corpus"
    folder_a, folder_b = work / "papers-a", work / "papers-b"
    for folder in (folder_a, folder_b):
        if not folder.exists():
            folder.mkdir(parents=True)
    import shutil

    for pdf in sorted(bench.glob("*.pdf")):
        shutil.copy(pdf, folder_a / pdf.name)
    for md in sorted((bench / "qasper").glob("*.md")):
        shutil.copy(md, folder_b / md.name)
    for paper in sorted((ROOT / "sample_docs").iterdir()):
        if paper.suffix in (".pdf", ".md"):
            shutil.copy(paper, folder_b / paper.name)
    client = chromadb.HttpClient(host="127.0.0.1", port=port)

    def state(collection: str) -> dict[str, Any]:
        records = client.get_collection(collection + "__documents").get(include=["metadatas"])
        chunk_ids = set(client.get_collection(collection).get(include=[])["ids"])
        chunk_ids |= set(client.get_collection(collection + "__references").get(include=[])["ids"])
        log = client.get_collection(collection + "__changes").get(where={"op": "write"}, include=["metadatas"])
        writes = Counter(m["docs"] for m in log["metadatas"])
        return {"documents": {i: m["chunks"] for i, m in zip(records["ids"], records["metadatas"], strict=True)},
                "complete": all(m["status"] == "complete" for m in records["metadatas"]),
                "chunk_ids": chunk_ids, "writes_per_document": dict(writes),
                "tickets_left": len(client.get_collection(collection + "__lease").get()["ids"])}

    def run(collection: str, jobs: list[tuple[Path, list[Path]]]) -> dict[str, Any]:
        started = time.perf_counter()
        procs = []
        for machine, folders in jobs:
            machine.mkdir(parents=True, exist_ok=True)
            procs.append(subprocess.Popen(cli("index", *map(str, folders), "--chroma-host", "127.0.0.1", "--chroma-port", str(port),
                                              "--collection", collection, "--wait", "3600", "--json"),
                                          cwd=machine, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        reports, waited = [], []
        for proc in procs:
            out, err = proc.communicate(timeout=7200)
            if proc.returncode != 0:
                raise RuntimeError(err[-3000:])
            reports.append(json.loads(out))
            waited.append(next((ln for ln in err.splitlines() if "waiting for" in ln), ""))
        seconds = time.perf_counter() - started
        pages = sum(r["pages"] for r in reports)
        chunks = sum(r["chunks"] for r in reports)
        return {"seconds": round(seconds, 1), "pages": pages, "chunks": chunks, "pages_per_s": round(pages / seconds, 2),
                "chunks_per_s": round(chunks / seconds, 1), "counts": [r["counts"] for r in reports],
                "seconds_per_writer": [r["seconds"] for r in reports], "waited": waited}

    one = run("writers-one", [(work / "machine-1", [folder_a, folder_b])])
    two = run("writers-two", [(work / "machine-1", [folder_a]), (work / "machine-2", [folder_b])])
    a, b = state("writers-one"), state("writers-two")
    checks = {
        "same_documents": a["documents"] == b["documents"],
        "same_chunk_ids": a["chunk_ids"] == b["chunk_ids"],
        "all_complete": a["complete"] and b["complete"],
        "each_document_written_once": set(b["writes_per_document"].values()) == {1}
                                      and set(b["writes_per_document"]) == set(b["documents"]),
        "no_lease_left": a["tickets_left"] == 0 and b["tickets_left"] == 0,
    }
    return {"documents": len(b["documents"]), "chunks": len(b["chunk_ids"]), "one_writer": one, "two_writers": two,
            "throughput_two_vs_one": round(one["seconds"] / two["seconds"], 2), "checks": checks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--papers", type=int, default=5, help="new papers whose arrival a reader times")
    ap.add_argument("--workdir", type=Path, help="keep the server folder here (default: a temporary folder)")
    ap.add_argument("--reuse", action="store_true", help="reuse a collection of that size left in --workdir")
    ap.add_argument("--skip-queries", action="store_true", help="leave out step 3")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "group.json")
    ap.add_argument("--child-sync", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--child-follow", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_sync:
        return child_sync(*args.child_sync)
    if args.child_follow:
        return child_follow(*args.child_follow)

    from tests.integration.chroma_server import chroma_server

    work = args.workdir or Path(tempfile.mkdtemp(prefix="paperchat-group-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    collection = f"group-{args.chunks}"
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "mode": "chroma run server on 127.0.0.1", "chunks": args.chunks,
    }

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")

    with chroma_server(work / "server", startup_s=600) as port:
        built = build_collection(args.chunks, work, port, args.reuse)
        results["build"] = built
        print(f"{args.chunks:,} chunks on the server, built in {built['seconds']} s", flush=True)
        save()
        sidecar = new_client_sidecar(work, port, collection)
        results["new_client_sidecar"] = sidecar
        print(f"new client's keyword index: {sidecar['build'].get('seconds')} s for {sidecar['build'].get('chunks'):,} chunks "
              f"(command {sidecar['wall_s']} s), peak RSS {sidecar['peak_rss_mb']:.0f} MB", flush=True)
        save()
        if not args.skip_queries:
            timing = queries(Path(sidecar["folder"]), port, collection, built["documents"], args.queries)
            results["query_process_peak_rss_mb"] = timing.pop("peak_rss_mb")
            results["latency"] = timing
            for name, p in timing.items():
                print(f"  {name:<45} p50 {p['p50_ms']:>7.1f} ms   p95 {p['p95_ms']:>7.1f} ms", flush=True)
            save()
        seen = time_to_see(work, port, collection, Path(sidecar["folder"]), args.papers)
        results["time_to_see_a_new_paper"] = seen
        print(f"another machine's new paper, seconds after it is complete on the server (max of {args.papers}): "
              f"{seen['max']}", flush=True)
        save()
        group = writers(work, port)
        results["writers"] = group
        print(f"two writers: {group['two_writers']['seconds']} s vs one writer {group['one_writer']['seconds']} s "
              f"({group['documents']} documents, {group['chunks']} chunks); checks {group['checks']}", flush=True)
        save()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
