"""The Extract page end to end in a real headless Chromium: `paperchat ui` over sample_docs/, 3 questions run,
the matrix, a cell's quote, the CSV download, both charts, the agreement with a coded CSV, and a cancelled run
that resumes without asking a finished pair again. Screenshots go to test-artifacts/."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE_DOCS
from tests.fake_openai import fake_openai_server
from tests.ui.test_browser import ASK, CHROMIUM, running_ui, shot

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]

QUESTIONS_CSV = (
    "column,question\n"
    'framework,"Which deep learning framework is used to build the model (e.g., TensorFlow, PyTorch)?"\n'
    'hardware,"Which hardware resources are used for training the model (e.g., GPUs, TPUs)?"\n'
    'optimizer,"Which optimizer is used (e.g., SGD, Adam)?"\n'
)
TITLES = {
    "fairbrass2019_citynet_urban_ecoacoustics.pdf": "CityNet",
    "younis2020_herbarium_plant_organs.pdf": "Detection and annotation of plant organs",
    "rammer2019_bark_beetle_outbreaks.pdf": "Harnessing Deep Learning in Ecology",
    "tang2018_neural_language_model_tradeoffs.md": "Progress and Tradeoffs in Neural Language Models",
}
ROW_PX, PAPER_PX, COLUMN_PX = 35, 240, 200  # the matrix grid's row height and column widths (ui/extract.py)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


def open_extract(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1400, "height": 2400}, accept_downloads=True)
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.goto(url)
    page.get_by_role("link", name="Extract").click()  # the navigation entry a user looks for
    page.get_by_role("button", name="Run", exact=True).wait_for(timeout=120_000)
    return context, page, seen


def set_questions(page: Any, tmp_path: Path) -> None:
    page.get_by_text("Questions (28)").click()
    questions = tmp_path / "three.csv"
    questions.write_text(QUESTIONS_CSV, encoding="utf-8")
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Upload a question list")
    uploader.locator('input[type="file"]').set_input_files(str(questions))
    page.get_by_text("Questions (3)").wait_for(timeout=60_000)


def cell_section(page: Any) -> str:
    body = page.locator("body").inner_text()
    start = body.find("\nCell\n")
    return body[start : body.find("\nCharts\n", start)]


def test_run_matrix_cell_csv_charts_and_kappa(chromium: Any, tmp_path: Path) -> None:
    with running_ui(tmp_path, [SAMPLE_DOCS]) as url:
        context, page, seen = open_extract(chromium, url)
        set_questions(page, tmp_path)
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("4 papers x 3 questions").filter(has_text="0 not run yet").wait_for(timeout=180_000)
        page.get_by_text("12 of 12 pairs done").wait_for(timeout=30_000)
        shot(page, "extract-matrix")

        # reloading the page keeps the finished cells
        page.reload()
        page.get_by_text("4 papers x 3 questions").filter(has_text="0 not run yet").wait_for(timeout=60_000)
        # a click on the matrix cell (Detection and annotation ..., hardware) shows its quote
        grid = page.locator('.st-key-matrix-grid [data-testid="stDataFrame"]')
        grid.get_by_text("hardware").first.wait_for(state="attached", timeout=30_000)
        box = grid.bounding_box()
        x, y = box["x"] + PAPER_PX + COLUMN_PX + COLUMN_PX / 2, box["y"] + ROW_PX + ROW_PX + ROW_PX / 2
        page.mouse.move(x, y)  # as a hand would: the grid tracks the pointer before it takes a click
        page.locator('.st-key-matrix-grid [data-testid="stElementToolbar"]').wait_for(timeout=30_000)
        page.mouse.click(x, y)
        page.get_by_text("hardware: Which hardware resources").wait_for(timeout=30_000)
        cell = cell_section(page)
        assert TITLES["younis2020_herbarium_plant_organs.pdf"] in cell and "TITAN Xp" in cell
        assert "younis2020_herbarium_plant_organs.pdf" in cell and "p. " in cell
        highlighted = page.locator("mark, span").filter(has_text=re.compile("TITAN Xp"))
        assert highlighted.count() >= 1
        shot(page, "extract-cell")

        # the CSV download: one row per paper, value, quote and page per question
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile(r"Download CSV")).click()
        text = Path(download.value.path()).read_text(encoding="utf-8")
        assert text.startswith("# run: ") and "# mode: extractive" in text
        rows = list(csv.reader(io.StringIO("".join(x for x in io.StringIO(text) if not x.startswith("#")))))
        assert len(rows) == 1 + 4 and all(len(r) == 4 + 3 * 3 for r in rows)
        table = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
        assert "PyTorch" in table["younis2020_herbarium_plant_organs.pdf"]["framework"]
        assert "TITAN Xp" in table["younis2020_herbarium_plant_organs.pdf"]["hardware_quote"]
        assert page.get_by_role("button", name=re.compile(r"Download JSONL")).count() == 1

        # both charts; a heat-map mark opens its cell
        charts = page.locator('[data-testid="stVegaLiteChart"]')
        charts.nth(1).scroll_into_view_if_needed()
        assert charts.count() == 2
        assert charts.nth(0).locator('path[aria-label*="share"]').count() == 3
        marks = charts.nth(1).locator('path[aria-label^="column: "]')
        assert marks.count() == 12
        charts.nth(1).locator(f'path[aria-label*="column: optimizer"][aria-label*="{TITLES["tang2018_neural_language_model_tradeoffs.md"]}"]').click()
        page.get_by_text("optimizer: Which optimizer is used").wait_for(timeout=30_000)
        assert "Progress and Tradeoffs" in cell_section(page)
        shot(page, "extract-charts")

        # agreement with a coded table
        gold = tmp_path / "coded.csv"
        gold.write_text("paper,column,value,reported\n"
                        "younis2020_herbarium_plant_organs.pdf,framework,PyTorch,yes\n"
                        "younis2020_herbarium_plant_organs.pdf,hardware,TITAN Xp,\n"
                        "tang2018_neural_language_model_tradeoffs.md,framework,,no\n"
                        "rammer2019_bark_beetle_outbreaks.pdf,hardware,,no\n", encoding="utf-8")
        uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Human-coded table")
        uploader.locator('input[type="file"]').set_input_files(str(gold))
        kappa = page.locator('[data-testid="stMetric"]').filter(has_text="Cohen's kappa")
        kappa.wait_for(timeout=60_000)
        assert re.search(r"Cohen's kappa\s*(-?\d\.\d\d|n/a)", kappa.inner_text())
        shot(page, "extract-agreement")
        assert [u for u in seen if not u.startswith(url) and not u.startswith("data:")] == []
        context.close()


def _pair_of(request: dict[str, Any]) -> tuple[str, str] | None:
    """Which paper and question an extraction request was about (the prompt names the paper's title and the
    question); None for the chat's question."""
    prompt = " ".join(str(m.get("content")) for m in request["body"]["messages"])
    questions = {row["column"]: row["question"] for row in csv.DictReader(io.StringIO(QUESTIONS_CSV))}
    column = next((c for c, q in questions.items() if q in prompt), None)
    return None if column is None else (next(f for f, title in TITLES.items() if title in prompt), column)


def test_a_cancelled_run_resumes_without_redoing_finished_cells_and_the_chat_answers_meanwhile(
    chromium: Any, tmp_path: Path
) -> None:
    with fake_openai_server() as llm:
        fast = {"content": "The model was implemented in PyTorch [1]."}
        llm.replies = [fast] * 3  # the first paper's pairs come back at once, the others slowly
        gate = threading.Event()
        chat_reply = {"content": "The QRNNs were trained on a Titan V GPU [1]."}

        def respond(payload: dict[str, Any]) -> dict[str, Any] | None:
            if "QRNNs" in json.dumps(payload):
                return chat_reply  # the chat's question is answered at once
            if not gate.is_set() and not llm.replies:
                gate.wait(120)  # the run's questions after the first paper wait until the test lets them go
            return None  # then the scripted replies, then the default

        llm.responder = respond
        llm.default = fast
        env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-test-extract", "PAPERCHAT_MAX_RETRIES": "0"}
        with running_ui(tmp_path, [SAMPLE_DOCS], env) as url:
            context, page, _ = open_extract(chromium, url)
            set_questions(page, tmp_path)
            page.get_by_role("button", name="Run", exact=True).click()
            results = tmp_path / "db" / "extract" / "papers" / "results.jsonl"
            deadline = time.monotonic() + 120
            while not results.exists() or len(results.read_text(encoding="utf-8").splitlines()) < 3:
                assert time.monotonic() < deadline, "no cell was written"
                time.sleep(0.1)  # polling the results file: the run's only observable progress
            # the first paper is done and the next one's questions are held at the LLM: the chat answers meanwhile
            # (another tab, the same app process)
            chat = context.new_page()
            chat.goto(url)
            box = chat.get_by_placeholder(ASK)
            box.fill("Which GPU were the QRNNs trained on?")
            box.press("Enter")
            chat.get_by_text("Sources: pick a number").last.wait_for(timeout=120_000)
            assert "Titan V" in chat.locator('[data-testid="stChatMessage"]').last.inner_text()
            page.get_by_text(re.compile(r"pairs done .*· running")).wait_for(timeout=30_000)
            page.get_by_role("button", name="Cancel").click()
            page.get_by_text(re.compile(r"pairs done .*· cancelling")).wait_for(timeout=30_000)
            gate.set()  # the pairs in hand come back, and the run stops after them
            page.get_by_text(re.compile(r"pairs done · cancelled")).wait_for(timeout=60_000)
            shot(page, "extract-cancelled")
            kept = {json.loads(x)["id"]: x for x in results.read_text(encoding="utf-8").splitlines()}
            assert 1 <= len(kept) < 12

            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text("12 of 12 pairs done · finished").wait_for(timeout=120_000)
            shot(page, "extract-resumed")
            final = {json.loads(x)["id"]: x for x in results.read_text(encoding="utf-8").splitlines()}
            assert len(final) == 12 == len(results.read_text(encoding="utf-8").splitlines())
            assert all(final[i] == line for i, line in kept.items())  # finished cells untouched
            asked = Counter(p for p in map(_pair_of, llm.chat_requests()) if p is not None)
            assert asked and max(asked.values()) == 1  # no pair was asked twice
            context.close()
