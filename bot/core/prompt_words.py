"""Prompt words for the gallery's search, in any script: the terms an image is indexed under and the
terms a search asks for.

The method (docs/web.md): letters and digits split into runs; a run of Latin, Cyrillic, … letters is
one term, case-folded. Chinese, Japanese and Korean are written without spaces, so a CJK run is
indexed as every single character and every overlapping pair of characters ("水彩猫" gives 水, 彩, 猫,
水彩, 彩猫). A search for a CJK run of two or more characters asks for all of its pairs (水彩画 →
水彩 and 彩画), one character asks for that character. A two-character word is therefore found exactly,
and longer words are found wherever all their pairs occur, which is the usual bigram method of
search engines for CJK. The same plain table of terms serves SQLite and PostgreSQL alike (no FTS5
tokenizer or PostgreSQL extension needed).
"""

from __future__ import annotations

import re
import unicodedata

# Han (with extensions A and compatibility ideographs), kana and Hangul syllables.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
# A prompt holds at most 5,000 characters; its index stays small whatever it holds.
MAX_TERMS = 400
MAX_TERM_CHARS = 40
# A search asks for at most this many terms (each one is an index look-up).
MAX_QUERY_TERMS = 8


def _runs(text: str) -> list[str]:
    return _RUNS.findall(unicodedata.normalize("NFKC", text).casefold())


def index_terms(prompt: str) -> set[str]:
    """Every term an image with this prompt is found by."""
    terms: set[str] = set()
    for run in _runs(prompt):
        if _IS_CJK.match(run):
            terms.update(run)
            terms.update(run[i : i + 2] for i in range(len(run) - 1))
        else:
            terms.add(run[:MAX_TERM_CHARS])
        if len(terms) >= MAX_TERMS:
            break
    return terms


def query_terms(query: str) -> list[str]:
    """The terms an image must have to match a search, in the order written, each once."""
    wanted: list[str] = []
    for run in _runs(query):
        if _IS_CJK.match(run):
            wanted.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        else:
            wanted.append(run[:MAX_TERM_CHARS])
    return list(dict.fromkeys(wanted))[:MAX_QUERY_TERMS]
