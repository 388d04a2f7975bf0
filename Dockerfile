# sagabank: the account service, the saga orchestrator and the demo client in one image.
#
#   docker build -t sagabank .
#   docker run -p 8000:8000 -v sagabank-data:/data \
#       -e SAGABANK_ADMIN_TOKEN=... -e SAGABANK_SERVICE_TOKEN=... sagabank   # serve on :8000
#   docker run --rm sagabank demo --transfers 20                 # run the client demo
#
# The server binds 0.0.0.0 inside the container, so it refuses to start (exit 2, one line
# naming what is missing) unless both tokens are set; an open demo server must be asked for:
#   docker run -p 8000:8000 sagabank serve --host 0.0.0.0 --port 8000 --insecure
#
# Dependencies are pinned in scripts/docker/requirements.txt (every runtime
# distribution, ==) and scripts/docker/build-constraints.txt (the build backend);
# scripts/docker/update-requirements.sh regenerates both from pyproject.toml.
# Works with the legacy builder and with BuildKit.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtual environment holding the project and its pinned dependencies ----
FROM ${PYTHON_IMAGE} AS build
LABEL sagabank.stage="build"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_PROGRESS_BAR=off \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/sagabank
# Dependencies first, so a code-only change reuses this layer.
COPY scripts/docker/requirements.txt scripts/docker/build-constraints.txt /src/scripts/docker/
RUN /opt/sagabank/bin/pip install --no-cache-dir --no-deps --require-virtualenv \
        -r scripts/docker/requirements.txt
COPY pyproject.toml README.md /src/
COPY repository_after /src/repository_after
COPY repository_before /src/repository_before
# PIP_CONSTRAINT pins setuptools/wheel in pip's isolated build environment.
# `pip check` fails when pyproject.toml asks for something requirements.txt lacks.
RUN PIP_CONSTRAINT=/src/scripts/docker/build-constraints.txt \
        /opt/sagabank/bin/pip install --no-cache-dir --no-deps --require-virtualenv /src \
    && { /opt/sagabank/bin/pip check \
         || { echo 'scripts/docker/requirements.txt is stale: run scripts/docker/update-requirements.sh' >&2; exit 1; }; } \
    && /opt/sagabank/bin/pip uninstall --yes --quiet pip setuptools \
    && /opt/sagabank/bin/python -m compileall -q /opt/sagabank/lib \
    && /opt/sagabank/bin/sagabank --help >/dev/null

# ---- runtime ----
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="sagabank" \
      org.opencontainers.image.description="Money transfers between account services as idempotent, crash-safe sagas." \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/sagabank/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SAGABANK_DATABASE_URL=sqlite:////data/sagabank.db
RUN groupadd --gid 10001 sagabank \
    && useradd --uid 10001 --gid sagabank --create-home --home-dir /home/sagabank \
        --shell /usr/sbin/nologin sagabank \
    && mkdir -p /data \
    && chown sagabank:sagabank /data
COPY --from=build /opt/sagabank /opt/sagabank
VOLUME /data
WORKDIR /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/health' % os.environ.get('SAGABANK_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]
ENTRYPOINT ["sagabank"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
