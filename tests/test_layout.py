"""The package boundaries hold: commands depend on the adapter and the core, never the other way.

- nothing in `bot/` imports `cogs` (no import cycle between the packages);
- below `bot/`, only the Discord adapter (`bot/discord/`) and the places that start the bot
  (`bot/app.py`, the bot class; `bot/__main__.py`, the entry point that reports Discord's login
  errors) import discord.py: the core (API client, store, runner, policies, messages) stays free of it;
- every module of `cogs/` is a command cog: it has `async def setup(bot)` and is loaded by the bot.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bot.app import EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
DISCORD_ALLOWED = {"bot/app.py", "bot/__main__.py"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function, absolute names only."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top_level(name: str) -> str:
    return name.split(".", 1)[0]


def modules_under(folder: str) -> list[Path]:
    found = sorted((ROOT / folder).rglob("*.py"))
    assert found, f"no modules found under {folder}/"
    return found


def test_nothing_in_bot_imports_cogs() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imported_modules(path) if top_level(n) == "cogs")
        for path in modules_under("bot")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_only_the_discord_adapter_imports_discord() -> None:
    offenders: dict[str, list[str]] = {}
    for path in modules_under("bot"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("bot/discord/") or relative in DISCORD_ALLOWED:
            continue
        names = sorted(n for n in imported_modules(path) if top_level(n) == "discord")
        if names:
            offenders[relative] = names
    assert offenders == {}


def test_the_adapter_package_is_the_one_importing_discord() -> None:
    """The check above would pass vacuously if the adapter moved away: it must really use discord.py."""
    adapter = modules_under("bot/discord")
    assert any("discord" in {top_level(n) for n in imported_modules(p)} for p in adapter)


def test_cogs_hold_only_commands() -> None:
    cogs = [p for p in modules_under("cogs") if p.name != "__init__.py"]
    for path in cogs:
        tree = ast.parse(path.read_text(), filename=str(path))
        setups = [n for n in tree.body if isinstance(n, ast.AsyncFunctionDef) and n.name == "setup"]
        assert setups, f"{path.name} has no `async def setup(bot)`: only cogs belong in cogs/"
    assert sorted(f"cogs.{p.stem}" for p in cogs) == sorted(EXTENSIONS)


def test_no_module_of_cogs_imports_another_cog() -> None:
    """Shared helpers live in bot/discord/; a cog importing another cog would bring them back."""
    for path in modules_under("cogs"):
        names = [n for n in imported_modules(path) if top_level(n) == "cogs"]
        assert names == [], f"{path.name} imports {names}"


# What commands, buttons and the sink may ask the store directly: reads only. Writes that are job
# events (cancel, delete, refusals, mod-log) go through the JobRunner; the admin cogs' settings writes
# are the documented exception (cogs/admin_*.py).
STORE_READS = {
    "get_job",
    "guild_policy",
    "delivered_history",
    "unfinished_jobs",
    "usage_summary",
    "personal_usage_summary",
    "role_quotas",
    "quota_overview",
    "rules",
    "bans",
    "stats",
    "styles",
    "style",
    "request_defaults",
    "member_settings",
}
# A member's own /settings are theirs to write, not a job event: the one write a member command makes.
MEMBER_WRITES = {"cogs/settings.py": {"save_member_settings"}}


def store_calls(path: Path) -> set[str]:
    """Names of methods called on anything named `store` (`bot.store.x()`, `self.bot.store.x()`)."""
    called: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            named_store = (isinstance(owner, ast.Attribute) and owner.attr == "store") or (
                isinstance(owner, ast.Name) and owner.id == "store"
            )
            if named_store:
                called.add(node.func.attr)
    return called


def test_commands_buttons_and_the_sink_only_read_the_store() -> None:
    paths = [p for p in modules_under("cogs") if not p.name.startswith("admin_")]
    paths += modules_under("bot/discord")
    writes = {
        (name := str(p.relative_to(ROOT))): sorted(
            store_calls(p) - STORE_READS - MEMBER_WRITES.get(name, set())
        )
        for p in paths
    }
    assert {path: names for path, names in writes.items() if names} == {}
    assert store_calls(ROOT / "bot/discord/views.py") >= {"get_job"}  # the walk does see these calls
