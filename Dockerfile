# Two stages: install the locked dependencies and the bot into a virtualenv, then copy it into a slim
# runtime image. The base is pinned to a patch release; `requirements.lock` pins every dependency by
# version and hash, so an image built next month runs the same code.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /venv
COPY requirements.lock ./
RUN /venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY sandbox ./sandbox
RUN /venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11.11-slim-bookworm
RUN useradd --create-home --uid 10001 imagine
COPY --from=build /venv /venv
WORKDIR /app
RUN mkdir -p /app/data && chown imagine:imagine /app/data
# The image's settings (the database in the volume, /healthz on 9100) twice, on purpose: as ENV, for an
# operator's .env mounted over /app/.env; and as the image's own /app/.env, because compose's env_file
# sets every name of the operator's .env, and an empty `METRICS_PORT=` there replaces an ENV value but
# leaves a .env value in force (an empty value means the default). tests/test_compose.py checks both.
ENV PATH="/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DATABASE_PATH=/app/data/bot.db \
    METRICS_PORT=9100
COPY docker/image.env /app/.env
USER imagine
VOLUME ["/app/data"]
# /healthz inside the container (127.0.0.1): gateway connected, database answering, poll loop alive.
# Python's standard library makes the request: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot", "healthcheck"]
# Exec form: python is process 1 and gets docker stop's SIGTERM itself, and stops cleanly.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
