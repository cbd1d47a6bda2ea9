"""The settings are declared once (bot/ops/config.py): every one with its type, default, bounds and
help; the configuration reference and .env.example are generated from the declaration and current;
the declaration is a leaf that builds nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from bot.adapters.media import PIXEL_CEILING
from bot.ops import settings_doc
from bot.ops.config import Settings
from bot.ops.setting_fields import extra, kind, requirement, variable

ROOT = Path(__file__).resolve().parents[1]


def test_reference_and_example_are_generated_from_the_declaration() -> None:
    """If this fails after a change to bot/ops/config.py, run `make settings-doc` and commit."""
    for path, text in settings_doc.outputs().items():
        assert (ROOT / path).read_text(encoding="utf-8") == text, f"{path} is out of date: make settings-doc"
    check = subprocess.run(
        [sys.executable, "-m", "bot.ops.settings_doc", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "settings-doc:" in (ROOT / "Makefile").read_text()


def test_every_setting_has_a_variable_group_help_and_numbers_have_bounds() -> None:
    names = set()
    for field in Settings.model_fields.values():
        name = variable(field)
        assert name.isupper() and name not in names, name
        names.add(name)
        assert extra(field).get("group") and (field.description or "").endswith("."), name
        if kind(field) in ("number", "whole number") and "allowed" not in extra(field):
            words = requirement(field)
            assert "or more" in words or "more than" in words or "from" in words, name
            assert "at most" in words or " to " in words or name == "SHARD_COUNT", name


def test_the_reference_and_example_name_every_setting() -> None:
    reference, example = settings_doc.reference(), settings_doc.example()
    for field in Settings.model_fields.values():
        name = variable(field)
        assert f"| `{name}` |" in reference
        assert f"\n# {name}=" in example or f"\n{name}=\n" in example, name


def test_the_example_sets_nothing_but_what_must_be_filled_in() -> None:
    """Issue 19, item 1: an unchanged copy of .env.example leaves every setting at its default."""
    assigned = [
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert assigned == [["DISCORD_TOKEN", ""], ["MOUNTSEA_API_KEY", ""], ["POSTGRES_PASSWORD", ""]]


def test_the_megapixel_bound_is_the_decoder_s_ceiling() -> None:
    field = Settings.model_fields["max_result_megapixels"]
    assert f"at most {PIXEL_CEILING // 1_000_000}" in requirement(field)


def test_the_settings_are_a_leaf() -> None:
    """config.py describes values and builds nothing: no API client, schedule, fetching or store."""
    tree = ast.parse((ROOT / "bot/ops/config.py").read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bot")
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.startswith("bot")
    }
    # The pure parser of RESULT_HOSTS entries, and the words for a declared setting.
    assert imported <= {"bot.core.origins", "bot.ops.setting_fields"}, imported
