"""Regenerate (or check) the committed protobuf bindings of the `nri` package.

Usage:
    python tools/gen_proto.py          # rewrite *_pb2.py / *_pb2.pyi next to every .proto
    python tools/gen_proto.py --check  # exit 1 and name the stale files, write nothing

Needs grpcio-tools (it bundles protoc). Bindings are generated with the import root at
stub/src, so descriptor file names are ``nri/<pkg>/<name>.proto``.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
import tempfile
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent / "stub" / "src"


def proto_files() -> list[Path]:
    """Every .proto file of the core package, sorted for a stable order."""
    return sorted(SOURCE_ROOT.glob("nri/**/*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every .proto into ``out_dir``; return the generated paths (relative)."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    sources = [str(p.relative_to(SOURCE_ROOT)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{SOURCE_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for stub in out_dir.rglob("*_pb2.pyi"):
        stub.write_text(drop_keyword_names(stub.read_text()))
    return sorted(p.relative_to(out_dir) for p in out_dir.rglob("*_pb2.py*"))


_ANNOTATION = re.compile(r"^\s*(\w+): ")


def drop_keyword_names(stub_text: str) -> str:
    """Remove declarations whose name is a Python keyword from a generated .pyi.

    The schema's enum ``Field`` has a value named ``None``; protoc declares it as
    ``None: Field``, which is not valid Python. The value stays reachable at run time as
    ``Field.Value("None")``.
    """
    kept = []
    for line in stub_text.splitlines(keepends=True):
        match = _ANNOTATION.match(line)
        if match and keyword.iskeyword(match.group(1)):
            continue
        kept.append(line)
    return "".join(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale bindings")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        stale = []
        for rel in generate(out_dir):
            fresh = (out_dir / rel).read_bytes()
            target = SOURCE_ROOT / rel
            if target.exists() and target.read_bytes() == fresh:
                continue
            stale.append(rel)
            if not options.check:
                target.write_bytes(fresh)
    if options.check and stale:
        print("stale protobuf bindings:", *map(str, stale), file=sys.stderr)
        return 1
    for rel in stale:
        print(f"regenerated {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
