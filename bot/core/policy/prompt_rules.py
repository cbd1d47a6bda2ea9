"""Prompt rules: normalization that look-alikes, accents, spacing and leetspeak cannot slip past, and
matching that cannot hang and takes one pass over the prompt for all of a server's rules. Pure
functions and plain objects; no Discord, no database, no I/O.

A prompt is read in a fixed list of *views* (never a set: the answer must not depend on the hash
seed). Each view starts from the normalized prompt:

- normalized: compatibility forms folded (full-width, ligatures, math letters), lower-cased, accents
  and other combining marks removed, invisible characters removed, look-alike letters from other
  scripts mapped to Latin;
- up to three readings of digits and symbols: as they are, as leetspeak with ``1`` and ``|`` read as
  ``i``, and the same with them read as ``l``. Digits, ``@`` and ``$`` are letters anywhere in a
  leet reading; ``!``, ``|`` and ``+`` only between two letters or digits ("sh!p", "ki||"), since
  elsewhere they are punctuation;
- spaced letters: a run of single letters or digits ("z e b r a", "z.3.b.r.4") is read as one word,
  and, because "a" and "i" are words of their own, also without a leading and/or trailing "a" or "i"
  ("a z e b r a" is "a zebra").

A word rule matches when its words appear as whole, consecutive words in one of the views; a regular
expression matches anywhere in a normalized reading or in the same with spaced letters joined.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from bot.core.texts import Text, Verbatim, msg

MAX_PATTERN_CHARS = 300
MAX_WORD_CHARS = 100
MAX_RULES = 1000
"""Rules one server may have: keeps compiling and matching within their time budget."""
MAX_NORMALIZED_CHARS = 20_000
"""The longest normalized prompt that is checked: four times the API's 5000-character limit. A prompt
that grows past it under normalization (ligatures such as U+FDFA become 18 letters) is not checked
piecemeal, which could miss a rule; it is refused as one that cannot be checked."""
_CHUNK = 1000  # input characters normalized at a time, so an oversized prompt stops early

# Letters from other scripts that render like Latin ones. NFKC folds full-width and stylised forms,
# but not these: they are distinct letters that only look the same. Looked up before NFKC (which
# would turn some into other letters) and again after it.
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ɡ": "g", "һ": "h", "ѵ": "v", "ү": "y", "ӏ": "l", "ԍ": "g", "ց": "g",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j", "ς": "s", "μ": "u", "γ": "y", "σ": "o",
    # Latin look-alikes and others
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "ɑ": "a", "ɩ": "i",
    "ħ": "h", "ŧ": "t", "ƀ": "b",
}  # fmt: skip

# Leetspeak. Digits, "@" and "$" are read as letters everywhere in a leet view; "!", "|" and "+" only
# between two letters or digits ("sh!t", "ki||"), where they cannot be punctuation.
_LEET_I = bytes.maketrans(b"0345678@$91!|+", b"oeasgtbasgiiit")
_LEET_L = bytes.maketrans(b"0345678@$91!|+", b"oeasgtbasglilt")
# A run of "!", "|", "+" that does not stand between two letters or digits: punctuation, not a letter.
_OUTER_SYMBOLS = re.compile(r"(?<![!|+])(?:(?<![^\W_])[!|+]++|[!|+]++(?![^\W_]))")

_TOKEN = re.compile(r"[^\W_]+")  # a word: letters and digits; everything else separates words
_LONE_WORDS = frozenset("ai")  # one-letter English words a spaced run may start or end with


class RuleError(ValueError):
    """A rule that cannot be added; `text` says why, in the moderator's language."""

    def __init__(self, text: Text) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class PromptRule:
    id: int
    kind: str  # "word" (a word or phrase) or "regex"
    pattern: str


@dataclass(frozen=True)
class RuleMatch:
    """Why a prompt is refused: the rule it breaks, or (rule None) why it could not be checked, in
    which case it is refused rather than let through unchecked."""

    rule: PromptRule | None
    unchecked: str = ""

    def describe(self) -> str:
        if self.rule is None:
            return f"unchecked: {self.unchecked}"
        return f"#{self.rule.id} {self.rule.kind} {self.rule.pattern!r}"


TOO_LONG = RuleMatch(None, f"over {MAX_NORMALIZED_CHARS} characters once normalized")


# -- normalization ------------------------------------------------------------------------------------


# Blank "letters" that render as nothing (Hangul fillers, often used as invisible text on Discord) and
# the blank Braille pattern, which renders as a space.
_INVISIBLE_LETTERS = {"\u115f": "", "\u1160": "", "\u3164": "", "\uffa0": "", "\u2800": " "}


def _fold_char(ch: str) -> str:
    # Look-alikes first: NFKC would turn some into other letters (the lunate sigma into a sigma).
    direct = _CONFUSABLES.get(ch.lower(), _INVISIBLE_LETTERS.get(ch))
    if direct is not None:
        return direct
    folded = unicodedata.normalize("NFKC", ch).casefold()
    kept: list[str] = []
    for part in unicodedata.normalize("NFD", folded):
        category = unicodedata.category(part)
        if category in {"Mn", "Me", "Cf"}:
            continue  # accents and other marks; zero-width and other invisible characters
        if category == "Cc":
            if part.isspace():
                kept.append(" ")  # a newline or tab still separates words
            continue
        kept.append(_CONFUSABLES.get(part, part))
    return "".join(kept)


class _FoldTable(dict[int, str]):
    """str.translate table that folds each character on first sight and remembers it.

    Folding one character at a time (rather than the whole string) is exact here because every
    combining mark is dropped anyway, and it lets an oversized prompt be cut off chunk by chunk."""

    # More than Unicode's assigned characters (about 155,000), so each is folded once per process;
    # unassigned and private-use ones are kept as they are and not remembered, so they cannot fill it.
    LIMIT = 200_000

    def __missing__(self, key: int) -> str:
        ch = chr(key)
        if unicodedata.category(ch) in {"Cn", "Co", "Cs"}:
            return ch
        value = _fold_char(ch)
        if len(self) < self.LIMIT:
            self[key] = value
        return value


_FOLD = _FoldTable()


def normalize_bounded(text: str, limit: int = MAX_NORMALIZED_CHARS) -> str | None:
    """The normalized text, or None as soon as it grows past `limit` characters."""
    parts: list[str] = []
    size = 0
    for start in range(0, len(text), _CHUNK):
        part = text[start : start + _CHUNK].translate(_FOLD)
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
    return "".join(parts)


def normalize(text: str) -> str:
    """Compatibility forms folded, lower-cased, accents and invisible characters removed, look-alike
    letters from other scripts mapped to Latin."""
    return text.translate(_FOLD)


def _leet(text: str, table: bytes) -> str:
    if "!" in text or "|" in text or "+" in text:
        text = _OUTER_SYMBOLS.sub(" ", text)
    # Every leet character is ASCII, and UTF-8 never uses ASCII bytes inside another character, so a
    # byte table is exact, and much faster than str.translate on text with other scripts.
    return text.encode("utf-8", "surrogatepass").translate(table).decode("utf-8", "surrogatepass")


# -- views ----------------------------------------------------------------------------------------

_LEETABLE = re.compile(r"[0-9@$!|+]")
# In a line of words one space apart: two or more one-character words in a row ("z e b r a"), and
# the spaces inside such a run.
_LINE_RUN = re.compile(r"(?<= )[^ ](?: [^ ](?= ))+")
_RUN_SPACE = re.compile(r"(?<= [^ ]) (?=[^ ] )")


def _strip_run(run: str, lead: bool, trail: bool) -> str:
    """A joined run of spaced letters with a lone "a"/"i" at its start and/or end read as a word."""
    before, core, after = "", run, ""
    if lead and len(core) > 2 and core[0] in _LONE_WORDS:
        before, core = core[0], core[1:]
    if trail and len(core) > 2 and core[-1] in _LONE_WORDS:
        core, after = core[:-1], core[-1]
    return " ".join(part for part in (before, core, after) if part)


_STRIPS = ((True, False), (False, True), (True, True))


def _run_readings(run: str) -> list[str]:
    return [r for r in dict.fromkeys(_strip_run(run, lead, trail) for lead, trail in _STRIPS) if r != run]


class PromptViews:
    """Every reading of one normalized prompt, in a fixed order (never a set's order)."""

    def __init__(self, normalized: str) -> None:
        readings = [normalized]
        if _LEETABLE.search(normalized):
            tables = (_LEET_I, _LEET_L) if "1" in normalized or "|" in normalized else (_LEET_I,)
            for table in tables:
                leet = _leet(normalized, table)
                if leet not in readings:
                    readings.append(leet)
        texts: list[str] = []
        lines: list[str] = []
        vocabulary: set[str] = set()
        self._split: list[tuple[str, list[str]]] = []
        for reading in readings:
            tokens = _TOKEN.findall(reading)
            vocabulary.update(tokens)
            line = f" {' '.join(tokens)} "
            joined = _RUN_SPACE.sub("", line)
            runs = [] if joined == line else [run.replace(" ", "") for run in _LINE_RUN.findall(line)]
            for text in (reading, joined):
                if text not in texts:
                    texts.append(text)
            for candidate in (line, joined):
                if candidate not in lines:
                    lines.append(candidate)
            vocabulary.update(runs)
            ambiguous = [r for r in runs if len(r) > 2 and (r[0] in _LONE_WORDS or r[-1] in _LONE_WORDS)]
            split = [reading for run in ambiguous for reading in _run_readings(run)]
            for reading_words in split:
                vocabulary.update(reading_words.split())
            if split:
                self._split.append((line, runs))
        self.texts = tuple(texts)
        """What regular expressions search: each reading, and its words with spaced letters joined."""
        self.vocabulary = frozenset(vocabulary)
        """Every word of every reading: a rule whose first word is absent cannot match."""
        self._lines = lines

    @functools.cached_property
    def word_lines(self) -> tuple[str, ...]:
        """What phrase rules look for: each reading's words one space apart with a space at each
        end, so " red planet " never matches inside a longer word. Built only when a phrase's first
        word occurs at all."""
        lines = list(self._lines)
        for line, runs in self._split:
            for lead, trail in _STRIPS:
                pieces = iter([_strip_run(run, lead, trail) for run in runs])
                variant = _LINE_RUN.sub(lambda _m, pieces=pieces: next(pieces), line)  # type: ignore[misc]
                if variant not in lines:
                    lines.append(variant)
        return tuple(lines)


def prompt_views(prompt: str) -> PromptViews | None:
    """Every reading of the prompt; None if it is too long once normalized."""
    normalized = normalize_bounded(prompt)
    return None if normalized is None else PromptViews(normalized)


# -- rules ----------------------------------------------------------------------------------------


def _options(max_mem: int) -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = max_mem
    return options


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    # RE2 runs in time linear in the input: no pattern can make matching hang.
    return re2.compile(pattern, _options(8 << 20))


def regex_source(pattern: str) -> str:
    """The pattern as it runs against normalized text: non-ASCII characters are folded like the
    prompt ("é" → "e", a Cyrillic o → "o"); ASCII, and so all regex syntax, is left alone and
    case is ignored by the matcher."""
    return "".join(ch if ch.isascii() else normalize(ch) for ch in pattern)


def word_tokens(pattern: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(normalize(pattern)))


def check_rule(kind: str, pattern: str) -> str:
    """Validate a new rule and return the pattern to store; raises RuleError with a reason."""
    text = pattern.strip()
    if kind == "word":
        if not text or len(text) > MAX_WORD_CHARS:
            raise RuleError(
                msg("a blocked word or phrase must be 1 to {most} characters", most=MAX_WORD_CHARS)
            )
        if not word_tokens(text):
            raise RuleError(msg("a blocked word must contain letters or digits"))
        return text
    if kind == "regex":
        if not text or len(text) > MAX_PATTERN_CHARS:
            raise RuleError(msg("a pattern must be 1 to {most} characters", most=MAX_PATTERN_CHARS))
        try:
            compiled = _compiled(regex_source(text))
        except re2.error as exc:
            detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise RuleError(
                msg(
                    "that regular expression is not valid ({detail}); back-references and look-arounds "
                    "are not supported, so that matching can never hang",
                    detail=Verbatim(detail),  # the regular expression library's own words
                )
            ) from None
        if compiled.search(""):
            raise RuleError(msg("that pattern matches an empty prompt, so it would block everything"))
        return text
    raise RuleError(msg("the rule kind must be 'word' or 'regex'"))


@dataclass(frozen=True)
class _RegexGroup:
    """Several regex rules compiled into one alternation: one pass finds whether any matches, and
    the outer capture group that took part says which."""

    compiled: Any
    rules: tuple[tuple[int, PromptRule], ...]  # (outer group number, rule)

    def first(self, text: str) -> PromptRule | None:
        found = self.compiled.search(text)
        if found is None:
            return None
        for group, rule in self.rules:
            if found.group(group) is not None:
                return rule
        return self.rules[0][1]  # unreachable: some alternative matched


def _regex_groups(rules: Sequence[tuple[PromptRule, Any]]) -> list[_RegexGroup]:
    """Compile the rules as few alternations as RE2's memory budget allows (halving on failure)."""
    if not rules:
        return []
    parts: list[str] = []
    numbered: list[tuple[int, PromptRule]] = []
    group = 1
    for rule, single in rules:
        parts.append(f"({regex_source(rule.pattern)})")
        numbered.append((group, rule))
        group += 1 + int(single.groups)
    try:
        compiled = re2.compile("|".join(parts), _options(64 << 20))
    except re2.error:
        if len(rules) == 1:
            return []  # validated when added, so only a changed RE2 could get here: skip, not fatal
        half = len(rules) // 2
        return _regex_groups(rules[:half]) + _regex_groups(rules[half:])
    return [_RegexGroup(compiled, tuple(numbered))]


class CompiledRules:
    """One server's rules, compiled once: word rules as a dictionary of their first words, regular
    expressions as one RE2 alternation (or a few, if one would not fit RE2's memory budget)."""

    def __init__(self, rules: Iterable[PromptRule]) -> None:
        self.rules = tuple(sorted(rules, key=lambda r: r.id))
        self._words: dict[str, list[tuple[tuple[str, ...], PromptRule]]] = {}
        regexes: list[tuple[PromptRule, Any]] = []
        for rule in self.rules:
            if rule.kind == "word":
                phrase = word_tokens(rule.pattern)
                if phrase:
                    self._words.setdefault(phrase[0], []).append((phrase, rule))
            elif rule.kind == "regex":
                try:
                    regexes.append((rule, _compiled(regex_source(rule.pattern))))
                except re2.error:
                    continue  # validated when added; a rule that no longer compiles is skipped
        self._regexes = _regex_groups(regexes)

    def __len__(self) -> int:
        return len(self.rules)

    def _word_match(self, views: PromptViews) -> PromptRule | None:
        firsts = views.vocabulary.intersection(self._words)
        best: PromptRule | None = None
        for first in sorted(firsts):
            for phrase, rule in self._words[first]:
                if best is not None and rule.id >= best.id:
                    continue
                needle = f" {' '.join(phrase)} "
                if len(phrase) == 1 or any(needle in line for line in views.word_lines):
                    best = rule
        return best

    def _regex_match(self, views: PromptViews) -> PromptRule | None:
        best: PromptRule | None = None
        for group in self._regexes:
            for text in views.texts:
                rule = group.first(text)
                if rule is not None and (best is None or rule.id < best.id):
                    best = rule
        return best

    def find(self, prompt: str) -> RuleMatch | None:
        """The rule the prompt breaks (the lowest-numbered one found), or None."""
        if not self.rules:
            return None
        views = prompt_views(prompt)
        if views is None:
            return TOO_LONG
        found = [r for r in (self._word_match(views), self._regex_match(views)) if r is not None]
        return RuleMatch(min(found, key=lambda r: r.id)) if found else None
