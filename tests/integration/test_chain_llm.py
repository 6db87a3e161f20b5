"""The chain with a real LLM client (ChatOpenAI/openai) talking to a fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

from paperchat.chain import create_qa_chain
from paperchat.prompts import STRICT_RULE
from paperchat.vectorstore.errors import LLMError
from paperchat.vectorstore.retriever import PaperRetriever
from tests.fake_openai import FakeOpenAI, fake_openai_server

pytestmark = pytest.mark.integration

SECRET = "sk-test-9f8e7d6c5b4a3210secret"
PAPER = "younis2020_herbarium_plant_organs.pdf"
QUESTION = "Which deep learning framework was used (e.g., TensorFlow, PyTorch)?"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with fake_openai_server() as state:
        yield state


def llm_for(server: FakeOpenAI, **kwargs: Any) -> ChatOpenAI:
    options: dict[str, Any] = {"max_retries": 0, "timeout": 10}
    options.update(kwargs)
    return ChatOpenAI(model="fake-model", base_url=server.base_url, api_key=SECRET, temperature=0, **options)


def chain_for(index: Any, llm: Any, **kwargs: Any) -> Any:
    return create_qa_chain(PaperRetriever(index=index, k=4), llm=llm, **kwargs)


def prompt_of(request: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in request["body"]["messages"])


def excerpt_number(index: Any, question: str, word: str, present: bool = True) -> int:
    """The number the chain will give the first of its excerpts that contains (or lacks) ``word``."""
    docs = PaperRetriever(index=index, k=4).invoke(question, papers=[index.resolve(PAPER).id])
    return next(i for i, d in enumerate(docs, start=1) if (word in d.page_content) == present)


def test_invoke_sends_the_strict_prompt_and_checks_citations(sample_index: Any, server: FakeOpenAI) -> None:
    n = excerpt_number(sample_index, QUESTION, "PyTorch")
    reply = f"The detector was implemented with the Detectron2 library in the PyTorch framework [{n}]."
    server.replies = [{"content": reply}]
    result = chain_for(sample_index, llm_for(server)).invoke({"question": QUESTION, "papers": [PAPER]})
    assert result.mode == "llm:fake-model" and not result.abstained
    assert result.answer == reply
    sent = prompt_of(server.chat_requests()[0])
    assert sent.startswith(STRICT_RULE) and "[1] Detection and annotation of plant organs" in sent and QUESTION in sent
    cited = result.cited
    assert [c.n for c in cited] == [n] and cited[0].supported is True and "PyTorch" in cited[0].text
    assert cited[0].file == PAPER and cited[0].page and len(result.context) == 4
    assert all(c.file == PAPER for c in result.citations)  # restricted to the paper
    assert server.chat_requests()[0]["body"]["temperature"] == 0


def test_stream_yields_pieces_then_citations(sample_index: Any, server: FakeOpenAI) -> None:
    server.replies = [{"content": "It was implemented with Detectron2 [1], in the PyTorch framework [1]."}]
    pieces = list(chain_for(sample_index, llm_for(server)).stream({"question": QUESTION, "papers": [PAPER]}))
    assert pieces[0].context and not pieces[0].answer  # the excerpts come first
    assert len([p for p in pieces if p.delta]) > 3  # then the answer, piece by piece
    assert all(p.answer == "".join(q.delta for q in pieces[: i + 1]) for i, p in enumerate(pieces[:-1]))
    assert pieces[-1].final and pieces[-1].citations
    total = pieces[0]
    for piece in pieces[1:]:
        total = total + piece
    assert total.answer.startswith("It was implemented with Detectron2") and total.cited[0].n == 1


def test_batch_and_async(sample_index: Any, server: FakeOpenAI) -> None:
    reply = f"PyTorch [{excerpt_number(sample_index, QUESTION, 'PyTorch')}]."
    server.default = {"content": reply}
    chain = chain_for(sample_index, llm_for(server))
    other = "Which deep learning library did the plant organ detector use?"
    results = chain.batch([{"question": QUESTION, "papers": [PAPER]}, {"question": other, "papers": [PAPER]}])
    assert results[0].answer == reply and not results[1].abstained and "PyTorch" in results[1].answer
    assert asyncio.run(chain.ainvoke({"question": QUESTION, "papers": [PAPER]})).answer == reply

    async def collect() -> list[Any]:
        return [p async for p in chain.astream({"question": QUESTION, "papers": [PAPER]})]

    pieces = asyncio.run(collect())
    assert pieces[-1].final and "".join(p.delta for p in pieces) == reply == pieces[-1].answer


def test_invented_citation_numbers_are_dropped_and_unsupported_ones_flagged(sample_index: Any, server: FakeOpenAI) -> None:
    good, bad = excerpt_number(sample_index, QUESTION, "PyTorch"), excerpt_number(sample_index, QUESTION, "PyTorch", False)
    server.replies = [{"content": f"It used PyTorch [{good}][9]. It was implemented with PyTorch [{bad}]."}]
    result = chain_for(sample_index, llm_for(server)).invoke({"question": QUESTION, "papers": [PAPER]})
    assert result.answer.startswith(f"It used PyTorch [{good}]") and "[9]" not in result.answer
    assert "[9]" in result.notice
    flags = {c.n: c.supported for c in result.cited}
    assert flags[good] is True and flags[bad] is False  # the model cited it; it does not say PyTorch
    assert [c.n for c in result.unsupported] == [bad]


def test_llm_saying_it_does_not_know_abstains(sample_index: Any, server: FakeOpenAI) -> None:
    server.replies = [{"content": "The provided context does not mention any data augmentation."}]
    question = "What data augmentation was applied?"
    result = chain_for(sample_index, llm_for(server)).invoke({"question": question, "papers": [PAPER]})
    assert result.abstained and not any(c.cited for c in result.citations)
    assert result.answered_by == "" and [s["kind"] for s in result.sentences] == ["papers_dont_say"]


def test_gate_answers_without_calling_the_llm(sample_index: Any, server: FakeOpenAI) -> None:
    chain = chain_for(sample_index, llm_for(server), gate_min_similarity=0.99)
    result = chain.invoke({"question": "Who painted the Mona Lisa?"})
    assert result.abstained and "don't know" in result.answer and server.chat_requests() == []


def test_follow_up_is_condensed_by_the_llm(sample_index: Any, server: FakeOpenAI) -> None:
    server.replies = [{"content": "Which backbone did the plant organ detector use?"}, {"content": "ResNet-50 [1]."}]
    history = [("Which library was the plant organ detector built with?", "PyTorch [1].")]
    result = chain_for(sample_index, llm_for(server)).invoke({"question": "And its backbone?", "chat_history": history})
    first, second = server.chat_requests()
    assert "Follow-up question: And its backbone?" in prompt_of(first) and "PyTorch [1]." in prompt_of(first)
    assert result.standalone_question == "Which backbone did the plant organ detector use?"
    assert "Question: Which backbone did the plant organ detector use?" in prompt_of(second)


def test_published_preset(sample_index: Any, server: FakeOpenAI) -> None:
    server.replies = [{"content": "Answer:::\nAnswer: The PyTorch framework was used.\n\nAnswer:::"}]
    result = chain_for(sample_index, llm_for(server), prompt="published").invoke({"question": QUESTION, "papers": [PAPER]})
    n = excerpt_number(sample_index, QUESTION, "PyTorch")
    assert result.answer.startswith(f"The PyTorch framework was used [{n}]")  # the format has no marks: attributed
    sent = prompt_of(server.chat_requests()[0])
    assert "%INSTRUCTIONS:" in sent and f'Query: "{QUESTION}"' in sent and "[1]" not in sent
    assert result.citations[n - 1].cited and all("PyTorch" in c.text for c in result.cited)


def test_rate_limit_then_success_is_retried(sample_index: Any, server: FakeOpenAI) -> None:
    server.replies = [{"status": 429}, {"content": "PyTorch."}]
    result = chain_for(sample_index, llm_for(server, max_retries=2)).invoke({"question": QUESTION, "papers": [PAPER]})
    assert result.answer.startswith("PyTorch [") and len(server.chat_requests()) == 2


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"status": 500}, "HTTP 500"),
        ({"status": 401}, "OPENAI_API_KEY"),
        ({"status": 404}, "PAPERCHAT_MODEL"),
        ({"delay": 3.0, "content": "late"}, "did not answer in time"),
        ({"truncate": True, "content": "PyTorch is the framework that was used for this detector [1]."}, "cut off"),
        ({"garbage": True}, "could not be read"),
    ],
)
def test_llm_failures_are_clear_and_never_show_the_key(sample_index: Any, server: FakeOpenAI, reply: dict[str, Any], expected: str) -> None:
    server.default = reply
    with pytest.raises(LLMError) as info:
        chain_for(sample_index, llm_for(server, timeout=1.0)).invoke({"question": QUESTION, "papers": [PAPER]})
    message = str(info.value)
    assert expected in message and SECRET not in message and SECRET[:12] not in message
    assert server.chat_requests()[0]["authorization"] == f"Bearer {SECRET}"  # the key was really sent


def test_cli_ask_through_an_openai_compatible_endpoint(
    sample_index: Any, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from paperchat.cli import main

    settings = sample_index.settings
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("PAPERCHAT_MODEL", "fake-model")
    argv = ["ask", QUESTION, "--paper", PAPER, "--db", str(settings.db), "--collection", settings.collection]
    server.replies = [{"content": "It was implemented with PyTorch [1]."}]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fake-model" in out and "It was implemented with PyTorch [1]." in out and "Sources" in out

    server.replies = [{"content": "It was implemented with PyTorch [1]."}]
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["mode"] == "llm:fake-model" and payload["citations"][0]["cited"]

    server.default = {"status": 500}
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "HTTP 500" in captured.err and "Traceback" not in captured.err and SECRET not in captured.err + captured.out


def test_connection_refused_is_clear_and_failures_are_retried_a_bounded_number_of_times(
    sample_index: Any, server: FakeOpenAI
) -> None:
    from tests.conftest import free_port

    nowhere = ChatOpenAI(model="fake-model", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=SECRET,
                         max_retries=1, timeout=5)
    with pytest.raises(LLMError, match="Cannot connect to .*OPENAI_BASE_URL") as info:
        chain_for(sample_index, nowhere).invoke({"question": QUESTION, "papers": [PAPER]})
    assert SECRET not in str(info.value)
    server.default = {"status": 503}
    with pytest.raises(LLMError, match="HTTP 503 after the retries"):
        chain_for(sample_index, llm_for(server, max_retries=2)).invoke({"question": QUESTION, "papers": [PAPER]})
    assert len(server.chat_requests()) == 3  # the first try and two retries, then it stops


# -- grounding: every sentence of the model's answer in an excerpt, or flagged --------------------------

SEED = Path(__file__).resolve().parents[3] / "shared" / "bench" / "seed_failure_000.json"


@pytest.mark.parametrize("preset", ["strict", "published"])
def test_the_seed_failure_textbook_reply_is_caught(
    preset: str, server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The study's failure case: excerpts that do not report postprocessing, a reply of textbook content."""
    if not SEED.is_file():
        pytest.skip(f"benchmark data not found: {SEED}")
    from paperchat.cli import main

    seed = json.loads(SEED.read_text(encoding="utf-8"))
    paper = tmp_path / "papers" / "biocrust_segmentation.md"
    paper.parent.mkdir()
    paper.write_text("# Biocrust segmentation (excerpts)\n\n" + seed["context"], encoding="utf-8")
    db = tmp_path / "db"
    assert main(["index", str(paper.parent), "--db", str(db)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("PAPERCHAT_MODEL", "fake-model")
    reply = seed["reply"] if preset == "strict" else f"Answer:::\nAnswer: {seed['reply']}\n\nAnswer:::"
    server.default = {"content": reply}
    assert main(["ask", seed["question"], "--db", str(db), "--prompt", preset, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["abstained"] is seed["expected"]["abstained"] is True
    assert payload["answer"].startswith("I don't know") and payload["answered_by"] == ""
    assert seed["reply"].split("\n")[0] in payload["model_answer"]  # kept apart, not as the answer
    kinds = [s["kind"] for s in payload["sentences"]]
    assert "supported" not in kinds and kinds.count("not_from_papers") >= 8 and "papers_dont_say" in kinds
    assert not any(c["cited"] for c in payload["citations"])
    # the terminal marks the sentences too
    assert main(["ask", seed["question"], "--db", str(db), "--prompt", preset]) == 0
    out = capsys.readouterr().out
    assert "not from the papers" in out and "Saliency maps" in out and "don't know" in out


def test_a_partly_supported_answer_keeps_its_grounded_sentences_with_attributed_sources(
    sample_index: Any, server: FakeOpenAI
) -> None:
    server.replies = [{"content": "The detector was built with the Detectron2 library in the PyTorch framework. "
                                  "PyTorch is a popular open-source framework developed by Meta for research."}]
    result = chain_for(sample_index, llm_for(server)).invoke({"question": QUESTION, "papers": [PAPER]})
    assert not result.abstained and result.answered_by == "llm"
    assert [s["kind"] for s in result.sentences] == ["supported", "not_from_papers"]
    n = excerpt_number(sample_index, QUESTION, "Detectron2")
    assert n in result.sentences[0]["sources"] and f"[{n}]" in result.answer  # attributed: the model cited nothing
    assert "Meta" not in result.answer and "Meta" in result.model_answer
    assert result.citations[n - 1].cited and result.citations[n - 1].supported is True
    assert 0 < result.confidence <= 1 and result.sentences[0]["confidence"] == pytest.approx(result.confidence, abs=1e-4)
    assert "not in the excerpts" in result.notice


def test_a_model_that_misses_what_the_excerpts_say_is_answered_from_the_papers(sample_index: Any, server: FakeOpenAI) -> None:
    question = "Which GPU was used to train the model?"
    server.replies = [{"content": "The provided context does not mention which GPU was used."}]
    result = chain_for(sample_index, llm_for(server)).invoke({"question": question, "papers": [PAPER]})
    assert not result.abstained and result.answered_by == "extractive" and "TITAN Xp" in result.answer
    assert "quoted, not the model's words" in result.notice and result.confidence >= 0.6
    assert [s["kind"] for s in result.sentences] == ["papers_dont_say"]


def test_grounding_can_be_turned_off(sample_index: Any, server: FakeOpenAI) -> None:
    reply = "PyTorch is a popular open-source framework developed by Meta for research."
    server.replies = [{"content": reply}]
    result = chain_for(sample_index, llm_for(server), ground=False).invoke({"question": QUESTION, "papers": [PAPER]})
    assert result.answer == reply and not result.abstained and result.sentences == []
