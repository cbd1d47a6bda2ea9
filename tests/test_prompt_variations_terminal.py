"""`python -m bot imagine` with prompt variations (issue 20): the expanded prompts are printed and made only
once confirmed (or with --yes), each into its own file; refusals and a "no" send nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from bot.ops.terminal_variations import prompt_out, run_imagine_variations
from sandbox.server import Sandbox
from tests.test_cli import cli_settings, finish, start_cli, submits

PNG = b"\x89PNG\r\n\x1a\n"


class Terminal(io.StringIO):
    """Standard input as a terminal the operator types `answer` into."""

    def isatty(self) -> bool:
        return True


async def imagine(
    sandbox: Sandbox, tmp_path: Path, prompt: str, stdin: io.StringIO | None = None, **options: Any
) -> tuple[int, str, str]:
    stream, stdout = io.StringIO(), io.StringIO()
    code = await run_imagine_variations(
        cli_settings(sandbox, tmp_path),
        prompt,
        None,
        [],
        tmp_path / "fox.png",
        stream=stream,
        stdout=stdout,
        stdin=stdin or io.StringIO(),
        **options,
    )
    return code, stream.getvalue(), stdout.getvalue()


def sent_prompts(sandbox: Sandbox) -> list[str]:
    return [r.json["prompt"] for r in sandbox.requests if r.method == "POST"]


def test_each_prompt_has_its_own_file() -> None:
    assert prompt_out(Path("out/car.png"), 0) == Path("out/car-p1.png")
    assert prompt_out(Path("car"), 2) == Path("car-p3")  # the image's own extension is added later


async def test_yes_makes_each_expanded_prompt_into_its_own_file(sandbox: Sandbox, tmp_path: Path) -> None:
    code, said, stdout = await imagine(sandbox, tmp_path, "a {red, blue} fox", yes=True)
    assert code == 0, said
    assert "1. a red fox" in said and "2. a blue fox" in said
    assert sorted(sent_prompts(sandbox)) == ["a blue fox", "a red fox"]
    made = [tmp_path / "fox-p1.png", tmp_path / "fox-p2.png"]
    assert all(path.read_bytes().startswith(PNG) for path in made)
    assert stdout.split() == [str(path) for path in made]


async def test_it_asks_first_and_a_no_sends_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    code, said, _ = await imagine(sandbox, tmp_path, "a {red, blue} fox", stdin=Terminal("n\n"))
    assert code == 2 and "[y/N]" in said and "nothing was sent" in said
    # No terminal to ask on and no --yes: nothing is sent unasked.
    code, said, _ = await imagine(sandbox, tmp_path, "a {red, blue} fox", stdin=io.StringIO("y\n"))
    assert code == 2 and "--yes" in said
    assert submits(sandbox) == 0
    code, said, _ = await imagine(sandbox, tmp_path, "a {red, blue} fox", stdin=Terminal("y\n"))
    assert code == 0, said
    assert sorted(sent_prompts(sandbox)) == ["a blue fox", "a red fox"]


async def test_refusals_send_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    code, said, _ = await imagine(sandbox, tmp_path, "a {red, blue, green} fox {day, night}", yes=True)
    assert code == 2 and "6 prompts" in said and "at most 4 images" in said
    code, said, _ = await imagine(sandbox, tmp_path, "a {red, blue fox", yes=True)
    assert code == 2 and "never closed" in said
    code, said, _ = await imagine(sandbox, tmp_path, "{" + "x" * 5001 + ", a fox}", yes=True)
    assert code == 2 and "the limit is 5,000" in said
    # The second prompt's file exists: refused before the first prompt is sent (and billed).
    (tmp_path / "fox-p2.png").write_bytes(b"yesterday")
    code, said, _ = await imagine(sandbox, tmp_path, "a {red, blue} fox", yes=True)
    assert code == 2 and "fox-p2.png" in said and "--force" in said
    assert submits(sandbox) == 0


async def test_escaped_braces_are_sent_literally_without_asking(sandbox: Sandbox, tmp_path: Path) -> None:
    code, said, _ = await imagine(sandbox, tmp_path, r"a sign saying \{open\}")
    assert code == 0, said
    assert sent_prompts(sandbox) == ["a sign saying {open}"]
    assert (tmp_path / "fox.png").read_bytes().startswith(PNG)


async def test_the_command_line_takes_yes(sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "car.png"
    process = await start_cli(sandbox, tmp_path, "a {red, blue} car", "--yes", "--out", str(out))
    code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert stdout.split() == [str(tmp_path / "car-p1.png"), str(tmp_path / "car-p2.png")]


async def test_count_gives_each_prompt_its_images(sandbox: Sandbox, tmp_path: Path) -> None:
    code, said, _ = await imagine(sandbox, tmp_path, "a {red, blue} fox", yes=True, count=2)
    assert code == 0, said
    assert "2 prompts of 2 images each, 4 images in all" in said
    assert sorted(sent_prompts(sandbox)) == ["a blue fox", "a blue fox", "a red fox", "a red fox"]
    names = ["fox-p1.png", "fox-p1-2.png", "fox-p2.png", "fox-p2-2.png"]
    assert all((tmp_path / name).read_bytes().startswith(PNG) for name in names)
    code, said, _ = await imagine(sandbox, tmp_path, "a {red, blue} fox", yes=True, count=3, force=True)
    assert code == 2 and "2 prompts × 3 images = 6 images" in said
