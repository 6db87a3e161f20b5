"""The chat page: questions, streamed answers and their sources. ``ui/app.py`` is the entry point.

The page only renders: answering is ``paperchat.chain``, indexing ``paperchat.vectorstore``, safe rendering
and transcripts ``paperchat.conversation``. Models and clients load once per process (``st.cache_resource``).
"""

from __future__ import annotations

import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import streamlit as st

from paperchat.conversation import (
    Turn,
    answer_next,
    highlight,
    mode_line,
    safe_markdown,
    source_label,
    transcript_markdown,
)
from paperchat.types import Citation, QAResult
from paperchat.ui.page_view import show_on_page
from paperchat.ui.resources import resources
from paperchat.vectorstore.errors import IndexBusyError, PaperchatError
from paperchat.vectorstore.lock import writer_lock
from paperchat.vectorstore.settings import Settings


def show_source(c: Citation, key: str = "") -> None:
    with st.container(border=True):
        status = "cited" if c.cited else "shown to the answerer, not cited"
        if c.supported is False:
            status = ":red[flagged: this excerpt does not support the sentence citing it]"
        st.markdown(f"**{safe_markdown(source_label(c))}**  \n:gray[{status}]")
        if not show_on_page(c, key=f"{key}-{c.n}"):  # a PDF's page beside the excerpt, when asked for
            st.markdown(highlight(c.text, c.sentence if c.cited else ""))


def show_turn(i: int, turn: Turn, page_mode: str) -> None:
    with st.chat_message("user"):
        st.markdown(safe_markdown(turn.question))
    with st.chat_message("assistant"):
        if turn.error:
            st.error(turn.error, icon=":material/error:")
            return
        result: QAResult = turn.result  # type: ignore[assignment]
        if result.mode != page_mode:  # the page header names the usual mode; only a different one is marked
            st.caption(safe_markdown(mode_line(result.mode)))
        if result.abstained:
            st.info("**The indexed papers do not answer this.**  \n" + safe_markdown(result.notice or result.answer),
                    icon=":material/help:")
            if result.context:
                with st.expander(f"Closest passages ({min(5, len(result.context))}), which do not answer the question"):
                    for doc in result.context[:5]:
                        meta = doc.metadata
                        st.markdown(f"**{safe_markdown(str(meta.get('title') or meta.get('file')))}**, p. {meta.get('page')}")
                        st.markdown(safe_markdown(doc.page_content))
            return
        st.markdown(safe_markdown(result.answer))
        if result.unsupported:
            st.warning("Some citations do not support the sentences citing them; they are flagged below.",
                       icon=":material/warning:")
        if not result.citations:
            return
        by_number = {c.n: c for c in result.citations}
        cited = [c.n for c in result.cited]
        choice = st.pills(
            "Sources: pick a number to read its excerpt", options=list(by_number),
            format_func=lambda n: f"[{n}]" + (" cited" if n in cited else ""),
            default=cited[0] if cited else None, key=f"source-{i}",
        )
        if choice is not None:
            show_source(by_number[choice], key=f"{i}-picked")
        with st.expander(f"All {len(by_number)} sources"):
            for c in result.citations:
                show_source(c, key=f"{i}-all")


def index_uploads(res: dict[str, Any], files: list[Any]) -> None:
    from paperchat.vectorstore.ingest import index_paths
    from paperchat.vectorstore.uploads import UploadBatch

    settings: Settings = res["settings"]
    folder = Path(settings.db) / "uploads" if not settings.uses_server else Path(tempfile.gettempdir()) / "paperchat-uploads"
    batch = UploadBatch(folder, int(settings.max_file_mb * 1_000_000))
    saved, messages = [], []
    for f in files:
        try:
            saved.append(batch.save(f.name, f.getvalue()))
        except PaperchatError as exc:
            messages.append(("error", f"{f.name}: {getattr(exc, 'reason', exc)}"))
    if saved:
        bar = st.progress(0.0, text="Indexing...")
        done: list[Any] = []

        def advanced(result: Any) -> None:
            done.append(result)
            bar.progress(min(1.0, len(done) / len(saved)), text=f"Indexed {len(done)} of {len(saved)}")

        try:
            with writer_lock(settings, wait_s=settings.write_wait_s):
                report = index_paths(res["index"], saved, progress=advanced)
        except IndexBusyError as exc:
            bar.empty()
            batch.discard()  # nothing was indexed: the files go too
            st.session_state.upload_report = [("error", str(exc))]
            st.session_state.uploader += 1
            return
        bar.empty()
        batch.discard(r.path for r in report.results if r.status == "failed")
        for r in report.results:
            name = Path(r.path).name
            if r.status == "failed":
                messages.append(("error", f"{name}: {r.reason}"))
            else:
                messages.append(("success", f"{name}: {r.status} ({r.pages} pages, {r.chunks} chunks)"))
    st.session_state.upload_report = messages
    st.session_state.uploader += 1  # a fresh uploader, emptied


@st.cache_resource
def answering() -> tuple[ThreadPoolExecutor, threading.Lock]:
    """The threads that answer questions (shared by all sessions) and the lock that starts one job per question."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="paperchat-answer"), threading.Lock()


def queue_question() -> None:
    """``st.chat_input``'s callback: runs before the page script, so a question typed while another is
    answered is queued even when its page run is cut short by the next one."""
    question = st.session_state.get("question")
    if question and question.strip():
        st.session_state.turns.append(
            Turn(question, papers=list(st.session_state.get("papers") or []), k=st.session_state.get("k"))
        )


# -- state ----------------------------------------------------------------------------------------
st.session_state.setdefault("turns", [])
st.session_state.setdefault("uploader", 0)
st.session_state.setdefault("upload_report", [])

try:
    res = resources()
except PaperchatError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
settings: Settings = res["settings"]
index = res["index"]
try:
    papers = index.list_documents()
except PaperchatError as exc:  # a Chroma server that went away: say so; the next rerun reconnects
    st.error(str(exc), icon=":material/error:")
    st.button("Try again")
    st.stop()

# -- sidebar ---------------------------------------------------------------------------------------
with st.sidebar:
    st.subheader("Collection")
    st.caption(safe_markdown(settings.location()))
    titles = {p.id: p.title or p.file for p in papers}
    if papers:
        # whole titles, wrapped (a table cut them after ~30 characters); the list scrolls when long
        with st.container(height=min(420, 40 + 64 * len(papers)), border=False, key="paper-list"):
            for p in papers:
                st.markdown(f"**{safe_markdown(p.title or p.file)}**  \n"
                            f":gray[{safe_markdown(p.file)} · {p.pages} pages · {p.chunks} chunks]")
    # read by queue_question through their keys, when a question is asked
    st.multiselect("Ask only these papers", options=list(titles), format_func=lambda i: titles[i],
                   placeholder="All papers", key="papers")
    st.slider("Excerpts per question (k)", 2, 12, settings.k, key="k")

    st.subheader("Add papers")
    files = st.file_uploader("PDF, Markdown or text", type=["pdf", "md", "markdown", "txt"], accept_multiple_files=True,
                             max_upload_size=int(settings.max_file_mb), key=f"upload-{st.session_state.uploader}")
    if files and st.button(f"Index {len(files)} file(s)", type="primary"):
        index_uploads(res, files)
        st.rerun()
    for kind, message in st.session_state.upload_report:
        (st.success if kind == "success" else st.error)(safe_markdown(message))

    if papers:
        st.subheader("Remove a paper")
        doomed = st.selectbox("Paper", options=list(titles), format_func=lambda i: titles[i], index=None, key="doomed")
        if doomed and st.button("Delete from the index", key="delete"):
            try:
                with writer_lock(settings, wait_s=settings.write_wait_s):
                    index.delete_document(doomed)
                st.session_state.upload_report = [("success", f"Deleted {titles[doomed]}")]
            except IndexBusyError as exc:
                st.session_state.upload_report = [("error", str(exc))]
            st.rerun()

    st.divider()
    if st.button("New chat", icon=":material/add_comment:"):
        st.session_state.turns = []
        st.rerun()
    st.download_button("Download conversation (Markdown)", transcript_markdown(st.session_state.turns),
                       file_name="paperchat-conversation.md", mime="text/markdown",
                       disabled=not st.session_state.turns)

# -- chat ------------------------------------------------------------------------------------------
st.title("paperchat")
st.caption(safe_markdown(mode_line(res["mode"])))
if not papers:
    st.info("No papers are indexed yet. Add PDFs in the sidebar, or run: paperchat index PATH")

turns: list[Turn] = st.session_state.turns
st.chat_input("Ask a question about the papers", key="question", on_submit=queue_question)
executor, start_lock = answering()
current = answer_next(turns, res["chain"], executor, start_lock)
for i, turn in enumerate(turns):
    if turn.answered:
        show_turn(i, turn, res["mode"])
    elif current is not None and turn is current[0]:
        with st.chat_message("user"):
            st.markdown(safe_markdown(turn.question))
        with st.chat_message("assistant"):
            slot = st.empty()
    else:
        with st.chat_message("user"):
            st.markdown(safe_markdown(turn.question))
            st.caption("Queued: answered after the questions before it.")

if current is not None:
    turn, job = current
    shown = None
    while True:
        finished = job.done.wait(0.1)
        partial = job.partial_answer
        if partial != shown or not finished:  # each update is also where Streamlit can stop this run for a newer one
            slot.markdown(safe_markdown(partial) if partial else ":gray[Answering...]")
            shown = partial
        if finished:
            break
    job.settle(turn)
    st.rerun()  # shows the answer with its sources, and starts the next queued question
