"""The layering DESIGN.md promises, checked from the source: vae/ is the library under the app and never reaches
up into it (no Streamlit, no ui/, even inside a function); its modules import each other without a cycle; the
configuration loads no torch and training loads none of the explorer; and the page table (ui/pages.py) is the one
list of pages: each is a file in app_pages/, no legacy pages/ folder sits beside app.py, and the browser tests'
expectations name exactly its pages.

The vae/ checks walk the whole tree (every vae/**/*.py, read with `ast`), so a new module is checked without
editing this file.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.support import DRAWN
from ui.pages import FOLDER, PAGES

# What vae/ must never import: the app above it.
APP_SIDE = ("streamlit", "ui")
# The explorer's side, which training never needs: what a model does to latent points, the maps and their
# sklearn/UMAP machinery, the numbers the pages show about a finished model. The one place that names them.
EXPLORER_SIDE = ("vae.latent", "vae.projections", "vae.export", "vae.inputs", "vae.anatomy", "vae.diagnostics",
                 "vae.estimators", "vae.compare", "vae.derived", "vae.reproduce", "streamlit", "sklearn", "umap",
                 "scipy")
# `import <module>` alone, in a fresh interpreter, must not load these (a name covers its submodules).
MUST_NOT_LOAD = {
    "vae.config": ("torch",),  # the CLI's help and the Train page's form are built from it before torch loads
    "vae.train": EXPLORER_SIDE,
}


# -- reading vae/ ------------------------------------------------------------------------------------
def package_modules(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module in the package; a package's __init__.py is the package itself."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def run_on_import(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node a module executes when it is imported: all but function bodies (a class body runs) and
    `if TYPE_CHECKING:` blocks."""
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def imports(node: ast.AST, module: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    """The modules an import statement (or an importlib.import_module / __import__ call with a literal name)
    loads, relative imports resolved against `module`; `from a import b` names a.b where that is a module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[:len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module
        found = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
        return found if len(found) == len(node.names) else [base, *found]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def parsed(modules: dict[str, Path]) -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(), filename=str(path)) for name, path in modules.items()}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package's modules it imports when it is imported (module-level imports only)."""
    graph = {}
    for name, tree in parsed(modules).items():
        is_package = modules[name].name == "__init__.py"
        graph[name] = {target for node in run_on_import(tree) for target in imports(node, name, is_package, modules)
                       if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One closed path (first module repeated at the end) through each strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while (w := stack.pop()) != v:
                group.add(w)
            groups.append(group | {v})

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_closed_path(graph, group) for group in groups if len(group) > 1]


def _closed_path(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    start = min(group)
    paths = {start: [start]}
    todo = [start]
    while todo:  # breadth first inside the group, back to the start
        v = todo.pop(0)
        for w in sorted(graph[v] & group):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                todo.append(w)
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")


def loaded_by(repo: Path, module: str) -> tuple[set[str], list[str]]:
    """What `import <module>` loads in a fresh interpreter in the repository: every module's name, and the
    -X importtime lines (stderr) that show who imported whom."""
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=repo, capture_output=True,
                          text=True, timeout=120)
    timing = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert done.returncode == 0, "\n".join(line for line in done.stderr.splitlines() if line not in timing)[-3000:]
    return set(done.stdout.split()), timing


def import_chain(importtime: list[str], target: str) -> list[str]:
    """Who imported `target` first: [the module asked for, ..., target], read from -X importtime's lines (each
    module is printed after its imports, indented two spaces per level)."""
    entries = []
    for line in importtime[1:]:  # the first line is the header
        name = line.rsplit("|", 1)[1]
        entries.append((len(name) - len(name.lstrip()), name.strip()))
    at = next((i for i, (_, name) in enumerate(entries) if name == target), None)
    if at is None:  # loaded without the import system (a built-in, or set into sys.modules by hand)
        return [target]
    chain, level = [target], entries[at][0]
    for depth, name in entries[at + 1:]:
        if depth < level:
            chain.append(name)
            level = depth
    return chain[::-1]


def _covers(names: tuple[str, ...], module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in names)


# -- vae/ ------------------------------------------------------------------------------------------
def test_vae_never_imports_streamlit_or_ui_anywhere(repo):
    modules = package_modules(repo / "vae")
    found = []
    for name, tree in parsed(modules).items():
        is_package = modules[name].name == "__init__.py"
        for node in ast.walk(tree):  # every import, inside functions too
            found += [f"{modules[name].relative_to(repo)}:{node.lineno} imports {target}"
                      for target in imports(node, name, is_package, modules) if _covers(APP_SIDE, target)]
    assert not found, "vae/ is the library under the app; it must not import the app:\n" + "\n".join(found)


def test_vae_has_no_import_cycle(repo):
    found = cycles(import_graph(package_modules(repo / "vae")))
    assert not found, "import cycles among vae/'s module-level imports:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("module", sorted(MUST_NOT_LOAD))
def test_importing_a_module_alone_loads_only_what_it_needs(repo, module):
    loaded, importtime = loaded_by(repo, module)
    unwanted = sorted(name for name in loaded if _covers(MUST_NOT_LOAD[module], name))
    firsts = [name for name in unwanted if not _covers(tuple(u for u in unwanted if u != name), name)]
    assert not firsts, f"`import {module}` loads {', '.join(firsts)}:\n" + "\n".join(
        " -> ".join(import_chain(importtime, name)) for name in firsts)


# -- ui/figures/ ------------------------------------------------------------------------------------
def test_the_figure_builders_never_import_streamlit(repo):
    """ui/figures/ turns arrays into Plotly figures: built without a page, testable alone, shared between
    sessions. The Streamlit composites that show them live beside it in ui/."""
    modules = package_modules(repo / "ui" / "figures")
    found = [f"{modules[name].relative_to(repo)}:{node.lineno} imports {target}"
             for name, tree in parsed(modules).items() for node in ast.walk(tree)
             for target in imports(node, name, modules[name].name == "__init__.py", modules)
             if _covers(("streamlit",), target)]
    assert modules and not found, "a figure builder imports streamlit:\n" + "\n".join(found)


# -- the page table ------------------------------------------------------------------------------------
def test_every_page_of_the_table_is_a_file_and_every_page_file_is_in_the_table(repo):
    names = [p.name for p in PAGES]
    assert len(set(names)) == len(names), f"a page is listed twice: {names}"
    assert [p.name for p in PAGES if p.default] == ["latent_space"], "one page is served at the root"
    missing = [p.path for p in PAGES if not (repo / p.path).is_file()]
    assert not missing, f"ui/pages.py lists pages that have no file: {missing}"
    files = {path.stem for path in (repo / FOLDER).glob("*.py") if not path.name.startswith("_")}
    assert files == set(names), f"files in {FOLDER}/ that are not in ui/pages.py: {sorted(files - set(names))}"


def test_no_pages_folder_beside_app_py(repo):
    """A folder named pages/ beside app.py puts Streamlit in its legacy multipage mode until the first
    st.navigation() call of the process, which breaks a deep link opened first on a fresh server (the browser
    test of that is tests/browser/test_pages.py's deep-link test)."""
    assert (repo / "app.py").is_file()
    assert not (repo / "pages").exists(), "a pages/ folder beside app.py switches Streamlit to legacy mode"


def test_the_browser_tests_expect_something_of_exactly_the_tables_pages():
    assert list(DRAWN) == [p.name for p in PAGES]  # the same names, in the navigation's order
