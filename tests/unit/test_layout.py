"""The package's modules import each other one way, down the layers of its architecture.

From the bottom: the core (records, errors, policy, options: no I/O) -> ``_files`` (a job's
inputs, the multipart body, downloads) -> ``_http`` (the aiohttp transport and what it uses) ->
the client (``_client``, ``_run_job``) -> ``_sync`` (`JobsClient`) -> the batch (``batch``,
``_batch``, the progress bars) -> the emulator (``testing``) -> the command line. A module
imports only from its own layer and those below it, at the top or inside a function; the few
lazy imports upward are listed in `LAZY_UPWARD`, with their reason, and stay lazy. The command
line's own order is checked by ``test_cli_layout.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import unstructured_jobs

PACKAGE = Path(unstructured_jobs.__file__).parent
P = "unstructured_jobs"

CORE = {
    f"{P}.{m}"
    for m in (
        "_constants",
        "_version",
        "_secret",
        "_clock",
        "_exceptions",
        "_models",
        "_converter",
        "_core",
        "_options",
        "paths",
    )
}
LAYERS: list[tuple[str, set[str], tuple[str, ...]]] = [
    # (name, modules, packages whose every module is in the layer)
    ("core", CORE, ()),
    ("files", set(), (f"{P}._files",)),
    ("http", set(), (f"{P}._http",)),
    ("client", {f"{P}._client", f"{P}._run_job", f"{P}._notifications"}, ()),
    ("sync", {P}, (f"{P}._sync",)),  # the package itself: its public names include JobsClient
    ("batch", {f"{P}.batch", f"{P}._bars"}, (f"{P}._batch",)),
    ("testing", set(), (f"{P}.testing",)),
    (
        "cli",
        {f"{P}.cli", f"{P}.__main__", f"{P}._output", f"{P}._exit_codes", f"{P}._demo"},
        (f"{P}._commands",),
    ),
]
"""Bottom first."""

LAZY_UPWARD = {
    (f"{P}._client", f"{P}._bars"): "progress=True: the bars (and tqdm) only when asked",
    (f"{P}._run_job", f"{P}._bars"): "progress=True: the bars (and tqdm) only when asked",
    (f"{P}._run_job", f"{P}._batch.manifest"): "unique_name: output names as a batch makes them",
}
"""The only imports upward: each inside a function (or for type checking only)."""


def _file(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> set[str]:
    return {_name(p) for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(module: str) -> dict[str, bool]:
    """The package modules `module` imports, each with whether it is imported when the module
    is (at its top, not inside a function or under ``if TYPE_CHECKING``)."""
    path = _file(module)
    base = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, bool] = {}

    def add(target: str, eager: bool) -> None:
        found[target] = found.get(target, False) or eager

    def visit(node: ast.AST, eager: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(P):
                    add(alias.name, eager)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
                target = f"{parent}.{node.module}" if node.module else parent
            elif (node.module or "").startswith(P):
                target = node.module or ""
            else:
                return
            for alias in node.names:  # `from . import batch`: a module, not a name
                submodule = f"{target}.{alias.name}"
                add(submodule if _file(submodule).exists() else target, eager)
        for child in ast.iter_child_nodes(node):
            lazy = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or (
                isinstance(node, ast.If) and _is_type_checking(node) and child in node.body
            )
            visit(child, eager and not lazy)

    visit(ast.parse(path.read_text(encoding="utf-8")), True)
    return found


def layer_of(module: str) -> int:
    """The index in `LAYERS` of the one layer that holds `module`."""
    found = [
        i
        for i, (_, modules, packages) in enumerate(LAYERS)
        if module in modules or any(module == p or module.startswith(p + ".") for p in packages)
    ]
    assert len(found) == 1, f"{module} is in {len(found)} layers: give it one in LAYERS"
    return found[0]


def test_every_module_has_its_layer() -> None:
    modules = _modules()
    assert len(modules) >= 60
    for module in modules:
        layer_of(module)
    for _, named, _ in LAYERS:
        assert named <= modules, f"no such module: {named - modules}"


def test_the_package_imports_one_way() -> None:
    upward: set[tuple[str, str]] = set()
    for module in sorted(_modules()):
        here = layer_of(module)
        for target, eager in imports(module).items():
            there = layer_of(target)
            if there <= here:
                continue
            edge = (module, target)
            name = LAYERS[here][0]
            assert edge in LAZY_UPWARD, f"{module} ({name}) imports {target} ({LAYERS[there][0]})"
            assert not eager, f"{module} imports {target} when imported: {LAZY_UPWARD[edge]}"
            upward.add(edge)
    assert upward == set(LAZY_UPWARD), f"not imported any more: {set(LAZY_UPWARD) - upward}"


def test_the_core_imports_only_the_core() -> None:
    """Records, errors and policy know nothing of files, HTTP, clients or the batch."""
    for module in CORE:
        outside = set(imports(module)) - CORE
        assert not outside, f"{module} imports {outside}"


def test_only_the_command_line_imports_its_commands() -> None:
    commands = {m for m in _modules() if m.startswith(f"{P}._commands")}
    cli = LAYERS[-1][1] | commands
    for module in _modules() - cli:
        found = set(imports(module)) & commands
        assert not found, f"{module} imports {found}"
    assert f"{P}._commands" in imports(f"{P}.cli")


def test_the_checker_sees_lazy_and_relative_imports() -> None:
    found = imports(f"{P}._client")
    assert found[f"{P}._http.transport"] is True
    assert found[f"{P}._bars"] is False  # inside a function, and under TYPE_CHECKING
    assert found[f"{P}._core"] is True  # `from . import _core, _run_job`
    assert imports(f"{P}._files.downloads")[f"{P}._core"] is True  # `from .. import _core`
