#!/usr/bin/env python3
"""Regenerate capstan.api (protobuf messages, gRPC stubs, .pyi stubs) from protos/.

Run with --check in CI: it generates into a scratch folder and fails if the committed
code differs, so the contract in protos/ and the code that implements it never drift.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT_PACKAGE = ROOT / "libs" / "capstan" / "api"
HEADER = '"""Generated from protos/ by tools/gen_api.py. Do not edit."""\n'


def proto_files() -> list[Path]:
    return sorted(p.relative_to(PROTOS) for p in PROTOS.rglob("*.proto"))


def generate(out_root: Path) -> Path:
    """Generate into out_root/capstan/api and return that folder."""
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *[str(p) for p in proto_files()],
    ]
    subprocess.run(cmd, check=True, env=env)
    api = out_root / "capstan" / "api"
    for folder in [api, *[p for p in api.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").write_text(HEADER)
    (api / "py.typed").write_text("")
    return api


def differences(a: Path, b: Path) -> list[str]:
    out: list[str] = []
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    out += [f"only in committed: {x}" for x in cmp.left_only]
    out += [f"missing from committed: {x}" for x in cmp.right_only]
    for name in cmp.common_files:
        if (a / name).read_bytes() != (b / name).read_bytes():
            out.append(f"differs: {a / name}")
    for sub in cmp.common_dirs:
        out += differences(a / sub, b / sub)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        if args.check:
            diff = differences(OUT_PACKAGE, fresh) if OUT_PACKAGE.exists() else ["not generated"]
            for line in diff:
                print(line, file=sys.stderr)
            if diff:
                print("capstan.api is stale: run python tools/gen_api.py", file=sys.stderr)
                return 1
            print("capstan.api is up to date")
            return 0
        if OUT_PACKAGE.exists():
            shutil.rmtree(OUT_PACKAGE)
        shutil.copytree(fresh, OUT_PACKAGE)
    print(f"generated {len(proto_files())} proto files into {OUT_PACKAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
