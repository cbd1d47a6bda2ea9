"""What an operator reads and types matches what the program does: data/README.md's backup command,
git ignoring where the README's examples write, and `--help` naming the program as it was run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_data_readme_backs_up_with_the_bots_own_command() -> None:
    text = (ROOT / "data" / "README.md").read_text()
    assert "python -m bot backup " in text
    assert "sqlite3 " not in text  # the image has no sqlite3 tool


def test_git_ignores_where_the_examples_write() -> None:
    paths = ["backups/bot-2025-01-31.db", "images/harbour.png", "imagine-20250131-120000.png", "data/bot.db"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert sorted(result.stdout.split()) == sorted(paths), result


def test_help_names_the_program_as_it_was_run(tmp_path: Path) -> None:
    # What pip installs as `imagine-bot`: a script of that name calling bot.ops.cli:main.
    script = tmp_path / "imagine-bot"
    script.write_text("import sys\nfrom bot.ops.cli import main\nsys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command, name in (([str(script)], "imagine-bot"), (["-m", "bot"], "python -m bot")):
        for args in (["--help"], ["imagine", "--help"]):
            shown = subprocess.run(
                [sys.executable, *command, *args],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert shown.startswith(f"usage: {name} "), shown[:80]
        error = subprocess.run(
            [sys.executable, *command, "ban", "x"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert error.returncode == 2 and error.stderr.startswith(f"{name} ban: "), error.stderr
