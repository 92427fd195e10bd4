# HAProxy and vllm-router for deploy/scale.yml, on the same base as the api image:
# python:3.11-slim-bookworm, or the debootstrap build of deploy/base_image.sh
# (--build-arg PYTHON_IMAGE=privategptpp-base:bookworm, as `make image-test` uses).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Debian's HAProxy (the same package `make setup-proxy` installs); the config is mounted.
FROM ${PYTHON_IMAGE} AS haproxy
RUN apt-get update && apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/*
USER haproxy
# -W: master-worker, so `docker kill -s USR2` reloads and the stick table moves over (peers).
ENTRYPOINT ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg", "-L", "pgpt-proxy"]

# The vLLM project's router, the version pyproject.toml's `scale` extra pins.
FROM ${PYTHON_IMAGE} AS router
ARG PYPI_INDEX=https://pypi.org/simple
RUN python3 -m venv /opt/router \
    && /opt/router/bin/pip install --no-cache-dir --index-url "${PYPI_INDEX}" vllm-router==0.1.17 \
    && useradd --system --uid 10002 router
USER router
ENTRYPOINT ["/opt/router/bin/vllm-router"]
