# The otel-decisions image: CLI (schema apply, queries, demo) and the example flows.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY otel_decisions ./otel_decisions
COPY queries ./queries
COPY examples ./examples
COPY collector_config ./collector_config
RUN pip install "pip==25.3" && pip install -c constraints.txt ".[examples]"

# Run as an unprivileged user; its data directory holds the spool and the generated HMAC key.
RUN useradd --create-home --uid 10001 decisions
USER decisions
ENV OTEL_DECISIONS_DATA_DIR=/home/decisions/data
WORKDIR /home/decisions

ENTRYPOINT ["otel-decisions"]
CMD ["--help"]
