"""The ``paperchat`` command line: index, list, delete, search (and ask, extract, eval, ui).

Every command reads :class:`~paperchat.vectorstore.settings.Settings` from the environment; flags override it.
Failures print one clear line to stderr and set a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from paperchat.vectorstore.errors import PaperchatError
from paperchat.vectorstore.settings import Settings, load_settings

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("index location (defaults from PAPERCHAT_* variables)")
    group.add_argument("--db", help="folder of the embedded Chroma store (PAPERCHAT_DB, default .paperchat)")
    group.add_argument("--collection", help="collection name (PAPERCHAT_COLLECTION, default papers)")
    group.add_argument("--chroma-host", help="use a Chroma server at this host instead of a folder")
    group.add_argument("--chroma-port", type=int, help="Chroma server port (default 8000)")
    group.add_argument("--embedder", help="'minilm' (default, offline) or 'openai:<model>'")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment with the command's flags applied."""
    return load_settings(
        db=getattr(args, "db", None),
        collection=getattr(args, "collection", None),
        chroma_host=getattr(args, "chroma_host", None),
        chroma_port=getattr(args, "chroma_port", None),
        embedder=getattr(args, "embedder", None),
        k=getattr(args, "k", None),
    )


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _writer_lock(settings: Settings, wait_s: float) -> Any:
    """The index's write lock (a file lock, or the lease on a Chroma server); while it waits for another
    writer, says whom for on stderr."""
    from paperchat.vectorstore.lock import writer_lock

    def waiting(holder: str) -> None:
        print(f"paperchat: waiting for {holder} to finish (up to {wait_s:.0f} s)", file=sys.stderr, flush=True)

    return writer_lock(settings, wait_s=wait_s, on_wait=waiting)


# -- index --------------------------------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from paperchat.vectorstore.errors import IndexUnavailableError
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths

    settings = settings_from_args(args)
    if args.ocr:
        settings = settings.model_copy(update={"ocr": args.ocr})
    err = _console(stderr=True)
    counted = {"done": 0, "total": 0}
    with _writer_lock(settings, args.wait):
        index = PaperIndex.open(settings, rebuild=args.rebuild)
        progress = Progress(
            TextColumn("[bold]indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=err,
            transient=True,
            disable=args.quiet or args.json,
        )
        with progress:
            task = progress.add_task("", total=None)

            def started(total: int) -> None:
                counted["total"] = total
                progress.update(task, total=total)

            def advanced(result: Any) -> None:
                if result.status != "removed":
                    counted["done"] += 1
                    progress.advance(task)
                progress.update(task, description=escape(result.path.rsplit("/", 1)[-1][:50]))

            try:
                report = index_paths(index, args.paths, prune=args.prune, progress=advanced, on_start=started)
            except IndexUnavailableError as exc:  # e.g. the Chroma server stopped or restarted mid-run
                raise IndexUnavailableError(
                    f"{exc} Indexing stopped after {counted['done']} of {counted['total']} files; those are kept, and "
                    "a document that was being written is not shown. Run the same command again when the index is "
                    "back: it goes on from there."
                ) from exc
    from paperchat.support import rating_embedder

    rating_embedder(settings.model_cache)  # made once (int8): the first answer should not wait for it
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        _print_report(report, settings)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_report(report: Any, settings: Settings) -> None:
    from rich.markup import escape
    from rich.table import Table

    from paperchat.vectorstore.types import page_ranges

    out = _console()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("status", "file", "pages", "chunks", "detail"):
        table.add_column(col, justify="right" if col in ("pages", "chunks") else "left", overflow="fold")
    style = {"added": "green", "replaced": "cyan", "unchanged": "dim", "failed": "bold red", "removed": "yellow"}
    for r in report.results:
        detail = r.reason if r.status == "failed" else (r.reason or r.title[:60])
        if r.ocr_pages and r.status != "failed":
            detail += f" (OCR: p. {page_ranges(r.ocr_pages)})"
        table.add_row(
            f"[{style[r.status]}]{r.status}[/]",
            escape(Path(r.path).name),
            str(r.pages or ""),
            str(r.chunks or ""),
            escape(detail),
        )
    out.print(table)
    counts = report.counts()
    t = report.timings
    secs = max(report.seconds, 1e-9)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in ("added", "failed"))
    out.print(
        f"\n{summary}. {report.pages} pages, {report.chunks} chunks in {report.seconds:.1f} s "
        f"({report.pages / secs:.1f} pages/s, {report.chunks / secs:.1f} chunks/s; "
        f"parse {t['parse']:.1f} s, chunk {t['chunk']:.1f} s, embed {t['embed']:.1f} s, store {t['store']:.1f} s)."
    )
    out.print(f"Index: {escape(settings.location())}")
    if report.failed:
        out.print(f"[bold red]{len(report.failed)} file(s) could not be indexed[/]; everything else was kept.")


# -- list / delete / search -----------------------------------------------------------------------


def _open_index(args: argparse.Namespace) -> Any:
    """The index the command reads; a folder or collection that does not exist is an error, not a new index."""
    from paperchat.vectorstore.index import PaperIndex

    return PaperIndex.open(settings_from_args(args), create=False)


def cmd_list(args: argparse.Namespace) -> int:
    index = _open_index(args)
    records = index.list_documents()
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=1, ensure_ascii=False))
        return EXIT_OK
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    from paperchat.vectorstore.types import page_ranges

    for col in ("id", "file", "pages", "chunks", "OCR", "title"):
        table.add_column(col, justify="right" if col in ("pages", "chunks") else "left", overflow="fold")
    for r in records:
        ocr = f"p. {page_ranges(r.ocr_pages)}" if r.ocr_pages else ""
        table.add_row(r.id, escape(r.file), str(r.pages), str(r.chunks), ocr, escape(r.title[:80]))
    out = _console()
    out.print(table)
    out.print(f"{len(records)} document(s) in {escape(index.settings.location())}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    with _writer_lock(settings, args.wait):
        from paperchat.vectorstore.index import PaperIndex

        index = PaperIndex.open(settings, create=False)
        record = index.resolve(args.doc)
        removed = index.delete_document(record.id)
    print(f"deleted {record.id} ({record.file}): {removed} chunks")
    return EXIT_OK


def _progress_bar(label: str, quiet: bool, unit: str = "") -> Any:
    """A progress bar on stderr ("label ━━━ 3/10 unit 0:00:02 0:00:05") that disappears when done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn(unit)] if unit else []
    return Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=_console(stderr=True),
                    transient=True, disable=quiet)


def prepare_keyword_index(retriever: Any, quiet: bool = False) -> dict[str, Any] | None:
    """Bring this machine's keyword index (the BM25 sidecar) up to date before searching; a first copy of
    the collection shows a progress bar and how long it took (on stderr). Returns that copy's summary."""
    bar = _progress_bar("keyword index", quiet, unit="chunks")
    task = None

    def copied(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("", total=total)
        bar.update(task, completed=done, total=total)

    try:
        built = retriever.prepare_lexical(progress=copied)
    finally:
        bar.stop()
    if built is not None:
        lexical = retriever.lexical()
        where = f" ({lexical.path})" if lexical is not None else ""
        print(f"paperchat: keyword index built: {built['chunks']:,} chunks of {built['documents']:,} documents in "
              f"{built['seconds']:.1f} s{where}; later runs read only the changes since.", file=sys.stderr, flush=True)
    return built


def cmd_sync(args: argparse.Namespace) -> int:
    from paperchat.vectorstore.retriever import PaperRetriever

    index = _open_index(args)
    retriever = PaperRetriever(index=index, mode=index.settings.retrieval)
    built = prepare_keyword_index(retriever, quiet=args.quiet)
    lexical = retriever.lexical()
    if lexical is None:
        print("No keyword index on this machine: SQLite has no FTS5, or PAPERCHAT_RETRIEVAL=dense.")
        return EXIT_OK
    last = lexical.last_build() or {}
    state = "copied now" if built is not None else f"copied {last.get('at', '?')} in {last.get('seconds', 0):.1f} s, up to date"
    print(f"keyword index {lexical.path}: {len(lexical.documents()):,} documents ({state}, "
          f"change {lexical.position()}) of {index.settings.location()}")
    return EXIT_OK


def resolve_papers(index: Any, refs: Sequence[str] | None) -> list[str]:
    """Document ids for ``--paper`` values (ids, id prefixes, file names or titles)."""
    return [index.resolve(ref).id for ref in refs or []]


def cmd_search(args: argparse.Namespace) -> int:
    from paperchat.vectorstore.retriever import PaperRetriever

    settings = settings_from_args(args)
    index = _open_index(args)
    retriever = PaperRetriever(index=index, k=args.k or 5, mode=settings.retrieval, include_references=args.references)
    retriever.ensure_not_empty()
    prepare_keyword_index(retriever, quiet=args.json)
    docs = retriever.invoke(args.query, papers=args.paper or None)
    rows = [
        {
            "rank": i + 1,
            "score": round(float(d.metadata.get("score", 0.0)), 4),
            "similarity": round(float(d.metadata.get("similarity", 0.0)), 4),
            "bm25": round(float(d.metadata.get("bm25", 0.0)), 3),
            "id": d.id,
            "doc_id": d.metadata.get("doc_id"),
            "file": d.metadata.get("file"),
            "title": d.metadata.get("title"),
            "page": d.metadata.get("page"),
            "page_end": d.metadata.get("page_end"),
            "section": d.metadata.get("section"),
            "in_references": bool(d.metadata.get("in_references")),
            "text": d.page_content,
        }
        for i, d in enumerate(docs)
    ]
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return EXIT_OK
    from rich.markup import escape

    out = _console()
    if not rows:
        out.print("No matching excerpts (is anything indexed? see: paperchat list)")
    for row in rows:
        pages = f"p. {row['page']}" + (f"-{row['page_end']}" if row["page_end"] != row["page"] else "")
        section = f" · {row['section']}" if row["section"] else ""
        out.print(f"[bold]{row['rank']}.[/] [green]{row['similarity']:.3f}[/] {escape(str(row['file']))}, {pages}{escape(section)}")
        out.print(f"   {escape(row['text'])}\n", soft_wrap=True)
    return EXIT_OK


# -- ask / extract / eval -----------------------------------------------------------------------

def _build_chain(settings: Settings, prompt: str = "strict", create: bool = False) -> tuple[Any, Any]:
    from paperchat.stack import build_stack

    stack = build_stack(settings, prompt=prompt, create=create)
    return stack.retriever, stack.chain


def cmd_ask(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from paperchat.conversation import mode_line

    settings = settings_from_args(args)
    retriever, chain = _build_chain(settings, args.prompt)
    prepare_keyword_index(retriever, quiet=args.json)
    request = {"question": args.question, "papers": args.paper or [], "k": args.k}
    out = _console()
    result = None
    streamed = ""
    for piece in chain.stream(request):
        result = piece if result is None else result + piece
        if piece.delta and not args.json:
            if not streamed:
                out.print(f"[dim]{escape(mode_line(result.mode))}[/]")
            out.print(escape(piece.delta), end="")
            streamed += piece.delta
    assert result is not None
    if args.json:
        payload = result.to_dict()
        payload.pop("final", None)
        print(json.dumps(payload, indent=1, ensure_ascii=False))
        return EXIT_OK
    if streamed:
        out.print()
        if result.answer.strip() != streamed.strip():  # the checks changed what was streamed
            out.print(f"[bold]Checked answer:[/] {escape(result.answer)}")
    else:
        out.print(f"[dim]{escape(mode_line(result.mode))}[/]")
        out.print(escape(result.answer))
    if result.notice:
        out.print(f"[dim]{escape(result.notice)}[/]")
    _print_sentences(out, result)
    if result.abstained:
        if result.context:
            out.print("\n[bold]Closest passages[/] (they do not answer the question):")
            for i, doc in enumerate(result.context[:3], start=1):
                meta = doc.metadata
                out.print(f"  {i}. {escape(str(meta.get('file')))}, p. {meta.get('page')}: {escape(doc.page_content[:240])}...")
        return EXIT_OK
    out.print("\n[bold]Sources[/]")
    for c in result.citations:
        mark = "" if c.cited else " [dim](shown, not cited)[/]"
        if c.supported is False:
            mark = " [bold red](flagged: does not support the sentence citing it)[/]"
        section = f", {escape(c.section)}" if c.section else ""
        out.print(f"[bold][{c.n}][/] {escape(c.title)} ({escape(c.file)}), p. {c.page}{section}{mark}")
        out.print(f"    {escape(c.text)}", soft_wrap=True)
    return EXIT_OK


def _print_sentences(out: Any, result: Any) -> None:
    """An LLM answer's sentences as grounded: those in the papers with their excerpts and confidence, the
    others marked (not from the papers, says the papers do not say)."""
    from rich.markup import escape

    from paperchat.grounding import NO_CLAIM, NOT_FROM_PAPERS, SUPPORTED, describe

    if not result.sentences or not any(s["kind"] != SUPPORTED for s in result.sentences):
        return  # nothing to flag: the answer is the model's, every sentence in the papers
    out.print("\n[bold]The model's reply, sentence by sentence[/]")
    style = {SUPPORTED: "green", NOT_FROM_PAPERS: "bold red"}
    for s in result.sentences:
        if s["kind"] != NO_CLAIM:
            text = escape(s["text"]) if s["kind"] != NOT_FROM_PAPERS else f"[dim]{escape(s['text'])}[/]"
            out.print(f"  [{style.get(s['kind'], 'yellow')}]{escape(describe(s))}[/]: {text}")


def _tasks_from_args(args: argparse.Namespace, index: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """The pairs to ask, the questions (with their column names) and the papers' records."""
    from paperchat.extract import read_id_rows, tasks_for
    from paperchat.questions import read_question_file, with_columns

    if args.ids:
        tasks = read_id_rows(args.ids)
        records = {r.file: r for r in index.list_documents()}
        for task in tasks:
            record = records.get(Path(task.paper_file).name)
            task.doc_id, task.chunks = (record.id, record.chunks) if record else ("", None)
        if args.paper:
            wanted = set(resolve_papers(index, args.paper))
            tasks = [t for t in tasks if t.doc_id in wanted]
        papers = list({t.doc_id: records[Path(t.paper_file).name] for t in tasks if t.doc_id}.values())
        return tasks, with_columns(dict.fromkeys(t.question for t in tasks)), papers
    if not args.questions:
        raise PaperchatError("Give the questions: --questions FILE (one per line, or 'methodology'), or --ids FILE (JSONL).")
    questions = read_question_file(args.questions)
    papers = [index.resolve(ref) for ref in args.paper] if args.paper else index.list_documents()
    if not papers:
        raise PaperchatError("No papers to ask: index some first (paperchat index PATH...).")
    return tasks_for(questions, papers), questions, papers


def _run_extraction_with_progress(
    retriever: Any, chain: Any, tasks: list[Any], out: Path, quiet: bool, concurrency: int, settings: Settings,
    run: str = "",
) -> Any:
    from paperchat.extract import excerpts_to_read, run_extraction

    progress = _progress_bar("extracting", quiet)
    with progress:
        task = progress.add_task("", total=len(tasks))
        return run_extraction(
            retriever, chain, tasks, out, progress=lambda row: progress.advance(task), concurrency=concurrency,
            run=run, on_start=lambda todo: progress.update(task, completed=len(tasks) - todo),
            fetch=excerpts_to_read(settings),
        )


def cmd_extract(args: argparse.Namespace) -> int:
    from paperchat.extract import done_ids, wide_results
    from paperchat.manifest import build_manifest, record_manifest

    settings = settings_from_args(args)
    out = Path(args.out)  # checked, with the questions, before anything is loaded (main)
    results = wide_results(out) if args.wide else out  # --wide: the pairs a rerun resumes from
    retriever, chain = _build_chain(settings, args.prompt)
    tasks, questions, papers = _tasks_from_args(args, retriever.index)
    mode = f"llm:{settings.model}" if settings.uses_llm else "extractive"
    manifest = record_manifest(results, build_manifest(
        settings, mode, retriever.index, questions, [p.file for p in papers] if args.paper or args.ids else None, args.prompt))
    try:
        summary = _run_extraction_with_progress(retriever, chain, tasks, results, args.quiet, args.concurrency, settings,
                                                 manifest["id"])
    except KeyboardInterrupt:
        kept = len(done_ids(results, tasks))
        print(f"paperchat: interrupted: {kept} of {len(tasks)} pairs are saved in {results}; "
              "run the same command again to answer the rest.", file=sys.stderr)
        return 130
    print(
        f"{summary.total} pairs: {summary.skipped} already in {results}, {summary.answered} answered, "
        f"{summary.abstained} \"I don't know\", {summary.failed} failed "
        f"({summary.seconds:.1f} s, {summary.pairs_per_s:.2f} pairs/s)."
    )
    for line in summary.errors[:10]:
        print(f"  failed: {line}", file=sys.stderr)
    if args.wide:
        _write_wide(out, results, papers, questions)
        print(f"table: {out} ({len(papers)} papers x {len(questions)} questions; pairs in {results})")
    return EXIT_OK if not summary.failed else EXIT_FAILED


def _write_wide(out: Path, results: Path, records: list[Any], questions: list[Any]) -> None:
    from paperchat.atomic import atomic_write
    from paperchat.manifest import load_manifests
    from paperchat.matrix import ResultsTable, build_matrix, papers_from_records, wide_csv

    table = ResultsTable(results)
    table.refresh()
    matrix = build_matrix(papers_from_records(records), questions, table)
    manifests = [m for run, m in load_manifests(results).items() if run in matrix.runs()]
    with atomic_write(out, newline="") as fh:
        fh.write(wide_csv(matrix, table, manifests))


def cmd_eval(args: argparse.Namespace) -> int:
    from paperchat.conversation import mode_line
    from paperchat.evaluate import headline, read_jsonl, score_predictions
    from paperchat.vectorstore.ingest import index_paths

    settings = settings_from_args(args)
    gold_path, corpus = Path(args.gold), Path(args.corpus)
    gold = read_jsonl(gold_path)
    files = [corpus / p for p in dict.fromkeys(r["paper_file"] for r in gold)]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise PaperchatError(f"{len(missing)} paper(s) of {gold_path.name} are not in {corpus}: {', '.join(missing[:3])}")
    retriever, chain = _build_chain(settings, create=True)
    report = index_paths(retriever.index, files)
    if not report.ok:
        raise PaperchatError("Some papers could not be indexed: " + "; ".join(f"{r.path}: {r.reason}" for r in report.failed))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    pred_path = out_dir / f"predictions-{gold_path.stem}.jsonl"
    if pred_path.exists() and not args.resume:
        pred_path.unlink()
    args.ids, args.questions, args.paper = str(gold_path), None, None
    tasks, _, _ = _tasks_from_args(args, retriever.index)
    _run_extraction_with_progress(retriever, chain, tasks, pred_path, args.quiet, args.concurrency, settings)
    predictions = {p["id"]: p for p in read_jsonl(pred_path)}
    results = {"paperchat": score_predictions(gold, predictions, args.exclude_conflicts)}
    cited_only = {k: {**p, "citations": [c for c in p.get("citations", []) if c.get("cited", True)]} for k, p in predictions.items()}
    results["paperchat, cited excerpts only"] = score_predictions(gold, cited_only, args.exclude_conflicts)
    files_scored = {"paperchat": pred_path}
    skipped = ""
    if args.baseline:
        from paperchat.baseline import BaselineUnavailableError, baseline_predictions

        try:
            base = baseline_predictions(gold, corpus, retriever.index.embedder)
        except BaselineUnavailableError as exc:  # an optional column: the rest of the evaluation stands
            skipped = f"the published pipeline's column is skipped: {exc}"
        else:
            base_path = out_dir / f"predictions-{gold_path.stem}-published-baseline.jsonl"
            base_path.write_text("".join(json.dumps(p) + "\n" for p in base.values()), encoding="utf-8")
            results["published pipeline retrieval"] = score_predictions(gold, base, args.exclude_conflicts)
            files_scored["published pipeline retrieval"] = base_path
    reference: dict[str, Any] = {}
    if args.scorer:
        reference = {name: _reference_score(args.scorer, gold_path, path, args.exclude_conflicts) for name, path in files_scored.items()}
    summary = {
        "gold": str(gold_path), "corpus": str(corpus), "mode": mode_line("extractive" if not settings.uses_llm else f"llm:{settings.model}"),
        "exclude_conflicts": args.exclude_conflicts, "metrics": results, "reference_scorer": reference,
    }
    if skipped:
        summary["baseline_skipped"] = skipped
    metrics_path = out_dir / f"metrics-{gold_path.stem}.json"
    metrics_path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    _print_eval_table({name: headline(m) for name, m in results.items()}, reference, gold_path.name)
    if skipped:
        print(f"note: {skipped}")
    print(f"\npredictions: {pred_path}\nmetrics: {metrics_path}")
    return EXIT_OK


def _reference_score(scorer: str, gold: Path, pred: Path, exclude_conflicts: bool) -> dict[str, Any]:
    import subprocess

    command = [sys.executable, scorer, "--gold", str(gold), "--pred", str(pred)]
    if exclude_conflicts:
        command.append("--exclude-conflicts")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise PaperchatError(f"the reference scorer failed: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)


def _print_eval_table(rows: dict[str, dict[str, Any]], reference: dict[str, Any], name: str) -> None:
    from rich.table import Table

    short = {"paperchat": "paperchat", "paperchat, cited excerpts only": "cited only",
             "published pipeline retrieval": "published"}
    columns = {short.get(label, label): values for label, values in rows.items()}
    for label, ref in reference.items():
        columns[f"{short.get(label, label)} (ref.)"] = {
            "abstention_f1": ref["abstention"]["f1"], "abstention_accuracy": ref["abstention"]["accuracy"],
            "answer_rate": ref["answer_rate_on_answerable"],
            "reference_support": (ref.get("reference_support") or {}).get("mean"),
            "evidence_recall": (ref.get("evidence_recall") or {}).get("mean"),
            "evidence_hit_rate": (ref.get("evidence_recall") or {}).get("hit_rate"),
        }
    table = Table(title=f"paperchat eval: {name}", box=None, header_style="bold", pad_edge=False)
    table.add_column("metric", no_wrap=True)
    for label in columns:
        table.add_column(label, justify="right")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for metric in ("abstention_f1", "abstention_accuracy", "answer_rate", "reference_support", "evidence_recall", "evidence_hit_rate"):
        values = [col.get(metric) for col in columns.values()]
        if any(v is not None for v in values):
            table.add_row(metric.replace("_", " "), *(fmt(v) for v in values))
    _console().print(table)
    print("cited only: the same answers scored on the excerpts they cite; published: the published pipeline's "
          "retrieval (PDFMiner, 1000/50 chunks, top 4, never abstains); (ref.): the reference scorer's numbers.")


# -- ui -------------------------------------------------------------------------------------------


def app_path() -> Path:
    """The Streamlit page file of the installed package."""
    import importlib.util

    spec = importlib.util.find_spec("paperchat.ui")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def cmd_ui(args: argparse.Namespace) -> int:
    import os

    settings = settings_from_args(args)
    if args.index:
        from paperchat.vectorstore.index import PaperIndex
        from paperchat.vectorstore.ingest import index_paths

        with _writer_lock(settings, 30.0):
            report = index_paths(PaperIndex.open(settings), args.index)
        counts = report.counts()
        print(f"index: {counts['added']} added, {counts['unchanged']} unchanged, {counts['failed']} failed "
              f"({settings.location()})")
        for r in report.failed:
            print(f"  failed: {r.path}: {r.reason}", file=sys.stderr)
    env = dict(os.environ)
    env.update({"PAPERCHAT_DB": str(Path(settings.db).resolve()), "PAPERCHAT_COLLECTION": settings.collection,
                "PAPERCHAT_CHROMA_PORT": str(settings.chroma_port), "PAPERCHAT_EMBEDDER": settings.embedder})
    if settings.chroma_host:
        env["PAPERCHAT_CHROMA_HOST"] = settings.chroma_host
    command = [
        sys.executable, "-m", "streamlit", "run", str(app_path()),
        "--server.headless", "true", "--server.address", args.host, "--server.port", str(args.port),
        "--browser.gatherUsageStats", "false", "--server.maxUploadSize", str(int(settings.max_file_mb)),
        "--server.fileWatcherType", "none", "--global.showWarningOnDirectExecution", "false",
        "--client.toolbarMode", "viewer",
    ]
    print(f"paperchat: opening the chat at http://{args.host}:{args.port} (Ctrl+C stops it)", flush=True)
    os.execve(sys.executable, command, env)  # the server replaces this process, so Ctrl+C stops it cleanly
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paperchat`` command."""
    parser = argparse.ArgumentParser(
        prog="paperchat", description="Ask questions of a collection of scientific papers, with cited answers."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="index PDF, Markdown and text files (folders are searched recursively)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--prune", action="store_true", help="remove documents whose files are gone")
    p.add_argument("--rebuild", action="store_true", help="empty the collection first (new embedder or chunking)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long if another writer is busy")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--ocr", choices=("auto", "always", "never"),
                   help="OCR of PDF pages: auto = pages without a usable text layer (default, PAPERCHAT_OCR), "
                        "always = every page, never = none")
    _common(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("list", help="list indexed documents")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("delete", help="remove one document (by id, file name or title) and its chunks")
    p.add_argument("doc", metavar="DOC")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    _common(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("sync", help="bring this machine's keyword index up to date (a first copy shows its progress)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("search", help="show the excerpts retrieved for a query (dense + BM25, as for answers)")
    p.add_argument("query")
    p.add_argument("--k", type=int, default=5, help="number of excerpts (default 5)")
    p.add_argument("--paper", action="append", metavar="DOC", help="restrict to this document (repeatable)")
    p.add_argument("--references", action="store_true", help="also search reference lists")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question from the papers, with cited excerpts")
    p.add_argument("question")
    p.add_argument("--paper", action="append", metavar="DOC", help="restrict to this document (repeatable)")
    p.add_argument("--k", type=int, help="excerpts to retrieve (PAPERCHAT_K, default 6)")
    p.add_argument("--prompt", choices=["strict", "published"], default="strict", help="prompt preset for an LLM")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("extract", help="ask a list of questions of every paper; results as JSONL or CSV (resumable)")
    p.add_argument("--questions", metavar="FILE", help="questions, one per line (or .jsonl/.csv with 'question' and "
                   "optionally 'column'), or 'methodology' for the 28 shipped methodology questions")
    p.add_argument("--ids", metavar="FILE", help="JSONL rows with id, paper_file, question (keeps the ids)")
    p.add_argument("--paper", action="append", metavar="DOC", help="only this document (repeatable; default all)")
    p.add_argument("--out", required=True, metavar="FILE", help="results.jsonl or results.csv (one row per pair)")
    p.add_argument("--wide", action="store_true", help="write --out TABLE.csv as the wide table (one row per paper, "
                   "a column per question with quote and page columns); the pairs are kept in TABLE.pairs.jsonl")
    p.add_argument("--k", type=int)
    p.add_argument("--prompt", choices=["strict", "published"], default="strict")
    p.add_argument("--concurrency", type=int, default=1, help="pairs answered at once (LLM endpoints)")
    p.add_argument("--quiet", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("ui", help="open the chat app in the browser (Streamlit, on localhost)")
    p.add_argument("--index", nargs="+", metavar="PATH", help="index these files or folders first (unchanged ones are skipped)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default localhost only)")
    _common(p)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("eval", help="answer a labelled question set and print the metrics")
    p.add_argument("--gold", required=True, metavar="FILE.jsonl", help="labelled questions (benchmark format)")
    p.add_argument("--corpus", required=True, metavar="DIR", help="folder the gold's paper_file paths are relative to")
    p.add_argument("--out", default="eval-results", metavar="DIR", help="where predictions and metrics go")
    p.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                   help="also score the published pipeline's retrieval (needs paperchat[bench])")
    p.add_argument("--scorer", metavar="SCORE_PY", help="also run this reference scorer on the same predictions")
    p.add_argument("--exclude-conflicts", action="store_true", help="drop rows whose label note says CONFLICT")
    p.add_argument("--resume", action="store_true", help="keep predictions already made")
    p.add_argument("--k", type=int)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_eval, collection="eval")  # a collection of its own, apart from the user's papers
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``paperchat`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("question", "query"):  # an empty question is a usage error, not one for the chain
        if isinstance(getattr(args, name, None), str) and not getattr(args, name).strip():
            parser.error(f"the {name} is empty: paperchat {args.command} \"your {name}\"")
    try:
        if args.command == "extract":  # bad files are reported before the index and models are loaded
            from paperchat.extract import check_inputs

            check_inputs(args.out, args.questions, args.ids, wide=args.wide)
        return int(args.func(args))
    except ValidationError as exc:
        for problem in exc.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "?"
            message = str(problem["msg"]).removeprefix("Value error, ")
            print(
                f"paperchat: error: invalid setting {field} (PAPERCHAT_{field.upper()} or its flag): {message}",
                file=sys.stderr,
            )
        return EXIT_ERROR
    except PaperchatError as exc:
        print(f"paperchat: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a file the user named cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"paperchat: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("paperchat: interrupted; what was already indexed is kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
