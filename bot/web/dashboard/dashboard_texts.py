"""Every text of the dashboard's pages, as catalog msgids (bot/locales, `make messages`); they join the
gallery's PAGE_TEXTS (bot/web/page_texts.py), so an error page of the dashboard reads them too."""

from __future__ import annotations

from bot.core.i18n import N_

DASHBOARD_TEXTS = {
    "dashboard": N_("Dashboard"),
    "dash_settings": N_("Settings"),
    "dash_members": N_("Members"),
    "dash_rules": N_("Prompt rules and styles"),
    "dash_stats": N_("Statistics"),
    "dash_sections": N_("Dashboard sections"),
    "dash_pick_server": N_("Choose a server to moderate:"),
    "dash_no_servers": N_(
        "None of your servers with the bot gives you Manage Messages or Manage Server, which the dashboard "
        "needs."
    ),
    "dash_role_admin": N_("You are a server admin here: you can change every setting."),
    "dash_role_moderator": N_(
        "You are a moderator here: you can read the settings and statistics; changing them needs Manage "
        "Server."
    ),
    "dash_read_only": N_("Only server admins (Manage Server) can change these settings."),
    "dash_current": N_("Current settings"),
    "dash_limits": N_("Change the settings"),
    "dash_server_limit": N_("Daily limit of every member"),
    "dash_server_limit_hint": N_(
        "Images per member per day; 0 turns the bot off; empty: the bot default ({default})."
    ),
    "dash_bot_default": N_("the bot default"),
    "dash_server_cap": N_("Daily cap for the whole server"),
    "dash_empty_for_none": N_("Empty: no cap."),
    "dash_empty_to_clear": N_("Empty: remove the role's own limit."),
    "dash_cooldown": N_("Cooldown between two requests (seconds)"),
    "dash_running": N_("Images one member may have running at once"),
    "dash_timezone": N_("Time zone of the server's day"),
    "dash_exempt": N_("Owner and Manage Server members skip the limits"),
    "dash_refund": N_("Cancelled images are given back"),
    "dash_private": N_("Members may have their images sent privately"),
    "dash_modlog": N_("Mod-log channel"),
    "dash_modlog_finished": N_("also every finished image"),
    "dash_on": N_("On"),
    "dash_off": N_("Off"),
    "dash_none": N_("None"),
    "dash_save": N_("Save"),
    "dash_add": N_("Add"),
    "dash_remove": N_("Remove"),
    "dash_recent": N_("Recent changes"),
    "dash_no_changes": N_("No changes yet."),
    "dash_when": N_("When (UTC)"),
    "dash_who": N_("Who"),
    "dash_what": N_("What"),
    "dash_details": N_("Details"),
    "dash_role_limits": N_("Role limits"),
    "dash_no_role_limits": N_("No role has a daily limit of its own."),
    "dash_role": N_("Role"),
    "dash_daily_limit": N_("Daily limit"),
    "dash_member_id_hint": N_(
        "Members are named by their user ID: in Discord, turn on Developer Mode, then right-click the member "
        "and choose Copy User ID."
    ),
    "dash_member_id": N_("Member (user ID)"),
    "dash_member": N_("Member"),
    "dash_personal_limit": N_("Personal limit"),
    "dash_mode_limit": N_("A daily limit of its own"),
    "dash_mode_unlimited": N_("No daily limit"),
    "dash_mode_clear": N_("Clear (follow roles and the server)"),
    "dash_credits": N_("One-off credits"),
    "dash_credits_hint": N_("A negative number takes credits back."),
    "dash_reset_today": N_("Give back today's uses"),
    "dash_bans": N_("Bans"),
    "dash_no_bans": N_("Nobody is banned from the image bot here."),
    "dash_until": N_("Until"),
    "dash_until_unbanned": N_("until unbanned"),
    "dash_reason": N_("Reason"),
    "dash_duration": N_("How long"),
    "dash_duration_hint": N_("Like 30m, 12h, 7d or 2w; empty: until unbanned."),
    "dash_ban": N_("Ban"),
    "dash_unban": N_("Unban"),
    "dash_test_prompt": N_("Test a prompt"),
    "dash_prompt_to_test": N_("A prompt, checked against this server's rules as /imagine checks it"),
    "dash_test": N_("Test"),
    "dash_test_allowed": N_("Allowed: no prompt rule matches."),
    "dash_test_blocked": N_("Refused: it matches rule {rule}."),
    "dash_kind": N_("Kind"),
    "dash_kind_word": N_("word or phrase"),
    "dash_kind_regex": N_("regular expression"),
    "dash_pattern": N_("Pattern"),
    "dash_no_rules": N_("This server has no prompt rules."),
    "dash_styles": N_("Styles"),
    "dash_no_styles": N_("This server has no styles yet."),
    "dash_name": N_("Name"),
    "dash_style_text": N_("Text added to the prompt"),
    "dash_window": N_("Show"),
    "dash_days": N_("the last {days} days"),
    "dash_as_table": N_("The numbers as a table"),
    "dash_download_csv": N_("Download as CSV"),
    "dash_forbidden_title": N_("No access"),
    "dash_forbidden": N_(
        "This dashboard is for members with Manage Messages or Manage Server, in a server that has the bot."
    ),
    "dash_admin_only_title": N_("Server admins only"),
    "dash_admin_only": N_("Only server admins (Manage Server) can change this. Nothing was changed."),
    "dash_discord_down_title": N_("Discord did not answer"),
    "dash_discord_down": N_("Discord could not be asked who you are there. Please try again in a moment."),
    "dash_no_token_title": N_("Dashboard unavailable"),
    "dash_no_token": N_("The dashboard needs the bot's token (DISCORD_TOKEN) in the web server's settings."),
}
