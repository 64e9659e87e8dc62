"""The documented ``allow`` examples of an injector plugin, for its tests to load."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["ALLOW_SECTION", "allow_example"]

ALLOW_SECTION = "Restricting who may request injection"
"""The heading of the README section documenting a plugin's ``allow`` configuration."""


def allow_example(path: str | Path) -> str:
    """The ``allow`` example documented in ``path``, as YAML text.

    For a README (``.md``): the one ``yaml`` block of its :data:`ALLOW_SECTION` section. For a
    sample configuration: its commented-out block from the line ``# allow:`` on, with the
    leading comment marker of each line removed.
    Raises AssertionError when there is none (or, in a README, more than one).
    """
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".md":
        heading = f"\n## {ALLOW_SECTION}\n"
        assert heading in text, f"{path}: no section {ALLOW_SECTION!r}"
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        blocks = re.findall(r"^```yaml\n(.*?)^```", section, re.S | re.M)
        assert len(blocks) == 1, f"{path}: {len(blocks)} yaml examples in {ALLOW_SECTION!r}"
        return str(blocks[0])
    start = text.find("\n# allow:")
    assert start >= 0, f"{path}: no commented-out '# allow:' example"
    lines = []
    for line in text[start + 1 :].splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.removeprefix("#").removeprefix(" "))
    return "\n".join(lines) + "\n"
