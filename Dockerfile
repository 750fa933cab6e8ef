# snapshot-bot's image. Targets:
#   runtime (the default, last stage): the bot, installed from requirements.lock with hashes, as user 10001.
#   demo:    runtime plus devkit/ (the VPS.org simulator and the local shell), for `docker compose --profile demo`.
# Build: docker build -t snapshot-bot:VERSION .   and   docker build --target demo -t snapshot-bot:demo .
# Works with a read-only root filesystem; mount a writable /tmp (gunicorn's heartbeat files, metric values).
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first (their layer survives code changes): every file checked against the lockfile's hash, wheels
# only (no compiler in the image).
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock
# Then the project itself, without dependencies (all pinned above); pip check proves the set is consistent.
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY storage ./storage
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /tmp/dist . \
    && /opt/venv/bin/pip install --no-deps /tmp/dist/snapshot_bot-*.whl \
    && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="snapshot-bot" \
      org.opencontainers.image.description="Slack chat-ops bot for VPS.org server snapshots" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 snapshot-bot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin snapshot-bot
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 3000
ENTRYPOINT ["snapshot-bot"]
CMD ["serve"]

FROM runtime AS demo
# The development tools are a top-level package the wheel leaves out (devkit/__init__.py); importable from here.
COPY --chown=0:0 devkit /opt/devkit/devkit
ENV PYTHONPATH=/opt/devkit

# The default target: `docker build .` gives the production image, without devkit.
FROM runtime AS production
