# syntax=docker/dockerfile:1
# The AgenticSession operator image: docker build -t ambient-ctrl .
#
# Stage 1 builds wheels (the project's and every runtime dependency's) with pip; stage 2 is a
# slim Python with only those wheels installed: no compiler, no sources, no pip cache, and a
# non-root user. config/manager/manager.yaml runs it with a read-only root filesystem.
# `docker run IMAGE` runs the operator; `docker run IMAGE session-trigger` starts a scheduled run.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Metadata first, so the dependency layer is reused while only the sources change.
COPY setup.cfg setup.py README.md ./
COPY foundation ./foundation
COPY metrics ./metrics
COPY informers ./informers
COPY ambient_ctrl ./ambient_ctrl
COPY reconcilers ./reconcilers
# The CRDs ship in the package (reconcilers/crds/ links to these; the wheel gets the files).
COPY config/crd ./config/crd
# Every dependency ships binary wheels for CPython 3.11 on Linux (orjson, PyYAML, cryptography),
# so this stage needs no compiler either; --prefer-binary keeps it that way. The operator never
# runs the local API server: its package (envtest/) is not copied and its extra (uvloop,
# ambient-ctrl[envtest]) not installed; `ambient-ctrl demo|apiserver` say so in the image.
RUN pip wheel --prefer-binary --wheel-dir /wheels .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="ambient-ctrl" \
      org.opencontainers.image.description="The AgenticSession operator (a controller-runtime style reconciler framework in Python)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Install from the builder's wheels only (no index: what was built is what runs), then drop the
# installers, which the operator never uses.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels ambient-ctrl \
    && pip uninstall --yes pip setuptools wheel
# 65532 is the conventional "nonroot" uid/gid of distroless images; the Deployment also sets it.
RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin nonroot
# Upstream's operator image is WORKDIR /app with ENTRYPOINT ./operator, and the platform calls it
# so: the backend's scheduled-session CronJobs run ["./operator", "session-trigger"], its operator
# Deployment passes only flags. /app/operator (image/operator) hands both to ambient-ctrl, and
# ambient-ctrl command lines (`run ...`, as config/manager passes) through. Read-only for the user.
WORKDIR /app
COPY --chmod=0755 image/operator /app/operator
USER 65532:65532
# config/manager: /metrics over HTTPS on 8443 (--metrics-secure), probes on 8081.
EXPOSE 8443 8081
ENTRYPOINT ["/app/operator"]
CMD ["run"]
