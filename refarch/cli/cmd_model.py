"""``refarch model export``: the ONNX form of the embedding model, made offline from its weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from refarch.cli.args import Subparsers
from refarch.settings import EMBED_PRECISIONS, Settings


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.embeddings import resolve_model
    from refarch.onnx_model import cached_export, ensure_int8, export_model

    source = Path(resolve_model(settings.model))
    if args.out:
        exported = export_model(settings.model, source, args.out)
        if "int8" in args.precision:
            ensure_int8(exported)
    else:
        exported = cached_export(
            settings.model, source, settings.models_dir or settings.home / "models",
            precision="int8" if "int8" in args.precision else "fp32",
        )
    files = {p: str(exported.weights(p)) for p in args.precision}
    print(json.dumps({
        "model": exported.name, "directory": str(exported.directory),
        "dimension": exported.dimension, "max_seq_length": exported.max_seq_length,
        "source_checksum": exported.source_checksum, "files": files,
    }, indent=2))
    return 0


def register(subparsers: Subparsers) -> None:
    """Add ``model export``."""
    p = subparsers.add_parser("model", help="the embedding model's ONNX export")
    sub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    e = sub.add_parser(
        "export", help="export REFARCH_MODEL to ONNX (needs torch once)",
        description="Export the sentence-transformers model REFARCH_MODEL to one ONNX graph "
                    "(tokens in, normalized vectors out) that the services run with ONNX "
                    "Runtime. Without --out it goes to the cache REFARCH_MODELS_DIR "
                    "(default REFARCH_HOME/models), where the services look.",
    )
    e.add_argument("--out", type=Path, metavar="DIR",
                   help="write the export here instead (then set REFARCH_ONNX_DIR=DIR)")
    e.add_argument("--precision", choices=EMBED_PRECISIONS, action="append",
                   help="also quantize to int8 with --precision int8 (fp32 is always written)")
    e.set_defaults(func=lambda a, s: _export(_with_fp32(a), s))


def _with_fp32(args: argparse.Namespace) -> argparse.Namespace:
    args.precision = sorted({"fp32", *(args.precision or [])})
    return args
