"""Run every benchmark (bench/bench_*.py) and print their tables.

Usage: python bench/run.py [--json FILE] [NAME ...]   e.g. `tox -e bench -- protocol`

With ``--json FILE`` every table is also written to FILE as one JSON document:
``{"python": ..., "tables": [{"script", "title", "rows": [...]}, ...], "failed": [...]}``.
Rows of benchmarks with a target carry ``target`` and ``met`` ("yes" or "NO").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write results as JSON")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    options = parser.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if options.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in options.names]
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        record = Path(tmp) / "tables.jsonl"
        if options.json is not None:
            env["NRI_BENCH_JSON"] = str(record)
        for script in scripts:
            print(f"== {script.stem}", flush=True)
            if subprocess.run([sys.executable, str(script)], check=False, env=env).returncode:
                failed.append(script.stem)
        if options.json is not None:
            lines = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
            document = {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "tables": [json.loads(line) for line in lines],
                "failed": failed,
            }
            options.json.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
            print(f"\nresults written to {options.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
