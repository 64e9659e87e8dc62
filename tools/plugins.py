"""Act on every in-tree plugin package (each ``plugins/<name>/`` with a ``pyproject.toml``).

Usage:
    python tools/plugins.py list            print the plugin directories
    python tools/plugins.py install [ARGS]  pip install them all into this interpreter
    python tools/plugins.py mypy [ARGS]     type-check every plugins/<name>/src

tox.ini runs it, so a plugin directory added to the tree is installed, tested and
type-checked without editing tox.ini. Extra ARGS go to pip or mypy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"


def plugin_dirs() -> list[Path]:
    """Every plugin package directory, sorted by name."""
    return sorted(p.parent for p in PLUGINS.glob("*/pyproject.toml"))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("list", "install", "mypy"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, extra = argv[0], argv[1:]
    dirs = plugin_dirs()
    if not dirs:
        print(f"tools/plugins.py: no plugin packages under {PLUGINS}", file=sys.stderr)
        return 1
    if command == "list":
        print("\n".join(str(d.relative_to(ROOT)) for d in dirs))
        return 0
    if command == "install":
        packages = [f"./{d.relative_to(ROOT)}" for d in dirs]
        args = [sys.executable, "-m", "pip", "install", "--quiet", *extra, *packages]
    else:
        sources = [str((d / "src").relative_to(ROOT)) for d in dirs if (d / "src").is_dir()]
        args = [sys.executable, "-m", "mypy", *extra, *sources]
    print(" ".join(["python", *args[1:]]), flush=True)
    return subprocess.run(args, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
