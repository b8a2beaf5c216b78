"""setup.sh's decisions, run for real by bash against stand-ins for apt, dpkg, sudo, nvidia-smi and Python.

The stand-ins record every call, so each test reads what setup.sh did: which Debian packages it installed, how it
made .venv, whether and how it installed torch. Nothing is installed and nothing is fetched. The one piece of
Python that setup.sh runs on real data (reading pip's report to tell a CUDA build) runs in the real interpreter.
The README's set-up commands themselves were checked on a fresh Debian (issue 14); these tests hold the logic.
"""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_VENV_PACKAGE = "python3.11-venv"   # the fake Python below says it is 3.11
VIEWER_PACKAGE, TEST_PACKAGE = "libgl1", "xvfb"

# The fake interpreter. $0 tells the base Python (stubs/python3) from the one setup.sh copies into .venv/bin.
FAKE_PYTHON = r"""#!/bin/bash
kind=base; [[ "$0" == *.venv/bin/python ]] && kind=venv
all="$*"; printf '%s\t%s\n' "$kind" "${all//$'\n'/ }" >> "$FAKE_LOG"
state=$FAKE_STATE
if [ "$1" = -c ]; then
    case "$2" in
        *"import ensurepip, venv"*) [ -e "$state/ensurepip" ]; exit ;;
        *sys.version_info*) echo 3.11; exit 0 ;;
        *EXTERNALLY-MANAGED*) [ "$FAKE_MANAGED" = 1 ]; exit ;;
        *"import torch"*) [ -e "$state/torch" ]; exit ;;
        *) exec "$REAL_PYTHON" "$@" ;;
    esac
fi
[ "$1" = -m ] || exit 90
case "$2" in
    venv) mkdir -p "${@: -1}/bin"; cp "$0" "${@: -1}/bin/python"
          [ -e "$state/ensurepip" ] && touch "$state/venv-pip"; exit 0 ;;
    ensurepip) touch "$state/venv-pip"; exit 0 ;;
    pip) [ -e "$state/venv-pip" ] || exit 91
         [ "$3" = --version ] && exit 0
         args=("$@")
         for i in "${!args[@]}"; do
             [ "${args[$i]}" = --report ] && { cp "$state/report.json" "${args[$((i + 1))]}"; exit 0; }
         done
         [[ " $* " == *" torch"* ]] && touch "$state/torch"
         exit 0 ;;
esac
exit 92
"""
FAKE_DPKG_QUERY = r"""#!/bin/bash
grep -qx "${@: -1}" "$FAKE_STATE/installed" 2>/dev/null || exit 1
echo "install ok installed"
"""
FAKE_APT_GET = r"""#!/bin/bash
printf 'apt-get\t%s\n' "$*" >> "$FAKE_LOG"
if [[ " $* " == *" install "* ]]; then
    for word in "$@"; do
        case "$word" in -*|install) ;; *) echo "$word" >> "$FAKE_STATE/installed" ;; esac
        [[ "$word" == python3.*-venv ]] && touch "$FAKE_STATE/ensurepip"
    done
fi
exit 0
"""
FAKE_SUDO = '#!/bin/bash\nprintf \'sudo\\t%s\\n\' "$*" >> "$FAKE_LOG"\nexec "$@"\n'
FAKE_ID = '#!/bin/bash\necho "$FAKE_UID"\n'
FAKE_NVIDIA_SMI = '#!/bin/bash\n[ "$FAKE_GPU" = 1 ] && echo "GPU 0: stand-in" && exit 0\nexit 9\n'

CPU_BUILD = {"version": "2.13.0+cpu", "requires_dist": ["filelock", "sympy>=1.13.3"]}
CUDA_BUILD = {"version": "2.13.0", "requires_dist": ["filelock", "nvidia-cublas-cu12==12.8.4.1; platform_system == 'Linux'"]}


@dataclass(frozen=True)
class Run:
    returncode: int
    stderr: str
    calls: list          # (who, arguments) in order: who is base, venv, apt-get or sudo

    def pip_installs(self):
        return [args for who, args in self.calls if who == "venv" and args.startswith("-m pip install")]

    def made_venv(self):
        return [args for who, args in self.calls if who == "base" and args.startswith("-m venv")]

    def apt_installs(self):
        return [args for who, args in self.calls if who == "apt-get" and " install " in f" {args} "]


class FakeMachine:
    """A checkout holding setup.sh, a stub directory first on PATH, and the state the stand-ins share."""

    def __init__(self, root: Path):
        self.checkout, self.stubs, self.state = root / "checkout", root / "stubs", root / "state"
        for folder in (self.checkout, self.stubs, self.state):
            folder.mkdir()
        shutil.copy(ROOT / "setup.sh", self.checkout / "setup.sh")
        for name, text in (("python3", FAKE_PYTHON), ("dpkg-query", FAKE_DPKG_QUERY), ("apt-get", FAKE_APT_GET),
                           ("sudo", FAKE_SUDO), ("id", FAKE_ID), ("nvidia-smi", FAKE_NVIDIA_SMI)):
            (self.stubs / name).write_text(text)
            (self.stubs / name).chmod(0o755)
        self.log = root / "calls.log"
        self.log.touch()
        self.torch_found(CPU_BUILD)

    def has_packages(self, *names):
        with open(self.state / "installed", "a") as f:
            f.writelines(f"{name}\n" for name in names)

    def has_all_packages(self):
        text = (ROOT / "setup.sh").read_text()
        lists = re.findall(r'packages="([^"$]+)"', text) + re.findall(r'packages="\$packages ([^"]+)"', text)
        self.has_packages(*" ".join(lists).split())

    def has(self, marker):
        (self.state / marker).touch()

    def torch_found(self, build):
        report = {"install": [{"metadata": {"name": "torch", **build}}]}
        (self.state / "report.json").write_text(json.dumps(report))

    def run(self, *args, managed=False, gpu=False, uid=0, **settings) -> Run:
        self.log.write_text("")
        env = {"PATH": f"{self.stubs}:/usr/bin:/bin", "HOME": str(self.state), "FAKE_LOG": str(self.log),
               "FAKE_STATE": str(self.state), "FAKE_MANAGED": str(int(managed)), "FAKE_GPU": str(int(gpu)),
               "FAKE_UID": str(uid), "REAL_PYTHON": sys.executable, **settings}
        result = subprocess.run(["bash", str(self.checkout / "setup.sh"), *args], capture_output=True, text=True,
                                env=env, timeout=60)
        calls = [tuple(line.split("\t", 1)) for line in self.log.read_text().splitlines()]
        return Run(result.returncode, result.stderr, calls)


@pytest.fixture
def machine(tmp_path):
    return FakeMachine(tmp_path)


def test_debians_own_python_gets_an_isolated_venv_after_its_venv_package(machine):
    run = machine.run("--test", managed=True)
    assert run.returncode == 0, run.stderr
    (apt_install,) = run.apt_installs()
    for package in (VIEWER_PACKAGE, TEST_PACKAGE, DEBIAN_VENV_PACKAGE):
        assert package in apt_install.split()
    assert run.made_venv() == ["-m venv .venv"]   # no --system-site-packages: apt's Python packages stay apart
    who = [who for who, _ in run.calls]
    assert who.index("apt-get") < run.calls.index(("base", "-m venv .venv"))
    assert "externally managed (PEP 668)" in run.stderr
    installs = run.pip_installs()
    assert installs[-2:] == ["-m pip install -q torch==2.13.0", "-m pip install -q -e .[test]"]
    assert (machine.checkout / ".venv/bin/python").exists()


def test_any_other_python_lends_its_packages_and_its_torch_is_kept(machine):
    machine.has_all_packages()
    machine.has("ensurepip")
    machine.has("torch")
    run = machine.run()
    assert run.returncode == 0, run.stderr
    assert run.apt_installs() == [] and not any(who == "apt-get" for who, _ in run.calls)
    assert run.made_venv() == ["-m venv --system-site-packages .venv"]
    assert run.pip_installs() == ["-m pip install -q -e ."]    # no torch install, no [test] extras


def test_a_cuda_build_is_refused_in_one_line_on_a_machine_without_a_gpu(machine):
    machine.has_all_packages()
    machine.has("ensurepip")
    machine.torch_found(CUDA_BUILD)
    run = machine.run("--test")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("setup.sh: this machine has no NVIDIA GPU, but the torch that pip finds (2.13.0)")
    assert "TORCH_INDEX_URL" in lines[-1] and "TORCH_BUILD=cuda" in lines[-1]
    installs = run.pip_installs()
    assert len(installs) == 1 and "--dry-run" in installs[0] and "torch==2.13.0" in installs[0]
    assert not (machine.state / "torch").exists()


@pytest.mark.parametrize("gpu, settings", [(True, {}), (False, {"TORCH_BUILD": "cuda"})])
def test_a_cuda_build_is_installed_where_a_gpu_is_or_when_asked_for(machine, gpu, settings):
    machine.has_all_packages()
    machine.has("ensurepip")
    machine.torch_found(CUDA_BUILD)
    run = machine.run(gpu=gpu, **settings)
    assert run.returncode == 0, run.stderr
    assert run.pip_installs() == ["-m pip install -q torch==2.13.0", "-m pip install -q -e ."]


def test_torch_index_and_version_come_from_the_settings(machine):
    machine.has_all_packages()
    machine.has("ensurepip")
    index = f"file://{machine.state}/cpu-wheels"
    run = machine.run(TORCH_INDEX_URL=index, TORCH_SPEC="torch==2.12.1")
    assert run.returncode == 0, run.stderr
    dry_run, install, package = run.pip_installs()
    assert dry_run.startswith("-m pip install -q --dry-run") and dry_run.endswith(f"--index-url {index} torch==2.12.1")
    assert install == f"-m pip install -q --index-url {index} torch==2.12.1"
    assert package == "-m pip install -q -e ."


def test_a_user_who_is_not_root_installs_debian_packages_through_sudo(machine):
    machine.has("ensurepip")
    run = machine.run(uid=1000)
    assert run.returncode == 0, run.stderr
    sudo = [args for who, args in run.calls if who == "sudo"]
    assert sudo[0] == "apt-get update -qq" and sudo[1].startswith("apt-get install -y -qq --no-install-recommends")
    assert VIEWER_PACKAGE in sudo[1].split() and TEST_PACKAGE not in sudo[1].split()


def test_a_second_run_installs_only_the_package_itself(machine):
    assert machine.run("--test", managed=True).returncode == 0
    run = machine.run("--test", managed=True)
    assert run.returncode == 0, run.stderr
    assert run.apt_installs() == [] and run.made_venv() == []
    assert run.pip_installs() == ["-m pip install -q -e .[test]"]


def test_a_venv_left_without_pip_gets_it_from_ensurepip(machine):
    machine.has_all_packages()
    venv_bin = machine.checkout / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    shutil.copy(machine.stubs / "python3", venv_bin / "python")
    machine.has("ensurepip")
    run = machine.run()
    assert run.returncode == 0, run.stderr
    assert ("venv", "-m ensurepip -q") in run.calls and run.made_venv() == []


@pytest.mark.parametrize("args, settings, message", [
    (("--tests",), {}, "setup.sh: unknown option '--tests' (use: ./setup.sh [--test])"),
    ((), {"TORCH_BUILD": "gpu"}, "setup.sh: TORCH_BUILD must be auto or cuda, not 'gpu'"),
])
def test_bad_options_are_refused_in_one_line_before_anything_is_installed(machine, args, settings, message):
    run = machine.run(*args, **settings)
    assert (run.returncode, run.stderr, run.calls) == (2, message + "\n", [])


def test_the_readme_test_command_is_the_one_ci_runs():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    (command,) = re.findall(r"^\| run the tests \| `([^`]+)` \|$", section, flags=re.MULTILINE)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci
    assert os.access(ROOT / "setup.sh", os.X_OK) and os.access(ROOT / ".ci" / "run", os.X_OK)


# --- What setup.sh installs covers what the code imports ------------------------------------------------------
# setup.sh installs this package's declared dependencies and nothing else, so an import that pyproject.toml does
# not declare works on a developer's machine that happens to have it and fails on a fresh one (CI here reuses the
# machine's packages, so only this test notices). Imports guarded by `except ImportError` are optional by design.
PROJECT_PACKAGES = ("explorer", "kernels", "renderer", "widgets", "tests")


def _guarded_by_import_error(handlers):
    names = set()
    for handler in handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {kind.id for kind in kinds if isinstance(kind, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError", "Exception"})


def _required_imports(tree):
    """Top-level names of the absolute imports in a module outside `try: ... except ImportError` (either branch)."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and _guarded_by_import_error(node.handlers):
            for statement in node.body + [s for handler in node.handlers for s in handler.body]:
                guarded |= {id(inner) for inner in ast.walk(statement)}
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def _normalized(distribution):
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _declared_distributions():
    try:
        import tomllib
    except ModuleNotFoundError:    # Python 3.10
        from pip._vendor import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {_normalized(re.match(r"[A-Za-z0-9_.-]+", requirement).group()) for requirement in requirements}


def test_every_third_party_import_is_declared_in_pyproject():
    from importlib.metadata import packages_distributions
    providers = packages_distributions()
    declared = _declared_distributions()
    undeclared = {}
    for package in PROJECT_PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            for name in _required_imports(ast.parse(source.read_text(), str(source))):
                if name in sys.stdlib_module_names or name in PROJECT_PACKAGES or name == "__future__":
                    continue
                candidates = {_normalized(d) for d in providers.get(name, [])} or {f"(no installed package has {name})"}
                if not candidates & declared:
                    undeclared.setdefault(" or ".join(sorted(candidates)), set()).add(str(source.relative_to(ROOT)))
    assert not undeclared, "imported but not in pyproject.toml: " + "; ".join(
        f"{distribution} ({', '.join(sorted(files)[:3])})" for distribution, files in sorted(undeclared.items()))
