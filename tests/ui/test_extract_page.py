"""The Extract page, driven by Streamlit's AppTest (no browser): set up, run, matrix, cell, exports, agreement,
and one clear message for each kind of bad input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from paperchat.runner import Workspace
from paperchat.vectorstore.lock import write_lock
from paperchat.vectorstore.settings import Settings
from tests.conftest import ROOT

APP = str(ROOT / "ui" / "app.py")
QUESTIONS_CSV = (
    b"column,question\n"
    b'framework,"Which deep learning framework is used to build the model (e.g., TensorFlow, PyTorch)?"\n'
    b'hardware,"Which hardware resources are used for training the model (e.g., GPUs, TPUs)?"\n'
    b'optimizer,"Which optimizer is used (e.g., SGD, Adam)?"\n'
)
YOUNIS = "younis2020_herbarium_plant_organs.pdf"


@pytest.fixture
def settings(sample_index: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A copy of the sample index of its own, so that each test's extraction folder starts empty."""
    db = tmp_path / "db"
    shutil.copytree(sample_index.settings.db, db, ignore=shutil.ignore_patterns("extract"))
    monkeypatch.setenv("PAPERCHAT_DB", str(db))
    monkeypatch.setenv("PAPERCHAT_COLLECTION", sample_index.settings.collection)
    return Settings()


def open_page(settings: Settings) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("extract.py")
    at.run()
    assert not at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [e.value for e in at.error] + [s.value for s in at.success] + [c.value for c in at.code]
    return "\n".join(parts).replace("\\", "")


def upload(at: AppTest, label_start: str, name: str, data: bytes) -> None:
    uploader = next(u for u in at.file_uploader if u.label.startswith(label_start))
    uploader.set_value([(name, data, "text/csv")]).run()
    assert not at.exception


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def run_and_wait(at: AppTest, settings: Settings) -> None:
    button(at, "Run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert Workspace.for_settings(settings).wait(300)
    at.run()


def matrix_frame(at: AppTest) -> Any:
    return next(d.value for d in at.dataframe if "paper" in d.value.columns)


def test_run_three_questions_then_the_matrix_a_cell_exports_charts_and_manifest(settings: Settings) -> None:
    at = open_page(settings)
    assert "Questions (28)" in [e.label for e in at.expander]  # the shipped methodology list to start from
    assert "extractive (no LLM configured)" in texts(at)
    upload(at, "Upload a question list", "three.csv", QUESTIONS_CSV)
    assert "Questions (3)" in [e.label for e in at.expander]
    run_and_wait(at, settings)

    frame = matrix_frame(at)
    assert list(frame.columns) == ["paper", "framework", "hardware", "optimizer"] and len(frame) == 4
    younis = frame[frame["paper"].str.startswith("Detection and annotation of plant organs")].iloc[0]
    assert "PyTorch" in younis["framework"] and "(2020)" in younis["paper"]
    assert "4 papers x 3 questions" in texts(at) and "0 failed, 0 not run yet" in texts(at)

    next(s for s in at.selectbox if s.label == "Paper").set_value(YOUNIS).run()
    next(s for s in at.selectbox if s.label == "Question").set_value("hardware").run()
    shown = texts(at)
    assert any("TITAN" in s.value for s in at.success)
    assert ":orange-background[" in shown and "TITAN Xp" in shown  # the quoted sentence, highlighted
    assert YOUNIS in shown and "p. " in shown and "similarity to the question" in shown

    labels = [d.label for d in at.get("download_button")]
    assert any("CSV" in label and "wide" in label for label in labels)
    assert any("JSONL" in label and "long" in label for label in labels)
    assert len(at.get("vega_lite_chart")) == 2
    assert "mode: extractive" in shown and "fingerprint" in shown  # the run manifest
    rows = Workspace.for_settings(settings).results.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 12


def test_agreement_with_a_human_coded_table(settings: Settings) -> None:
    at = open_page(settings)
    upload(at, "Upload a question list", "three.csv", QUESTIONS_CSV)
    run_and_wait(at, settings)
    gold = ("paper,column,value,reported\n"
            f"{YOUNIS},framework,PyTorch,yes\n"
            f"{YOUNIS},hardware,TITAN Xp GPU,\n"
            "tang2018_neural_language_model_tradeoffs.md,framework,,no\n"
            "rammer2019_bark_beetle_outbreaks.pdf,optimizer,Adam,\n").encode()
    upload(at, "Human-coded table", "coded.csv", gold)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["pairs compared"] == "4" and metrics["Cohen's kappa"] != ""
    per_question = next(d.value for d in at.dataframe if "kappa" in d.value.columns)
    assert set(per_question["column"]) == {"framework", "hardware", "optimizer", "all"}
    assert any(m.value.startswith("**Disagreements (") for m in at.markdown)


def test_bad_input_gets_one_clear_message_and_no_cell_is_lost(settings: Settings) -> None:
    at = open_page(settings)
    upload(at, "Upload a question list", "three.csv", QUESTIONS_CSV)
    run_and_wait(at, settings)
    before = matrix_frame(at).copy()

    cases = [
        ("Upload a question list", "many.txt", "".join(f"Question number {i}?\n" for i in range(201)).encode(),
         "at most 200"),
        ("Upload a question list", "dup.csv", b"column,question\ngpu,Which GPU?\ngpu,Which CPU?\n", "must be unique"),
        ("Upload a question list", "empty.txt", b"\n# nothing\n", "no questions found"),
        ("Human-coded table", "coded.txt", b"paper,question,value\n", "is not a CSV file"),
        ("Human-coded table", "coded.csv", b"paper,question,value\nnot-a-paper.pdf,framework,PyTorch\n",
         "not-a-paper.pdf"),
        ("Human-coded table", "coded.csv", f"paper,question,value\n{YOUNIS},colour of the cover,red\n".encode(),
         "colour of the cover"),
    ]
    for label, name, data, message in cases:
        upload(at, label, name, data)
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and message in errors[0], (name, errors)
        assert "Questions (3)" in [e.label for e in at.expander]
        assert matrix_frame(at).equals(before)
        next(u for u in at.file_uploader if u.label.startswith(label)).set_value([]).run()  # removed again

    with write_lock(settings.db):  # as if `paperchat index` were writing
        button(at, "Run").click().run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "busy" in errors[0] and "cells already extracted are kept" in errors[0]
    assert matrix_frame(at).equals(before)


def test_a_rerun_after_the_page_is_reopened_keeps_the_cells(settings: Settings) -> None:
    at = open_page(settings)
    upload(at, "Upload a question list", "three.csv", QUESTIONS_CSV)
    run_and_wait(at, settings)
    first = matrix_frame(at)
    again = open_page(settings)  # a new session (a reload, another tab): the setup and the cells are on disk
    assert "Questions (3)" in [e.label for e in again.expander]
    assert matrix_frame(again).equals(first)
    results = Workspace.for_settings(settings).results
    size = results.stat().st_size
    run_and_wait(again, settings)  # nothing is missing: nothing is asked again
    assert results.stat().st_size == size and matrix_frame(again).equals(first)
