"""Operations: command line, settings, health and metrics, logs, backup and migration."""
