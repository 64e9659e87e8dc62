"""Every code example in a README and in a public docstring is executed or checked.

Conventions (also in docs/examples.rst):

- Markdown: fenced blocks with a language. reST (docstrings, docs/*.rst): ``::`` blocks are
  Python (as Sphinx highlights them); other languages use ``.. code-block:: LANG``.
- ``python``: a complete program, run in an empty temporary directory with a fresh
  interpreter and must exit 0. A block that defines ``test_*`` functions is run by pytest,
  with the ``nri`` fixtures (``nri_runtime`` is a mock runtime). A plugin program (it calls
  ``run(...)`` under ``if __name__ == "__main__":``) is launched as a plugin command against
  the mock runtime, which creates a container through it. A block of ``>>>`` lines is
  an interactive session, run with doctest.
- ``python fragment`` (docstrings: ``.. code-block:: python`` with ``:class: fragment``):
  a piece that cannot run alone, e.g. a handler body; it is only compiled. Use sparingly.
- ``yaml``, ``json``, ``toml``: must parse.
- ``sh``, ``shell``, ``bash``, ``console``: commands for a real node (installing, systemd,
  containerd), not run here; they must be valid shell, and each ``nri-*`` command they start
  must be a command some package of this repository declares.
- no language, ``text``: output, not checked.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import json
import os
import pkgutil
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
READMES = ("README.md", "stub/README.md", "plugins/*/README.md", "deploy/README.md", "docs/*.md")
OUTPUT = {"", "text", "output"}
SHELL = {"sh", "shell", "bash", "console"}
DATA = {"yaml", "yml", "json", "toml"}
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S
)
DIRECTIVE = re.compile(r"^\.\. code-block::\s*(?P<lang>\S+)\s*$")


@dataclass(frozen=True)
class Example:
    """One code example: where it is, its language, its flags and its text."""

    where: str
    lang: str
    flags: frozenset[str]
    code: str
    module: str = ""  # the module whose docstring holds it: a doctest's globals


def _markdown_examples() -> Iterator[Example]:
    for pattern in READMES:
        for path in sorted(REPO.glob(pattern)):
            text = path.read_text()
            for m in FENCE.finditer(text):
                lang, *flags = m["info"].split() or [""]
                line = text.count("\n", 0, m.start()) + 1
                body = "\n".join(ln.removeprefix(m["indent"]) for ln in m["body"].splitlines())
                where = f"{path.relative_to(REPO)}:{line}"
                yield Example(where, lang.lower(), frozenset(flags), body + "\n")


def _public_modules() -> Iterator[str]:
    roots = [("nri", REPO / "stub" / "src" / "nri")]
    for src in sorted(REPO.glob("plugins/*/src")):
        roots += [(p.name, p) for p in sorted(src.iterdir()) if (p / "__init__.py").exists()]
    for name, path in roots:
        yield name
        for info in pkgutil.walk_packages([str(path)], prefix=name + "."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                yield info.name


IMPORT_ERRORS: list[str] = []


def _documented(obj: object) -> bool:
    """Whether ``obj`` carries its own docstring (values such as strings do not)."""
    return (
        inspect.isclass(obj)
        or inspect.isroutine(obj)
        or isinstance(obj, (property, classmethod, staticmethod))
    )


def _docstrings() -> Iterator[tuple[str, str, str]]:
    """(module, qualified name, docstring) of public modules and of the names they export."""
    seen: set[int] = set()
    for modname in _public_modules():
        try:
            module = importlib.import_module(modname)
        except Exception as exc:  # failed by test_public_modules_import, not at collection
            IMPORT_ERRORS.append(f"{modname}: {type(exc).__name__}: {exc}")
            continue
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n, v in vars(module).items() if getattr(v, "__module__", "") == modname]
        objects: list[tuple[str, object]] = [(modname, module)]
        for n in names:
            obj = getattr(module, n)
            if n.startswith("_") or not _documented(obj):
                continue
            objects.append((f"{modname}.{n}", obj))
            if inspect.isclass(obj):
                objects += [
                    (f"{modname}.{n}.{a}", v)
                    for a, v in vars(obj).items()
                    if not a.startswith("_") and _documented(v)
                ]
        for qualname, obj in objects:
            doc = obj.__doc__ if inspect.ismodule(obj) else inspect.getdoc(obj)
            if isinstance(doc, str) and id(doc) not in seen and "::" in doc:
                seen.add(id(doc))
                yield modname, qualname, inspect.cleandoc(doc)


def _rest_blocks(name: str, doc: str, module: str = "") -> Iterator[Example]:
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        directive = DIRECTIVE.match(stripped)
        if not directive and (not stripped.endswith("::") or stripped.startswith("..")):
            continue  # not a literal block, or another directive (toctree, automodule, ...)
        base = len(line) - len(line.lstrip())
        lang = directive["lang"] if directive else "python"
        flags: set[str] = set()
        body: list[str] = []
        for follow in lines[i + 1 :]:
            indent = len(follow) - len(follow.lstrip())
            if follow.strip() and indent <= base:
                break
            option = re.match(r"\s*:class:\s*(.*)", follow)
            if directive and not body and option:
                flags.update(option[1].split())
                continue
            body.append(follow)
        code = inspect.cleandoc("\n".join(body))
        if code:
            line_no = i + 1
            where = (
                f"{name}:{line_no}"
                if name.endswith(".rst")
                else f"{name} (docstring line {line_no})"
            )
            yield Example(where, lang, frozenset(flags), code + "\n", module)


def collect() -> list[Example]:
    """Every example of the READMEs, the docs pages and the public docstrings."""
    examples = list(_markdown_examples())
    for path in sorted(REPO.glob("docs/*.rst")):
        examples += _rest_blocks(str(path.relative_to(REPO)), path.read_text())
    for module, qualname, doc in _docstrings():
        examples += _rest_blocks(qualname, doc, module)
    return examples


def _declared_commands() -> set[str]:
    commands: set[str] = set()
    for path in [REPO / "stub" / "pyproject.toml", *REPO.glob("plugins/*/pyproject.toml")]:
        project = tomllib.loads(path.read_text()).get("project", {})
        commands.update(project.get("scripts", {}))
    return commands


def run_command(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in ``cwd`` with this interpreter's commands on PATH (two minutes at most)."""
    # Commands of the installed packages live beside this interpreter.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PATH": path},
    )


PLUGIN_DRIVER = """
import sys


def test_plugin_example_answers_a_container_creation(nri_runtime):
    nri_runtime.launch_plugin(f"{sys.executable} example.py --idx 10 --name example")
    pod = nri_runtime.run_pod("web")
    nri_runtime.create_container(pod, "app", args=["sleep", "inf"])
"""


def _is_plugin_program(code: str) -> bool:
    return 'if __name__ == "__main__":' in code and re.search(r"\brun\(", code) is not None


def check_doctest(example: Example) -> None:
    """Run an interactive-session example (``>>>`` lines) with doctest."""
    globs = dict(vars(importlib.import_module(example.module))) if example.module else {}
    test = doctest.DocTestParser().get_doctest(example.code, globs, example.where, None, 0)
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=out.append)
    assert not result.failed, f"{example.where} failed:\n{''.join(out)}"


def check_python(example: Example, tmp: Path) -> None:
    """Run (or for a fragment, compile) a Python example; fail with its output."""
    if example.code.lstrip().startswith(">>>"):
        check_doctest(example)
        return
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if "fragment" in example.flags else 0
    compile(example.code, example.where, "exec", flags=flags)
    if "fragment" in example.flags:
        return
    if re.search(r"^def test_", example.code, re.M):
        (tmp / "test_example.py").write_text(example.code)
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
    elif _is_plugin_program(example.code):
        (tmp / "example.py").write_text(example.code)
        (tmp / "test_example.py").write_text(PLUGIN_DRIVER)
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
    else:
        (tmp / "example.py").write_text(example.code)
        args = [sys.executable, "example.py"]
    done = run_command(args, tmp)
    assert done.returncode == 0, f"{example.where} failed:\n{done.stdout}{done.stderr}"


def check_data(example: Example) -> None:
    """Parse a data example."""
    if example.lang in ("yaml", "yml"):
        list(yaml.safe_load_all(example.code))
    elif example.lang == "json":
        json.loads(example.code)
    else:
        tomllib.loads(example.code)


def check_shell(example: Example) -> None:
    """Check a shell example's syntax and the nri-* commands it starts."""
    lines = example.code.splitlines()
    if example.lang == "console":
        lines = [ln.removeprefix("$ ") for ln in lines if ln.startswith("$ ")]
    script = "\n".join(lines) + "\n"
    done = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{example.where}: not valid shell: {done.stderr}"
    declared = _declared_commands()
    for line in script.replace("\\\n", " ").splitlines():
        for command in re.split(r"&&|\|\||[|;]", line):
            try:
                words = shlex.split(command, comments=True)
            except ValueError:
                continue
            while words and (words[0] in ("sudo", "exec", "env") or "=" in words[0]):
                words = words[1:]
            if words and words[0].startswith("nri-"):
                assert words[0] in declared, f"{example.where}: no package declares {words[0]}"


EXAMPLES = collect()


def test_public_modules_import() -> None:
    assert not IMPORT_ERRORS, "\n".join(IMPORT_ERRORS)


def test_examples_found() -> None:
    where = {e.where.split(":")[0] for e in EXAMPLES}
    assert "README.md" in where
    assert any(e.where.startswith("nri.api ") for e in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_example(example: Example, tmp_path: Path) -> None:
    if example.lang == "python":
        check_python(example, tmp_path)
    elif example.lang in DATA:
        check_data(example)
    elif example.lang in SHELL:
        check_shell(example)
    else:
        assert example.lang in OUTPUT, (
            f"{example.where}: example language {example.lang!r} has no check; "
            f"use one of python, {', '.join(sorted(DATA | SHELL))} or text"
        )


def test_rest_blocks_follow_the_conventions() -> None:
    doc = inspect.cleandoc(
        """Intro::

            print("python by default")

        .. toctree::

           not-an-example

        .. code-block:: python
           :class: fragment

           return adjust

        .. code-block:: yaml

           a: 1
        """
    )
    found = [(e.lang, sorted(e.flags), e.code) for e in _rest_blocks("m", doc)]
    assert found == [
        ("python", [], 'print("python by default")\n'),
        ("python", ["fragment"], "return adjust\n"),
        ("yaml", [], "a: 1\n"),
    ]


def test_checks_reject_what_would_rot(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no package declares nri-nonexistent"):
        check_shell(Example("x", "sh", frozenset(), "sudo nri-nonexistent --idx 10\n"))
    with pytest.raises(AssertionError, match="NameError"):
        check_python(Example("x", "python", frozenset(), "undefined_name\n"), tmp_path)
    with pytest.raises(SyntaxError):
        check_python(Example("x", "python", frozenset(["fragment"]), "def (\n"), tmp_path)
    check_python(Example("x", "python", frozenset(["fragment"]), "await x\n"), tmp_path)
    with pytest.raises(AssertionError, match="Expected"):
        check_python(Example("x", "python", frozenset(), ">>> 1 + 1\n3\n"), tmp_path)
    with pytest.raises(yaml.YAMLError):
        check_data(Example("x", "yaml", frozenset(), "a: [\n"))
