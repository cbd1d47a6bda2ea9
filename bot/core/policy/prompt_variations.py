"""Prompt variations: `a {red, blue} car in {rain, snow}` is four prompts, one per combination.

Braces hold alternatives separated by commas; braces nest (`a {cat, dog {in a hat, on a bike}}` is three
prompts) and `\\{`, `\\}` and `\\,` stand for the characters themselves. Outside braces a comma is plain
text. A prompt is parsed once into a small tree; the number of prompts it makes is computed on that tree
without expanding it (10,000 combinations are refused in microseconds), and the prompts are produced one
by one in reading order only once the number is known to be allowed.

Bad braces are refused with a text that says where: a brace that does not close, a closing brace with
no opening one, an empty alternative (`{red,,blue}`), or a group with one alternative only (`{red}`,
most likely a typo; write the word without braces).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product

from bot.core.texts import Text, msg, plural_msg

# Nesting deeper than this is refused rather than parsed: no prompt needs it, and recursion stays bounded.
MAX_DEPTH = 8
ESCAPABLE = frozenset("{},\\")


class VariationError(ValueError):
    """Braces that cannot be read; `text` says what and where, in the member's language."""

    def __init__(self, text: Text) -> None:
        super().__init__(text)
        self.text = text


# A prompt is a sequence of parts; a part is plain text or a group of alternatives, each a sequence.
Sequence_ = tuple["str | Group", ...]


@dataclass(frozen=True)
class Group:
    alternatives: tuple[Sequence_, ...]


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ESCAPABLE:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, prompt: str) -> None:
        self.text = prompt
        self.at = 0

    def sequence(self, depth: int) -> Sequence_:
        """Parts up to the end, or (inside a group) up to an unescaped `,` or `}`."""
        parts: list[str | Group] = []
        start = self.at
        while self.at < len(self.text):
            ch = self.text[self.at]
            if ch == "\\" and self.at + 1 < len(self.text) and self.text[self.at + 1] in ESCAPABLE:
                self.at += 2
                continue
            if ch == "{":
                if self.at > start:
                    parts.append(_unescape(self.text[start : self.at]))
                parts.append(self.group(depth + 1))
                start = self.at
                continue
            if ch == "}" and depth == 0:
                raise VariationError(
                    msg(
                        "The prompt has a {closing} with no {opening} before it (at character {at}).",
                        closing="`}`",
                        opening="`{`",
                        at=self.at + 1,
                    )
                )
            if ch in ",}" and depth > 0:
                break
            self.at += 1
        if self.at > start:
            parts.append(_unescape(self.text[start : self.at]))
        return tuple(parts)

    def group(self, depth: int) -> Group:
        opened = self.at
        if depth > MAX_DEPTH:
            raise VariationError(msg("The prompt nests braces more than {most} deep.", most=MAX_DEPTH))
        self.at += 1  # the `{`
        alternatives: list[Sequence_] = []
        while True:
            alternative = self.sequence(depth)
            if not "".join(p for p in alternative if isinstance(p, str)).strip() and not any(
                isinstance(p, Group) for p in alternative
            ):
                raise VariationError(
                    msg(
                        "The braces at character {at} hold an empty choice; write each choice between "
                        "commas, like {example}.",
                        at=opened + 1,
                        example="`{red, blue}`",
                    )
                )
            alternatives.append(alternative)
            if self.at >= len(self.text):
                raise VariationError(
                    msg("The {brace} at character {at} is never closed.", brace="`{`", at=opened + 1)
                )
            if self.text[self.at] == "}":
                self.at += 1
                break
            self.at += 1  # the `,`
        if len(alternatives) == 1:
            raise VariationError(
                msg(
                    "The braces at character {at} hold only one choice; separate choices with commas, "
                    "like {example}, or leave the braces out.",
                    at=opened + 1,
                    example="`{red, blue}`",
                )
            )
        return Group(tuple(_trim(a) for a in alternatives))


def _trim(alternative: Sequence_) -> Sequence_:
    """`{red, blue}`: the spaces after a comma and before a brace belong to the syntax, not the choice."""
    parts = list(alternative)
    if parts and isinstance(parts[0], str):
        parts[0] = parts[0].lstrip()
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip()
    return tuple(p for p in parts if p != "")


def parse(prompt: str) -> Sequence_:
    """The prompt as a tree of text and groups; VariationError for braces that cannot be read."""
    return _Parser(prompt).sequence(0)


def count(tree: Sequence_) -> int:
    """How many prompts the tree makes, without making them."""
    total = 1
    for part in tree:
        if isinstance(part, Group):
            total *= sum(count(alternative) for alternative in part.alternatives)
    return total


def expand(tree: Sequence_) -> Iterator[str]:
    """Every prompt, in reading order (the first group varies slowest)."""
    choices: list[list[str]] = []
    for part in tree:
        if isinstance(part, Group):
            choices.append([text for alternative in part.alternatives for text in expand(alternative)])
        else:
            choices.append([part])
    for combination in product(*choices):
        yield "".join(combination)


def has_variations(prompt: str) -> bool:
    """Whether the prompt uses braces at all (an escaped brace is plain text)."""
    escaped = False
    for ch in prompt:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "{}":
            return True
    return False


def literal_prompt(prompt: str) -> str:
    """A prompt whose braces are all escaped (`a \\{b\\}`) as it is sent: one prompt, the escapes resolved.
    A prompt with no brace at all is returned unchanged (its backslashes mean what they meant before),
    and so is one with variations (those go through `variations`)."""
    if ("{" not in prompt and "}" not in prompt) or has_variations(prompt):
        return prompt
    return _unescape(prompt)


@dataclass(frozen=True)
class Variations:
    prompts: tuple[str, ...]


def variations(prompt: str, *, images_each: int, most_images: int) -> Variations:
    """The prompts a request makes, refused before any is expanded when combinations times images per
    prompt exceed the server's per-request limit (the text names both numbers)."""
    tree = parse(prompt)
    combinations = count(tree)
    if combinations * images_each > most_images:
        raise VariationError(
            plural_msg(
                "This prompt makes {combinations} prompts × 1 image = {total} images, and this server "
                "allows at most {most} images per request. Use fewer choices.",
                "This prompt makes {combinations} prompts × {count} images = {total} images, and this "
                "server allows at most {most} images per request. Use fewer choices or a smaller count.",
                images_each,
                combinations=combinations,
                total=combinations * images_each,
                most=most_images,
            )
        )
    return Variations(tuple(expand(tree)))
