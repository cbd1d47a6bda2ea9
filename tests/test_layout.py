"""The package boundaries hold (docs/ARCHITECTURE.md): each room imports only the rooms below it.

- `bot/core/` (requests, policy, runner, schedule) imports no other room of the bot and no I/O library:
  no discord, aiohttp.web, database driver, or the operations package;
- `bot/adapters/` (image API, store, safe fetching, media) imports the core, never Discord or operations;
- only the Discord adapter (`bot/discord/`) and `cogs/` import discord.py;
- nothing in `bot/` imports `cogs`, and `sandbox/` imports nothing of the bot's Discord side;
- every module of `cogs/` is a command cog: it has `async def setup(bot)` and is loaded by the bot;
- no two modules of the project share a file name.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bot.discord.client import EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
# What each room of `bot/` may import of the bot's own rooms.
ALLOWED_ROOMS = {
    "core": {"core"},
    "adapters": {"core", "adapters"},
    "discord": {"core", "adapters", "discord", "ops", "web"},
    "ops": {"core", "adapters", "ops", "discord", "web"},
    # The web gallery reads the store and the settings; it never imports discord.py.
    "web": {"core", "adapters", "ops", "web"},
}
# Imports across the rooms' boundaries that the package move of issue 17 found. The runner split (ports),
# the image contract, the image file and the usage records moved into the core emptied it: it stays
# empty, and a new crossing fails the test.
KNOWN_CROSSINGS: dict[str, list[str]] = {}
# Libraries the core must not import: it is the same code behind Discord, the terminal and the web.
CORE_FORBIDDEN = {"discord", "psycopg", "psycopg_pool", "sqlite3", "sqlite_utils", "sqlalchemy", "alembic"}


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
        if relative.startswith("bot/discord/"):
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
    "jobs.get",
    "settings.guild_policy",
    "jobs.unfinished",
    "usage.summary",
    "personal.summary",
    "settings.role_quotas",
    "ops.quota_overview",
    "settings.rules",
    "settings.bans",
    "usage.stats",
    "styles.all",
    "styles.get",
    "styles.request_defaults",
    "styles.member_settings",
    "deliveries.of",
    "deliveries.of_jobs",
    "deliveries.message",
    "jobs.of_request",
    "jobs.delivered_requests",
}
# A member's own /settings are theirs to write, not a job event: the one write a member command makes.
# The sink writes its own ledger: the intent before each send and what became of it (and the count of
# interaction follow-ups, taken before one is sent).
MEMBER_WRITES = {
    "cogs/settings.py": {"styles.save_member_settings"},
    "bot/discord/sink.py": {"deliveries.intend", "deliveries.settle", "jobs.use_followup"},
    "bot/discord/delivery_routes.py": {"jobs.use_followup"},
    # A request's message: the claim that serialises its edits, and the same ledger per image.
    "bot/discord/request_message.py": {
        "deliveries.claim_message",
        "deliveries.release_message",
        "deliveries.intend",
        "deliveries.settle",
    },
}


def _named_store(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "store") or (
        isinstance(node, ast.Name) and node.id == "store"
    )


def store_calls(path: Path) -> set[str]:
    """Intents called on anything named `store`, as `repository.method` (`bot.store.jobs.get()`), or
    `method` for the store itself (`store.close()`)."""
    called: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if _named_store(owner):
                called.add(node.func.attr)
            elif isinstance(owner, ast.Attribute) and _named_store(owner.value):
                called.add(f"{owner.attr}.{node.func.attr}")
    return called


def test_commands_buttons_and_the_sink_only_read_the_store() -> None:
    paths = [p for p in modules_under("cogs") if not p.name.startswith("admin_")]
    # The bot class (client.py) opens, checks and closes the store it owns: not a command or a button.
    paths += [p for p in modules_under("bot/discord") if p.name != "client.py"]
    writes = {
        (name := str(p.relative_to(ROOT))): sorted(
            store_calls(p) - STORE_READS - MEMBER_WRITES.get(name, set())
        )
        for p in paths
    }
    assert {path: names for path, names in writes.items() if names} == {}
    assert store_calls(ROOT / "bot/discord/views.py") >= {"jobs.get"}  # the walk does see these calls


def room_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "bot" else None


def test_each_room_imports_only_the_rooms_below_it() -> None:
    offenders: dict[str, list[str]] = {}
    for room, allowed in ALLOWED_ROOMS.items():
        for path in modules_under(f"bot/{room}"):
            bad = sorted(
                n for n in imported_modules(path) if (r := room_of(n)) is not None and r not in allowed
            )
            relative = path.relative_to(ROOT).as_posix()
            if bad and bad != KNOWN_CROSSINGS.get(relative):
                offenders[relative] = bad
    assert offenders == {}


def test_the_core_imports_no_io_library() -> None:
    offenders: dict[str, list[str]] = {}
    for path in modules_under("bot/core"):
        names = imported_modules(path)
        bad = sorted(n for n in names if top_level(n) in CORE_FORBIDDEN or n.startswith("aiohttp.web"))
        if bad:
            offenders[path.relative_to(ROOT).as_posix()] = bad
    assert offenders == {}


def test_the_sandbox_stands_apart_from_the_bot() -> None:
    for path in modules_under("sandbox"):
        bad = [
            n
            for n in imported_modules(path)
            if top_level(n) in {"discord", "cogs"} or room_of(n) in {"discord", "ops"}
        ]
        assert bad == [], f"{path.name} imports {bad}"


def test_no_two_modules_share_a_name() -> None:
    seen: dict[str, list[str]] = {}
    for folder in ("bot", "cogs", "sandbox", "testing", "bench"):
        for path in modules_under(folder):
            if path.name in {"__init__.py", "__main__.py"}:
                continue
            seen.setdefault(path.stem, []).append(path.relative_to(ROOT).as_posix())
    assert {name: places for name, places in seen.items() if len(places) > 1} == {}


def project_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in ("bot", "cogs", "sandbox"):
        for path in modules_under(folder):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at the top, in functions or under TYPE_CHECKING."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_circle_anywhere_type_checking_included() -> None:
    """An import circle, even one only the type checker follows, ties two rooms into one; where an
    adapter needs the bot it types against a base or a Protocol (bot/discord/bot_base.py)."""
    graph = import_graph()
    circles: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            circles.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert circles == []
    assert "bot.discord.client" in graph["bot.discord.launch"]  # the walk does see the imports
