"""Prompt rules: every documented disguise, alone and combined, is refused by word and regex rules
alike; a word rule never matches inside another word; the answer is the same in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.core.policy.prompt_rules import (
    MAX_NORMALIZED_CHARS,
    CompiledRules,
    PromptRule,
    RuleError,
    check_rule,
    normalize_bounded,
)

REPO = Path(__file__).resolve().parent.parent

# Characters that look like a Latin letter, by the letter (Cyrillic and Greek), upper and lower case.
LOOK_ALIKES = {
    "a": "аАαΑ", "b": "вВβΒ", "c": "сСϲ", "e": "еЕεΕ", "h": "һнН", "i": "іІιΙ", "j": "јЈ", "k": "кКκΚ",
    "m": "мМ", "n": "η", "o": "оОοΟ", "p": "рРρΡ", "s": "ѕЅ", "t": "тТτΤ", "u": "υ", "v": "ѵν",
    "w": "ԝω", "x": "хХχΧ", "y": "уУү",
}  # fmt: skip
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u3164", "\u180e", "\U000e0041"]
ACCENTS = ["\u0301", "\u0300", "\u0308", "\u0302", "\u0336", "\u0327"]  # combining marks
SEPARATORS = [" ", "  ", ". ", "-", " _ ", "\u3000", "\u00a0", "\u2800", "\n", "\t", " * "]
# Leetspeak read in every position, spaced or not. "1" and "|" stand for i in one reading and l in
# another, so one word uses them for one of the two letters only.
LEET = {"a": "4@", "e": "3", "g": "69", "o": "0", "s": "5$", "t": "7", "b": "8"}
LEET_INNER = {"i": "!", "t": "+"}  # symbols read as letters only between two letters or digits
CONTEXT = ["the", "big", "crossing", "at", "night", "zoo", "over", "2024", "very", "painting"]

letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8)


@st.composite
def disguised(draw: st.DrawFn, word: str, *, symbols: bool = True, spaced: bool | None = None) -> str:
    """`word` with any combination of the documented disguises."""
    one_is = draw(st.sampled_from("il"))
    spaced = draw(st.booleans()) if spaced is None else spaced
    chars: list[str] = []
    for index, ch in enumerate(word):
        inner = 0 < index < len(word) - 1 and not spaced
        options = [ch, ch.upper(), chr(ord(ch) - ord("a") + 0xFF41), chr(ord(ch) - ord("a") + 0xFF21)]
        options += [ch + accent for accent in ACCENTS]
        options += list(LOOK_ALIKES.get(ch, ""))
        options += list(LEET.get(ch, "")) if symbols else [c for c in LEET.get(ch, "") if c.isdigit()]
        if ch == one_is:
            options += ["1", "|"] if symbols and inner else ["1"]
        if symbols and inner and ch in LEET_INNER:
            options.append(LEET_INNER[ch])
        form = draw(st.sampled_from(options))
        if draw(st.integers(0, 3)) == 0:
            form += draw(st.sampled_from(INVISIBLE))
        chars.append(form)
    if not spaced:
        return "".join(chars)
    out = chars[0]
    for form in chars[1:]:
        out += draw(st.sampled_from(SEPARATORS)) + form
    return out


@st.composite
def sentence(draw: st.DrawFn, middle: str) -> str:
    """The disguised word among other words; a lone "a" or "I" may stand right before or after it."""
    before = draw(st.lists(st.sampled_from(CONTEXT), max_size=3))
    after = draw(st.lists(st.sampled_from(CONTEXT), max_size=3))
    lone = ["", "a", "A", "i", "I"]
    return " ".join([*before, draw(st.sampled_from(lone)), middle, draw(st.sampled_from(lone)), *after])


def refused(prompt: str, kind: str, pattern: str) -> bool:
    return CompiledRules([PromptRule(1, kind, pattern)]).find(prompt) is not None


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), word=letters)
def test_every_disguise_and_combination_is_refused_by_word_and_regex_rules(
    data: st.DataObject, word: str
) -> None:
    prompt = data.draw(sentence(data.draw(disguised(word))))
    assert refused(prompt, "word", word), prompt
    assert refused(prompt, "regex", word), prompt


@PROPERTY
@given(data=st.data(), word=letters, prefix=st.text("bcdefghjkmnopqrstuvwxyz", max_size=3),
       suffix=st.text("bcdefghjkmnopqrstuvwxyz", max_size=3))  # fmt: skip
def test_a_word_rule_never_matches_inside_another_word(
    data: st.DataObject, word: str, prefix: str, suffix: str
) -> None:
    assume(prefix or suffix)
    assume(word not in CONTEXT)  # a context word may be the blocked word itself
    longer = prefix + word + suffix
    # "@", "$", "!", "|" and "+" are also punctuation, so they are left out here: "@bad" may be a
    # mention of "bad". Digits, look-alikes, accents, case, spacing and invisible characters are in.
    prompt = data.draw(sentence(data.draw(disguised(longer, symbols=False))))
    assert not refused(prompt, "word", word), prompt


@pytest.mark.parametrize(
    ("prompt", "kind", "pattern", "blocked"),
    [
        ("a z 3 b r 4 crossing", "word", "zebra", True),  # spaced leetspeak after the word "a"
        ("a b 4 d idea", "regex", "bad", True),
        ("a b 4 d idea", "word", "bad", True),
        ("c l a s s i c", "word", "class", False),
        ("c l a s s", "word", "class", True),
        ("a c l a s s i c", "word", "class", False),
        ("classic", "word", "class", False),
        ("a passage", "word", "ass", False),
        ("p a s s a g e", "word", "ass", False),
        ("a RED   Planet", "word", "red planet", True),
        ("a red, planet", "word", "red planet", True),
        ("a redplanet", "word", "red planet", False),
        ("a r e d planet", "regex", r"red\s+planet", True),
        ("the c1ass", "word", "class", True),
        ("ki||ing", "word", "killing", True),
        ("sh!p", "word", "ship", True),
        ("this is bad!", "word", "bad", True),
        ("b4d!", "word", "bad", True),
        ("Straße", "word", "strasse", True),
        ("CAFÉ", "regex", "café", True),  # accents are ignored in patterns too
        ("the m\u043e\u043en", "regex", "m\u043e\u043en", True),
        ("ｂａｄ", "word", "bad", True),
        ("𝐛𝐚𝐝", "word", "bad", True),
        ("b\u200ba\u200dd", "word", "bad", True),
        ("bad\nidea", "word", "bad idea", True),  # a newline still separates words
        ("b4", "word", "b4", True),  # a rule with digits still matches as written
        ("1080p", "word", "1080p", True),
    ],
)
def test_examples(prompt: str, kind: str, pattern: str, blocked: bool) -> None:
    assert refused(prompt, kind, pattern) is blocked


def test_the_lowest_numbered_rule_is_reported_whichever_kind_matches() -> None:
    rules = [PromptRule(7, "word", "moon"), PromptRule(3, "regex", "m[o0]{2}n"), PromptRule(9, "word", "sun")]
    match = CompiledRules(rules).find("sun and m00n")
    assert match is not None and match.rule == rules[1]


def test_a_prompt_too_long_once_normalized_is_refused_as_unchecked() -> None:
    rules = CompiledRules([PromptRule(1, "word", "zebra")])
    huge = "\ufdfa" * 5000  # each becomes 18 letters under NFKC: 90,000 in all
    assert normalize_bounded(huge) is None
    match = rules.find(huge)
    assert match is not None and match.rule is None and "once normalized" in match.describe()
    just_under = "\ufdfa" * (MAX_NORMALIZED_CHARS // 18)
    assert rules.find(just_under) is None
    assert CompiledRules([]).find(huge) is None  # a server without rules checks nothing


def test_many_regex_rules_are_split_when_one_alternation_would_not_fit() -> None:
    # Each of these is large for RE2; a thousand of them cannot be one program within the budget.
    rules = [PromptRule(i, "regex", f"x{i}[a-z]{{40}}y") for i in range(1, 301)]
    rules.append(PromptRule(999, "regex", "needle"))
    compiled = CompiledRules(rules)
    match = compiled.find("a needle in a haystack")
    assert match is not None and match.rule is not None and match.rule.id == 999
    assert compiled.find("x17" + "q" * 40 + "y") is not None


def test_rules_are_validated_when_added() -> None:
    with pytest.raises(RuleError, match="not valid"):
        check_rule("regex", "(a)\\1")
    with pytest.raises(RuleError, match="empty prompt"):
        check_rule("regex", "x*")
    with pytest.raises(RuleError, match="letters or digits"):
        check_rule("word", "!!!")
    assert check_rule("word", "  moon ") == "moon"


SEEDED = """
import json, sys
from bot.core.policy.prompt_rules import CompiledRules, PromptRule
rules = CompiledRules([PromptRule(*r) for r in json.loads(sys.argv[1])])
print(json.dumps([None if (m := rules.find(p)) is None else m.describe() for p in json.loads(sys.argv[2])]))
"""


def test_the_same_prompt_gets_the_same_answer_under_every_hash_seed() -> None:
    rules = [(1, "regex", "bad"), (2, "word", "zebra"), (3, "word", "class"), (4, "regex", r"red\s*planet")]
    prompts = ["a b 4 d idea", "a z 3 b r 4 crossing", "c l a s s i c", "c1a55 act", "r3d p l a n e t"]
    prompts.append("fine")
    answers = set()
    for seed in ("0", "1", "2", "3", "4242"):
        done = subprocess.run(
            [sys.executable, "-c", SEEDED, json.dumps(rules), json.dumps(prompts)],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        answers.add(done.stdout)
    assert len(answers) == 1
    assert json.loads(answers.pop()) == [
        "#1 regex 'bad'",
        "#2 word 'zebra'",
        None,
        "#3 word 'class'",
        "#4 regex 'red\\\\s*planet'",
        None,
    ]
