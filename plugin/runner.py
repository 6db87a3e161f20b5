"""Extraction runs in the background, for the Extract page: the setup, results and progress of a collection's
extraction kept on disk, and the run itself in a thread of the app's process.

A workspace is a folder per collection (``<db>/extract/<collection>/``) with:

* ``questions.csv``: the question list being edited (the shipped methodology list until then);
* ``setup.json``: the papers chosen (none: every paper);
* ``results.jsonl`` (and ``results.manifest.json``): the rows, written by the same engine and in the same
  format as ``paperchat extract`` (:mod:`paperchat.extract`), so a run can be resumed from either;
* ``state.json``: the progress of the latest run (status, pairs done of total, rate, time left), rewritten
  atomically at most twice a second.

The run is a thread, not part of the page's script run: leaving the page, reloading it or opening it in
another tab shows the same run, and the chat keeps answering (the two share the index and the chain, which
serve several sessions at once). If the app stops, the cells already written stay; the state file then
says "running" with nobody holding the results file, which reads as *interrupted*, and Run continues it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paperchat.atomic import atomic_write
from paperchat.extract import ExtractionBusyError, Task, excerpts_to_read, is_running, run_extraction
from paperchat.manifest import record_manifest
from paperchat.questions import Question, check_questions, parse_questions, preset, questions_csv
from paperchat.vectorstore.errors import IndexBusyError

#: Seconds between two writes of the progress file.
STATE_INTERVAL_S = 0.5
#: Pairs answered at once with an LLM endpoint (the extractive answerer uses the cores by itself).
LLM_CONCURRENCY = 4

_ACTIVE: dict[str, tuple[threading.Thread, threading.Event]] = {}
_ACTIVE_LOCK = threading.Lock()


@dataclass(slots=True)
class RunState:
    """The progress of a workspace's latest run."""

    status: str = "idle"  # idle, running, cancelling, cancelled, finished, failed, interrupted, elsewhere
    total: int = 0
    done: int = 0  # pairs with a row (finished before the run, or written by it)
    written: int = 0  # rows this run wrote
    failed: int = 0
    started_at: float = 0.0
    updated_at: float = 0.0
    message: str = ""
    run: str = ""

    @property
    def active(self) -> bool:
        return self.status in ("running", "cancelling", "elsewhere")

    @property
    def rate(self) -> float:
        """Pairs per second of this run."""
        elapsed = (self.updated_at or time.time()) - self.started_at
        return self.written / elapsed if self.written and elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate else None


def _write_json(path: Path, data: Any) -> None:
    with atomic_write(path) as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)


class Workspace:
    """The extraction folder of one collection (module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.results = self.folder / "results.jsonl"
        self.questions_file = self.folder / "questions.csv"
        self.setup_file = self.folder / "setup.json"
        self.state_file = self.folder / "state.json"

    @classmethod
    def for_settings(cls, settings: Any) -> Workspace:
        """The workspace of the collection the settings name."""
        return cls(Path(settings.db) / "extract" / settings.collection)

    # -- setup ---------------------------------------------------------------------------------------

    def load_questions(self) -> list[Question]:
        """The saved question list, or the shipped methodology questions."""
        if self.questions_file.exists():
            with contextlib.suppress(Exception):
                return parse_questions(self.questions_file.read_bytes(), self.questions_file.name)
        return preset()

    def save_questions(self, questions: Sequence[Question]) -> None:
        """Keep a (checked) question list for the next visit."""
        check_questions(questions)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.questions_file) as fh:
            fh.write(questions_csv(questions))

    def load_papers(self) -> list[str]:
        """The chosen papers' document ids (empty: every paper)."""
        try:
            return list(json.loads(self.setup_file.read_text(encoding="utf-8")).get("papers") or [])
        except (FileNotFoundError, json.JSONDecodeError, AttributeError):
            return []

    def save_papers(self, doc_ids: Sequence[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_json(self.setup_file, {"papers": list(doc_ids)})

    # -- progress ------------------------------------------------------------------------------------

    def state(self) -> RunState:
        """The latest run's progress; a run recorded as going on that nobody is running reads as interrupted."""
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            state = RunState(**{k: v for k, v in data.items() if k in RunState.__dataclass_fields__})
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            state = RunState()
        if state.status in ("running", "cancelling") and not self.active_here():
            if is_running(self.results):
                state.status = "elsewhere"
            else:
                state.status = "interrupted"
                state.message = "The last run stopped before it finished (the app was stopped); Run continues it."
        return state

    def _save_state(self, state: RunState) -> None:
        state.updated_at = time.time()
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_json(self.state_file, asdict(state))

    def active_here(self) -> bool:
        """True while this process runs the workspace's extraction."""
        with _ACTIVE_LOCK:
            entry = _ACTIVE.get(str(self.folder))
            return entry is not None and entry[0].is_alive()

    # -- runs ----------------------------------------------------------------------------------------

    def start(
        self, retriever: Any, chain: Any, tasks: list[Task], manifest: dict[str, Any], settings: Any,
        concurrency: int | None = None,
    ) -> threading.Thread:
        """Start answering ``tasks`` in a background thread; finished pairs are skipped.

        Raises :class:`ExtractionBusyError` when a run already writes this workspace, and
        :class:`~paperchat.vectorstore.errors.IndexBusyError` while another process writes to the index.
        """
        from paperchat.vectorstore.lock import writer_lock

        if self.active_here() or is_running(self.results):
            raise ExtractionBusyError("A run is already going on for this collection: wait for it, or cancel it.")
        try:
            with writer_lock(settings, wait_s=0.0):
                pass  # nobody is writing to the index right now
        except IndexBusyError as exc:
            raise IndexBusyError(
                f"{exc} An extraction reads papers that are being changed: start the run when indexing has "
                "finished. The cells already extracted are kept."
            ) from None
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = record_manifest(self.results, manifest)
        state = RunState(status="running", total=len(tasks), started_at=time.time(), run=kept["id"])
        self._save_state(state)
        stop = threading.Event()
        if concurrency is None:
            concurrency = LLM_CONCURRENCY if str(manifest.get("mode", "")).startswith("llm:") else 1

        def work() -> None:
            last_write = 0.0

            def started(todo: int) -> None:
                state.done = state.total - todo
                self._save_state(state)

            def advanced(row: dict[str, Any]) -> None:
                nonlocal last_write
                state.done += 1
                state.written += 1
                state.failed += bool(row.get("error"))
                now = time.monotonic()
                if now - last_write >= STATE_INTERVAL_S:
                    last_write = now
                    if stop.is_set():
                        state.status = "cancelling"
                    self._save_state(state)

            try:
                summary = run_extraction(retriever, chain, tasks, self.results, progress=advanced,
                                         concurrency=concurrency, should_stop=stop.is_set, run=kept["id"],
                                         on_start=started, fetch=excerpts_to_read(settings))
                state.status = "cancelled" if summary.cancelled else "finished"
                if summary.errors:
                    state.message = f"{len(summary.errors)} pair(s) failed, e.g. {summary.errors[0]}; Run asks them again."
            except Exception as exc:  # noqa: BLE001 - the page shows it; the cells written so far are kept
                state.status, state.message = "failed", str(exc) or type(exc).__name__
            finally:
                if state.status in ("running", "cancelling"):
                    state.status = "failed"
                self._save_state(state)
                with _ACTIVE_LOCK:
                    _ACTIVE.pop(str(self.folder), None)

        thread = threading.Thread(target=work, name=f"paperchat-extract-{self.folder.name}", daemon=True)
        with _ACTIVE_LOCK:
            _ACTIVE[str(self.folder)] = (thread, stop)
        thread.start()
        return thread

    def cancel(self) -> bool:
        """Ask this process's run to stop after the pairs in hand; False when none is going on here."""
        with _ACTIVE_LOCK:
            entry = _ACTIVE.get(str(self.folder))
        if entry is None:
            return False
        entry[1].set()
        state = self.state()
        if state.status == "running":
            state.status = "cancelling"
            self._save_state(state)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for this process's run to end (tests, benchmarks); True if none is going on any more."""
        with _ACTIVE_LOCK:
            entry = _ACTIVE.get(str(self.folder))
        if entry is not None:
            entry[0].join(timeout)
        return not self.active_here()
