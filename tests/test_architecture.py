"""The house's arrows point one way: every import of the project, read with `ast` (function-level imports too),
goes from a higher floor to a lower one or stays on its floor, and no module reaches itself through others.

    kernels < explorer.networks < explorer.formats < explorer core (render, state, worker, export, analysis, ...)
            < explorer.controller < explorer.commands, explorer.remote, renderer < widgets < explorer.cli
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kernels", "explorer", "renderer", "widgets")

# Floors, lowest first; a module's floor is that of its longest matching prefix.
FLOORS = {
    "kernels": 0,
    "explorer.networks": 1,
    "explorer.formats": 2,
    "explorer": 3,
    "explorer.controller": 4,
    "explorer.commands": 5,
    "explorer.remote": 5,
    "renderer": 5,
    "widgets": 6,
    "explorer.cli": 7,
    "explorer.__main__": 8,
}
ENTRY_POINT = "explorer.cli"


def floor(module: str) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in FLOORS:
            return FLOORS[prefix]
    raise AssertionError(f"{module} is on no floor")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            names = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            # The module itself, or the deepest project module that contains the imported name.
            parts = name.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in known:
                    if candidate != module:
                        found.add(candidate)
                    break
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {module: imports_of(module, path, known) for module, path in modules.items()}


def test_every_module_is_on_a_floor():
    for module in project_modules():
        floor(module)


def test_no_import_goes_up_a_floor():
    upward = [f"{a} (floor {floor(a)}) imports {b} (floor {floor(b)})" for a, targets in graph().items()
              for b in sorted(targets) if floor(b) > floor(a)]
    assert not upward, "\n".join(upward)


def test_nothing_imports_the_entry_point_and_only_it_reaches_the_gui():
    edges = graph()
    assert not [a for a, targets in edges.items() if ENTRY_POINT in targets and a != "explorer.__main__"]
    gui = [f"{a} imports {b}" for a, targets in edges.items() if a.startswith("explorer") and a != ENTRY_POINT
           and a != "explorer.__main__" for b in targets if b.startswith(("renderer", "widgets"))]
    assert not gui, "\n".join(gui)


def test_kernels_import_nothing_of_ours():
    assert not [b for a, targets in graph().items() if a.startswith("kernels")
                for b in targets if not b.startswith("kernels")]


def find_cycles(edges: dict[str, set[str]], packages: set[str]) -> list[str]:
    """Each import cycle found, as 'a -> b -> a'. A package's __init__ importing its own submodules is how a
    package shows its parts, not a cycle through the house: the submodules must still not import it back."""
    state: dict[str, int] = {}        # 1: on the current path, 2: done
    cycles = []

    def visit(module, path):
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if module in packages and target.startswith(module + "."):
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif state.get(target) is None:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if state.get(module) is None:
            visit(module, [module])
    return cycles


def test_the_imports_have_no_cycle():
    packages = {m for m, path in project_modules().items() if path.name == "__init__.py"}
    cycles = find_cycles(graph(), packages)
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_a_planted_upward_import_and_cycle(tmp_path):
    """The reader itself: relative imports resolve, and both kinds of mistake are caught."""
    package = tmp_path / "explorer"
    (package / "networks").mkdir(parents=True)
    (package / "networks" / "__init__.py").write_text("")
    (package / "networks" / "a.py").write_text("def f():\n    from ..controller import Controller\n")
    (package / "controller.py").write_text("from .networks import a\n")
    known = {"explorer.networks", "explorer.networks.a", "explorer.controller"}
    found = imports_of("explorer.networks.a", package / "networks" / "a.py", known)
    assert found == {"explorer.controller"} and floor("explorer.controller") > floor("explorer.networks.a")
    back = imports_of("explorer.controller", package / "controller.py", known)
    assert back == {"explorer.networks", "explorer.networks.a"}
    edges = {"explorer.networks.a": found, "explorer.controller": back, "explorer.networks": set()}
    assert find_cycles(edges, {"explorer.networks"}) == ["explorer.controller -> explorer.networks.a -> "
                                                         "explorer.controller"]
