"""The ``paperchat`` command line: index, list, delete, search (and ask, extract, eval, ui).

Every command reads :class:`~paperchat.settings.Settings` from the environment; flags override it.
Failures print one clear line to stderr and set a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from paperchat.errors import PaperchatError
from paperchat.settings import Settings, load_settings

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
    if settings.uses_server:
        return nullcontext()
    from paperchat.vectorstore.lock import write_lock

    return write_lock(settings.db, wait_s=wait_s)


# -- index --------------------------------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths

    settings = settings_from_args(args)
    err = _console(stderr=True)
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
                progress.update(task, total=total)

            def advanced(result: Any) -> None:
                if result.status != "removed":
                    progress.advance(task)
                progress.update(task, description=escape(result.path.rsplit("/", 1)[-1][:50]))

            report = index_paths(index, args.paths, prune=args.prune, progress=advanced, on_start=started)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        _print_report(report, settings)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_report(report: Any, settings: Settings) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = _console()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("status", "file", "pages", "chunks", "detail"):
        table.add_column(col, justify="right" if col in ("pages", "chunks") else "left", overflow="fold")
    style = {"added": "green", "replaced": "cyan", "unchanged": "dim", "failed": "bold red", "removed": "yellow"}
    for r in report.results:
        detail = r.reason if r.status == "failed" else r.title[:60]
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
    from paperchat.vectorstore.index import PaperIndex

    return PaperIndex.open(settings_from_args(args))


def cmd_list(args: argparse.Namespace) -> int:
    index = _open_index(args)
    records = index.list_documents()
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=1, ensure_ascii=False))
        return EXIT_OK
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("id", "file", "pages", "chunks", "title"):
        table.add_column(col, justify="right" if col in ("pages", "chunks") else "left", overflow="fold")
    for r in records:
        table.add_row(r.id, escape(r.file), str(r.pages), str(r.chunks), escape(r.title[:80]))
    out = _console()
    out.print(table)
    out.print(f"{len(records)} document(s) in {escape(index.settings.location())}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    with _writer_lock(settings, args.wait):
        from paperchat.vectorstore.index import PaperIndex

        index = PaperIndex.open(settings)
        record = index.resolve(args.doc)
        removed = index.delete_document(record.id)
    print(f"deleted {record.id} ({record.file}): {removed} chunks")
    return EXIT_OK


def resolve_papers(index: Any, refs: Sequence[str] | None) -> list[str]:
    """Document ids for ``--paper`` values (ids, id prefixes, file names or titles)."""
    return [index.resolve(ref).id for ref in refs or []]


def cmd_search(args: argparse.Namespace) -> int:
    index = _open_index(args)
    papers = resolve_papers(index, args.paper)
    hits = index.search(args.query, k=args.k or 5, papers=papers, include_references=args.references)
    rows = [
        {
            "rank": i + 1,
            "score": round(h.score, 4),
            "id": h.document.metadata.get("id"),
            "doc_id": h.document.metadata.get("doc_id"),
            "file": h.document.metadata.get("file"),
            "title": h.document.metadata.get("title"),
            "page": h.document.metadata.get("page"),
            "page_end": h.document.metadata.get("page_end"),
            "section": h.document.metadata.get("section"),
            "text": h.document.page_content,
        }
        for i, h in enumerate(hits)
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
        out.print(f"[bold]{row['rank']}.[/] [green]{row['score']:.3f}[/] {escape(str(row['file']))}, {pages}{escape(section)}")
        out.print(f"   {escape(row['text'])}\n", soft_wrap=True)
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

    p = sub.add_parser("search", help="show the excerpts most similar to a query")
    p.add_argument("query")
    p.add_argument("--k", type=int, default=5, help="number of excerpts (default 5)")
    p.add_argument("--paper", action="append", metavar="DOC", help="restrict to this document (repeatable)")
    p.add_argument("--references", action="store_true", help="also search reference lists")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_search)

    for register in _EXTRA_COMMANDS:
        register(sub, _common)
    return parser


#: Commands defined in other modules register themselves here (ask, extract, eval, ui).
_EXTRA_COMMANDS: list[Callable[[Any, Callable[[argparse.ArgumentParser], None]], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``paperchat`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as exc:
        for problem in exc.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "?"
            print(
                f"paperchat: error: invalid setting {field} (PAPERCHAT_{field.upper()} or its flag): {problem['msg']}",
                file=sys.stderr,
            )
        return EXIT_ERROR
    except PaperchatError as exc:
        print(f"paperchat: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("paperchat: interrupted; what was already indexed is kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
