"""The server settings and moderation repository: guild policy, role and member limits, credits, bans,
prompt rules. Every change is written together with its admin-log entry, in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.adapters.store.admin_log import log_admin_change
from bot.adapters.store.interface import Backend, Session
from bot.adapters.store.repository import Repository, call
from bot.adapters.store.usage_repo import POLICY_COLUMNS, read_policy
from bot.adapters.store.usage_repo import count_limit as usage_count_limit
from bot.core.policy.prompt_rules import MAX_RULES, PromptRule, RuleError
from bot.core.policy.quotas import GuildPolicy, day_bounds
from bot.core.texts import msg
from bot.core.usage_records import BanEntry


@dataclass(frozen=True)
class AdminEntry:
    id: int
    guild_id: int
    actor_id: int
    action: str
    target: str | None
    details: dict[str, Any]
    created_at: float


def update_policy(s: Session, /, guild_id: int, actor_id: int, now: float, **changes: Any) -> None:
    """Change guild settings (columns of GuildPolicy); None resets a setting to its default."""
    unknown = set(changes) - set(POLICY_COLUMNS)
    if unknown:
        raise ValueError(f"unknown guild settings: {', '.join(sorted(unknown))}")
    with s.write() as tx:
        tx.execute(
            "INSERT INTO guild_settings (guild_id) VALUES (:guild) ON CONFLICT DO NOTHING",
            {"guild": guild_id},
        )
        assignments = ", ".join(f"{column} = :{column}" for column in changes)
        tx.execute(
            f"UPDATE guild_settings SET {assignments} WHERE guild_id = :guild", {**changes, "guild": guild_id}
        )
        log_admin_change(tx, guild_id, actor_id, "policy", None, changes, now)


def set_role_quota(
    s: Session, guild_id: int, role_id: int, limit: int | None, actor_id: int, now: float
) -> None:
    """A role's daily limit; None removes the role's own limit."""
    with s.write() as tx:
        row = {"guild": guild_id, "role": role_id, "limit": limit}
        if limit is None:
            tx.execute("DELETE FROM role_quotas WHERE guild_id = :guild AND role_id = :role", row)
        else:
            tx.execute(
                "INSERT INTO role_quotas (guild_id, role_id, daily_limit) VALUES (:guild, :role, :limit)"
                " ON CONFLICT (guild_id, role_id) DO UPDATE SET daily_limit = excluded.daily_limit",
                row,
            )
        log_admin_change(tx, guild_id, actor_id, "quota_role", f"role:{role_id}", {"limit": limit}, now)


def role_quotas(s: Session, guild_id: int) -> dict[int, int]:
    rows = s.rows("SELECT role_id, daily_limit FROM role_quotas WHERE guild_id = :guild", {"guild": guild_id})
    return {int(r): int(limit) for r, limit in rows}


def set_role_count_limit(
    s: Session, guild_id: int, role_id: int, limit: int | None, actor_id: int, now: float
) -> None:
    """The most images one request of a role's members may ask for; None removes the role's own."""
    with s.write() as tx:
        row = {"guild": guild_id, "role": role_id, "limit": limit}
        if limit is None:
            tx.execute("DELETE FROM role_count_limits WHERE guild_id = :guild AND role_id = :role", row)
        else:
            tx.execute(
                "INSERT INTO role_count_limits (guild_id, role_id, count_limit)"
                " VALUES (:guild, :role, :limit)"
                " ON CONFLICT (guild_id, role_id) DO UPDATE SET count_limit = excluded.count_limit",
                row,
            )
        log_admin_change(tx, guild_id, actor_id, "count_limit_role", f"role:{role_id}", {"limit": limit}, now)


def role_count_limits(s: Session, guild_id: int) -> dict[int, int]:
    rows = s.rows(
        "SELECT role_id, count_limit FROM role_count_limits WHERE guild_id = :guild", {"guild": guild_id}
    )
    return {int(r): int(limit) for r, limit in rows}


def set_user_count_limit(
    s: Session, guild_id: int, user_id: int, limit: int | None, actor_id: int, now: float
) -> None:
    """The most images one request of this member may ask for; None clears their own."""
    with s.write() as tx:
        tx.execute(
            "INSERT INTO user_quotas (guild_id, user_id, credits, count_limit)"
            " VALUES (:guild, :user, 0, :limit)"
            " ON CONFLICT (guild_id, user_id) DO UPDATE SET count_limit = excluded.count_limit",
            {"guild": guild_id, "user": user_id, "limit": limit},
        )
        log_admin_change(tx, guild_id, actor_id, "count_limit_user", f"user:{user_id}", {"limit": limit}, now)


def user_count_limit(s: Session, guild_id: int, user_id: int) -> int | None:
    row = s.row(
        "SELECT count_limit FROM user_quotas WHERE guild_id = :guild AND user_id = :user",
        {"guild": guild_id, "user": user_id},
    )
    return int(row[0]) if row is not None and row[0] is not None else None


def set_user_quota(
    s: Session, guild_id: int, user_id: int, *, limit: int | None, unlimited: bool, actor_id: int, now: float
) -> None:
    """A member's personal limit (or unlimited); limit None and unlimited False clears it."""
    with s.write() as tx:
        tx.execute(
            "INSERT INTO user_quotas (guild_id, user_id, daily_limit, unlimited, credits)"
            " VALUES (:guild, :user, :limit, :unlimited, 0)"
            " ON CONFLICT (guild_id, user_id) DO UPDATE SET daily_limit = excluded.daily_limit,"
            " unlimited = excluded.unlimited",
            {"guild": guild_id, "user": user_id, "limit": limit, "unlimited": int(unlimited)},
        )
        details = {"limit": limit, "unlimited": unlimited}
        log_admin_change(tx, guild_id, actor_id, "quota_user", f"user:{user_id}", details, now)


def grant_credits(s: Session, guild_id: int, user_id: int, credits: int, actor_id: int, now: float) -> int:
    """Add (or with a negative number, take away) one-off credits; returns the new balance."""
    with s.write() as tx:
        tx.execute(
            "INSERT INTO user_quotas (guild_id, user_id, credits) VALUES (:guild, :user, :initial)"
            " ON CONFLICT (guild_id, user_id) DO UPDATE SET credits = CASE"
            " WHEN user_quotas.credits + :credits > 0 THEN user_quotas.credits + :credits ELSE 0 END",
            {"guild": guild_id, "user": user_id, "initial": max(credits, 0), "credits": credits},
        )
        row = tx.execute(
            "SELECT credits FROM user_quotas WHERE guild_id = :guild AND user_id = :user",
            {"guild": guild_id, "user": user_id},
        ).fetchone()
        log_admin_change(tx, guild_id, actor_id, "quota_grant", f"user:{user_id}", {"credits": credits}, now)
    return int(row[0])


def reset_today(s: Session, guild_id: int, user_id: int, actor_id: int, now: float) -> int:
    """Give a member back today's uses (their rows stay in the log); returns how many."""
    with s.write() as tx:
        start, _ = day_bounds(now, read_policy(s, guild_id).timezone)
        today = {"guild": guild_id, "user": user_id, "start": start}
        where = (
            "WHERE guild_id = :guild AND user_id = :user AND created_at >= :start AND counted > 0"
            " AND outcome != 'submitted'"
        )
        # `counted` holds units: the member gets back their sum.
        row = tx.execute(f"SELECT COALESCE(SUM(counted), 0) FROM usage {where}", today).fetchone()
        given = int(row[0]) if row else 0
        tx.execute(f"UPDATE usage SET counted = 0 {where}", today)
        log_admin_change(tx, guild_id, actor_id, "quota_reset", f"user:{user_id}", {"uses": given}, now)
    return int(given)


def ban(
    s: Session,
    guild_id: int,
    user_id: int,
    *,
    reason: str | None,
    expires_at: float | None,
    actor_id: int,
    now: float,
) -> None:
    with s.write() as tx:
        tx.execute(
            "INSERT INTO bans (guild_id, user_id, reason, banned_by, created_at, expires_at)"
            " VALUES (:guild, :user, :reason, :actor, :now, :expires)"
            " ON CONFLICT (guild_id, user_id) DO UPDATE SET reason = excluded.reason,"
            " banned_by = excluded.banned_by, created_at = excluded.created_at,"
            " expires_at = excluded.expires_at",
            {
                "guild": guild_id,
                "user": user_id,
                "reason": reason,
                "actor": actor_id,
                "now": now,
                "expires": expires_at,
            },
        )
        details = {"reason": reason, "expires_at": expires_at}
        log_admin_change(tx, guild_id, actor_id, "ban", f"user:{user_id}", details, now)


def unban(s: Session, guild_id: int, user_id: int, actor_id: int, now: float) -> bool:
    with s.write() as tx:
        cursor = tx.execute(
            "DELETE FROM bans WHERE guild_id = :guild AND user_id = :user",
            {"guild": guild_id, "user": user_id},
        )
        lifted = cursor.rowcount > 0
        log_admin_change(tx, guild_id, actor_id, "unban", f"user:{user_id}", {"was_banned": lifted}, now)
    return lifted


def bans(s: Session, guild_id: int, now: float) -> list[BanEntry]:
    """Bans in force now."""
    rows = s.rows(
        "SELECT user_id, reason, banned_by, created_at, expires_at FROM bans"
        " WHERE guild_id = :guild AND (expires_at IS NULL OR expires_at > :now) ORDER BY created_at",
        {"guild": guild_id, "now": now},
    )
    return [BanEntry(*row) for row in rows]


def add_rule(s: Session, guild_id: int, kind: str, pattern: str, actor_id: int, now: float) -> PromptRule:
    """Store a rule already validated by `bot.moderation.check_rule`; raises RuleError when the
    server already has MAX_RULES rules."""
    with s.write() as tx:
        # Two moderators adding the last allowed rule at once from two processes: one waits.
        s.lock(tx, "rules", guild_id)
        count = int(
            tx.execute(
                "SELECT COUNT(*) FROM prompt_rules WHERE guild_id = :guild", {"guild": guild_id}
            ).fetchone()[0]
        )
        if count >= MAX_RULES:
            raise RuleError(
                msg(
                    "this server already has {count} prompt rules, the most it can have is {most}; "
                    "remove some (or merge several words into one regular expression) first",
                    count=count,
                    most=MAX_RULES,
                )
            )
        rule_id = tx.insert(
            "prompt_rules",
            {"guild_id": guild_id, "kind": kind, "pattern": pattern, "added_by": actor_id, "created_at": now},
        )
        log_admin_change(
            tx, guild_id, actor_id, "rule_add", f"rule:{rule_id}", {"kind": kind, "pattern": pattern}, now
        )
    return PromptRule(rule_id, kind, pattern)


def remove_rule(s: Session, guild_id: int, rule_id: int, actor_id: int, now: float) -> PromptRule | None:
    with s.write() as tx:
        row = tx.execute(
            "SELECT id, kind, pattern FROM prompt_rules WHERE guild_id = :guild AND id = :id",
            {"guild": guild_id, "id": rule_id},
        ).fetchone()
        if row is None:
            return None
        tx.execute("DELETE FROM prompt_rules WHERE id = :id", {"id": rule_id})
        log_admin_change(tx, guild_id, actor_id, "rule_remove", f"rule:{rule_id}", {"pattern": row[2]}, now)
    return PromptRule(int(row[0]), str(row[1]), str(row[2]))


def rules(s: Session, guild_id: int) -> list[PromptRule]:
    rows = s.rows(
        "SELECT id, kind, pattern FROM prompt_rules WHERE guild_id = :guild ORDER BY id", {"guild": guild_id}
    )
    return [PromptRule(int(i), str(k), str(p)) for i, k, p in rows]


def rules_if_changed(
    s: Session, guild_id: int, known: tuple[object, ...] | None
) -> tuple[tuple[object, ...], list[PromptRule] | None]:
    """The rules' signature and, only if it differs from `known`, the rules themselves: one
    small read per admission, so a compiled rule set is reused until the rules change, even
    when another process changed them."""
    # Rules are only added and removed, never edited; a removed id that is reused by a later
    # rule still moves MAX(created_at).
    row = s.row(
        "SELECT COUNT(*), COALESCE(SUM(id), 0), MAX(created_at) FROM prompt_rules WHERE guild_id = :guild",
        {"guild": guild_id},
    )
    assert row is not None
    signature = (int(row[0]), float(row[1]), row[2])
    if signature == known:
        return signature, None
    return signature, rules(s, guild_id)


def admin_log(s: Session, guild_id: int, limit: int = 50) -> list[AdminEntry]:
    rows = s.rows(
        "SELECT id, guild_id, actor_id, action, target, details, created_at FROM admin_log"
        " WHERE guild_id = :guild ORDER BY id DESC LIMIT :limit",
        {"guild": guild_id, "limit": limit},
    )
    return [AdminEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"), r[6]) for r in rows]


def guild_policy(s: Session, guild_id: int) -> GuildPolicy:
    return read_policy(s, guild_id)


class Settings(Repository):
    """Server settings and moderation: policy, role and member limits, credits, bans, prompt rules
    and the admin log: `store.settings`."""

    guild_policy = call(guild_policy)
    update_policy = call(update_policy)
    set_role_quota = call(set_role_quota)
    role_quotas = call(role_quotas)
    set_user_quota = call(set_user_quota)
    set_role_count_limit = call(set_role_count_limit)
    role_count_limits = call(role_count_limits)
    set_user_count_limit = call(set_user_count_limit)
    user_count_limit = call(user_count_limit)
    count_limit = call(usage_count_limit)
    grant_credits = call(grant_credits)
    reset_today = call(reset_today)
    ban = call(ban)
    unban = call(unban)
    bans = call(bans)
    rules = call(rules)
    admin_log = call(admin_log)

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        # Prompt rules (SQLite only, where this process is the database's only writer): per server,
        # the rules' signature last read and the count of rule changes made here at the time.
        self._rule_changes: dict[int, int] = {}
        self._rules_seen: dict[int, tuple[tuple[object, ...], int]] = {}

    async def add_rule(self, guild_id: int, kind: str, pattern: str, actor_id: int, now: float) -> PromptRule:
        try:
            return await self._backend.run(add_rule, guild_id, kind, pattern, actor_id, now)
        finally:
            self._rules_changed(guild_id)

    async def remove_rule(self, guild_id: int, rule_id: int, actor_id: int, now: float) -> PromptRule | None:
        try:
            return await self._backend.run(remove_rule, guild_id, rule_id, actor_id, now)
        finally:
            self._rules_changed(guild_id)

    def _rules_changed(self, guild_id: int) -> None:
        self._rule_changes[guild_id] = self._rule_changes.get(guild_id, 0) + 1

    async def rules_if_changed(
        self, guild_id: int, known: tuple[object, ...] | None
    ) -> tuple[tuple[object, ...], list[PromptRule] | None]:
        """The rules' signature, and the rules if it differs from `known`. On SQLite every rule change
        goes through this object (one process owns the file), so a signature read after the last
        change made here is still true and needs no trip to the database thread: that hand-off was
        half of a rule check's time. PostgreSQL is shared with other processes and is always asked."""
        exclusive = self._backend.exclusive
        changes = self._rule_changes.get(guild_id, 0)
        if exclusive and known is not None and self._rules_seen.get(guild_id) == (known, changes):
            return known, None
        signature, found = await self._backend.run(rules_if_changed, guild_id, known)
        if exclusive:
            # Counted before the read: a change that ends while it runs makes this entry stale.
            self._rules_seen[guild_id] = (signature, changes)
        return signature, found
