"""A PDF source shown on its page: the rendered page with the cited sentence highlighted, beside the excerpt.

Rendering, finding the sentence and drawing are ``paperchat.vectorstore.pages`` (cached per process); this
module only lays them out: the page image, its number, buttons to the previous and next page, and a note
instead of the page when the file has changed or gone since it was indexed.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from paperchat.conversation import highlight, safe_markdown
from paperchat.types import Citation
from paperchat.ui.resources import resources
from paperchat.vectorstore.errors import PaperchatError
from paperchat.vectorstore.pages import highlighted_page, source_note
from paperchat.vectorstore.sentences import split_sentences


def sentences_to_mark(c: Citation) -> list[str]:
    """The excerpt's sentences to highlight: those the answer quotes, else the closest to each citing one."""
    if not c.cited:
        return []
    wanted = [s for s in (c.sentence or "").split("\n") if s.strip()]
    quoted = [s for s in wanted if s in c.text]
    if quoted or not wanted:
        return quoted
    # an LLM's sentence paraphrases: mark the excerpt's sentence sharing the most words with it
    own = split_sentences(c.text)
    marked = []
    for sentence in wanted:
        words = set(re.findall(r"\w{3,}", sentence.lower()))
        best = max(own, key=lambda s: len(words & set(re.findall(r"\w{3,}", s.lower()))), default="")
        if best and best not in marked:
            marked.append(best)
    return marked


def _record(c: Citation) -> Any:
    try:
        return resources()["index"].get_document(c.doc_id) if c.doc_id else None
    except PaperchatError:
        return None


def _first_page_found(path: str, c: Citation, sentences: list[str], ocr_pages: set[int], n_pages: int) -> int:
    """The cited page, or a neighbour when the sentence turns out to be there (a chunk over a page break)."""
    start = c.page or 1
    candidates = [start, *range(start + 1, (c.page_end or start) + 2), start - 1]
    for page in [p for p in candidates if 1 <= p <= n_pages]:
        if highlighted_page(path, page, sentences, excerpt=c.text, ocr=page in ocr_pages).found:
            return page
    return start


def show_on_page(c: Citation, key: str) -> bool:
    """Offer a PDF source on its page; returns False (nothing shown) for Markdown and text sources."""
    record = _record(c)
    if record is None or record.kind != "pdf" or not record.path:
        return False
    if not st.toggle("Show on the page", key=f"on-page-{key}"):
        return False
    note = source_note(record.path, record.sha256)
    if note:
        st.warning(safe_markdown(note), icon=":material/warning:")
        return False
    sentences = sentences_to_mark(c)
    ocr_pages = set(getattr(record, "ocr_pages", []) or [])
    state = f"page-{key}-{c.doc_id}-{c.page}"  # the page shown; a new chat's sources start at their own pages
    try:
        if state not in st.session_state:
            with st.spinner("Finding the passage on the page..."):
                st.session_state[state] = _first_page_found(record.path, c, sentences, ocr_pages, record.pages)
        page = st.session_state[state]
        view = highlighted_page(record.path, page, sentences, excerpt=c.text, ocr=page in ocr_pages)
    except (OSError, ValueError, RuntimeError, PaperchatError) as exc:  # unreadable now, or OCR unavailable
        st.warning(safe_markdown(f"This page cannot be shown ({exc})."), icon=":material/warning:")
        return False

    picture, text = st.columns([3, 2])
    with picture:
        back, where, forward = st.columns(3, vertical_alignment="center")

        def step(delta: int) -> None:
            st.session_state[state] = min(max(1, st.session_state[state] + delta), view.n_pages)

        back.button("Previous", key=f"prev-{key}", on_click=step, args=(-1,), disabled=page <= 1,
                    icon=":material/chevron_left:", help="The previous page")
        where.markdown(f"**Page {page} of {view.n_pages}**", text_alignment="center")
        forward.button("Next", key=f"next-{key}", on_click=step, args=(1,), disabled=page >= view.n_pages,
                       icon=":material/chevron_right:", help="The next page")
        if view.found:
            caption = "The cited sentence is highlighted in orange, the rest of the excerpt in yellow."
        elif page == c.page:
            caption = "The passage could not be located on this page's text."
        else:
            caption = f"The excerpt is from page {c.page}."
        st.image(view.jpeg(), caption=caption, width="stretch", output_format="JPEG")
    with text:
        st.markdown(highlight(c.text, "\n".join(sentences) if c.cited else ""))
    return True
