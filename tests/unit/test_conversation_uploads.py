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


def test_transcript_has_answers_and_numbered_sources() -> None:
    cite = Citation(n=2, title="Tree crowns", file="trees.pdf", page=3, page_end=3, section="Methods",
                    text="It was implemented with Keras.", cited=True, supported=True)
    turns = [
        Turn("Which library?", QAResult(answer="Keras [2].", mode="llm:gpt-x", citations=[cite])),
        Turn("Which GPU?", QAResult(answer="I don't know.", abstained=True, mode="extractive")),
        Turn("Broken?", error="The LLM endpoint failed with HTTP 500."),
    ]
    md = transcript_markdown(turns)
    assert "## 1. Which library?" in md and "Keras [2]." in md
    assert "- [2] Tree crowns (trees.pdf), p. 3, Methods (cited)" in md and "> It was implemented with Keras." in md
    assert "The indexed papers do not answer this." in md and "HTTP 500" in md


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/passwd", "passwd"), ("..\\..\\win.pdf", "win.pdf"), ("/abs/path/paper.pdf", "paper.pdf"),
     (".hidden.md", "hidden.md"), ("a b;rm -rf.pdf", "a b_rm -rf.pdf"), ("", "upload")],
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
