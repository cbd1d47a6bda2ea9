"""Policy: who may start a job (quotas, bans), prompt rules, styles, and checks on a request."""
