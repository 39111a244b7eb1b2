#!/usr/bin/env python3
"""Generate kubi's compact API schema from the definitions upstream publishes.

The PyPI package `kubernetes-validate` ships Kubernetes' definitions per
release as a JSON-schema `$defs` document. This script reads the v1.33 one,
keeps only what the API server needs (types, formats, fields, required lists,
GVKs and every `x-kubernetes-*` extension), drops all prose, rewrites the
nullable `["string", "null"]` types back to the plain OpenAPI form, and writes
`src/kubi/api/data/schema-v1.33.json.gz`. Run it by hand; the output is
committed so that kubi needs neither the package nor the network at run time:

    python scripts/gen_schema.py                  # pip-downloads the wheel
    python scripts/gen_schema.py --wheel X.whl    # or reads a wheel you have
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

VERSION = "v1.33.0"
# The release of the package the committed data was generated from.
PACKAGE = "kubernetes-validate==1.37.0"
MEMBER = f"kubernetes_validate/kubernetes-json-schema/{VERSION}-local/_definitions.json"
OUTPUT = Path(__file__).resolve().parent.parent / "src/kubi/api/data/schema-v1.33.json.gz"
REF_PREFIX = "#/$defs/"

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

# Keys carried over as they are (besides the x-kubernetes-* extensions).
_PLAIN_KEYS = ("format", "required", "enum")


def compact(node: Any) -> Any:
    """One schema node in the form upstream's OpenAPI documents use, minus prose."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    if "$ref" in node:
        out["$ref"] = node["$ref"].removeprefix(REF_PREFIX)
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind:
        out["type"] = kind
    for key in _PLAIN_KEYS:
        if key in node:
            out[key] = node[key]
    if "properties" in node:
        out["properties"] = {
            name: _field(name, sub) for name, sub in sorted(node["properties"].items())
        }
    if "items" in node:
        out["items"] = compact(node["items"])
    if "additionalProperties" in node:
        out["additionalProperties"] = compact(node["additionalProperties"])
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
    return out


def _field(name: str, node: dict[str, Any]) -> Any:
    out = compact(node)
    # The package adds enums naming the one valid apiVersion and kind; upstream's
    # OpenAPI does not carry them, so neither do we.
    if name in ("apiVersion", "kind"):
        out.pop("enum", None)
    return out


def compact_definition(name: str, node: dict[str, Any]) -> Any:
    # The package spells these two as oneOf; upstream's OpenAPI has plain strings.
    if name == INT_OR_STRING:
        return {"type": "string", "format": "int-or-string"}
    if name == QUANTITY:
        return {"type": "string"}
    return compact(node)


def read_definitions(wheel: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as handle:
        definitions: dict[str, Any] = json.load(handle)["$defs"]
    return definitions


def download_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(into),
         PACKAGE],
        check=True,
    )
    return next(into.glob("kubernetes_validate-*.whl"))


def build(definitions: dict[str, Any]) -> bytes:
    doc = {
        "version": VERSION,
        "definitions": {
            name: compact_definition(name, node) for name, node in sorted(definitions.items())
        },
    }
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    # mtime=0 keeps the committed file byte-identical across runs.
    return gzip.compress(text, compresslevel=9, mtime=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a kubernetes-validate wheel already on disk")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        data = build(read_definitions(wheel))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
