"""`python -m bot imagine` with prompt variations: `"a {red, blue} car"` expands into one prompt per
combination, printed before anything is sent, and made only once the operator confirms (or passes
`--yes`). Each prompt is its own request, written to its own file (`--out car.png`: car-p1.png,
car-p2.png, …). Everything that can be checked is checked for every prompt before the first is sent
(it is billed): the braces, the number of images, each prompt's length, each file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from bot.core.policy.prompt_variations import VariationError, has_variations, literal_prompt, variations
from bot.core.policy.quotas import MAX_COUNT
from bot.core.policy.validation import InputRefused, validate_request
from bot.core.texts import render
from bot.ops.config import Settings
from bot.ops.output_file import database_files
from bot.ops.terminal_imagine import STDOUT, Output, default_out, run_imagine

YES = ("y", "yes")


def prompt_out(out: Path, index: int) -> Path:
    """Where the `index`-th prompt's image goes (0-based): NAME-p1.png, NAME-p2.png, …"""
    stem, suffix = (out.name[: -len(out.suffix)], out.suffix) if out.suffix else (out.name, "")
    return out.with_name(f"{stem}-p{index + 1}{suffix}")


async def run_imagine_variations(
    settings: Settings,
    prompt: str,
    aspect_ratio: str | None,
    refs: list[str],
    out: Path | None,
    *,
    force: bool = False,
    yes: bool = False,
    count: int = 1,
    stream: TextIO = sys.stderr,
    stdout: TextIO = sys.stdout,
    stdin: TextIO = sys.stdin,
) -> int:
    """`run_imagine` for each expanded prompt, after the operator confirms. A prompt without
    variations is `run_imagine` itself (escaped braces resolved). Exit code: the worst of the prompts'
    (0 all written, 1 one failed, 2 bad input or not confirmed: then nothing was sent)."""
    if not has_variations(prompt):
        return await run_imagine(
            settings,
            literal_prompt(prompt),
            aspect_ratio,
            refs,
            out,
            force=force,
            count=count,
            stream=stream,
            stdout=stdout,
        )
    try:
        # No server here: the only limit is the most one request may make anywhere.
        prompts = variations(prompt, images_each=count, most_images=MAX_COUNT).prompts
    except VariationError as refusal:
        print(render(None, refusal.text), file=stream)
        return 2
    for each in prompts:
        try:
            validate_request(each, aspect_ratio, [], max_attachment_bytes=settings.max_attachment_bytes)
        except InputRefused as refusal:
            print(f"the prompt {each[:80]!r}: {render(None, refusal.text)}", file=stream)
            return 2
    if out is not None and str(out) == STDOUT:
        print(f"--out - takes one image, and this prompt makes {len(prompts)}: name a file", file=stream)
        return 2
    base = out or default_out()
    outs = [prompt_out(base, i) for i in range(len(prompts))]
    protected = database_files(None if settings.database_url else settings.database_path)
    for target in outs:
        problem = await asyncio.to_thread(Output(target, force=force, protected=protected).problem, count)
        if problem is not None:
            print(problem, file=stream)
            return 2
    images = len(prompts) * count
    each_says = f" of {count} images each" if count > 1 else ""
    print(f"This prompt makes {len(prompts)} prompts{each_says}, {images} images in all:", file=stream)
    for i, (each, target) in enumerate(zip(prompts, outs, strict=True), 1):
        print(f"  {i}. {each}  ->  {target}", file=stream)
    if not yes and not await _confirmed(images, stream, stdin):
        return 2
    codes = []
    for each, target in zip(prompts, outs, strict=True):
        codes.append(
            await run_imagine(
                settings,
                each,
                aspect_ratio,
                refs,
                target,
                force=force,
                count=count,
                stream=stream,
                stdout=stdout,
            )
        )
    return max(codes)


async def _confirmed(images: int, stream: TextIO, stdin: TextIO) -> bool:
    """The operator's yes; without a terminal to ask on, a clear no (nothing is sent unasked)."""
    if not stdin.isatty():
        print("nothing was sent: pass --yes to make them without being asked", file=stream)
        return False
    print(f"Make these {images} images (each is billed)? [y/N] ", end="", file=stream, flush=True)
    answer = await asyncio.to_thread(stdin.readline)
    if answer.strip().lower() in YES:
        return True
    print("nothing was sent", file=stream)
    return False
