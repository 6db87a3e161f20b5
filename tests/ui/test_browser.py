"""End to end in a real headless Chromium: `paperchat ui` on a free localhost port over sample_docs/.

Screenshots go to test-artifacts/. Skipped when Chromium or Playwright is missing (.ci/run installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import METHODS_LINES, ROOT, SAMPLE_DOCS, free_port
from tests.fake_openai import fake_openai_server
from tests.faults import paperchat_command
from tests.pdfgen import make_pdf
from tests.servers import http_ok

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]
ARTIFACTS = ROOT / "test-artifacts"
ASK = "Ask a question about the papers"

HOSTILE_MD = """# Hostile test document

## Tracking

The tracking pixel study used a hostile payload <script>window.__pwned = 1</script> and
![pixel](http://203.0.113.7/track.png) and a [link](javascript:window.__pwned=2) and
<img src=x onerror="window.__pwned=3"> and :red[styled text] and $x^2$ and https://203.0.113.7/bare.
The tracking pixel study measured how often the hostile payload executed in the reader's browser.
"""


@contextmanager
def running_ui(work: Path, papers: list[Path], extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """``paperchat ui --index PAPERS`` on a free localhost port; yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERCHAT_", "OPENAI_"))}
    env.update(extra_env or {})
    log = (work / "ui.log").open("wb")
    proc = subprocess.Popen(paperchat_command("ui", "--index", *map(str, papers), "--db", str(work / "db"), "--port", str(port)),
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not http_ok(f"{url}/_stcore/health"):  # readiness is polled: the server gives no other signal
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"paperchat ui did not start; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("ui")
    hostile = work / "hostile_<b>bold.md"  # HTML in a file name (no slash: it is a path)
    hostile.write_text(HOSTILE_MD, encoding="utf-8")
    with running_ui(work, [SAMPLE_DOCS, hostile]) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, ui_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.requests_seen = []  # type: ignore[attr-defined]
    page.on("request", lambda request: page.requests_seen.append(request.url))
    page.goto(ui_url)
    page.get_by_placeholder(ASK).wait_for(timeout=120_000)
    yield page
    context.close()


def ask(page: Any, question: str) -> None:
    box = page.get_by_placeholder(ASK)
    box.fill(question)
    box.press("Enter")
    # the settled answer: its sources, or the "I don't know" box (the streamed text says "do not answer" first)
    settled = page.get_by_text("Sources: pick a number").or_(page.get_by_text("The indexed papers do not answer this.", exact=True))
    settled.last.wait_for(timeout=120_000)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_answer_shows_text_and_a_source_excerpt(page: Any) -> None:
    ask(page, "Which GPU were the QRNNs trained on?")
    shot(page, "answer")
    assistant = page.locator('[data-testid="stChatMessage"]').last
    assert "Titan V" in assistant.inner_text()
    assert "extractive (no LLM configured)" not in assistant.inner_text()  # said once, in the page header
    assert page.get_by_text("extractive (no LLM configured)").count() == 1
    assert "tang2018_neural_language_model_tradeoffs.md" in assistant.inner_text()  # the open source excerpt names its paper
    page.get_by_role("radio", name="[2]", exact=True).click()
    page.get_by_text(re.compile(r"^\[2\] .+\(\w[\w.-]*\.(?:pdf|md)\)")).first.wait_for(timeout=60_000)


def test_unanswerable_question_shows_the_dont_know_state(page: Any) -> None:
    ask(page, "What is the boiling point of tungsten in kelvin?")
    shot(page, "dont-know")
    assistant = page.locator('[data-testid="stChatMessage"]').last
    assert "The indexed papers do not answer this." in assistant.inner_text()
    assert "Sources: pick a number" not in assistant.inner_text()


def _highlight_box(png: bytes) -> tuple[float, float, float, float]:
    """Bounding box (left, top, right, bottom, as fractions of the image) of the orange highlight's pixels."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = image.size
    pixels = image.load()

    def orange(r: int, g: int, b: int) -> bool:
        return r >= 200 and b <= 170 and r - g >= 25

    hits = [(x, y) for x in range(0, w, 2) for y in range(0, h, 2) if orange(*pixels[x, y])]
    assert len(hits) > 50, "no highlight drawn"
    xs, ys = sorted(x for x, _ in hits), sorted(y for _, y in hits)
    trim = len(hits) // 100  # a stray orange pixel of a figure does not move the box
    return xs[trim] / w, ys[trim] / h, xs[-1 - trim] / w, ys[-1 - trim] / h


def _text_box(pdf: Path, page: int, text: str) -> tuple[float, float, float, float]:
    """Where ``text`` is on a PDF page, straight from pdfium's character boxes, as fractions of the page."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        p = doc[page - 1]
        width, height = p.get_size()
        textpage = p.get_textpage()
        index, count = textpage.search(text).get_next()
        boxes = [textpage.get_charbox(i) for i in range(index, index + count)]
    finally:
        doc.close()
    return (min(b[0] for b in boxes) / width, 1 - max(b[3] for b in boxes) / height,
            max(b[2] for b in boxes) / width, 1 - min(b[1] for b in boxes) / height)


def test_pdf_source_opens_on_its_page_with_the_sentence_highlighted(page: Any) -> None:
    # (placed before the upload test, whose paper would answer this question too)
    ask(page, "Which GPU was used to train the Faster R-CNN model for herbarium scans?")
    assistant = page.locator('[data-testid="stChatMessage"]').last
    assert "TITAN Xp" in assistant.inner_text()
    assistant.get_by_text("Show on the page").first.click()
    image = assistant.locator('[data-testid="stImage"] img').first
    image.wait_for(timeout=120_000)
    page.get_by_text("Page 8 of 18").first.wait_for(timeout=30_000)
    assert "The cited sentence is highlighted" in assistant.inner_text()
    image.evaluate("img => img.decode()")  # fully loaded before it is looked at
    page.get_by_text("Page 8 of 18").first.scroll_into_view_if_needed()
    shot(page, "page-view")

    pdf = SAMPLE_DOCS / "younis2020_herbarium_plant_organs.pdf"
    left, top, right, bottom = _highlight_box(image.screenshot())
    start = _text_box(pdf, 8, "Due to the large image size")  # the sentence's first words ...
    gpu = _text_box(pdf, 8, "TITAN Xp")  # ... and its answer, a line further down
    for box in (start, gpu):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        assert left <= cx <= right and top <= cy <= bottom, (box, (left, top, right, bottom))
    # the quoted sentences' lines (the answer may quote the next sentences of the excerpt too), not the page
    assert top >= start[1] - 0.01 and bottom - top <= 0.35

    page.get_by_role("button", name="Next").first.click()
    page.get_by_text("Page 9 of 18").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Previous").first.click()
    page.get_by_text("Page 8 of 18").first.wait_for(timeout=60_000)


def test_markdown_source_keeps_the_text_view(page: Any) -> None:
    ask(page, "Which Raspberry Pi model was used for the energy measurements?")  # only the Markdown paper says
    assistant = page.locator('[data-testid="stChatMessage"]').last
    assert "tang2018_neural_language_model_tradeoffs.md" in assistant.inner_text()  # the picked source is the paper
    assert "Raspberry Pi" in assistant.inner_text()
    assert assistant.get_by_text("Show on the page").filter(visible=True).count() == 0  # text, no page to show


def test_upload_is_indexed_and_listed(page: Any, tmp_path: Path) -> None:
    pdf = tmp_path / "uploaded_methods.pdf"
    pdf.write_bytes(make_pdf([METHODS_LINES], title="Uploaded methods"))
    page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(pdf))
    page.get_by_role("button", name="Index 1 file(s)").click()
    page.get_by_text("uploaded_methods.pdf: added").wait_for(timeout=120_000)
    # the paper list names it, with its file
    listed = page.locator('[data-testid="stSidebar"] [data-testid="stMarkdownContainer"]',
                          has_text="Detection of plant organs on herbarium scans")
    listed.first.wait_for(timeout=30_000)
    assert "uploaded_methods.pdf" in listed.first.inner_text()
    shot(page, "upload")


def test_paper_titles_are_whole_and_the_mode_is_said_once(page: Any) -> None:
    title = "Harnessing Deep Learning in Ecology: An Example Predicting Bark Beetle Outbreaks"
    entry = page.locator('[data-testid="stSidebar"] [data-testid="stMarkdownContainer"]', has_text=title).first
    entry.wait_for(timeout=30_000)
    assert title in entry.inner_text() and "rammer2019_bark_beetle_outbreaks.pdf" in entry.inner_text()
    box = entry.bounding_box()
    sidebar = page.locator('[data-testid="stSidebar"]').bounding_box()
    assert box is not None and sidebar is not None and box["x"] + box["width"] <= sidebar["x"] + sidebar["width"]  # wrapped, not cut
    ask(page, "Which GPU were the QRNNs trained on?")
    ask(page, "Which deep learning framework was used for the bark beetle model?")
    shot(page, "mode-once")
    assert page.get_by_text("extractive (no LLM configured)").count() == 1  # the page header, not every answer


def test_questions_typed_while_answering_are_all_answered_in_order(page: Any) -> None:
    questions = [
        "Which GPU were the QRNNs trained on?",
        "And which optimizer?",
        "Which deep learning framework was used for the bark beetle model?",
        "What does CityNet measure?",
        "How many herbarium scans were annotated?",
        "Which data augmentation was used?",
    ]
    box = page.get_by_placeholder(ASK)
    messages = page.locator('[data-testid="stChatMessage"]')
    for question in questions:  # typed one after another while the answers before are still running
        box.fill(question)
        box.press("Enter")
        # the page shows the question (queued, or being answered) before the next is typed, as for a person
        # typing; Streamlit itself can merge two submissions a few milliseconds apart into one
        messages.filter(has_text=question).first.wait_for(timeout=60_000)
    # every question gets an answer: user and assistant messages alternate, and nothing is left queued
    page.wait_for_function(
        """n => {
            const m = document.querySelectorAll('[data-testid="stChatMessage"]');
            const text = document.body.innerText;
            return m.length === 2 * n && !text.includes('Queued:') && !text.includes('Answering...');
        }""",
        arg=len(questions), timeout=300_000,
    )
    shot(page, "queued-questions")
    texts = [messages.nth(i).inner_text() for i in range(messages.count())]
    assert [t.strip().splitlines()[-1] for t in texts[0::2]] == questions  # each once, in the order typed (after the avatar)
    for answer in texts[1::2]:
        assert "Sources: pick a number" in answer or "do not answer this" in answer


def test_hostile_text_renders_inert(page: Any, ui_url: str) -> None:
    ask(page, "What did the tracking pixel study with the hostile payload measure?")
    assistant = page.locator('[data-testid="stChatMessage"]').last
    assistant.locator('[data-testid="stExpander"] summary').first.click()  # all sources, or the closest passages
    page.get_by_text("window.__pwned = 1", exact=False).first.wait_for(timeout=30_000)
    shot(page, "hostile")
    assert page.evaluate("window.__pwned") is None  # no script ran
    body = page.locator("body").inner_text()
    assert "window.__pwned = 1" in body  # the payload is shown as text
    assert page.locator('img[src*="203.0.113.7"], img[src="x"]').count() == 0
    assert page.locator('a[href^="javascript:"], a[href*="203.0.113.7"]').count() == 0
    assert page.locator("b:has-text('bold')").count() == 0  # the file name's HTML is text too
    outside = [u for u in page.requests_seen if not u.startswith(ui_url) and not u.startswith("data:")]
    assert outside == []


HOSTILE_ANSWER = (
    "The QRNNs were trained on <script>window.__pwned = 4</script> a Titan V GPU [1]. <img src=x onerror=\"window.__pwned=5\"> "
    "![pixel](http://203.0.113.7/model.png) [click](javascript:window.__pwned=6) :red[alarm] $x^2$ "
    "https://203.0.113.7/model-bare"
)


def test_hostile_model_output_renders_inert(browser: Any, tmp_path: Path) -> None:
    with fake_openai_server() as llm:
        llm.default = {"content": HOSTILE_ANSWER}
        env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-test-browser-secret", "PAPERCHAT_MAX_RETRIES": "0"}
        with running_ui(tmp_path, [SAMPLE_DOCS / "tang2018_neural_language_model_tradeoffs.md"], env) as url:
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            page = context.new_page()
            seen: list[str] = []
            page.on("request", lambda request: seen.append(request.url))
            page.goto(url)
            page.get_by_placeholder(ASK).wait_for(timeout=120_000)
            ask(page, "Which GPU were the QRNNs trained on?")
            page.get_by_text("window.__pwned = 4", exact=False).first.wait_for(timeout=30_000)
            shot(page, "hostile-llm-answer")
            assert page.evaluate("window.__pwned") is None  # no script ran
            assert page.locator('img[src*="203.0.113.7"], img[src="x"]').count() == 0
            assert page.locator('a[href^="javascript:"], a[href*="203.0.113.7"]').count() == 0
            assert "sk-test-browser-secret" not in page.content()
            assert [u for u in seen if not u.startswith(url) and not u.startswith("data:")] == []
            context.close()


def test_the_page_keeps_answering_after_another_process_deletes_a_paper(browser: Any, tmp_path: Path) -> None:
    papers = [SAMPLE_DOCS / "tang2018_neural_language_model_tradeoffs.md", SAMPLE_DOCS / "rammer2019_bark_beetle_outbreaks.pdf"]
    with running_ui(tmp_path, papers) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        page = context.new_page()
        page.goto(url)
        page.get_by_placeholder(ASK).wait_for(timeout=120_000)
        messages = page.locator('[data-testid="stChatMessage"]')

        def ask_and_wait(question: str, n_answers: int) -> None:
            box = page.get_by_placeholder(ASK)
            box.fill(question)
            box.press("Enter")
            answer = messages.nth(2 * n_answers - 1)
            answer.get_by_text("Sources: pick a number").or_(answer.get_by_text("do not answer this")).or_(
                answer.get_by_text("Something went wrong")).first.wait_for(timeout=120_000)

        ask_and_wait("Which GPU were the QRNNs trained on?", 1)  # the app's store now holds that paper's vectors
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERCHAT_", "OPENAI_"))}
        subprocess.run(paperchat_command("delete", "tang2018_neural_language_model_tradeoffs.md", "--db", str(tmp_path / "db")),
                       env=env, check=True, capture_output=True, timeout=300)
        for n in (2, 3):  # questions that reach the deleted paper's chunks
            ask_and_wait("Which GPU were the QRNNs trained on?", n)
        shot(page, "after-delete-elsewhere")
        assert messages.count() == 6
        text = page.locator("body").inner_text()
        assert "Something went wrong" not in text
        last = messages.last.inner_text()
        assert "tang2018_neural_language_model_tradeoffs.md" not in last  # a deleted paper is not cited
        context.close()
