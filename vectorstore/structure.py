"""From cleaned pages to blocks: paragraphs and headings, each with its page, section and references flag.

PDF text arrives as lines; paragraphs are rebuilt from line lengths and sentence ends, headings are
recognised by numbering ("2.4. Evaluation metrics", "2 | MATERIALS AND METHODS"), by the usual section
names ("Methods", "References") or by short all-capital lines. Markdown headings are ``#`` lines.
Everything after a references heading is flagged ``in_references`` until an appendix-like heading.

Example:
    >>> from paperchat.vectorstore.types import Page
    >>> [(b.section, b.text) for b in blocks_from_pages([Page(1, "## Methods\\n\\nWe used a CNN.")], "markdown")]
    [('Methods', 'We used a CNN.')]
"""

from __future__ import annotations

import bisect
import math
import re
import statistics
from dataclasses import dataclass

from paperchat.vectorstore.types import Page

KNOWN_SECTIONS = frozenset(
    """
    abstract|introduction|background|related work|related works|literature review|methods|method|
    methodology|materials and methods|material and methods|methods and materials|materials|
    study area|study site|data|data collection|dataset|datasets|data and methods|experiments|
    experimental setup|experimental design|experimental results|implementation|model|models|
    training|evaluation|results|results and discussion|discussion|conclusion|conclusions|
    summary|outlook|future work|limitations|acknowledgements|acknowledgments|acknowledgement|
    acknowledgment|funding|author contributions|conflict of interest|conflicts of interest|
    competing interests|data availability|data availability statement|data accessibility|
    code availability|ethics statement|supplementary material|supplementary materials|
    supporting information|references|bibliography|literature cited|works cited|reference list|
    appendix|appendices|keywords|key words|highlights|figures and tables|nomenclature|
    abbreviations|glossary|presenting author|hosted by|funding program|grant title
    """.replace("\n", "").split("|")
)
REFERENCE_HEADINGS = frozenset({"references", "bibliography", "literature cited", "works cited", "reference list"})
_AFTER_REFERENCES = re.compile(r"^(appendix|appendices|supplement|supporting information|figures and tables|[A-H]\b)", re.I)

# "2.4. Evaluation metrics", "2 | METHODS", "II. RELATED WORK", "A.1 Details"
_NUMBERED = re.compile(
    r"^(?P<num>(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?|[IVX]{1,4}\.|[A-H](?:\.\d{1,2}){0,2}\.?))"
    r"(?:\s*[|\u2003\u2002]\s*|\s+)(?P<title>[A-Z][^\n]{1,90})$"
)
_NUMBER_PREFIX = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?|[IVX]{1,4}\.)\s*(?:[|\u2003\u2002:.]\s*)?")
# (closing hashes are stripped with rstrip: a lazy pattern before "#*$" is quadratic on a run of "#")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(\S.*)$")
_SENTENCE_END = re.compile(r"[.!?:;][\"'\u201d\u2019)\]]*$")


@dataclass(slots=True)
class Block:
    """A paragraph (or heading) of a document."""

    text: str
    page: int
    section: str
    in_references: bool
    is_heading: bool = False
    #: (character offset, page) where a paragraph running over a page break reaches a new page
    page_breaks: tuple[tuple[int, int], ...] = ()

    def page_at(self, offset: int) -> int:
        """The page on which the character at ``offset`` of :attr:`text` lies."""
        # the breaks are in text order: the last one at or before the offset gives the page
        i = bisect.bisect_right(self.page_breaks, (offset, math.inf))
        return self.page_breaks[i - 1][1] if i else self.page


def heading_key(title: str) -> str:
    """A heading reduced to its words, lower-cased, numbering and trailing punctuation removed."""
    title = _NUMBER_PREFIX.sub("", title.strip())
    return re.sub(r"\s+", " ", title).rstrip(" :.").lower()


def _looks_like_heading(line: str, typical_len: float) -> bool:
    text = line.strip()
    if not text or len(text) > 100:
        return False
    key = heading_key(text)
    if key in KNOWN_SECTIONS and not text.endswith("."):
        return True
    words = text.split()
    numbered = _NUMBERED.match(text)
    if numbered:
        title = numbered.group("title")
        title_words = title.split()
        return (
            len(title_words) <= 12
            and not _SENTENCE_END.search(title)
            and not title.rstrip().endswith((",", ";"))
            and len(text) < max(40.0, 0.85 * typical_len)
            and sum(w[:1].isupper() or not w[:1].isalpha() for w in title_words) >= max(1, len(title_words) // 3)
            and not re.search(r"\d{3,}|[=<>%]", title)
        )
    letters = [c for c in text if c.isalpha()]
    return (
        text.isupper()
        and 2 <= len(words) <= 8
        and len(letters) >= 4
        and len(letters) >= 0.8 * len(text.replace(" ", ""))
    )


def _join_lines(lines: list[str]) -> str:
    return " ".join(line.strip() for line in lines).strip()


class _SectionTracker:
    def __init__(self) -> None:
        self.section = ""
        self.in_references = False

    def enter(self, title: str) -> None:
        key = heading_key(title)
        if key in REFERENCE_HEADINGS:
            self.in_references = True
        elif self.in_references and not _AFTER_REFERENCES.match(key):
            return  # inside a reference list, only an appendix-like heading ends it
        else:
            self.in_references = False
        self.section = re.sub(r"\s+", " ", title.strip().lstrip("#").strip())


def _blocks_from_markdown(pages: list[Page]) -> list[Block]:
    blocks: list[Block] = []
    tracker = _SectionTracker()
    for page in pages:
        para: list[str] = []

        def flush() -> None:
            if para:
                blocks.append(Block(_join_lines(para), page.number, tracker.section, tracker.in_references))
                para.clear()

        for line in page.text.splitlines():
            match = _MD_HEADING.match(line.strip())
            if match:
                flush()
                title = match.group(2).rstrip().rstrip("#").rstrip() or match.group(2)
                if len(match.group(1)) == 1 and not blocks and not tracker.section:
                    # the document title: a block of its own, not a section
                    blocks.append(Block(title, page.number, "", False, is_heading=True))
                    continue
                tracker.enter(title)
                blocks.append(Block(tracker.section, page.number, tracker.section, tracker.in_references, True))
            elif not line.strip():
                flush()
            elif line.lstrip().startswith(("- ", "* ", "+ ", "|")) or re.match(r"^\s*\d+[.)]\s", line):
                flush()  # list items and table rows stay on their own
                para.append(line)
                flush()
            else:
                para.append(line)
        flush()
    return blocks


def _is_subheading(line: str, prev_ended: bool, next_line: str, typical_len: float) -> bool:
    """An unnumbered run-in heading ("Image annotation"): a short capitalised line between paragraphs."""
    words = line.split()
    return (
        prev_ended
        and 1 <= len(words) <= 8
        and len(line) <= min(60.0, 0.6 * typical_len)
        and line[:1].isupper()
        and not re.search(r"[.,;:!?)\]]$|\d{2,}|[=<>%/]", line)
        and sum(c.isalpha() for c in line) >= 0.8 * len(line.replace(" ", ""))
        and next_line[:1].isupper()
    )


def _blocks_from_lines(pages: list[Page]) -> list[Block]:
    stream: list[tuple[str, int, float]] = []  # (line, page, typical line length of that page)
    for page in pages:
        lines = [x.strip() for x in page.text.splitlines()]
        lengths = [len(x) for x in lines if len(x) > 20]
        typical = statistics.median(lengths) if lengths else 80.0
        stream.extend((x, page.number, typical) for x in lines)

    blocks: list[Block] = []
    tracker = _SectionTracker()
    para: list[tuple[str, int]] = []

    def flush() -> None:
        if para:
            # offsets counted as the lines are joined (building the string line by line would be quadratic)
            breaks, length = [], 0
            for line, line_page in para:
                if line_page != (breaks[-1][1] if breaks else para[0][1]):
                    breaks.append((length, line_page))
                length += len(line) + (1 if length else 0)
            text = " ".join(line for line, _ in para)
            blocks.append(Block(text, para[0][1], tracker.section, tracker.in_references, page_breaks=tuple(breaks)))
            para.clear()

    for i, (text, page, typical) in enumerate(stream):
        if not text:
            flush()
            continue
        next_line = next((x for x, _, _ in stream[i + 1 : i + 4] if x), "")
        prev_ended = not para or bool(_SENTENCE_END.search(para[-1][0]))
        if _looks_like_heading(text, typical) or _is_subheading(text, prev_ended, next_line, typical):
            flush()
            previous = blocks[-1] if blocks else None
            if (
                previous is not None
                and previous.is_heading
                and previous.page == page
                and heading_key(previous.text) not in KNOWN_SECTIONS
                and not _NUMBERED.match(text)
            ):
                # a heading wrapped over two lines
                blocks.pop()
                text = f"{previous.text} {text}"
            tracker.enter(text)
            blocks.append(Block(tracker.section, page, tracker.section, tracker.in_references, True))
            continue
        if para and page != para[-1][1] and _SENTENCE_END.search(para[-1][0]) and not text[:1].islower():
            flush()  # a new page after a finished sentence starts a new paragraph
        para.append((text, page))
        # A short line that ends a sentence ends its paragraph (justified text fills its lines).
        if _SENTENCE_END.search(text) and len(text) < 0.7 * typical:
            flush()
    flush()
    return blocks


def blocks_from_pages(pages: list[Page], kind: str) -> list[Block]:
    """Paragraph and heading blocks of a document; ``kind`` is "pdf", "markdown" or "text"."""
    if kind == "markdown":
        return _blocks_from_markdown(pages)
    return _blocks_from_lines(pages)
