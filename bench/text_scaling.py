#!/usr/bin/env python3
"""Parsing and chunking time against text length, on texts made to trip super-linear steps.

    python bench/text_scaling.py [--sizes 250000,1000000] [--out bench/results/text_scaling.json]

Each case is a file of about N characters of one awkward shape (one long token, a long token with a
line-break hyphen or a broken ligature glyph at its end, lines of a DNA sequence forming one paragraph,
a long digit run, abbreviations without sentence ends, a Markdown heading of "#" runs, a long run-on
sentence) parsed and chunked as ``paperchat index`` does in its worker (``parse_and_chunk``, cl100k
counts). Linear steps give a time ratio close to the size ratio; the test suite checks that the same
inputs parse correctly at 1 MB (``tests/unit/test_text_scaling.py``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.long_texts import LONG_TEXT_CASES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250000,1000000")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "text_scaling.json"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from paperchat.vectorstore.chunk import chunk_document
    from paperchat.vectorstore.parse import parse_file
    from paperchat.vectorstore.tokens import count_tokens
    from paperchat.vectorstore.vocab import english_words

    count_tokens("warm up"), english_words()  # load the tokenizer and the word list before timing
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (suffix, make) in LONG_TEXT_CASES.items():
            row: dict[str, object] = {"case": name}
            for n in sizes:
                path = Path(tmp) / f"{name}{suffix}"
                path.write_text(make(n), encoding="utf-8")
                start = time.perf_counter()
                doc = parse_file(path)
                parsed = time.perf_counter()
                chunks = chunk_document(doc)
                row[f"parse_s_{n}"] = round(parsed - start, 3)
                row[f"chunk_s_{n}"] = round(time.perf_counter() - parsed, 3)
                row[f"chunks_{n}"] = len(chunks)
            first, last = sizes[0], sizes[-1]
            total = [row[f"parse_s_{n}"] + row[f"chunk_s_{n}"] for n in (first, last)]  # type: ignore[operator]
            row["time_ratio"] = round(total[1] / max(total[0], 1e-3), 1)
            rows.append(row)
            print(
                f"{name:28s} " + "  ".join(f"{n:>9,d} ch: parse {row[f'parse_s_{n}']:6.3f} s, chunk {row[f'chunk_s_{n}']:6.3f} s"
                                          for n in sizes) + f"   x{row['time_ratio']} for x{last / first:.0f} text",
                flush=True,
            )
    result = {"machine": platform.machine(), "python": platform.python_version(), "sizes": sizes, "cases": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
