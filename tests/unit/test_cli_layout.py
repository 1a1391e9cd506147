"""The command line's modules import each other one way, like the layers of gh or httpie.

``__main__`` -> ``cli`` (parsing, errors, exit statuses) -> ``_commands`` (the registry) -> one module per
command -> the shared helpers of ``_commands`` (in the order of `HELPERS`) -> ``_output`` and
``_exit_codes``, which import nothing of the package. Command modules never import each other,
and nothing outside the command line imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import unstructured_jobs

PACKAGE = Path(unstructured_jobs.__file__).parent
CLI_PACKAGE = "unstructured_jobs._commands"
HELPERS = [
    f"{CLI_PACKAGE}._report",
    f"{CLI_PACKAGE}._common",
    f"{CLI_PACKAGE}._progress",
    f"{CLI_PACKAGE}._types",
]
"""The helper modules of `_commands`, each importing only those after it."""
BOTTOM = {"unstructured_jobs._output", "unstructured_jobs._exit_codes"}


def _file(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> list[str]:
    return sorted(_name(p) for p in PACKAGE.rglob("*.py"))


def imports(module: str) -> set[str]:
    """The package modules `module` imports, at the top or inside functions."""
    path = _file(module)
    base = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("unstructured_jobs")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
                target = f"{parent}.{node.module}" if node.module else parent
            elif (node.module or "").startswith("unstructured_jobs"):
                target = node.module or ""
            else:
                continue
            for alias in node.names:  # `from . import batch`: a module, not a name
                submodule = f"{target}.{alias.name}"
                found.add(submodule if _file(submodule).exists() else target)
    return found


def _commands() -> set[str]:
    folder = PACKAGE / "_commands"
    return {f"{CLI_PACKAGE}.{p.stem}" for p in folder.glob("*.py") if not p.stem.startswith("_")}


def test_every_helper_has_its_place() -> None:
    folder = PACKAGE / "_commands"
    helpers = {f"{CLI_PACKAGE}.{p.stem}" for p in folder.glob("_*.py") if p.stem != "__init__"}
    assert helpers == set(HELPERS)


def test_the_command_line_imports_one_way() -> None:
    commands = _commands()
    assert len(commands) >= 10
    layers: list[set[str]] = [
        {"unstructured_jobs.__main__"},
        {"unstructured_jobs.cli"},
        {CLI_PACKAGE},
        commands,
        *({h} for h in HELPERS),
        BOTTOM,
    ]
    cli_modules = set().union(*layers)
    for i, layer in enumerate(layers):
        above = set().union(*layers[:i])
        for module in layer:
            found = imports(module)
            assert not found & above, f"{module} imports {found & above}, above it"
            if layer is commands:
                assert not found & (commands - {module}), f"{module} imports another command"
    assert {CLI_PACKAGE} <= imports("unstructured_jobs.cli")
    assert commands <= imports(CLI_PACKAGE)
    for module in BOTTOM:
        assert not {m for m in imports(module) if m.startswith("unstructured_jobs")}, module
    for module in set(_modules()) - cli_modules:
        assert not imports(module) & cli_modules, f"{module} imports the command line"
