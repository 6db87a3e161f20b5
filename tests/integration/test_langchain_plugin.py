"""paperchat as a LangChain developer uses it: the index as a VectorStore, the chain over other retrievers,
typed input and tools, message history, retriever conventions, clear errors, streaming."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_openai import ChatOpenAI

from paperchat import PaperIndex, create_paper_tool, create_qa_chain
from paperchat.cli import main
from paperchat.types import QAResult
from paperchat.vectorstore.errors import EmptyIndexError, PaperchatError
from paperchat.vectorstore.retriever import PaperRetriever
from tests.conftest import ROOT
from tests.fake_openai import FakeOpenAI, fake_openai_server

pytestmark = pytest.mark.integration

PAPER = "younis2020_herbarium_plant_organs.pdf"
NOTES = [
    Document(page_content="The detector was trained for 9000 iterations on a single TITAN Xp GPU.",
             metadata={"source": "/lab/notes/gpu.txt", "page": 0}),
    Document(page_content="Herbarium scans were annotated with bounding boxes by two botanists.",
             metadata={"source": "/lab/notes/gpu.txt", "page": 1}),
    Document(page_content="The zorbulator coefficient was 42 in every run.", metadata={"source": "/lab/notes/odd.txt"}),
]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with fake_openai_server() as state:
        yield state


def llm_for(server: FakeOpenAI) -> ChatOpenAI:
    return ChatOpenAI(model="fake-model", base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=10)


@pytest.fixture
def notes_index(tmp_path: Path) -> PaperIndex:
    index = PaperIndex.open(db=tmp_path / "db", collection="notes")
    assert index.add_documents(NOTES, ids=["n1", "n2", "n3"]) == ["n1", "n2", "n3"]
    return index


# -- 1. the index is a VectorStore --------------------------------------------------------------------------


def test_documents_added_through_the_vectorstore_api_are_first_class(
    notes_index: PaperIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    found = notes_index.similarity_search("Which GPU was used?", k=1)
    assert found == [NOTES[0].model_copy(update={"id": "n1"})]  # its own metadata, nothing added
    scored = notes_index.similarity_search_with_relevance_scores("Which GPU was used?", k=3)
    assert all(0.0 <= s <= 1.0 for _, s in scored) and scored[0][1] >= scored[-1][1]
    assert len(notes_index.max_marginal_relevance_search("GPU", k=2, fetch_k=3)) == 2
    # keyword search finds a word the embedder has never seen
    retriever = notes_index.as_retriever(search_kwargs={"k": 1})
    assert isinstance(retriever, PaperRetriever)
    assert [d.id for d in retriever.invoke("zorbulator")] == ["n3"]
    where = ["--db", str(notes_index.settings.db), "--collection", "notes"]
    assert main(["list", "--json", *where]) == 0
    listed = {d["file"]: d for d in json.loads(capsys.readouterr().out)}
    assert set(listed) == {"gpu.txt", "odd.txt"} and listed["gpu.txt"]["chunks"] == 2
    assert main(["delete", "gpu.txt", *where]) == 0
    capsys.readouterr()
    assert notes_index.get_by_ids(["n1", "n2", "n3"]) == [NOTES[2].model_copy(update={"id": "n3"})]
    assert [d.id for d in notes_index.as_retriever().invoke("GPU bounding boxes zorbulator")] == ["n3"]


def test_open_takes_keywords_and_papers_filter_by_file_name(notes_index: PaperIndex) -> None:
    again = PaperIndex.open(db=notes_index.settings.db, collection="notes")
    docs = again.similarity_search("anything at all", k=5, papers=["odd.txt"])
    assert [d.id for d in docs] == ["n3"]
    docs = again.as_retriever(search_kwargs={"papers": "gpu.txt"}).invoke("Which GPU?", k=1)  # a string is one paper
    assert [d.id for d in docs] == ["n1"]
    with pytest.raises(PaperchatError, match="No indexed document matches 'missing.pdf'"):
        again.similarity_search("GPU", papers=["missing.pdf"])


def test_paper_chunks_carry_source_and_current_names(sample_index: PaperIndex) -> None:
    doc = sample_index.similarity_search("Which GPU were the QRNNs trained on?", k=1)[0]
    assert {"doc_id", "file", "title", "page", "section", "source"} <= set(doc.metadata)
    assert Path(doc.metadata["source"]).name == doc.metadata["file"] and doc.id.startswith(doc.metadata["doc_id"])


# -- 2. the chain over any retriever ------------------------------------------------------------------------


def test_chain_over_an_in_memory_retriever_extractive_and_with_an_llm(server: FakeOpenAI) -> None:
    from paperchat.vectorstore.embed import MiniLMEmbeddings

    store = InMemoryVectorStore.from_documents(NOTES, MiniLMEmbeddings())
    extractive = create_qa_chain(store.as_retriever(search_kwargs={"k": 2}))
    result = extractive.invoke({"question": "Which GPU was the detector trained on?"})
    assert not result.abstained and "TITAN Xp" in result.answer and result.cited[0].file == "gpu.txt"
    assert extractive.invoke({"question": "Who painted the Mona Lisa?"}).abstained
    server.default = {"content": "It was trained on a TITAN Xp GPU [1]."}
    with_llm = create_qa_chain(store.as_retriever(), llm=llm_for(server))
    answer = with_llm.invoke({"question": "Which GPU was used?", "k": 1})  # k goes to the vector-store retriever
    assert answer.answer == "It was trained on a TITAN Xp GPU [1]." and len(answer.context) == 1
    with pytest.raises(PaperchatError, match="does not take 'papers'"):
        with_llm.invoke({"question": "Which GPU was used?", "papers": ["gpu.txt"]})


def test_chain_over_langchain_chroma_and_an_ensemble(tmp_path: Path, server: FakeOpenAI) -> None:
    from langchain_chroma import Chroma
    from langchain_classic.retrievers import EnsembleRetriever

    from paperchat.vectorstore.embed import MiniLMEmbeddings

    chroma = Chroma.from_documents(NOTES, MiniLMEmbeddings(), persist_directory=str(tmp_path / "chroma"))
    memory = InMemoryVectorStore.from_documents(NOTES, MiniLMEmbeddings())
    ensemble = EnsembleRetriever(retrievers=[chroma.as_retriever(), memory.as_retriever()], weights=[0.5, 0.5])
    for retriever in (chroma.as_retriever(), ensemble):
        result = create_qa_chain(retriever).invoke({"question": "Which GPU was the detector trained on?"})
        assert not result.abstained and "TITAN Xp" in result.answer
    server.default = {"content": "Two botanists annotated the scans [1]."}
    result = create_qa_chain(ensemble, llm=llm_for(server)).invoke({"question": "Who annotated the herbarium scans?"})
    assert result.answer.startswith("Two botanists") and result.cited
    with pytest.raises(PaperchatError, match="does not take 'k'"):
        create_qa_chain(ensemble).invoke({"question": "Who annotated the scans?", "k": 2})


# -- 3. typed input, a ready tool, agents ---------------------------------------------------------------------


def test_input_schema_as_tool_and_paper_tool(sample_index: PaperIndex) -> None:
    chain = create_qa_chain(PaperRetriever(index=sample_index))
    assert {"question", "papers", "chat_history", "k"} <= set(chain.input_schema.model_json_schema()["properties"])
    tool = chain.as_tool(name="ask_papers", description="Ask the papers.")
    reply = tool.invoke({"question": "Which GPU were the QRNNs trained on?"})
    assert "Titan V" in str(reply)
    paper_tool = create_paper_tool(chain)
    text = paper_tool.invoke({"question": "Which GPU were the QRNNs trained on?"})
    assert isinstance(text, str) and "Titan V" in text and "Sources:" in text and len(text) <= 2000
    assert "tang2018" in text or "Progress and Tradeoffs" in text  # the paper is named


def test_an_agent_calls_the_paper_tool(sample_index: PaperIndex) -> None:
    from langchain.agents import create_agent
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel

    class ToolCallingFake(FakeMessagesListChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingFake:
            return self

    model = ToolCallingFake(responses=[
        AIMessage(content="", tool_calls=[{"name": "ask_papers", "id": "call-1",
                                           "args": {"question": "Which GPU were the QRNNs trained on?"}}]),
        AIMessage(content="The papers say: a Titan V GPU."),
    ])
    tool = create_paper_tool(create_qa_chain(PaperRetriever(index=sample_index)))
    state = create_agent(model, tools=[tool]).invoke({"messages": [HumanMessage("Which GPU was used for the QRNNs?")]})
    tool_messages = [m for m in state["messages"] if m.type == "tool"]
    assert len(tool_messages) == 1 and "Titan V" in tool_messages[0].content
    assert state["messages"][-1].content == "The papers say: a Titan V GPU."


# -- 4. message history -------------------------------------------------------------------------------------


def test_runnable_with_message_history_keeps_the_conversation(sample_index: PaperIndex, server: FakeOpenAI) -> None:
    from langchain_core.chat_history import InMemoryChatMessageHistory
    from langchain_core.runnables.history import RunnableWithMessageHistory

    histories: dict[str, InMemoryChatMessageHistory] = {}
    chain = create_qa_chain(PaperRetriever(index=sample_index, k=3), llm=llm_for(server))
    talk = RunnableWithMessageHistory(
        chain, lambda sid: histories.setdefault(sid, InMemoryChatMessageHistory()),
        input_messages_key="question", history_messages_key="chat_history", output_messages_key="answer",
    )
    config = {"configurable": {"session_id": "s1"}}
    server.replies = [{"content": "The QRNNs were trained on a Titan V GPU [1]."}]
    first = talk.invoke({"question": "Which GPU were the QRNNs trained on?"}, config=config)
    assert first.answer.startswith("The QRNNs were trained")
    assert [m.type for m in histories["s1"].messages] == ["human", "ai"]
    server.replies = [{"content": "Which framework were the QRNNs trained with?"}, {"content": "PyTorch [1]."}]
    talk.invoke({"question": "And with which framework?"}, config=config)
    condense = "\n".join(m["content"] for m in server.chat_requests()[1]["body"]["messages"])
    assert "Titan V GPU" in condense and "And with which framework?" in condense  # the history reached the LLM
    assert len(histories["s1"].messages) == 4


# -- 5 and 6. retriever conventions, clear errors -------------------------------------------------------------


def test_retriever_k_conventions_and_input_errors(sample_index: PaperIndex) -> None:
    retriever = PaperRetriever(index=sample_index, search_kwargs={"k": 2})
    assert len(retriever.invoke("Which GPU?")) == 2 and len(retriever.invoke("Which GPU?", k=3)) == 3
    by_title = retriever.invoke("Which GPU?", papers="Progress and Tradeoffs in Neural Language Models")
    assert {d.metadata["file"] for d in by_title} == {"tang2018_neural_language_model_tradeoffs.md"}
    chain = create_qa_chain(retriever)
    for bad, message in (
        ({"question": "Which GPU?", "k": 0}, "k must be a whole number from 1 to 500"),
        ({"question": "Which GPU?", "k": 501}, "k must be a whole number from 1 to 500"),
        ({"question": "Which GPU?", "topk": 3}, r"Unknown input key\(s\) \['topk'\].*'question', 'papers'"),
        ({"question": "Which GPU?", "papers": ["nope.pdf"]}, "No indexed document matches 'nope.pdf'"),
        ({"question": "  "}, "The question is empty"),
    ):
        with pytest.raises(PaperchatError, match=message):
            chain.invoke(bad)
    one = chain.invoke({"question": "Which GPU were the QRNNs trained on?", "papers": "tang2018_neural_language_model_tradeoffs.md"})
    assert {c.file for c in one.citations} == {"tang2018_neural_language_model_tradeoffs.md"}


def test_an_index_with_no_papers_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = PaperIndex.open(db=tmp_path / "fresh")
    assert empty.similarity_search("anything", k=1) == []  # the VectorStore is simply empty
    with pytest.raises(EmptyIndexError, match=r"No papers are indexed at .*fresh.*paperchat index PATH"):
        create_qa_chain(empty.as_retriever()).invoke({"question": "Which GPU?"})
    typo = tmp_path / "typo-db"
    for command in (["ask", "Which GPU?"], ["search", "GPU"]):
        assert main([*command, "--db", str(typo)]) == 2
        err = capsys.readouterr().err
        assert "No papers are indexed at" in err and str(typo) in err and "Traceback" not in err
    assert not typo.exists()  # reading never creates an index


# -- 7. indexing from a plain script --------------------------------------------------------------------------


def test_indexing_from_a_plain_script_without_a_main_guard(tmp_path: Path) -> None:
    script = tmp_path / "build.py"
    script.write_text(
        "from paperchat import PaperIndex, index_paths\n"
        f"index = PaperIndex.open(db={str(tmp_path / 'db')!r})\n"
        f"report = index_paths(index, [{str(ROOT / 'sample_docs' / 'tang2018_neural_language_model_tradeoffs.md')!r}])\n"
        "print('RUN', report.counts()['added'], report.counts()['failed'])\n",
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("RUN") == 1 and "RUN 1 0" in done.stdout  # the script ran once, the file was indexed


# -- 8. streaming -----------------------------------------------------------------------------------------------


def test_every_streamed_chunk_stands_on_its_own(sample_index: PaperIndex, server: FakeOpenAI) -> None:
    question = "Which GPU were the QRNNs trained on?"
    n = next(i for i, d in enumerate(PaperRetriever(index=sample_index, k=3).invoke(question), start=1)
             if "Titan V" in d.page_content)
    server.replies = [{"content": f"They used a Titan V GPU [{n}][9]."}]
    chain = create_qa_chain(PaperRetriever(index=sample_index, k=3), llm=llm_for(server))
    chunks = list(chain.stream({"question": question}))
    dumped = [json.loads(json.dumps(c.to_dict())) for c in chunks]  # each serialises on its own
    assert dumped[-1]["final"] and dumped[-1]["answer"] == f"They used a Titan V GPU [{n}]."
    assert dumped[-1]["citations"] and "[9]" in dumped[-1]["notice"]
    assert all(isinstance(c, QAResult) for c in chunks)

    async def events() -> list[dict[str, Any]]:
        server.replies = [{"content": f"They used a Titan V GPU [{n}]."}]
        return [e async for e in chain.astream_events({"question": question}, version="v2")]

    seen = asyncio.run(events())
    tokens = "".join(e["data"]["chunk"].content for e in seen if e["event"] == "on_chat_model_stream")
    assert tokens == f"They used a Titan V GPU [{n}]."
    end = [e for e in seen if e["event"] == "on_chain_end" and e["name"] == "paperchat_qa"]
    assert end and end[-1]["data"]["output"].answer == tokens
