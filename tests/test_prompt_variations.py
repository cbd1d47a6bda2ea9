"""Prompt variations (issue 20): braces expand into one prompt per combination, nested and escaped braces
are handled, bad braces and too many combinations are refused without expanding anything."""

from __future__ import annotations

import time

import pytest

from bot.core.policy.prompt_variations import (
    VariationError,
    count,
    expand,
    has_variations,
    literal_prompt,
    parse,
    variations,
)


def prompts(text: str) -> list[str]:
    return list(expand(parse(text)))


def test_each_combination_is_one_prompt_in_reading_order() -> None:
    assert prompts("a {red, blue} car in {rain, snow}") == [
        "a red car in rain",
        "a red car in snow",
        "a blue car in rain",
        "a blue car in snow",
    ]


def test_braces_nest_and_escapes_stand_for_themselves() -> None:
    assert prompts("a {cat, dog {in a hat, on a bike}}") == ["a cat", "a dog in a hat", "a dog on a bike"]
    assert prompts(r"a \{literal\} brace, and a {red\, bright, blue} car") == [
        "a {literal} brace, and a red, bright car",
        "a {literal} brace, and a blue car",
    ]
    assert not has_variations(r"a \{literal\} brace") and has_variations("a {b, c}")


def test_a_prompt_without_braces_is_itself() -> None:
    assert prompts("a lighthouse at dusk, oil painting") == ["a lighthouse at dusk, oil painting"]
    assert prompts("中文提示词，没有括号") == ["中文提示词，没有括号"]


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("a {red, blue car", "never closed"),
        ("a red} car", "with no"),
        ("a {red,, blue} car", "empty choice"),
        ("a {red, } car", "empty choice"),
        ("a {red} car", "only one choice"),
        ("{" * 12 + "a, b" + "}" * 12, "more than"),
    ],
)
def test_bad_braces_are_refused_with_a_clear_reason(prompt: str, words: str) -> None:
    with pytest.raises(VariationError) as caught:
        parse(prompt)
    assert words in str(caught.value)
    assert caught.value.text.render("zh-CN")  # the member reads it in their language


def test_ten_thousand_combinations_are_counted_not_expanded() -> None:
    prompt = " ".join("{" + ", ".join(f"w{g}x{i}" for i in range(10)) + "}" for g in range(4))
    started = time.perf_counter()
    assert count(parse(prompt)) == 10_000
    with pytest.raises(VariationError) as caught:
        variations(prompt, images_each=1, most_images=4)
    assert time.perf_counter() - started < 1.0  # 10,000 prompts were never made
    english = str(caught.value)
    assert "10000" in english and "at most 4" in english


def test_combinations_times_count_may_not_exceed_the_server_limit() -> None:
    assert variations("a {red, blue} car", images_each=2, most_images=4).prompts == (
        "a red car",
        "a blue car",
    )
    with pytest.raises(VariationError) as caught:
        variations("a {red, blue} car", images_each=3, most_images=4)
    assert "2 prompts × 3 images = 6 images" in str(caught.value)


def test_huge_nesting_counts_exactly() -> None:
    prompt = "{a, b {c, d {e, f}}} {g, h}"
    assert count(parse(prompt)) == len(prompts(prompt)) == 8


def test_a_prompt_with_only_escaped_braces_is_sent_with_the_braces_themselves() -> None:
    assert literal_prompt(r"a sign saying \{open\}, a \\ slash") == r"a sign saying {open}, a \ slash"
    # No brace at all: exactly as before, backslashes included.
    assert literal_prompt(r"C:\path\, a \\ b") == r"C:\path\, a \\ b"
    # Variations are not literal: they go through the preview.
    assert literal_prompt("a {red, blue} car") == "a {red, blue} car"
