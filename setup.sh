#!/usr/bin/env bash
# Sets up this checkout for running the explorer (and with --test the test suite too), on a fresh Debian machine
# with nothing but its own Python or in an existing Python environment. Safe to run again: it installs only what
# is missing. Everything Python goes into the virtual environment .venv in this checkout, so the commands are
# the same everywhere: .venv/bin/stylegan-explorer, .venv/bin/python -m pytest (or `. .venv/bin/activate` first).
#
# Settings (environment variables, all optional):
#   PYTHON=python3.12            the Python that .venv is made from (default: python3)
#   TORCH_INDEX_URL=URL          the package index torch is installed from, e.g. PyTorch's own CPU or CUDA index
#   TORCH_SPEC='torch==2.13.0'   which torch to install when .venv has none
#   TORCH_BUILD=auto|cuda        auto: refuse a CUDA build of torch on a machine without an NVIDIA GPU (it pulls
#                                several GB of nvidia packages it cannot use); cuda: install whichever build pip finds
set -euo pipefail
cd "$(dirname "$0")"

say() { echo "setup.sh: $*" >&2; }

with_tests=0
for argument in "$@"; do
    case "$argument" in
        --test) with_tests=1 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) say "unknown option '$argument' (use: ./setup.sh [--test])"; exit 2 ;;
    esac
done

python=${PYTHON:-python3}
venv=.venv
venv_python=$venv/bin/python
torch_spec=${TORCH_SPEC:-torch==2.13.0}
torch_build=${TORCH_BUILD:-auto}
case "$torch_build" in
    auto|cuda) ;;
    *) say "TORCH_BUILD must be auto or cuda, not '$torch_build'"; exit 2 ;;
esac

# --- System packages (Debian) ------------------------------------------------------------------------------
# OpenGL (Mesa) and X libraries the viewer needs, ALSA's library that python-rtmidi's MIDI ports load;
# Xvfb, xdotool and librsvg for the tests.
packages="libgl1 libglx-mesa0 libgl1-mesa-dri libx11-6 libxrandr2 libxcursor1 libxi6 libxinerama1 libxxf86vm1"
packages="$packages libasound2"
# A C compiler and the C library's headers build the compiled CPU kernels (kernels/native) on first use; without
# them the explorer runs its eager paths, slower (StyleGAN3 about 2x), with the same numbers.
packages="$packages gcc libc6-dev"
[ "$with_tests" = 1 ] && packages="$packages xvfb xauth xdotool librsvg2-bin"

if [ ! -x "$venv_python" ]; then
    if ! command -v "$python" >/dev/null; then
        say "no '$python' found: install Python 3.10 or newer (Debian: apt-get install python3), or set PYTHON"
        exit 1
    fi
    # Debian splits venv's pip bootstrap (ensurepip) into its own package, python3.X-venv.
    if ! "$python" -c "import ensurepip, venv" 2>/dev/null; then
        version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        packages="$packages python$version-venv"
    fi
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
    missing=()
    for package in $packages; do
        installed "$package" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        sudo=""
        if [ "$(id -u)" != 0 ]; then
            command -v sudo >/dev/null || { say "run as root, or install sudo, to install: ${missing[*]}"; exit 1; }
            sudo="sudo"
        fi
        say "installing ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    say "not a Debian system: make sure the equivalents of these Debian packages are installed: $packages"
fi

# --- The virtual environment ---------------------------------------------------------------------------------
if [ ! -x "$venv_python" ]; then
    # A Python that its distribution manages (PEP 668, Debian's own) gets an isolated .venv: its apt-installed
    # packages stay apart. Any other Python lends .venv its packages, so a torch (CUDA) build already there is used.
    externally_managed='import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.isfile(marker) else 1)'
    if "$python" -c "$externally_managed"; then
        say "$python is externally managed (PEP 668): creating an isolated virtual environment in $venv"
        "$python" -m venv "$venv"
    else
        say "creating a virtual environment in $venv on top of $python's packages"
        "$python" -m venv --system-site-packages "$venv"
    fi
fi
if ! "$venv_python" -m pip --version >/dev/null 2>&1; then
    # A .venv left without pip (made before python3.X-venv was installed) gets it now.
    "$venv_python" -m ensurepip -q
fi
pip=("$venv_python" -m pip)

# --- torch ---------------------------------------------------------------------------------------------------
# Installed first, and only when .venv sees none: an unpinned `torch` requirement pulls a multi-GB CUDA build,
# and a user's own build must not be replaced.
has_nvidia_gpu() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }
if ! "$venv_python" -c "import torch" 2>/dev/null; then
    index=()
    [ -n "${TORCH_INDEX_URL:-}" ] && index=(--index-url "$TORCH_INDEX_URL")
    if [ "$torch_build" = auto ] && ! has_nvidia_gpu; then
        report=$(mktemp)
        trap 'rm -f "$report"' EXIT
        "${pip[@]}" install -q --dry-run --no-deps --ignore-installed --report "$report" "${index[@]}" "$torch_spec"
        # A CUDA build says so in its local version (+cu121) or in its nvidia-* requirements.
        needs_cuda='import json, sys
torch = json.load(open(sys.argv[1]))["install"][0]["metadata"]
cuda = "+cu" in torch["version"] or any(r.startswith("nvidia-") for r in torch.get("requires_dist") or [])
print(torch["version"] if cuda else "")'
        cuda_version=$("$venv_python" -c "$needs_cuda" "$report")
        if [ -n "$cuda_version" ]; then
            say "this machine has no NVIDIA GPU, but the torch that pip finds ($cuda_version) is a CUDA build with" \
                "several GB of nvidia packages: set TORCH_INDEX_URL to PyTorch's CPU wheel index, or TORCH_BUILD=cuda" \
                "to install it anyway (README: Set up and run)"
            exit 1
        fi
    fi
    say "installing $torch_spec"
    "${pip[@]}" install -q "${index[@]}" "$torch_spec"
fi

extras=""
[ "$with_tests" = 1 ] && extras="[test]"
"${pip[@]}" install -q -e ".${extras}"
say "ready: .venv/bin/stylegan-explorer opens the explorer (or '. .venv/bin/activate', then stylegan-explorer)"
