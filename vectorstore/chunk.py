"""Token-based chunking on paragraph and sentence boundaries, with overlap, sized for the embedder.

Chunks never cross a section heading, prefer to end where a paragraph ends, and carry up to
``overlap`` tokens of the previous chunk's last sentences when a paragraph is split. Sizes are counted
in cl100k tokens (tiktoken); a final check counts the embedder's own word pieces and splits any chunk the
embedder would truncate, so nothing is silently cut off.

Example:
    >>> from paperchat.vectorstore.types import Page, ParsedDocument
    >>> doc = ParsedDocument("a.md", "/a.md", "ab" * 32, "A", None, "markdown", [Page(1, "## Methods\\n\\nWe used a CNN.")])
    >>> [(c.section, c.text) for c in chunk_document(doc)]
    [('Methods', 'We used a CNN.')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from paperchat.vectorstore.sentences import sentence_spans
from paperchat.vectorstore.structure import Block, blocks_from_pages
from paperchat.vectorstore.tokens import count_tokens, encoding
from paperchat.vectorstore.types import Chunk, ParsedDocument

#: Bump when chunk boundaries change, so that stores built by older versions are detected.
CHUNKER_VERSION = "c2"  # c2: reference-list chunks stored without embeddings


@dataclass(slots=True)
class _Sentence:
    text: str
    page: int
    tokens: int
    para_end: bool  # last sentence of its paragraph
    page_end: int


def _split_long(text: str, max_tokens: int) -> list[str]:
    """Cut a text with no usable sentence boundary into pieces of at most ``max_tokens`` tokens."""
    enc = encoding()
    ids = enc.encode_ordinary(text)
    return [enc.decode(ids[i : i + max_tokens]).strip() for i in range(0, len(ids), max_tokens)]


def _sentences(blocks: Sequence[Block], max_tokens: int) -> list[_Sentence]:
    out: list[_Sentence] = []
    for block in blocks:
        spans = sentence_spans(block.text) or [(0, len(block.text))]
        pieces: list[tuple[str, int, int, int]] = []  # text, tokens, first page, last page
        for start, end in spans:
            part = block.text[start:end]
            first, last = block.page_at(start), block.page_at(max(start, end - 1))
            n = count_tokens(part)
            if n > max_tokens:
                pieces.extend((p, count_tokens(p), first, last) for p in _split_long(part, max_tokens) if p)
            else:
                pieces.append((part, n, first, last))
        for i, (text, n, first, last) in enumerate(pieces):
            out.append(_Sentence(text, first, n, para_end=i == len(pieces) - 1, page_end=last))
    return out


def _join(sentences: Sequence[_Sentence]) -> str:
    parts: list[str] = []
    for i, s in enumerate(sentences):
        if i:
            parts.append("\n\n" if sentences[i - 1].para_end else " ")
        parts.append(s.text)
    return "".join(parts)


def _pack(sentences: list[_Sentence], target: int, overlap: int) -> list[list[_Sentence]]:
    """Group a section's sentences into chunks of about ``target`` tokens."""
    groups: list[list[_Sentence]] = []
    current: list[_Sentence] = []
    size = 0
    for i, sent in enumerate(sentences):
        if current and size + sent.tokens > target:
            groups.append(current)
            carry: list[_Sentence] = []
            # Overlap only where a paragraph was split: the next chunk starts with its last sentences.
            if overlap and not current[-1].para_end:
                budget = overlap
                for prev in reversed(current):
                    if prev.tokens > budget:
                        break
                    carry.insert(0, prev)
                    budget -= prev.tokens
            current, size = carry, sum(s.tokens for s in carry)
        current.append(sent)
        size += sent.tokens
        # End early at a paragraph end when the next paragraph would not fit anyway.
        if sent.para_end and size >= 0.6 * target:
            next_para = 0
            for j in range(i + 1, len(sentences)):  # (a slice here would copy the rest at every paragraph)
                next_para += sentences[j].tokens
                if sentences[j].para_end:
                    break
            if size + next_para > target:
                groups.append(current)
                current, size = [], 0
    if current:
        groups.append(current)
    return groups


def chunk_document(
    doc: ParsedDocument,
    chunk_tokens: int = 200,
    overlap: int = 30,
    embedder_tokens: Callable[[list[str]], list[int]] | None = None,
    embedder_max: int | None = None,
) -> list[Chunk]:
    """Chunks of a parsed document.

    Args:
        doc: The parsed document.
        chunk_tokens: Target chunk size in cl100k tokens.
        overlap: Tokens of context repeated when a paragraph is split between chunks.
        embedder_tokens: The embedder's own token counter; with ``embedder_max``, chunks longer than the
            embedder reads are split further.
        embedder_max: The most tokens the embedder reads.
    """
    blocks = blocks_from_pages(doc.pages, doc.kind)
    chunks: list[Chunk] = []
    run: list[Block] = []

    groups: list[tuple[list[_Sentence], Block]] = []

    def flush() -> None:
        body = [b for b in run if not b.is_heading]
        if body:
            groups.extend((g, body[0]) for g in _pack(_sentences(body, chunk_tokens), chunk_tokens, overlap))
        run.clear()

    for block in blocks:
        if block.is_heading or (run and (block.section, block.in_references) != (run[0].section, run[0].in_references)):
            flush()
        run.append(block)
    flush()
    # One batched count finds the few chunks the embedder would truncate; only those are split further.
    counts = embedder_tokens([_join(g) for g, _ in groups]) if embedder_tokens and embedder_max else None
    for i, (group, first) in enumerate(groups):
        check = embedder_tokens if counts is not None and counts[i] > embedder_max else None  # type: ignore[operator]
        chunks.extend(_fit(group, doc.doc_id, first.section, first.in_references, check, embedder_max))
    for i, chunk in enumerate(chunks):
        chunk.index = i
    return chunks


def _fit(
    group: list[_Sentence],
    doc_id: str,
    section: str,
    in_references: bool,
    embedder_tokens: Callable[[list[str]], list[int]] | None,
    embedder_max: int | None,
) -> list[Chunk]:
    """One chunk for the group, or several if the embedder would truncate it."""
    text = _join(group)
    if embedder_tokens is not None and embedder_max is not None and embedder_tokens([text])[0] > embedder_max:
        if len(group) > 1:
            mid = len(group) // 2
            return _fit(group[:mid], doc_id, section, in_references, embedder_tokens, embedder_max) + _fit(
                group[mid:], doc_id, section, in_references, embedder_tokens, embedder_max
            )
        halves = _split_long(text, max(8, group[0].tokens // 2))
        return [
            c
            for half in halves
            for c in _fit(
                [_Sentence(half, group[0].page, count_tokens(half), True, group[0].page_end)],
                doc_id,
                section,
                in_references,
                embedder_tokens,
                embedder_max,
            )
        ]
    return [
        Chunk(
            doc_id=doc_id,
            index=0,
            text=text,
            page_start=min(s.page for s in group),
            page_end=max(s.page_end for s in group),
            section=section,
            in_references=in_references,
            n_tokens=sum(s.tokens for s in group),
        )
    ]
