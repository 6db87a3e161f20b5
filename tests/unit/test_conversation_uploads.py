"""Safe rendering of untrusted text, transcripts, and upload names that cannot escape their folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paperchat.conversation import Turn, highlight, safe_markdown, transcript_markdown
from paperchat.types import Citation, QAResult
from paperchat.vectorstore.errors import DocumentError
from paperchat.vectorstore.uploads import safe_filename, save_upload

HOSTILE = '<script>alert(1)</script> ![x](http://evil.example/x.png) [go](javascript:alert(1)) :red[big] $x^2$ https://evil.example'


def test_safe_markdown_escapes_every_active_construct() -> None:
    out = safe_markdown(HOSTILE)
    outside_code = re.sub(r"`[^`]*`", "", out)
    for active in "<>[]()!:$/*_":
        assert not re.search(r"(?<!\\)" + re.escape(active), outside_code), active  # never left unescaped
    # URLs become code spans (never links); everything else unescapes to the original: nothing is lost
    assert "`http://evil.example/x.png)`" in out and "`https://evil.example`" in out
    assert re.sub(r"\\(.)", r"\1", out.replace("`", "")) == HOSTILE
    assert safe_markdown("mail me: a.b@uni.edu") == "mail me\\: `a.b@uni.edu`"


def test_highlight_marks_the_quoted_sentence_only() -> None:
    text = "First sentence. The model ran on a GPU. Last one."
    marked = highlight(text, "The model ran on a GPU.")
    assert ":orange-background[The model ran on a GPU\\.]" in marked
    assert highlight(text, "not in the text") == safe_markdown(text)
    both = highlight(text, "First sentence.\nLast one.")
    assert both.count(":orange-background[") == 2 and "The model ran on a GPU" in both


def _unescaped(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown.replace("`", ""))


def test_transcript_has_answers_and_numbered_sources() -> None:
    cite = Citation(n=2, title="Tree crowns", file="trees.pdf", page=3, page_end=3, section="Methods",
                    text="It was implemented with Keras.", cited=True, supported=True)
    turns = [
        Turn("Which library?", QAResult(answer="Keras [2].", mode="llm:gpt-x", citations=[cite])),
        Turn("Which GPU?", QAResult(answer="I don't know.", abstained=True, mode="extractive")),
        Turn("Broken?", error="The LLM endpoint failed with HTTP 500."),
    ]
    md = transcript_markdown(turns)
    text = _unescaped(md)
    assert "## 1. Which library?" in text and "Keras [2]." in text
    assert "- [2] Tree crowns (trees.pdf), p. 3, Methods (cited)" in text and "> It was implemented with Keras." in text
    assert "The indexed papers do not answer this." in text and "HTTP 500" in text


def test_transcript_keeps_paper_text_inert_in_a_markdown_viewer() -> None:
    from markdown_it import MarkdownIt

    cite = Citation(n=1, title="<b>Bold</b> title", file="x<img src=y>.md", page=1, page_end=1, section="",
                    text=HOSTILE + ' <img src=x onerror="alert(2)">', cited=True, supported=True)
    turns = [Turn("<img src=q onerror=alert(3)>?", QAResult(answer=HOSTILE + " [1]", mode="llm:<i>m</i>", citations=[cite])),
             Turn("Error?", error="![e](http://evil.example/e.png)")]
    md = transcript_markdown(turns)
    html = MarkdownIt("commonmark", {"html": True}).render(md)  # a viewer that renders raw HTML
    for tag in ("<img", "<script", "<a ", "<b>", "<i>"):
        assert tag not in html, tag
    assert "onerror=alert(3)" in _unescaped(md) and "<b>Bold</b> title" in _unescaped(md)  # shown as text


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/passwd", "passwd"), ("..\\..\\win.pdf", "win.pdf"), ("/abs/path/paper.pdf", "paper.pdf"),
     (".hidden.md", "hidden.md"), ("a b;rm -rf.pdf", "a b_rm -rf.pdf"), ("", "upload"),
     ("M\u00fcller \u2013 \u00c9tude.pdf", "M\u00fcller \u2013 \u00c9tude.pdf"), ("\u65e5\u672c\u8a9e.md", "\u65e5\u672c\u8a9e.md"),
     ("evil\u202efdp.exe", "evilfdp.exe"), ("a<b>|c?.pdf", "a_b_c_.pdf"), ("zero\u200bwidth\tname.md", "zerowidth name.md"),
     ("\u00e9" * 200 + ".pdf", "\u00e9" * 100 + ".pdf")],
)
def test_upload_names_stay_inside_the_folder(tmp_path: Path, name: str, expected: str) -> None:
    assert safe_filename(name) == expected
    saved = save_upload(name, b"%PDF-1.4 test", tmp_path, max_bytes=1000)
    assert saved.parent == tmp_path.resolve() and saved.exists()


def test_upload_size_limit_and_name_collisions(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="too large"):
        save_upload("big.pdf", b"x" * 2000, tmp_path, max_bytes=1000)
    first = save_upload("same.md", b"one", tmp_path, 1000)
    again = save_upload("same.md", b"one", tmp_path, 1000)
    other = save_upload("same.md", b"two", tmp_path, 1000)
    assert first == again and other != first and other.read_bytes() == b"two" and first.read_bytes() == b"one"


def test_uploads_that_fail_to_index_are_removed_again(tmp_path: Path) -> None:
    from paperchat.vectorstore.uploads import UploadBatch

    earlier = save_upload("kept.md", b"# indexed before", tmp_path, 1000)
    batch = UploadBatch(tmp_path, 1000)
    batch.save("good.md", b"# fine")
    bad, same = batch.save("bad.pdf", b"not a pdf"), batch.save("kept.md", b"# indexed before")
    assert same == earlier
    assert batch.discard([str(bad), str(same)]) == [bad]  # a file this batch did not create stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.md", "kept.md"]
    batch.discard()  # the index was busy: everything this batch saved goes
    assert [p.name for p in tmp_path.iterdir()] == ["kept.md"]


class _RecordingChain:
    """A chain that streams its answer in two pieces and records the requests it got."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.requests: list[dict] = []
        self.fail = fail

    def stream(self, request: dict):  # noqa: ANN201 - a generator of QAResult pieces
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        # as the chain streams: each chunk is the whole result so far, the last one final
        first = f"About {request['question']}"
        yield QAResult(answer=first, delta=first, mode="extractive")
        yield QAResult(answer=first + " [1].", delta=" [1].", mode="extractive")
        yield QAResult(answer=first + " [1].", delta="", final=True, mode="extractive")


def test_questions_are_answered_one_at_a_time_in_order_with_their_history() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from paperchat.conversation import answer_next

    chain, lock = _RecordingChain(), threading.Lock()
    turns = [Turn("Which GPU?", papers=["d1"], k=4), Turn("And which optimizer?"), Turn("Which loss?")]
    with ThreadPoolExecutor(2) as pool:
        answered = []
        while (current := answer_next(turns, chain, pool, lock)) is not None:
            turn, job = current
            assert answer_next(turns, chain, pool, lock) == (turn, job)  # one job per question, however often asked
            job.done.wait()
            assert job.partial_answer == f"About {turn.question} [1]."
            job.settle(turn)
            answered.append(turn.question)
    assert answered == ["Which GPU?", "And which optimizer?", "Which loss?"]
    assert [r["question"] for r in chain.requests] == answered  # each asked once, in order
    assert chain.requests[0] == {"question": "Which GPU?", "papers": ["d1"], "chat_history": [], "k": 4}
    assert chain.requests[2]["chat_history"] == [("Which GPU?", "About Which GPU? [1]."),
                                                  ("And which optimizer?", "About And which optimizer? [1].")]
    assert all(t.answered and t.result.answer.endswith("[1].") and t.job is None for t in turns)


def test_two_page_runs_at_once_start_one_job() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from paperchat.conversation import answer_next

    chain, lock, turns = _RecordingChain(), threading.Lock(), [Turn("Which GPU?")]
    with ThreadPoolExecutor(2) as pool:
        barrier = threading.Barrier(8)
        jobs = []

        def page_run() -> None:
            barrier.wait()
            jobs.append(answer_next(turns, chain, pool, lock)[1])

        runs = [threading.Thread(target=page_run) for _ in range(8)]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        jobs[0].done.wait()
    assert len({id(j) for j in jobs}) == 1 and len(chain.requests) == 1


def test_a_failed_answer_becomes_the_turns_error() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from paperchat.conversation import answer_next
    from paperchat.vectorstore.errors import LLMError

    for failure, shown in ((LLMError("The endpoint failed with HTTP 500."), "HTTP 500"), (ValueError("x"), "(ValueError)")):
        turns = [Turn("Which GPU?")]
        with ThreadPoolExecutor(1) as pool:
            turn, job = answer_next(turns, _RecordingChain(fail=failure), pool, threading.Lock())
            job.done.wait()
        job.settle(turn)
        assert turn.answered and turn.result is None and shown in turn.error
