"""Ctrl-C during ``paperchat extract`` stops it with one clear line, and a rerun leaves one row per pair."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import fake_openai_server
from tests.faults import clean_env, paperchat_command

pytestmark = pytest.mark.integration

QUESTIONS = [
    "Which deep learning library was used to implement the model (e.g., TensorFlow, PyTorch)?",
    "Which hardware resources are used for training the deep learning model (e.g., GPUs, TPUs)?",
    "Which optimizer is used (e.g., SGD, Adam)?",
]
PAPERS = ["younis2020_herbarium_plant_organs.pdf", "rammer2019_bark_beetle_outbreaks.pdf"]


def rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]


def wait_for_rows(path: Path, n: int, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    """Poll the output file until it holds ``n`` complete rows (the run's only observable progress)."""
    deadline = time.monotonic() + timeout_s
    while len(rows(path)) < n:
        assert proc.poll() is None, f"extract ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "no rows written"
        time.sleep(0.05)


def test_ctrl_c_stops_extract_and_a_rerun_leaves_one_row_per_pair(sample_index: Any, tmp_path: Path) -> None:
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    argv = paperchat_command(
        "extract", "--questions", str(questions), "--out", str(out), "--quiet",
        "--db", str(sample_index.settings.db), "--collection", sample_index.settings.collection,
        *[a for p in PAPERS for a in ("--paper", p)],
    )
    with fake_openai_server() as llm:
        # every reply takes a while, so the run is inside the chain's batch (where LangChain used to turn a
        # Ctrl-C into per-pair results) when the interrupt comes
        llm.default = {"delay": 0.5, "content": "The model was trained with PyTorch [1]."}
        env = {**clean_env(), "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-test", "PAPERCHAT_MAX_RETRIES": "0"}
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_rows(out, 2, proc)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, (stdout, stderr)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "interrupted" in lines[0] and "pairs are saved in" in lines[0], stderr
        assert "Traceback" not in stderr
        kept = rows(out)
        assert 2 <= len(kept) < len(QUESTIONS) * len(PAPERS)
        assert not any("KeyboardInterrupt" in (r.get("error") or "") for r in kept)
        assert len({r["id"] for r in kept}) == len(kept)
        answered_before = len(llm.chat_requests())

        llm.default = {"content": "The model was trained with PyTorch [1]."}
        done = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert f"{len(kept)} already in" in done.stdout
        # only the pairs without a row were asked again
        assert len(llm.chat_requests()) - answered_before == len(QUESTIONS) * len(PAPERS) - len(kept)
    final = rows(out)
    assert Counter(r["id"] for r in final) == Counter({f"{p}::{c}": 1 for p in PAPERS for c in _columns()})
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(final)


def test_a_rerun_after_failures_replaces_their_rows(sample_index: Any, tmp_path: Path) -> None:
    """A pair that failed and is answered on the rerun keeps one row: the answer (compacted atomically)."""
    from paperchat.cli import main

    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(QUESTIONS[:2]) + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    argv = ["extract", "--questions", str(questions), "--out", str(out), "--quiet", "--paper", PAPERS[0],
            "--db", str(sample_index.settings.db), "--collection", sample_index.settings.collection]
    with fake_openai_server() as llm, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_BASE_URL", llm.base_url)
        env.setenv("PAPERCHAT_MAX_RETRIES", "0")
        llm.replies = [{"content": "It was implemented with Detectron2 in PyTorch [1]."}, {"status": 500}]
        assert main(argv) == 1
        assert [r.get("status") for r in rows(out)] == ["reported", "error"]
        llm.default = {"content": "The excerpts do not mention the hardware."}
        assert main(argv) == 0
    final = rows(out)
    assert [r.get("status") for r in final] == ["reported", "not_reported"]
    assert len({r["id"] for r in final}) == 2 and not list(tmp_path.glob(".results.jsonl.*.tmp"))


def _columns() -> list[str]:
    from paperchat.questions import with_columns

    return [q.column for q in with_columns(QUESTIONS)]
