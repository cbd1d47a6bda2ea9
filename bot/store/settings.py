"""What moderators change: guild policy, role and member limits, credits, bans, prompt rules.
Every change is written together with its admin-log entry, in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.moderation import MAX_RULES, PromptRule, RuleError
from bot.quotas import day_bounds
from bot.store.base import Tx
from bot.store.usage import POLICY_COLUMNS, UsageQueries


@dataclass(frozen=True)
class AdminEntry:
    id: int
    guild_id: int
    actor_id: int
    action: str
    target: str | None
    details: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class BanEntry:
    user_id: int
    reason: str | None
    banned_by: int | None
    created_at: float
    expires_at: float | None


class SettingsQueries(UsageQueries):
    @staticmethod
    def _log_admin(
        tx: Tx,
        guild_id: int,
        actor_id: int,
        action: str,
        target: str | None,
        details: dict[str, Any],
        now: float,
    ) -> None:
        tx.insert(
            "admin_log",
            {
                "guild_id": guild_id,
                "actor_id": actor_id,
                "action": action,
                "target": target,
                "details": json.dumps(details, sort_keys=True, default=str),
                "created_at": now,
            },
        )

    async def update_policy(self, guild_id: int, actor_id: int, now: float, **changes: Any) -> None:
        """Change guild settings (columns of GuildPolicy); None resets a setting to its default."""
        unknown = set(changes) - set(POLICY_COLUMNS)
        if unknown:
            raise ValueError(f"unknown guild settings: {', '.join(sorted(unknown))}")
        await self._run(self._update_policy, guild_id, actor_id, now, changes)

    def _update_policy(self, guild_id: int, actor_id: int, now: float, changes: dict[str, Any]) -> None:
        with self._write() as tx:
            tx.execute("INSERT OR IGNORE INTO guild_settings (guild_id) VALUES (?)", [guild_id])
            assignments = ", ".join(f"{column} = ?" for column in changes)
            tx.execute(
                f"UPDATE guild_settings SET {assignments} WHERE guild_id = ?", [*changes.values(), guild_id]
            )
            self._log_admin(tx, guild_id, actor_id, "policy", None, changes, now)

    async def set_role_quota(
        self, guild_id: int, role_id: int, limit: int | None, actor_id: int, now: float
    ) -> None:
        """A role's daily limit; None removes the role's own limit."""
        await self._run(self._set_role_quota, guild_id, role_id, limit, actor_id, now)

    def _set_role_quota(
        self, guild_id: int, role_id: int, limit: int | None, actor_id: int, now: float
    ) -> None:
        with self._write() as tx:
            if limit is None:
                tx.execute("DELETE FROM role_quotas WHERE guild_id = ? AND role_id = ?", [guild_id, role_id])
            else:
                tx.execute(
                    "INSERT OR REPLACE INTO role_quotas (guild_id, role_id, daily_limit) VALUES (?, ?, ?)",
                    [guild_id, role_id, limit],
                )
            self._log_admin(tx, guild_id, actor_id, "quota_role", f"role:{role_id}", {"limit": limit}, now)

    async def role_quotas(self, guild_id: int) -> dict[int, int]:
        return await self._run(self._role_quotas, guild_id)

    def _role_quotas(self, guild_id: int) -> dict[int, int]:
        rows = self._db.execute("SELECT role_id, daily_limit FROM role_quotas WHERE guild_id = ?", [guild_id])
        return {int(r): int(limit) for r, limit in rows}

    async def set_user_quota(
        self, guild_id: int, user_id: int, *, limit: int | None, unlimited: bool, actor_id: int, now: float
    ) -> None:
        """A member's personal limit (or unlimited); limit None and unlimited False clears it."""
        await self._run(self._set_user_quota, guild_id, user_id, limit, unlimited, actor_id, now)

    def _set_user_quota(
        self, guild_id: int, user_id: int, limit: int | None, unlimited: bool, actor_id: int, now: float
    ) -> None:
        with self._write() as tx:
            tx.execute(
                "INSERT INTO user_quotas (guild_id, user_id, daily_limit, unlimited, credits)"
                " VALUES (?, ?, ?, ?, 0)"
                " ON CONFLICT (guild_id, user_id) DO UPDATE SET daily_limit = excluded.daily_limit,"
                " unlimited = excluded.unlimited",
                [guild_id, user_id, limit, int(unlimited)],
            )
            details = {"limit": limit, "unlimited": unlimited}
            self._log_admin(tx, guild_id, actor_id, "quota_user", f"user:{user_id}", details, now)

    async def grant_credits(
        self, guild_id: int, user_id: int, credits: int, actor_id: int, now: float
    ) -> int:
        """Add (or with a negative number, take away) one-off credits; returns the new balance."""
        return await self._run(self._grant_credits, guild_id, user_id, credits, actor_id, now)

    def _grant_credits(self, guild_id: int, user_id: int, credits: int, actor_id: int, now: float) -> int:
        with self._write() as tx:
            tx.execute(
                "INSERT INTO user_quotas (guild_id, user_id, credits) VALUES (?, ?, MAX(?, 0))"
                " ON CONFLICT (guild_id, user_id) DO UPDATE SET credits = MAX(credits + ?, 0)",
                [guild_id, user_id, credits, credits],
            )
            balance = tx.execute(
                "SELECT credits FROM user_quotas WHERE guild_id = ? AND user_id = ?", [guild_id, user_id]
            ).fetchone()[0]
            self._log_admin(
                tx, guild_id, actor_id, "quota_grant", f"user:{user_id}", {"credits": credits}, now
            )
        return int(balance)

    async def reset_today(self, guild_id: int, user_id: int, actor_id: int, now: float) -> int:
        """Give a member back today's uses (their rows stay in the log); returns how many."""
        return await self._run(self._reset_today, guild_id, user_id, actor_id, now)

    def _reset_today(self, guild_id: int, user_id: int, actor_id: int, now: float) -> int:
        with self._write() as tx:
            start, _ = day_bounds(now, self._policy(guild_id).timezone)
            cursor = tx.execute(
                "UPDATE usage SET counted = 0 WHERE guild_id = ? AND user_id = ? AND created_at >= ?"
                " AND counted = 1 AND outcome != 'submitted'",
                [guild_id, user_id, start],
            )
            self._log_admin(
                tx, guild_id, actor_id, "quota_reset", f"user:{user_id}", {"uses": cursor.rowcount}, now
            )
        return int(cursor.rowcount)

    async def ban(
        self,
        guild_id: int,
        user_id: int,
        *,
        reason: str | None,
        expires_at: float | None,
        actor_id: int,
        now: float,
    ) -> None:
        await self._run(self._ban, guild_id, user_id, reason, expires_at, actor_id, now)

    def _ban(
        self,
        guild_id: int,
        user_id: int,
        reason: str | None,
        expires_at: float | None,
        actor_id: int,
        now: float,
    ) -> None:
        with self._write() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO bans (guild_id, user_id, reason, banned_by, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [guild_id, user_id, reason, actor_id, now, expires_at],
            )
            details = {"reason": reason, "expires_at": expires_at}
            self._log_admin(tx, guild_id, actor_id, "ban", f"user:{user_id}", details, now)

    async def unban(self, guild_id: int, user_id: int, actor_id: int, now: float) -> bool:
        return await self._run(self._unban, guild_id, user_id, actor_id, now)

    def _unban(self, guild_id: int, user_id: int, actor_id: int, now: float) -> bool:
        with self._write() as tx:
            cursor = tx.execute("DELETE FROM bans WHERE guild_id = ? AND user_id = ?", [guild_id, user_id])
            self._log_admin(
                tx, guild_id, actor_id, "unban", f"user:{user_id}", {"was_banned": cursor.rowcount > 0}, now
            )
        return cursor.rowcount > 0

    async def bans(self, guild_id: int, now: float) -> list[BanEntry]:
        """Bans in force now."""
        return await self._run(self._bans, guild_id, now)

    def _bans(self, guild_id: int, now: float) -> list[BanEntry]:
        rows = self._db.execute(
            "SELECT user_id, reason, banned_by, created_at, expires_at FROM bans"
            " WHERE guild_id = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at",
            [guild_id, now],
        )
        return [BanEntry(*row) for row in rows]

    async def add_rule(self, guild_id: int, kind: str, pattern: str, actor_id: int, now: float) -> PromptRule:
        """Store a rule already validated by `bot.moderation.check_rule`; raises RuleError when the
        server already has MAX_RULES rules."""
        return await self._run(self._add_rule, guild_id, kind, pattern, actor_id, now)

    def _add_rule(self, guild_id: int, kind: str, pattern: str, actor_id: int, now: float) -> PromptRule:
        with self._write() as tx:
            count = tx.execute("SELECT COUNT(*) FROM prompt_rules WHERE guild_id = ?", [guild_id]).fetchone()[
                0
            ]
            if count >= MAX_RULES:
                raise RuleError(
                    f"this server already has {count} prompt rules, the most it can have is {MAX_RULES}; "
                    "remove some (or merge several words into one regular expression) first"
                )
            rule_id = tx.insert(
                "prompt_rules",
                {
                    "guild_id": guild_id,
                    "kind": kind,
                    "pattern": pattern,
                    "added_by": actor_id,
                    "created_at": now,
                },
            )
            self._log_admin(
                tx, guild_id, actor_id, "rule_add", f"rule:{rule_id}", {"kind": kind, "pattern": pattern}, now
            )
        return PromptRule(rule_id, kind, pattern)

    async def remove_rule(self, guild_id: int, rule_id: int, actor_id: int, now: float) -> PromptRule | None:
        return await self._run(self._remove_rule, guild_id, rule_id, actor_id, now)

    def _remove_rule(self, guild_id: int, rule_id: int, actor_id: int, now: float) -> PromptRule | None:
        with self._write() as tx:
            row = tx.execute(
                "SELECT id, kind, pattern FROM prompt_rules WHERE guild_id = ? AND id = ?",
                [guild_id, rule_id],
            ).fetchone()
            if row is None:
                return None
            tx.execute("DELETE FROM prompt_rules WHERE id = ?", [rule_id])
            self._log_admin(
                tx, guild_id, actor_id, "rule_remove", f"rule:{rule_id}", {"pattern": row[2]}, now
            )
        return PromptRule(int(row[0]), str(row[1]), str(row[2]))

    async def rules(self, guild_id: int) -> list[PromptRule]:
        return await self._run(self._rules, guild_id)

    async def rules_if_changed(
        self, guild_id: int, known: tuple[object, ...] | None
    ) -> tuple[tuple[object, ...], list[PromptRule] | None]:
        """The rules' signature and, only if it differs from `known`, the rules themselves: one
        small read per admission, so a compiled rule set is reused until the rules change, even
        when another process changed them."""
        return await self._run(self._rules_if_changed, guild_id, known)

    def _rules_if_changed(
        self, guild_id: int, known: tuple[object, ...] | None
    ) -> tuple[tuple[object, ...], list[PromptRule] | None]:
        # Rules are only added and removed, never edited; a removed id that is reused by a later
        # rule still moves MAX(created_at).
        row = self._db.execute(
            "SELECT COUNT(*), TOTAL(id), MAX(created_at) FROM prompt_rules WHERE guild_id = ?", [guild_id]
        ).fetchone()
        signature = (int(row[0]), float(row[1]), row[2])
        if signature == known:
            return signature, None
        return signature, self._rules(guild_id)

    def _rules(self, guild_id: int) -> list[PromptRule]:
        rows = self._db.execute(
            "SELECT id, kind, pattern FROM prompt_rules WHERE guild_id = ? ORDER BY id", [guild_id]
        )
        return [PromptRule(int(i), str(k), str(p)) for i, k, p in rows]

    async def admin_log(self, guild_id: int, limit: int = 50) -> list[AdminEntry]:
        return await self._run(self._admin_log, guild_id, limit)

    def _admin_log(self, guild_id: int, limit: int) -> list[AdminEntry]:
        rows = self._db.execute(
            "SELECT id, guild_id, actor_id, action, target, details, created_at FROM admin_log"
            " WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            [guild_id, limit],
        )
        return [AdminEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"), r[6]) for r in rows]
