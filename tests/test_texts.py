"""Texts as data (bot/core/texts.py): a message id and its parameters, rendered only at the edge, in the
reader's language, and stored so that they can be rendered in any language later."""

from __future__ import annotations

import pytest

from bot.core.durations import DurationError, describe_seconds, parse_duration
from bot.core.policy.prompt_rules import RuleError, check_rule
from bot.core.texts import Text, Verbatim, from_stored, msg, plural_msg, render, stored

BUSY = (
    "You already have {count} images in progress (the limit is {limit}). Please wait for one to "
    "finish; see them with /queue."
)


def test_a_text_renders_in_each_readers_language() -> None:
    text = msg("{member} can use the image bot again.", member="<@1>")
    assert "<@1>" in render("en-US", text) and render("en-US", text).endswith("again.")
    assert render("zh-CN", text) != render("en-US", text) and "<@1>" in render("zh-CN", text)
    assert str(text) == render(None, text)  # logs and the terminal read English


def test_nested_texts_follow_the_reader_and_outside_words_never_do() -> None:
    inner = msg("the duration must be longer than zero")
    outer = msg("{member} was not banned: {error}.", member="@x", error=inner)
    assert "时长必须大于零" in outer.render("zh-CN")
    # The image API's words are shown as they came, even when they equal a catalog text.
    verbatim = msg(
        "{member} was not banned: {error}.",
        member="@x",
        error=Verbatim("the duration must be longer than zero"),
    )
    assert "the duration must be longer than zero" in verbatim.render("zh-CN")


def test_plurals_choose_the_form_of_the_readers_language() -> None:
    one = plural_msg("Last day", "Last {count} days", 1)
    seven = plural_msg("Last day", "Last {count} days", 7)
    assert (one.english(), seven.english()) == ("Last day", "Last 7 days")
    assert "7" in seven.render("zh-CN") and seven.render("zh-CN") != seven.english()


def test_a_stored_text_reads_the_same_in_any_language_later() -> None:
    text = msg(
        "That rule was not added: {error}.",
        error=msg("a pattern must be 1 to {most} characters", most=200),
    )
    again = from_stored(stored(text))
    assert again == text
    assert isinstance(again, Text) and again.render("zh-CN") == text.render("zh-CN")
    with_words = msg("{member} was not banned: {error}.", member="@x", error=Verbatim("API says {no}"))
    assert from_stored(stored(with_words)) == with_words


@pytest.mark.parametrize(
    "raw", ["The image service said no.", "{not json", '{"x": 1}', "{}", '{"m": ["list"]}']
)
def test_rows_from_before_texts_were_data_read_as_they_were(raw: str) -> None:
    assert from_stored(raw) == Verbatim(raw)


def test_durations_and_their_errors_speak_the_moderators_language() -> None:
    assert describe_seconds(90_000) == "1 day 1 h"
    assert describe_seconds(2 * 604_800 + 60) == "2 weeks 1 min"
    assert describe_seconds(90_000, "zh-CN") == "1 天 1 小时"
    with pytest.raises(DurationError) as caught:
        parse_duration("5 fortnights")
    assert "`fortnights`" in caught.value.text.render("zh-CN") and "不是" in caught.value.text.render("zh-CN")


def test_rule_errors_speak_the_moderators_language() -> None:
    with pytest.raises(RuleError) as caught:
        check_rule("regex", "(a)\\1")
    zh = caught.value.text.render("zh-CN")
    assert "正则表达式无效" in zh and "not valid" in str(caught.value)


def test_a_plural_text_without_a_count_is_a_bug_caught_at_once() -> None:
    broken = Text(BUSY, (("limit", 2),), BUSY)
    with pytest.raises(AssertionError):
        broken.render("en")
