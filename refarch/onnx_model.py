"""Where the ONNX form of the embedding model comes from, offline.

A sentence-transformers model (transformer, pooling, normalization) is exported once with
``torch.onnx.export`` into one graph that maps token ids to the normalized sentence vector, and
cached under ``REFARCH_HOME/models/<name>-<checksum>/``. The checksum covers the source weights
and configuration, so new weights never reuse an old export. ``int8`` is a dynamic
quantization of that graph with onnxruntime's own tool.

Only :func:`export_model` needs torch; a directory it wrote runs with onnxruntime and
tokenizers alone (the container image exports in its build stage and ships the directory).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from refarch.errors import EmbeddingError
from refarch.logs import event

log = logging.getLogger(__name__)

#: Bumped when the exported graph changes shape, so older caches are not reused.
EXPORT_FORMAT = 1
#: File names inside an export directory.
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "refarch-onnx.json"
#: The graph's inputs and output.
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"


@dataclass(frozen=True)
class ExportedModel:
    """An export directory and what it records about the model."""

    directory: Path
    name: str
    dimension: int
    max_seq_length: int
    source_checksum: str

    def weights(self, precision: str) -> Path:
        """The ONNX file for ``precision`` (``fp32`` or ``int8``)."""
        return self.directory / (INT8_FILE if precision == "int8" else FP32_FILE)


def source_checksum(source: Path) -> str:
    """sha256 over the model directory's files (relative names and contents), sorted."""
    digest = hashlib.sha256(f"refarch-onnx-{EXPORT_FORMAT}".encode())
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_export(directory: Path) -> ExportedModel:
    """The export in ``directory``; :class:`EmbeddingError` when it is not a complete one."""
    meta_path = directory / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
        exported = ExportedModel(
            directory=directory, name=str(meta["name"]), dimension=int(meta["dimension"]),
            max_seq_length=int(meta["max_seq_length"]),
            source_checksum=str(meta["source_checksum"]),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise EmbeddingError(
            f"{directory} is not an ONNX export made by refarch ({META_FILE} missing or "
            f"unreadable: {exc}); run `refarch model export --out {directory}` to make one"
        ) from exc
    for needed in (FP32_FILE, TOKENIZER_FILE):
        if not (directory / needed).is_file():
            raise EmbeddingError(f"the ONNX export in {directory} has no {needed}; export it again")
    return exported


def cached_export(name: str, source: Path, models_dir: Path, *, precision: str) -> ExportedModel:
    """The export of model ``name`` (weights in ``source``) under ``models_dir``, made if missing.

    Making it needs torch and sentence-transformers; without them the error says what to do.
    Safe when several processes start at once (``refarch up`` starts indexers and the app
    together): one exports under a lock file while the others wait, then all read the result.
    """
    checksum = source_checksum(source)
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip("/"))[-60:]
    directory = models_dir / f"{slug}-{checksum[:16]}"
    if not (directory / META_FILE).is_file() or (
        precision == "int8" and not (directory / INT8_FILE).is_file()
    ):
        models_dir.mkdir(parents=True, exist_ok=True)
        with _locked(models_dir / ".export.lock"):
            if not (directory / META_FILE).is_file():
                staging = Path(tempfile.mkdtemp(prefix=".export-", dir=models_dir))
                try:
                    export_model(name, source, staging, checksum=checksum)
                    staging.rename(directory)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
            if precision == "int8":
                ensure_int8(read_export(directory))
    return read_export(directory)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (flock; released if the holder dies)."""
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def export_model(name: str, source: Path, out: Path, *, checksum: str | None = None) -> ExportedModel:
    """Export the sentence-transformers model in ``source`` to ONNX in ``out`` (needs torch)."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise EmbeddingError(
            f"there is no ONNX export of {name!r} yet and making one needs torch and "
            "sentence-transformers, which are not installed (they are the 'torch' install "
            "profile). Either install it once (pip install -e '.[torch]' in a clone) and run "
            "`refarch model export` (or let the first start export), or point "
            "REFARCH_ONNX_DIR at an exported model directory. "
            "REFARCH_EMBED_BACKEND=sentence-transformers needs the same profile"
        ) from None
    started = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = SentenceTransformer(str(source), device="cpu", local_files_only=True)
    model.eval()

    class _SentenceGraph(torch.nn.Module):
        """Token ids in, normalized sentence vectors out: the whole sentence-transformers stack."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            features = {
                "input_ids": input_ids, "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            vectors = self.model(features)["sentence_embedding"]
            return torch.nn.functional.normalize(vectors, p=2, dim=1)

    sample = model.tokenizer(
        ["a sample text", "a somewhat longer sample text for the export"],
        padding=True, return_tensors="pt",
    )
    args = tuple(sample[key] for key in INPUT_NAMES)
    axes = {key: {0: "batch", 1: "tokens"} for key in INPUT_NAMES}
    out.mkdir(parents=True, exist_ok=True)
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about a shape check in the pooling module that is constant here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _SentenceGraph().eval(), args, str(out / FP32_FILE),
            input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
            dynamic_axes={**axes, OUTPUT_NAME: {0: "batch"}},
            opset_version=17, do_constant_folding=True, dynamo=False,
        )
    model.tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    dimension = model.get_embedding_dimension()
    meta = {
        "name": name, "dimension": int(dimension or 0), "max_seq_length": int(model.max_seq_length or 0),
        "source_checksum": checksum or source_checksum(source), "format": EXPORT_FORMAT,
        "torch": torch.__version__,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    event(log, "onnx_exported", model=name, directory=str(out),
          seconds=round(time.perf_counter() - started, 2))
    return read_export(out)


def ensure_int8(exported: ExportedModel) -> Path:
    """The int8 (dynamically quantized) weights of ``exported``, made next to fp32 if missing."""
    target = exported.weights("int8")
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    # Weights of the matrix multiplications only, one scale per output channel: measured on
    # product texts, min cosine to fp32 0.986 (all ops, per tensor: 0.93).
    quantize_dynamic(
        str(exported.weights("fp32")), str(staging), weight_type=QuantType.QInt8,
        per_channel=True, op_types_to_quantize=["MatMul"],
    )
    staging.replace(target)
    event(log, "onnx_quantized", model=exported.name, precision="int8")
    return target
