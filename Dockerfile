# Two stages: build a wheel-installed virtualenv, then copy it into a slim runtime image.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /venv
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN /venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 imagine
COPY --from=build /venv /venv
WORKDIR /app
RUN mkdir -p /app/data && chown imagine:imagine /app/data
ENV PATH="/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DATABASE_PATH=/app/data/bot.db
USER imagine
VOLUME ["/app/data"]
CMD ["python", "-m", "bot"]
