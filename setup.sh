#!/usr/bin/env bash
# Sets up this checkout on a fresh Debian machine (or an existing environment) for running the explorer,
# and with --test for running the test suite too. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"

# OpenGL (Mesa) and X libraries the viewer needs; Xvfb, xdotool and librsvg for the tests.
run_packages="libgl1 libglx-mesa0 libgl1-mesa-dri libx11-6 libxrandr2 libxcursor1 libxi6 libxinerama1 libxxf86vm1"
test_packages="xvfb xauth xdotool librsvg2-bin"
packages="$run_packages"
extras=""
if [ "${1:-}" = "--test" ]; then
    packages="$packages $test_packages"
    extras="[test]"
fi

missing=()
for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "setup.sh: please install these system packages: ${missing[*]}" >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
# Install torch first, and only when none is installed: a bare `torch` requirement pulls a multi-GB CUDA build,
# and a user's own (CUDA) torch must not be replaced.
if ! "$python" -c "import torch" 2>/dev/null; then
    "$python" -m pip install -q torch==2.13.0
fi
"$python" -m pip install -q -e ".${extras}"
