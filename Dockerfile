# syntax=docker/dockerfile:1
# The choreo image: the framework's wheel and the reference saga's (schemas inside) on a slim
# Python, run as a non-root
# user, `choreo` as the entrypoint. Build: docker build -t choreo:0.1.0 .
#   docker run --rm choreo:0.1.0 worker orders --instance 0 --metrics-port 9100
# See docs/deploy.md (compose, Kubernetes).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder: the two wheels and a wheel of every dependency --------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the wheels are built from (.dockerignore keeps the rest of the checkout out).
COPY pyproject.toml README.md ./
COPY choreo ./choreo
COPY reference ./reference
COPY consumers ./consumers
COPY producers ./producers
COPY schemas ./schemas
RUN pip wheel --no-deps --wheel-dir /wheels . ./reference \
 && pip wheel --wheel-dir /wheels /wheels/choreo-*.whl

# -- runtime: no compiler, no source tree, only the installed wheels -------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    CHOREO_STATE_DIR=/var/lib/choreo/state
# The wheels are bind-mounted from the builder for the install only, so none stays in a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels choreo choreo-drone-delivery \
 && groupadd --system --gid 10001 choreo \
 && useradd --system --uid 10001 --gid choreo --home-dir /var/lib/choreo --shell /usr/sbin/nologin choreo \
 && mkdir -p /var/lib/choreo/state \
 && chown -R 10001:10001 /var/lib/choreo
WORKDIR /var/lib/choreo
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Local state (SQLite stores, rebuildable from the log). Mount a volume here to keep it across
# restarts; without one it is rebuilt from the service's own topic on start.
VOLUME ["/var/lib/choreo/state"]
# --metrics-port 9100: /metrics, /healthz, /readyz (set CHOREO_METRICS_HOST=0.0.0.0 to reach it
# from outside the container).
EXPOSE 9100
ENTRYPOINT ["choreo"]
CMD ["--help"]
