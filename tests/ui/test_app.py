"""The chat page, driven by Streamlit's AppTest (no browser): ask, abstain, upload, filter, errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from paperchat.conversation import safe_markdown
from tests.conftest import METHODS_LINES, ROOT
from tests.fake_openai import fake_openai_server
from tests.pdfgen import make_pdf

APP = str(ROOT / "ui" / "app.py")
#: Every test here indexes through the parse worker (a subprocess); some start Chroma or the fake LLM server.
pytestmark = pytest.mark.integration


@pytest.fixture
def app(sample_index: Any, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("PAPERCHAT_DB", str(sample_index.settings.db))
    monkeypatch.setenv("PAPERCHAT_COLLECTION", sample_index.settings.collection)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    return at


def texts(at: AppTest) -> str:
    """What the chat area (not the sidebar) says."""
    main = at.main
    parts = [m.value for m in main.markdown] + [c.value for c in main.caption] + [i.value for i in main.info]
    parts += [e.value for e in main.error] + [w.value for w in main.warning]
    return "\n".join(parts).replace("\\", "")


def test_answer_with_sources_and_mode(app: AppTest) -> None:
    ask(app, "Which GPU were the QRNNs trained on?")
    shown = texts(app)
    assert "extractive (no LLM configured)" in shown and "OPENAI_BASE_URL" in shown
    assert "Titan V" in shown and re.search(r"\u201d \[\d\]", shown)  # a quoted sentence with its citation
    sources = app.get("button_group")
    assert sources and sources[0].value is not None  # a cited excerpt is open
    assert "tang2018_neural_language_model_tradeoffs.md" in shown and "Infrastructure" in shown


def test_dont_know_is_a_distinct_state(app: AppTest) -> None:
    ask(app, "What is the boiling point of tungsten in kelvin?")
    assert any("do not answer this" in i.value for i in app.info)
    assert not app.get("button_group")  # no sources presented as support
    assert all("Closest passages" in e.label for e in app.expander) or not app.expander


def test_filter_by_paper(app: AppTest) -> None:
    target = next(o for o in app.multiselect[0].options if "Bark Beetle" in o)
    app.multiselect[0].select(target).run()
    ask(app, "Which deep learning framework was used (e.g., TensorFlow, PyTorch)?")
    shown = texts(app)
    assert "rammer2019_bark_beetle_outbreaks.pdf" in shown and "TensorFlow" in shown
    for other in ("younis2020", "fairbrass2019", "tang2018"):
        assert other not in shown


def test_upload_bad_and_good_files(app: AppTest, sample_index: Any) -> None:
    before = len(sample_index.list_documents())
    good = make_pdf([METHODS_LINES], title="Uploaded paper")
    app.sidebar.file_uploader[0].set_value([("../../escape.pdf", good, "application/pdf"),
                                            ("empty.pdf", b"", "application/pdf")]).run()
    button = next(b for b in app.sidebar.button if b.label.startswith("Index 2 file"))
    button.click().run()
    assert not app.exception
    shown = texts(app) + "\n".join(s.value for s in app.success)
    assert "escape.pdf: added" in shown.replace("\\", "")
    assert any("empty.pdf" in e.value.replace("\\", "") and "empty file" in e.value for e in app.error)
    assert len(sample_index.list_documents()) == before + 1
    uploaded = Path(sample_index.settings.db) / "uploads" / "escape.pdf"
    assert uploaded.exists()  # inside the upload folder, whatever the name said
    assert not (uploaded.parent / "empty.pdf").exists()  # a file that failed to index is not kept
    # tidy up the shared index for the other tests
    sample_index.delete_document(next(d.id for d in sample_index.list_documents() if d.file == "escape.pdf"))


def test_llm_failure_keeps_the_chat_usable(app: AppTest, monkeypatch: pytest.MonkeyPatch, sample_index: Any) -> None:
    with fake_openai_server() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-ui-secret-123456")
        monkeypatch.setenv("PAPERCHAT_MAX_RETRIES", "0")
        at = AppTest.from_file(APP, default_timeout=180)
        at.run()
        server.default = {"status": 500}
        ask(at, "Which GPU were the QRNNs trained on?")
        assert any("HTTP 500" in e.value for e in at.error)
        server.default = {"content": "They were trained on a Titan V GPU."}
        ask(at, "Which GPU were the QRNNs trained on?")
        shown = texts(at)
        assert "They were trained on a Titan V GPU [" in shown and "answered by gpt-4o-mini (LLM)" in shown
        assert "sk-test-ui-secret" not in shown
        assert len(at.chat_message) == 4  # both turns kept


def test_an_llm_answer_shows_which_sentences_are_in_the_papers(
    app: AppTest, monkeypatch: pytest.MonkeyPatch, sample_index: Any
) -> None:
    with fake_openai_server() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-ui")
        at = AppTest.from_file(APP, default_timeout=180)
        at.run()
        server.default = {"content": "The QRNNs were trained on a Titan V GPU. "
                                     "GPUs are commonly used to speed up the training of neural networks."}
        ask(at, "Which GPU were the QRNNs trained on?")
        shown = texts(at)
        answer = next(m.value for m in at.main.markdown if m.value.startswith("The QRNNs were trained")).replace("\\", "")
        assert "Titan V GPU [" in answer and "commonly used" not in answer  # only what the papers say
        flagged = next(line for line in shown.splitlines() if "commonly used" in line)
        assert ":gray[" in flagged and "not from the papers" in flagged  # greyed and labelled
        assert "in the papers" in shown and "confidence" in shown

        # a reply of textbook content about what the paper does not report: "I don't know", the reply kept apart
        next(b for b in at.sidebar.button if b.label == "New chat").click().run()  # no history to condense
        server.default = {"content": "Common data augmentation methods include random cropping and flipping, which "
                                     "are typically used to reduce overfitting in deep networks."}
        ask(at, "Which data augmentation was applied to the QRNN training data?")
        last = at.main.chat_message[-1]
        assert any("do not answer this" in i.value for i in last.info)
        folded = [e for e in last.expander if e.label.startswith("The model's reply")]
        assert folded and "not from the papers" in folded[0].label
        assert any("cropping" in m.value and "not from the papers" in m.value for m in folded[0].markdown)


def test_new_chat_and_download(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    served: list[tuple[Any, Any]] = []  # what the download button offers, as the page hands it over
    real = st.download_button

    def recording(label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        served.append((data, kwargs))
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", recording)
    first, second = "Which GPU were the QRNNs trained on?", "Which deep learning framework was used (e.g., TensorFlow, PyTorch)?"
    ask(app, first)
    ask(app, second)
    assert len(app.chat_message) == 4
    data, kwargs = served[-1]
    assert kwargs["file_name"] == "paperchat-conversation.md" and kwargs["mime"] == "text/markdown"
    assert not kwargs["disabled"]
    transcript = data.decode() if isinstance(data, bytes) else str(data)
    turns = re.split(r"^## \d+\. ", transcript, flags=re.M)[1:]
    # both turns, in order, escaped as the page shows them (the transcript is Markdown)
    assert [t.splitlines()[0] for t in turns] == [safe_markdown(first), safe_markdown(second)]
    for turn in turns:  # each with its answer and its numbered sources, with the excerpts
        assert "**Answer** (extractive" in turn and "**Sources**" in turn
        sources = re.findall(r"^- \\\[(\d+)\\\] (.+)$", turn, flags=re.M)
        assert [int(n) for n, _ in sources] == list(range(1, len(sources) + 1)) and sources
        assert len(re.findall(r"^  > \S", turn, flags=re.M)) == len(sources)
        assert re.search(r"\\\[\d\\\]", turn.split("**Sources**")[0])  # the answer cites them (escaped)
    assert "Titan V" in turns[0] and safe_markdown("tang2018_neural_language_model_tradeoffs.md") in turns[0]
    assert "TensorFlow" in turns[1]
    new_chat = next(b for b in app.sidebar.button if b.label == "New chat")
    new_chat.click().run()
    assert len(app.chat_message) == 0
    assert served[-1][1]["disabled"] and "## 1." not in str(served[-1][0])  # nothing left to download


def test_upload_while_another_writer_holds_the_index_says_it_is_busy(sample_index: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperchat.vectorstore.lock import write_lock

    monkeypatch.setenv("PAPERCHAT_DB", str(sample_index.settings.db))
    monkeypatch.setenv("PAPERCHAT_COLLECTION", sample_index.settings.collection)
    monkeypatch.setenv("PAPERCHAT_WRITE_WAIT_S", "0")
    before = len(sample_index.list_documents())
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    with write_lock(sample_index.settings.db):  # as if `paperchat index` were running
        at.sidebar.file_uploader[0].set_value([("busy.pdf", make_pdf([METHODS_LINES], title="Busy"), "application/pdf")]).run()
        next(b for b in at.sidebar.button if b.label.startswith("Index 1 file")).click().run()
    assert not at.exception
    assert any("busy" in e.value and "Try again" in e.value for e in at.error)
    assert len(sample_index.list_documents()) == before
    assert not (Path(sample_index.settings.db) / "uploads" / "busy.pdf").exists()  # not indexed, not kept


def test_chroma_server_that_stops_is_a_message_and_the_page_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths
    from paperchat.vectorstore.settings import Settings
    from tests.conftest import SAMPLE_DOCS
    from tests.integration.chroma_server import chroma_executable, chroma_server

    if chroma_executable() is None:
        pytest.skip("chroma CLI not installed")
    data = tmp_path / "server-data"
    question = "Which GPU were the QRNNs trained on?"
    with chroma_server(data) as port:
        monkeypatch.setenv("PAPERCHAT_DB", str(tmp_path / "db"))
        monkeypatch.setenv("PAPERCHAT_CHROMA_HOST", "127.0.0.1")
        monkeypatch.setenv("PAPERCHAT_CHROMA_PORT", str(port))
        assert index_paths(PaperIndex.open(Settings()), [SAMPLE_DOCS / "tang2018_neural_language_model_tradeoffs.md"]).ok
        at = AppTest.from_file(APP, default_timeout=180)
        at.run()
        ask(at, question)
        assert "tang2018_neural_language_model_tradeoffs.md" in texts(at)
    at.run()  # the server is gone: the page says so instead of failing
    assert not at.exception
    assert any("Cannot reach the Chroma server" in e.value and "chroma run" in e.value for e in at.error)
    with chroma_server(data, port=port):
        at.run()
        assert not at.exception and not at.error
        ask(at, question)
        assert not at.exception and len(at.chat_message) == 4  # both turns, the first kept


def test_mode_is_said_once_and_titles_are_whole(app: AppTest) -> None:
    ask(app, "Which GPU were the QRNNs trained on?")
    ask(app, "Which deep learning framework was used for the bark beetle model?")
    modes = [c.value for c in app.main.caption if "extractive (no LLM configured)" in c.value.replace("\\", "")]
    assert len(modes) == 1  # in the page header, not above every answer
    listed = "\n".join(m.value for m in app.sidebar.markdown).replace("\\", "")
    assert "Harnessing Deep Learning in Ecology: An Example Predicting Bark Beetle Outbreaks" in listed
    assert "rammer2019_bark_beetle_outbreaks.pdf" in listed


def test_queued_questions_are_answered_in_order_with_their_history(app: AppTest) -> None:
    from paperchat.conversation import Turn

    questions = ["Which GPU were the QRNNs trained on?", "And which optimizer?", "What is the boiling point of tungsten?"]
    # as left by questions typed while an answer was running: queued, none answered yet
    app.session_state["turns"] = [Turn(q) for q in questions]
    app.run()
    assert not app.exception
    turns = app.session_state["turns"]
    assert [t.question for t in turns] == questions and all(t.result is not None for t in turns)
    # the follow-up was searched with the question before it (the extractive rule for follow-ups)
    assert turns[1].result.standalone_question == f"{questions[1]} ({questions[0]})"
    assert len(app.chat_message) == 2 * len(questions)
    assert not any("Queued" in c.value for c in app.main.caption)
