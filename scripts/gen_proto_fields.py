#!/usr/bin/env python3
"""Generate src/kubi/api/_proto_fields.py, the schema the protobuf decoder reads.

Inputs are checkouts of k8s.io/api and k8s.io/apimachinery at v0.33.x. Each
`generated.proto` gives messages, field numbers and types; the Go structs beside
it give what the .proto cannot: the JSON name (embedded structs are a protobuf
field but inlined in JSON), pointer-ness and `omitempty`. Only data is written.

    python scripts/gen_proto_fields.py --api PATH --apimachinery PATH [-o FILE]
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# Only stable group versions are served by kubi; the alpha and beta packages
# would triple the table for objects no client will send.
_API_VERSION_DIRS = re.compile(r"^v[12]$")
_API_SKIPPED_GROUPS = {"admission", "apidiscovery", "imagepolicy"}

# apimachinery packages, with their API group/version when they have one.
_APIMACHINERY: list[tuple[str, str | None]] = [
    ("pkg/apis/meta/v1", "meta.k8s.io/v1"),
    ("pkg/api/resource", None),
    ("pkg/util/intstr", None),
    ("pkg/runtime", None),
]

# Messages whose JSON form is custom (a string, a number, raw JSON); the
# decoder converts them itself, so their Go fields carry no JSON tags.
_CUSTOM_JSON = {
    "meta.v1.Time",
    "meta.v1.MicroTime",
    "meta.v1.Duration",
    "meta.v1.FieldsV1",
    "api.resource.Quantity",
    "api.resource.QuantityValue",
    "intstr.IntOrString",
    "runtime.RawExtension",
    "runtime.Unknown",
}

# The only scalar types the Kubernetes API uses; the decoder knows no others.
_SCALARS = {"string", "bytes", "bool", "int32", "int64"}

_MESSAGE_RE = re.compile(r"^message\s+(\w+)\s*\{")
_FIELD_RE = re.compile(r"^\s*(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)")
_MAP_RE = re.compile(r"^\s*map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)")
_PACKAGE_RE = re.compile(r"^package\s+([\w.]+);", re.MULTILINE)

_STRUCT_RE = re.compile(r"^type\s+(\w+)\s+struct\s*\{", re.MULTILINE)
_SLICE_TYPE_RE = re.compile(r"^type\s+(\w+)\s+\[\](\w+)\s*$", re.MULTILINE)
_GO_FIELD_RE = re.compile(r"^\s*(?:(\w+)\s+)?([\w.*\[\]]+)\s+`([^`]*)`")
_TAG_RE = re.compile(r'(\w+):"([^"]*)"')
_GROUP_RE = re.compile(r'^const\s+GroupName\s*=\s*"([^"]*)"', re.MULTILINE)


@dataclass
class ProtoField:
    name: str
    number: int
    label: str  # "opt", "rep" or "map"
    type: str  # scalar name or fully qualified message name


@dataclass
class GoField:
    json_name: str
    omitempty: bool
    pointer: bool


def parse_proto(text: str) -> tuple[str, dict[str, list[ProtoField]]]:
    """Read the package name and every top-level message of a generated.proto."""
    package = _PACKAGE_RE.search(text)
    if package is None:
        raise SystemExit("no package statement")
    pkg = package.group(1)
    messages: dict[str, list[ProtoField]] = {}
    current: list[ProtoField] | None = None
    for line in text.splitlines():
        stripped = line.split("//", 1)[0]
        start = _MESSAGE_RE.match(stripped)
        if start:
            current = messages.setdefault(start.group(1), [])
            continue
        if current is None:
            continue
        if stripped.startswith("}"):
            current = None
            continue
        mapped = _MAP_RE.match(stripped)
        if mapped:
            key, value, name, number = mapped.groups()
            if key != "string":
                raise SystemExit(f"unsupported map key type {key}")
            current.append(ProtoField(name, int(number), "map", _qualify(value, pkg)))
            continue
        field = _FIELD_RE.match(stripped)
        if field:
            label, type_, name, number = field.groups()
            kind = "rep" if label == "repeated" else "opt"
            current.append(ProtoField(name, int(number), kind, _qualify(type_, pkg)))
    return pkg, messages


def _qualify(type_: str, pkg: str) -> str:
    if type_ in _SCALARS:
        return type_
    if type_[0].islower():
        raise SystemExit(f"unsupported scalar type {type_}")
    if type_.startswith("."):
        return type_[1:]
    return f"{pkg}.{type_}"


def parse_go_types(directory: Path) -> tuple[dict[str, dict[int, GoField]], set[str]]:
    """Collect, per Go struct, its protobuf-tagged fields; and the named slice types."""
    structs: dict[str, dict[int, GoField]] = {}
    slices: set[str] = set()
    for path in sorted(directory.glob("*.go")):
        if path.name.endswith("_test.go") or path.name.startswith(("zz_", "generated")):
            continue
        text = path.read_text()
        slices.update(m.group(1) for m in _SLICE_TYPE_RE.finditer(text))
        for match in _STRUCT_RE.finditer(text):
            body = text[match.end() : text.index("\n}", match.end())]
            structs[match.group(1)] = _struct_fields(body)
    return structs, slices


def _struct_fields(body: str) -> dict[int, GoField]:
    fields: dict[int, GoField] = {}
    for line in body.splitlines():
        if line.strip().startswith("//"):
            continue
        match = _GO_FIELD_RE.match(line)
        if not match:
            continue
        name, go_type, tag_text = match.groups()
        tags = dict(_TAG_RE.findall(tag_text))
        if "protobuf" not in tags:
            continue
        proto_parts = tags["protobuf"].split(",")
        if len(proto_parts) < 2 or not proto_parts[1].isdigit():
            continue
        json_parts = tags.get("json", "").split(",")
        json_name = json_parts[0]
        inline = "inline" in json_parts[1:]
        if not json_name and not inline:
            # An untagged field is named after the Go field itself.
            json_name = name or go_type.lstrip("*").rsplit(".", 1)[-1]
        fields[int(proto_parts[1])] = GoField(
            json_name="" if inline else json_name,
            omitempty="omitempty" in json_parts[1:],
            pointer=go_type.startswith("*"),
        )
    return fields


def alias_of(package: str) -> str:
    for prefix, short in (
        ("k8s.io.api.", ""),
        ("k8s.io.apimachinery.pkg.apis.", ""),
        ("k8s.io.apimachinery.pkg.util.", ""),
        ("k8s.io.apimachinery.pkg.", ""),
    ):
        if package.startswith(prefix):
            return short + package[len(prefix) :]
    raise SystemExit(f"unknown package {package}")


@dataclass
class Package:
    proto: Path
    go_dir: Path
    api_version: str | None


def discover(api_root: Path, machinery_root: Path) -> list[Package]:
    packages: list[Package] = []
    for group_dir in sorted(p for p in api_root.iterdir() if p.is_dir()):
        if group_dir.name in _API_SKIPPED_GROUPS:
            continue
        for version_dir in sorted(p for p in group_dir.iterdir() if p.is_dir()):
            proto = version_dir / "generated.proto"
            if not _API_VERSION_DIRS.match(version_dir.name) or not proto.exists():
                continue
            group = _GROUP_RE.search((version_dir / "register.go").read_text())
            if group is None:
                raise SystemExit(f"no GroupName in {version_dir}")
            name = group.group(1)
            api_version = f"{name}/{version_dir.name}" if name else version_dir.name
            packages.append(Package(proto, version_dir, api_version))
    for rel, machinery_version in _APIMACHINERY:
        directory = machinery_root / rel
        packages.append(Package(directory / "generated.proto", directory, machinery_version))
    return packages


def build(packages: list[Package]) -> tuple[dict[str, dict[int, tuple]], dict[str, str], list[str]]:
    table: dict[str, dict[int, tuple]] = {}
    versions: dict[str, str] = {}
    problems: list[str] = []
    for package in packages:
        pkg, messages = parse_proto(package.proto.read_text())
        alias = alias_of(pkg)
        if package.api_version:
            versions[package.api_version] = alias
        structs, slices = parse_go_types(package.go_dir)
        for message, fields in messages.items():
            key = f"{alias}.{message}"
            go_fields = structs.get(message)
            if go_fields is None and message in slices:
                # A named slice type travels as a message holding `items`,
                # but is a bare JSON array.
                table[key] = {1: ("", "rep", _ref(fields[0].type), "list")}
                continue
            entries: dict[int, tuple] = {}
            for field in fields:
                go = (go_fields or {}).get(field.number)
                if go is None:
                    if go_fields is not None and key not in _CUSTOM_JSON:
                        problems.append(f"{key}.{field.name}: no Go field")
                    go = GoField(field.name, True, False)
                presence = "ptr" if go.pointer else ("omit" if go.omitempty else "keep")
                entries[field.number] = (go.json_name, field.label, _ref(field.type), presence)
            table[key] = entries
    return table, versions, problems


def _ref(type_: str) -> str:
    if type_ in _SCALARS:
        return type_
    pkg, _, name = type_.rpartition(".")
    return f"{alias_of(pkg)}.{name}"


def render(table: dict[str, dict[int, tuple]], versions: dict[str, str]) -> str:
    out = [
        '"""Protobuf schema of the served Kubernetes API types (generated data).',
        "",
        "Written by scripts/gen_proto_fields.py from upstream k8s.io/api and",
        "k8s.io/apimachinery v0.33: the generated.proto files joined with the Go",
        "struct tags. MESSAGES maps a message to {field number: (json name, label,",
        "type, presence)}: an empty json name means the field is inlined in JSON;",
        'label is "opt", "rep" or "map" (string keys); type is a scalar or a message;',
        'presence is "ptr" (Go pointer), "omit" (omitempty) or "keep", and "list"',
        "for named slices that travel wrapped in a message. VERSIONS maps an",
        "apiVersion to the package prefix of its messages. Regenerate, do not edit.",
        '"""',
        "",
        "# fmt: off",
        "VERSIONS: dict[str, str] = {",
    ]
    out += [f"    {k!r}: {v!r}," for k, v in sorted(versions.items())]
    out += ["}", "", "MESSAGES: dict[str, dict[int, tuple[str, str, str, str]]] = {"]
    for message in sorted(table):
        out.append(f"    {message!r}: {{")
        for number, entry in sorted(table[message].items()):
            out.append(f"        {number}: {entry!r},")
        out.append("    },")
    out += ["}", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", type=Path, required=True, help="k8s.io/api checkout")
    parser.add_argument(
        "--apimachinery", type=Path, required=True, help="k8s.io/apimachinery checkout"
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("src/kubi/api/_proto_fields.py"))
    args = parser.parse_args()
    table, versions, problems = build(discover(args.api, args.apimachinery))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    args.output.write_text(render(table, versions))
    print(
        f"{len(table)} messages, {len(versions)} group versions -> {args.output}", file=sys.stderr
    )


if __name__ == "__main__":
    main()
