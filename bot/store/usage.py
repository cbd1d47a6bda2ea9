"""Admission (quota check and reservation in one transaction), the usage log, and reports on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.models import ImageRequest, Job, Origin
from bot.moderation import RuleMatch
from bot.quotas import (
    Ban,
    Decision,
    GuildPolicy,
    Member,
    Snapshot,
    UserOverride,
    day_bounds,
    decide,
    effective_limit,
    month_start,
)
from bot.store.jobs import JobQueries

POLICY_COLUMNS = (
    "default_quota",
    "timezone",
    "cooldown_seconds",
    "max_running",
    "daily_cap",
    "exempt_managers",
    "modlog_channel_id",
    "modlog_finished",
    "refund_cancelled",
)


@dataclass(frozen=True)
class UsageSummary:
    """What /usage shows a member about themselves."""

    used_today: int
    used_month: int
    limit: int | None
    credits: int
    running: int
    resets_at: float
    banned_until: float | None
    banned: bool


@dataclass(frozen=True)
class Stats:
    """A report over one window of the usage log."""

    generations: int
    completed: int
    failed: int
    refusals: dict[str, int]
    top_users: list[tuple[int, int]]

    @property
    def failure_rate(self) -> float:
        finished = self.completed + self.failed
        return self.failed / finished if finished else 0.0


EXPORT_COLUMNS = (
    "id",
    "created_at",
    "guild_id",
    "channel_id",
    "user_id",
    "outcome",
    "reason",
    "detail",
    "counted",
    "aspect_ratio",
    "ref_count",
    "duration",
    "task_id",
    "job_id",
    "prompt",
)


class UsageQueries(JobQueries):
    # -- policy --------------------------------------------------------------------------------------

    def _policy(self, guild_id: int) -> GuildPolicy:
        row = self._db.execute(
            f"SELECT {', '.join(POLICY_COLUMNS)} FROM guild_settings WHERE guild_id = ?", [guild_id]
        ).fetchone()
        if row is None:
            return GuildPolicy(guild_id)
        values = dict(zip(POLICY_COLUMNS, row, strict=True))
        defaults = GuildPolicy(guild_id)
        return GuildPolicy(
            guild_id=guild_id,
            default_quota=values["default_quota"],
            timezone=values["timezone"] or defaults.timezone,
            cooldown_seconds=values["cooldown_seconds"] if values["cooldown_seconds"] is not None else 0,
            max_running=values["max_running"] if values["max_running"] is not None else defaults.max_running,
            daily_cap=values["daily_cap"],
            exempt_managers=bool(values["exempt_managers"]),
            modlog_channel_id=values["modlog_channel_id"],
            modlog_finished=bool(values["modlog_finished"]),
            refund_cancelled=bool(values["refund_cancelled"]),
        )

    async def guild_policy(self, guild_id: int) -> GuildPolicy:
        return await self._run(self._policy, guild_id)

    def _snapshot(self, member: Member, now: float, global_default: int) -> Snapshot:
        guild, user = member.guild_id, member.user_id
        policy = self._policy(guild)
        start, _ = day_bounds(now, policy.timezone)
        role_limits: dict[int, int] = {}
        if member.role_ids:
            marks = ", ".join("?" for _ in member.role_ids)
            for role_id, limit in self._db.execute(
                f"SELECT role_id, daily_limit FROM role_quotas WHERE guild_id = ? AND role_id IN ({marks})",
                [guild, *member.role_ids],
            ):
                role_limits[int(role_id)] = int(limit)
        row = self._db.execute(
            "SELECT daily_limit, unlimited, credits FROM user_quotas WHERE guild_id = ? AND user_id = ?",
            [guild, user],
        ).fetchone()
        override = UserOverride(row[0], bool(row[1]), int(row[2] or 0)) if row else UserOverride()
        row = self._db.execute(
            "SELECT reason, expires_at, banned_by FROM bans WHERE guild_id = ? AND user_id = ?", [guild, user]
        ).fetchone()
        ban = Ban(row[0], row[1], row[2]) if row else None
        used_today = self._db.execute(
            "SELECT COUNT(*) FROM usage INDEXED BY usage_user_time"
            " WHERE guild_id = ? AND user_id = ? AND created_at >= ? AND counted = 1",
            [guild, user, start],
        ).fetchone()[0]
        guild_used = 0
        if policy.daily_cap is not None:
            guild_used = self._db.execute(
                "SELECT COUNT(*) FROM usage INDEXED BY usage_guild_time"
                " WHERE guild_id = ? AND created_at >= ? AND counted = 1",
                [guild, start],
            ).fetchone()[0]
        running = self._db.execute(
            "SELECT COUNT(*) FROM usage INDEXED BY usage_running"
            " WHERE guild_id = ? AND user_id = ? AND outcome = 'submitted'",
            [guild, user],
        ).fetchone()[0]
        last = None
        if policy.cooldown_seconds > 0:
            last = self._db.execute(
                "SELECT MAX(created_at) FROM usage INDEXED BY usage_user_time"
                " WHERE guild_id = ? AND user_id = ? AND outcome != 'refused'",
                [guild, user],
            ).fetchone()[0]
        return Snapshot(
            member=member,
            policy=policy,
            global_default=global_default,
            role_limits=role_limits,
            override=override,
            ban=ban,
            used_today=int(used_today),
            guild_used_today=int(guild_used),
            running=int(running),
            last_request_at=last,
            now=now,
        )

    # -- admission -----------------------------------------------------------------------------------

    async def admit(
        self,
        member: Member,
        request: ImageRequest,
        origin: Origin,
        now: float,
        global_default: int,
        rule_match: RuleMatch | None = None,
    ) -> tuple[Decision, Job | None]:
        """Check bans and quotas and, if allowed, reserve a use and write the job: one transaction, so
        simultaneous requests can never overspend a quota. The prompt rules were checked before,
        outside the transaction (`bot.rulebook`); `rule_match` is what they found."""
        return await self._run(self._admit, member, request, origin, now, global_default, rule_match)

    def _admit(
        self,
        member: Member,
        request: ImageRequest,
        origin: Origin,
        now: float,
        global_default: int,
        rule_match: RuleMatch | None,
    ) -> tuple[Decision, Job | None]:
        with self._write() as tx:
            decision = decide(self._snapshot(member, now, global_default), rule_match)
            usage = {
                "guild_id": member.guild_id,
                "channel_id": origin.channel_id,
                "user_id": member.user_id,
                "created_at": now,
                "prompt": request.prompt,
                "aspect_ratio": request.aspect_ratio,
                "ref_count": len(request.reference_urls),
            }
            job: Job | None = None
            if decision.allowed:
                usage_id = tx.insert("usage", {**usage, "outcome": "submitted", "counted": 1,
                                                  "used_credit": int(decision.uses_credit)})  # fmt: skip
                if decision.uses_credit:
                    tx.execute(
                        "UPDATE user_quotas SET credits = credits - 1 WHERE guild_id = ? AND user_id = ?",
                        [member.guild_id, member.user_id],
                    )
                job_id = tx.insert("jobs", {**self._job_row(request, origin, now), "usage_id": usage_id})
                tx.execute("UPDATE usage SET job_id = ? WHERE id = ?", [job_id, usage_id])
                job = self._get(job_id)
            else:
                detail = decision.matched_rule.describe() if decision.matched_rule else None
                tx.insert(
                    "usage", {**usage, "outcome": "refused", "reason": decision.reason, "detail": detail}
                )
        return decision, job

    async def log_refusal(
        self,
        *,
        guild_id: int,
        channel_id: int | None,
        user_id: int,
        prompt: str | None,
        aspect_ratio: str | None,
        ref_count: int,
        reason: str,
        detail: str | None,
        now: float,
    ) -> None:
        """A request refused before admission (bad input): logged, never counted."""
        row = {
            "guild_id": guild_id,
            "channel_id": channel_id,
            "user_id": user_id,
            "created_at": now,
            "prompt": (prompt or "")[:6000],
            "aspect_ratio": aspect_ratio,
            "ref_count": ref_count,
            "outcome": "refused",
            "reason": reason,
            "detail": detail,
        }
        await self._run(self._insert_committed, "usage", row)

    def _insert_committed(self, table: str, row: dict[str, Any]) -> int:
        with self._write() as tx:
            return tx.insert(table, row)

    # -- what members and moderators read -------------------------------------------------------------

    async def usage_summary(self, member: Member, now: float, global_default: int) -> UsageSummary:
        return await self._run(self._usage_summary, member, now, global_default)

    def _usage_summary(self, member: Member, now: float, global_default: int) -> UsageSummary:
        snapshot = self._snapshot(member, now, global_default)
        _, reset = day_bounds(now, snapshot.policy.timezone)
        month = self._db.execute(
            "SELECT COUNT(*) FROM usage INDEXED BY usage_user_time"
            " WHERE guild_id = ? AND user_id = ? AND created_at >= ? AND counted = 1",
            [member.guild_id, member.user_id, month_start(now, snapshot.policy.timezone)],
        ).fetchone()[0]
        ban = snapshot.ban
        banned = ban is not None and (ban.expires_at is None or ban.expires_at > now)
        return UsageSummary(
            used_today=snapshot.used_today,
            used_month=int(month),
            limit=effective_limit(snapshot),
            credits=snapshot.override.credits,
            running=snapshot.running,
            resets_at=reset,
            banned_until=ban.expires_at if banned and ban else None,
            banned=banned,
        )

    async def stats(self, guild_id: int | None, since: float) -> Stats:
        return await self._run(self._stats, guild_id, since)

    def _stats(self, guild_id: int | None, since: float) -> Stats:
        where, params = ("guild_id = ? AND created_at >= ?", [guild_id, since]) if guild_id else (
            "created_at >= ?", [since])  # fmt: skip
        counts: dict[str, int] = {}
        refusals: dict[str, int] = {}
        for outcome, reason, count in self._db.execute(
            f"SELECT outcome, reason, COUNT(*) FROM usage WHERE {where} GROUP BY outcome, reason", params
        ):
            if outcome == "refused":
                refusals[str(reason or "other")] = int(count)
            else:
                counts[str(outcome)] = counts.get(str(outcome), 0) + int(count)
        top = [
            (int(user), int(count))
            for user, count in self._db.execute(
                f"SELECT user_id, COUNT(*) AS n FROM usage WHERE {where} AND outcome != 'refused'"
                " GROUP BY user_id ORDER BY n DESC, user_id LIMIT 5",
                params,
            )
        ]
        failed = counts.get("failed", 0) + counts.get("timed_out", 0)
        return Stats(
            generations=sum(counts.values()),
            completed=counts.get("completed", 0),
            failed=failed,
            refusals=dict(sorted(refusals.items(), key=lambda item: -item[1])),
            top_users=top,
        )

    async def export_usage(
        self, guild_id: int, start: float, end: float, limit: int
    ) -> list[tuple[Any, ...]]:
        return await self._run(self._export, guild_id, start, end, limit)

    def _export(self, guild_id: int, start: float, end: float, limit: int) -> list[tuple[Any, ...]]:
        return list(
            self._db.execute(
                f"SELECT {', '.join(EXPORT_COLUMNS)} FROM usage INDEXED BY usage_guild_time"
                " WHERE guild_id = ? AND created_at >= ? AND created_at < ? ORDER BY created_at, id LIMIT ?",
                [guild_id, start, end, limit],
            )
        )
