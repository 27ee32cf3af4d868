# syntax=docker/dockerfile:1
# The choreo image: the framework's wheel and the reference saga's (schemas inside) on a slim
# Python, run as a non-root
# user, `choreo` as the entrypoint. Build: docker build -t choreo:0.1.0 .
#   docker run --rm choreo:0.1.0 worker orders --instance 0 --metrics-port 9100
# With the optional extras (`choreo ui`, OpenTelemetry traces), the same Dockerfile and steps:
#   docker build --build-arg EXTRAS=ui,otel -t choreo:0.1.0-full .
# Every dependency is installed at its version in constraints.txt (`make constraints` renews it).
# See docs/deploy.md (compose, Kubernetes).

# The base, pinned by digest: python:3.11-slim-bookworm as that tag stood when pinned (the tag is
# only a label here; Docker pulls by the digest), so a rebuild gets the same Debian and Python
# until this line changes. Refresh it for Debian and Python fixes with the digest that
#   docker buildx imagetools inspect python:3.11-slim-bookworm
# prints on its "Digest:" line (the multi-platform one), then rebuild and run the tests.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:528257d48c1da0dcecc2e725d1ae34498d60c965f1241e39cd6a85a8859bdf84

# -- builder: the two wheels and a wheel of every dependency --------------------------------------
FROM ${PYTHON_IMAGE} AS builder
# Extras of choreo to build in, comma-separated (ui, otel): empty for the plain image.
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the wheels are built from (.dockerignore keeps the rest of the checkout out).
COPY pyproject.toml README.md constraints.txt ./
COPY choreo ./choreo
COPY reference ./reference
COPY consumers ./consumers
COPY producers ./producers
COPY schemas ./schemas
# The project's two wheels, then a wheel of every dependency of choreo (with EXTRAS' ones) at the
# version constraints.txt pins; the choreo wheel is named by its file, never looked up by name.
RUN pip wheel --no-deps --wheel-dir /wheels . ./reference \
 && pip wheel --constraint constraints.txt --wheel-dir /wheels \
      "$(echo /wheels/choreo-[0-9]*.whl)${EXTRAS:+[${EXTRAS}]}"

# -- runtime: no compiler, no source tree, only the installed wheels -------------------------------
FROM ${PYTHON_IMAGE}
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    CHOREO_STATE_DIR=/var/lib/choreo/state
# The wheels are bind-mounted from the builder for the install only, so none stays in a layer.
# --no-index: only the builder's wheels (the pinned versions) can be installed.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "choreo${EXTRAS:+[${EXTRAS}]}" choreo-drone-delivery \
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
