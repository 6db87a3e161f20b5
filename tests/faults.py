"""Fault injection shared by the tests and ``bench/reliability.py``: kill indexing at random moments,
check what a fresh reader sees after each kill, rerun, compare with a clean build."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _seed_pdfs() -> list[bytes]:
    from tests.conftest import METHODS_LINES
    from tests.pdfgen import make_pdf

    return [p.read_bytes() for p in sorted((ROOT / "sample_docs").glob("*.pdf"))] + [make_pdf([METHODS_LINES], title="Methods")]


#: PDFs that fuzzing starts from: the sample PDFs and a generated one.
SEEDS = _seed_pdfs()
#: What a clear per-file error says (one of the reasons paperchat gives).
CLEAR = re.compile(
    r"corrupt|truncated|not a PDF|encrypted|no extractable text|garbage|no text|empty|damaged|crashed|"
    r"longer than|memory|pages|million characters|cannot parse|binary data|invalid|does not read as prose",
    re.I,
)


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: flip a byte, cut the file, insert bytes, repeat a slice."""
    out = bytearray(data)
    for kind, pos, value in edits:
        if not out:
            break
        at = pos % len(out)
        if kind == 0:
            out[at] ^= value or 1
        elif kind == 1:
            del out[at:]
        elif kind == 2:
            out[at:at] = bytes([value]) * (value % 64 + 1)
        else:
            out[at:at] = out[at : at + value * 16]
    return bytes(out)


def paperchat_command(*args: str) -> list[str]:
    """The ``paperchat`` console script of this environment (or ``python -m paperchat.cli``)."""
    exe = Path(sys.executable).with_name("paperchat")
    return [*([str(exe)] if exe.exists() else [sys.executable, "-m", "paperchat.cli"]), *args]


def clean_env() -> dict[str, str]:
    """The environment without the developer's PAPERCHAT_* and OPENAI_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PAPERCHAT_", "OPENAI_"))}


def reader_state(db: Path, collection: str = "papers", port: int | None = None) -> dict[str, Any]:
    """The index as a fresh reader process sees it (``tests/integration/index_state.py``); with a port, the
    collection on the Chroma server at 127.0.0.1:PORT (``db`` is then the reader's working folder)."""
    server = [collection, str(port)] if port else [collection]
    done = subprocess.run([sys.executable, "-m", "tests.integration.index_state", str(db), *server], cwd=ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"reading the index failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def check_after_kill(seen: dict[str, Any]) -> None:
    """What a reader may see after a killed run: only whole documents, and queries only show those."""
    assert seen["inconsistent"] == [], f"complete documents with chunks missing: {seen['inconsistent']}"
    assert set(seen["returned_docs"]) <= set(seen["complete"]), "a query returned a partial document"
    assert set(seen["lexical_rows"]) <= set(seen["complete"]), "the keyword index holds a partial document"


def paper_folder(folder: Path, variants: int = 0, originals: bool = True) -> Path:
    """A folder of papers: ``sample_docs/`` (unless not ``originals``), plus ``variants`` distinct variants
    of each Markdown paper."""
    from tests.conftest import SAMPLE_PAPERS

    folder.mkdir(parents=True, exist_ok=True)
    if originals:
        for src in SAMPLE_PAPERS:
            shutil.copy(src, folder / src.name)
    for i in range(variants):
        for src in (p for p in SAMPLE_PAPERS if p.suffix == ".md"):
            (folder / f"{src.stem}-variant{i}.md").write_text(f"Variant {i}.\n\n" + src.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def kill_and_rerun(src: Path, work: Path, kills: int, seed: int, kills_per_round: int = 3) -> dict[str, Any]:
    """Index ``src`` cleanly, then in rounds from an empty store: SIGKILL ``paperchat index`` at random
    moments (checking the store after each), rerun it to the end and compare with the clean build."""
    clean_db = work / "clean"
    start = time.monotonic()
    subprocess.run(paperchat_command("index", str(src), "--db", str(clean_db), "--quiet"), env=clean_env(),
                   check=True, timeout=900, stdout=subprocess.DEVNULL)
    duration = time.monotonic() - start
    clean = reader_state(clean_db)
    rng = random.Random(seed)
    db = work / "killed"
    killed = finished = rounds = 0
    while killed + finished < kills:
        shutil.rmtree(db, ignore_errors=True)
        rounds += 1
        for _ in range(kills_per_round):
            proc = subprocess.Popen(paperchat_command("index", str(src), "--db", str(db), "--quiet"), env=clean_env(),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:  # SIGKILL at a random moment of the run, if it is still running then
                proc.wait(timeout=rng.uniform(0.3, duration))
                finished += 1
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                killed += 1
            check_after_kill(reader_state(db))
        rerun = subprocess.run(paperchat_command("index", str(src), "--db", str(db), "--quiet"), env=clean_env(),
                               capture_output=True, text=True, timeout=900)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        final = reader_state(db)
        assert final["complete"] == clean["complete"], "documents differ from a clean build"
        assert final["ids"] == clean["ids"], "chunk ids differ from a clean build (missing or left over)"
        assert final["partial"] == [] and final["inconsistent"] == []
        assert final["lexical_rows"] == clean["complete"], "the keyword index differs from a clean build"
    return {"kills": killed, "runs_that_finished_before_their_kill": finished, "rounds": rounds,
            "documents": len(clean["complete"]), "chunks": len(clean["ids"]), "clean_build_s": round(duration, 1)}
