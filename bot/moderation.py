"""Prompt rules: normalization that look-alikes, accents and spacing cannot slip past, and matching
that cannot hang. Pure functions; no Discord, no database."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import re2

MAX_PATTERN_CHARS = 300
MAX_WORD_CHARS = 100

# Letters from other scripts that render like Latin ones. NFKC folds full-width and stylised forms,
# but not these: they are distinct letters that only look the same.
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
        "ԛ": "q", "ԝ": "w", "ɡ": "g", "һ": "h", "ѵ": "v", "ү": "y", "ӏ": "l",
        # Greek
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j", "ς": "s",
        # Latin look-alikes and others
        "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "ɑ": "a", "ɩ": "i",
    }
)  # fmt: skip
# Digits and symbols used as letters; applied to a second variant only, so "b4" still reads "b4".
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_WORD = re.compile(r"\w+")


class RuleError(ValueError):
    """A rule that cannot be added; the text says why, for the moderator."""


@dataclass(frozen=True)
class PromptRule:
    id: int
    kind: str  # "word" (a word or phrase) or "regex"
    pattern: str


@dataclass(frozen=True)
class RuleMatch:
    rule: PromptRule

    def describe(self) -> str:
        return f"#{self.rule.id} {self.rule.kind} {self.rule.pattern!r}"


def normalize(text: str) -> str:
    """Casefolded text with compatibility forms folded, accents and invisible characters removed,
    and look-alike letters from other scripts mapped to Latin."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFD", folded)
    kept = "".join(
        ch
        for ch in decomposed
        if not unicodedata.combining(ch) and unicodedata.category(ch) not in {"Cf", "Cc"}
    )
    return unicodedata.normalize("NFC", kept).translate(_CONFUSABLES)


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text)


def _token_views(text: str) -> Iterable[list[str]]:
    """The prompt's words, plus the same with runs of single letters joined ("b a d" → "bad"),
    each also with leetspeak read as letters."""
    normalized = normalize(text)
    for variant in {normalized, normalized.translate(_LEET)}:
        tokens = _tokens(variant)
        yield tokens
        joined: list[str] = []
        run = ""
        for token in tokens:
            if len(token) == 1:
                run += token
                continue
            if run:
                joined.append(run)
                run = ""
            joined.append(token)
        if run:
            joined.append(run)
        yield joined


def _contains(tokens: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return any(list(tokens[i : i + n]) == list(phrase) for i in range(len(tokens) - n + 1))


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = 8 << 20
    # RE2 runs in time linear in the input: no pattern can make matching hang.
    return re2.compile(pattern, options)


def check_rule(kind: str, pattern: str) -> str:
    """Validate a new rule and return the pattern to store; raises RuleError with a reason."""
    text = pattern.strip()
    if kind == "word":
        if not text or len(text) > MAX_WORD_CHARS:
            raise RuleError(f"a blocked word or phrase must be 1 to {MAX_WORD_CHARS} characters")
        if not _tokens(normalize(text)):
            raise RuleError("a blocked word must contain letters or digits")
        return text
    if kind == "regex":
        if not text or len(text) > MAX_PATTERN_CHARS:
            raise RuleError(f"a pattern must be 1 to {MAX_PATTERN_CHARS} characters")
        try:
            compiled = _compiled(text)
        except re2.error as exc:
            detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise RuleError(
                f"that regular expression is not valid ({detail}); back-references and look-arounds "
                "are not supported, so that matching can never hang"
            ) from None
        if compiled.search(""):
            raise RuleError("that pattern matches an empty prompt, so it would block everything")
        return text
    raise RuleError("the rule kind must be 'word' or 'regex'")


def find_match(prompt: str, rules: Sequence[PromptRule]) -> RuleMatch | None:
    """The first rule the prompt breaks, or None."""
    if not rules:
        return None
    views = list(_token_views(prompt))
    normalized = normalize(prompt)
    texts = (normalized, normalized.translate(_LEET), " ".join(views[1]))
    for rule in rules:
        if rule.kind == "word":
            phrase = _tokens(normalize(rule.pattern))
            if phrase and any(_contains(tokens, phrase) for tokens in views):
                return RuleMatch(rule)
        elif rule.kind == "regex":
            try:
                compiled = _compiled(rule.pattern)
            except re2.error:
                continue  # validated when added; a rule that no longer compiles is skipped, not fatal
            if any(compiled.search(text) for text in texts):
                return RuleMatch(rule)
    return None
