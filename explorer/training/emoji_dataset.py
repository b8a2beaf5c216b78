"""Build the "emoji heads" training set for the default StyleGAN2 model.

Sources (all fetched from the npm registry *at build time only*):

* Iconify JSON icon sets -- the artwork:
  ``@iconify-json/noto`` (Apache-2.0), ``@iconify-json/noto-v1`` (Apache-2.0),
  ``@iconify-json/twemoji`` (CC-BY-4.0), ``@iconify-json/fluent-emoji-flat``
  (MIT).  OpenMoji (CC-BY-SA) is deliberately not used.
* ``emojibase-data`` (MIT) -- used only to *select* icons, never shipped.

How icons are mapped to Unicode subgroups
-----------------------------------------
The Iconify packages ship ``metadata.json`` whose ``categories`` are only the
nine top-level Unicode *groups* ("People & Body", ...), which is too coarse
(it mixes heads with hands, families and sports).  They also ship
``chars.json``: a map from the emoji's code point sequence (lower-case hex,
``-`` separated, without U+FE0F) to the icon name.  ``emojibase-data``'s
``en/data.json`` gives every emoji sequence (skin-tone variants included,
under ``skins``) its Unicode group/subgroup as listed in Unicode's
``emoji-test.txt``, and ``meta/groups.json`` names the subgroups with the
same names ``emoji-test.txt`` uses (``face-smiling``, ``person-role``, ...).
So: icon name --chars.json--> code points --emojibase--> subgroup.

``noto-v1`` ships an empty ``chars.json``; its icon names follow the same
naming scheme as the other sets, so they are mapped through the other sets'
``chars.json`` (reverse lookup) and, as a fallback, through a slug of the
emojibase label ("man: light skin tone" -> ``man-light-skin-tone``).  Icons
that cannot be mapped are skipped.  Each set contributes at most one image
per code point sequence (duplicate names/aliases are ignored).

Selection
---------
``DEFAULT_SUBGROUPS`` keeps the face subgroups (minus cat/monkey faces) and
the person subgroups that are drawn as a head and shoulders (``person``,
``person-gesture``, ``person-role``, ``person-fantasy``), with all skin-tone
and hair-style variants.  ``DEFAULT_EXCLUDE`` then drops the few emoji in
those subgroups that are drawn as something other than a single head
(full bodies, a baby in the arms, a poo, a ghost ...), some only for the
set that draws them so (chosen by looking at per-label renders).

With the pinned package versions this yields 3,650 images: noto 976,
noto-v1 634, twemoji 1030, fluent-emoji-flat 1010 (about 2/3 of them
skin-tone variants).  More Iconify sets can be added with ``--sets``
(their licence is read from the package's ``info.json``).

Output
------
Each selected SVG is rendered square with ``rsvg-convert`` at ``size`` x
``size``, alpha-composited onto white and stored as RGB uint8.  The result
is one ``.npz`` with

* ``images``     uint8 ``[N, size, size, 3]``
* ``names``      ``"<set>:<icon name>"``
* ``sources``    the Iconify set prefix (``noto``, ``twemoji``, ...)
* ``codepoints`` code point sequence, e.g. ``1f9d1-1f3fb-200d-1f3a8``
* ``subgroups``  Unicode subgroup, ``labels`` the CLDR name
* ``attribution`` the Markdown attribution text, ``meta`` a JSON string

and an attribution Markdown file (``<out stem>.ATTRIBUTION.md`` by default)
with sources, licences and counts, to be copied next to a shipped model.

CLI::

    python -m explorer.training.emoji_dataset --out data/emoji64.npz \\
        [--packages DIR] [--size 64] [--workers 2] [--sheet sheet.png]

Without ``--packages`` the npm packages are installed into a temporary
folder and removed afterwards.  With ``--packages DIR`` the packages already
installed in ``DIR`` (``DIR/node_modules/...`` or ``DIR/...``) are used, and
missing ones are installed there with npm unless ``--no-fetch`` is given, so
repeated builds need no network.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as _dt
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "ICON_SETS",
    "UNICODE_DATA_PACKAGE",
    "DEFAULT_SUBGROUPS",
    "DEFAULT_EXCLUDE",
    "BuildError",
    "MissingToolError",
    "IconSet",
    "Selected",
    "SubgroupTable",
    "find_package_dir",
    "install_packages",
    "load_icon_set",
    "load_subgroup_table",
    "select_icons",
    "icon_svg",
    "render_svg",
    "build_dataset",
    "contact_sheet",
    "main",
]

# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

#: Iconify sets used by default: prefix -> npm package spec and fallback
#: licence data (the package's own ``info.json`` wins when present).
ICON_SETS: dict[str, dict[str, str]] = {
    "noto": {
        "package": "@iconify-json/noto",
        "version": "1.2.9",
        "name": "Noto Emoji",
        "author": "Google Inc",
        "url": "https://github.com/googlefonts/noto-emoji",
        "license": "Apache-2.0",
        "license_url": "https://github.com/googlefonts/noto-emoji/blob/main/svg/LICENSE",
    },
    "noto-v1": {
        "package": "@iconify-json/noto-v1",
        "version": "1.2.5",
        "name": "Noto Emoji (v1)",
        "author": "Google Inc",
        "url": "https://github.com/googlefonts/noto-emoji",
        "license": "Apache-2.0",
        "license_url": "https://github.com/googlefonts/noto-emoji/blob/main/svg/LICENSE",
    },
    "twemoji": {
        "package": "@iconify-json/twemoji",
        "version": "1.2.5",
        "name": "Twitter Emoji",
        "author": "Twitter",
        "url": "https://github.com/jdecked/twemoji",
        "license": "CC-BY-4.0",
        "license_url": "https://creativecommons.org/licenses/by/4.0/",
    },
    "fluent-emoji-flat": {
        "package": "@iconify-json/fluent-emoji-flat",
        "version": "1.2.6",
        "name": "Fluent Emoji Flat",
        "author": "Microsoft Corporation",
        "url": "https://github.com/microsoft/fluentui-emoji",
        "license": "MIT",
        "license_url": "https://github.com/microsoft/fluentui-emoji/blob/main/LICENSE",
    },
}

#: Unicode emoji data (groups/subgroups from emoji-test.txt), MIT.
UNICODE_DATA_PACKAGE = {"package": "emojibase-data", "version": "17.0.0"}

#: Unicode emoji subgroups drawn as a (single) head or head and shoulders.
DEFAULT_SUBGROUPS: tuple[str, ...] = (
    "face-smiling",
    "face-affection",
    "face-tongue",
    "face-hand",
    "face-neutral-skeptical",
    "face-sleepy",
    "face-unwell",
    "face-hat",
    "face-glasses",
    "face-concerned",
    "face-negative",
    "face-costume",
    "person",
    "person-gesture",
    "person-role",
    "person-fantasy",
)

#: Emoji that sit in a selected subgroup but are not drawn as a head (full
#: bodies, a baby in the arms, a hand in front of the face, a poo, ...).
#: Keys are set prefixes ("*": every set); values are regular expressions
#: searched (case-insensitively) in the CLDR label, e.g.
#: "pregnant woman: light skin tone".  Chosen by looking at the renders.
DEFAULT_EXCLUDE: dict[str, tuple[str, ...]] = {
    "*": (
        r"^pile of poo\b",
        r"^ghost\b",
        r"^alien monster\b",
        r"^skull and crossbones\b",
        r"\bpregnant\b",
        r"\bbreast-feeding\b",
        r"\bfeeding baby\b",
        r"\bfairy\b",
        r"\bmerperson\b|\bmerman\b|\bmermaid\b",
        r"\bgenie\b",
        r"\btroll\b",
        r"\bhairy creature\b",
    ),
    # noto draws superheroes/villains as full bodies in flight; in noto and
    # fluent "deaf person" is a big hand at the ear with the face cut off
    "noto": (r"\bsuperhero\b", r"\bsupervillain\b", r"\bdeaf\b"),
    "fluent-emoji-flat": (r"\bdeaf\b",),
}

_RSVG_HINT = (
    "rsvg-convert not found on PATH. Install librsvg's command line tool: "
    "'apt-get install librsvg2-bin' (Debian/Ubuntu), 'dnf install librsvg2-tools' "
    "(Fedora) or 'brew install librsvg' (macOS)."
)
_NPM_HINT = (
    "npm not found on PATH, so the icon packages cannot be fetched. Install "
    "Node.js/npm ('apt-get install npm'), or pass --packages DIR pointing at a "
    "folder where they are already installed (npm install --prefix DIR {pkgs})."
)


class BuildError(RuntimeError):
    """The dataset cannot be built (missing packages, no icons, ...)."""


class MissingToolError(BuildError):
    """A required external program (rsvg-convert, npm) is missing."""


# --------------------------------------------------------------------------
# Packages
# --------------------------------------------------------------------------


def _package_specs(sets: Sequence[str]) -> list[str]:
    specs = []
    for prefix in sets:
        cfg = ICON_SETS.get(prefix)
        if cfg:
            specs.append(f"{cfg['package']}@{cfg['version']}")
        else:
            specs.append(f"@iconify-json/{prefix}")
    specs.append(f"{UNICODE_DATA_PACKAGE['package']}@{UNICODE_DATA_PACKAGE['version']}")
    return specs


def _package_name(spec: str) -> str:
    """``@scope/name@1.2`` -> ``@scope/name``."""
    at = spec.rfind("@")
    return spec[:at] if at > 0 else spec


def find_package_dir(root: Path | str, package: str) -> Path | None:
    """Locate an installed npm package below ``root``.

    ``root`` may be an npm prefix (containing ``node_modules``), a
    ``node_modules`` folder itself, or a plain folder holding the packages.
    """
    root = Path(root)
    for cand in (root / "node_modules" / package, root / package):
        if (cand / "package.json").is_file() or (cand / "icons.json").is_file() or (
            cand / "en" / "data.json"
        ).is_file():
            return cand
    return None


def install_packages(prefix: Path | str, specs: Sequence[str], *, log=None) -> Path:
    """``npm install`` the given package specs into ``prefix``; returns it."""
    npm = shutil.which("npm")
    if npm is None:
        raise MissingToolError(_NPM_HINT.format(pkgs=" ".join(specs)))
    prefix = Path(prefix)
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [
        npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
        "--ignore-scripts", "--no-save", "--no-package-lock", "--loglevel=error",
        *specs,
    ]
    if log:
        log(f"fetching {len(specs)} npm packages into {prefix} ...")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(
            f"npm install failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}"
        )
    return prefix


# --------------------------------------------------------------------------
# Unicode subgroups
# --------------------------------------------------------------------------


def _norm_hex(seq: str) -> str:
    """Normalise a code point sequence: lower case, ``-``, no U+FE0F."""
    parts = re.split(r"[-_\s]+", seq.strip().lower())
    return "-".join(p.lstrip("0") or "0" for p in parts if p and p != "fe0f")


def _slug(label: str) -> str:
    s = label.lower().replace("’", "").replace("'", "")
    s = re.sub(r"[^a-z0-9]+", "-", s)
    return s.strip("-")


@dataclasses.dataclass(frozen=True)
class SubgroupTable:
    """Code point sequence -> (subgroup, label), from emojibase-data."""

    entries: Mapping[str, tuple[str, str]]
    source: str = ""

    def lookup(self, seq: str) -> tuple[str, str] | None:
        return self.entries.get(_norm_hex(seq))

    def by_slug(self) -> dict[str, str]:
        return {_slug(label): seq for seq, (_, label) in self.entries.items()}


def load_subgroup_table(emojibase_dir: Path | str) -> SubgroupTable:
    """Read ``en/data.json`` + ``meta/groups.json`` of an emojibase-data package."""
    d = Path(emojibase_dir)
    try:
        data = json.loads((d / "en" / "data.json").read_text(encoding="utf-8"))
        groups = json.loads((d / "meta" / "groups.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BuildError(f"not an emojibase-data package: {d} ({exc})") from exc
    names = {str(k): v for k, v in groups["subgroups"].items()}
    entries: dict[str, tuple[str, str]] = {}
    for emoji in data:
        for rec in [emoji, *emoji.get("skins", [])]:
            sg = rec.get("subgroup")
            if sg is None or "hexcode" not in rec:
                continue
            entries.setdefault(
                _norm_hex(rec["hexcode"]), (names.get(str(sg), str(sg)), rec.get("label", ""))
            )
    version = ""
    pj = d / "package.json"
    if pj.is_file():
        version = json.loads(pj.read_text(encoding="utf-8")).get("version", "")
    return SubgroupTable(entries, f"emojibase-data {version}".strip())


# --------------------------------------------------------------------------
# Iconify sets
# --------------------------------------------------------------------------


@dataclasses.dataclass
class IconSet:
    prefix: str
    icons: dict          # the parsed icons.json
    chars: dict          # chars.json (may be empty)
    info: dict           # info.json (may be empty)
    version: str = ""

    @property
    def licence(self) -> dict[str, str]:
        cfg = ICON_SETS.get(self.prefix, {})
        lic = self.info.get("license", {}) or {}
        author = self.info.get("author", {}) or {}
        return {
            "name": self.info.get("name") or cfg.get("name") or self.prefix,
            "package": cfg.get("package", f"@iconify-json/{self.prefix}"),
            "version": self.version or cfg.get("version", ""),
            "author": author.get("name") or cfg.get("author", "unknown"),
            "url": author.get("url") or cfg.get("url", ""),
            "license": lic.get("spdx") or lic.get("title") or cfg.get("license", "unknown"),
            "license_url": lic.get("url") or cfg.get("license_url", ""),
        }


def load_icon_set(pkg_dir: Path | str, prefix: str | None = None) -> IconSet:
    d = Path(pkg_dir)
    try:
        icons = json.loads((d / "icons.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BuildError(f"no icons.json in {d}") from exc

    def opt(name):
        p = d / name
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}

    version = opt("package.json").get("version", "")
    return IconSet(prefix or icons.get("prefix") or d.name, icons, opt("chars.json"),
                   opt("info.json"), version)


@dataclasses.dataclass(frozen=True)
class Selected:
    source: str      # set prefix
    name: str        # icon name in the set
    codepoints: str  # normalised code point sequence
    subgroup: str
    label: str


def _compile(exclude, prefix: str) -> list[re.Pattern]:
    """Patterns for one set: a plain sequence applies to every set, a mapping
    is keyed by set prefix with ``"*"`` for all sets."""
    if isinstance(exclude, Mapping):
        patterns = [*exclude.get("*", ()), *exclude.get(prefix, ())]
    else:
        patterns = list(exclude)
    return [re.compile(p, re.IGNORECASE) for p in patterns]


def select_icons(
    iconset: IconSet,
    table: SubgroupTable,
    subgroups: Iterable[str] = DEFAULT_SUBGROUPS,
    exclude: Mapping[str, Sequence[str]] | Sequence[str] = DEFAULT_EXCLUDE,
    name_to_seq: Mapping[str, str] | None = None,
) -> list[Selected]:
    """Icons of ``iconset`` whose emoji lies in one of ``subgroups``.

    Icons are mapped to code points with the set's own ``chars.json``; when
    that is empty, with ``name_to_seq`` (icon name -> code points, e.g. built
    from other sets) and the slugs of the emojibase labels.  One icon per
    code point sequence; the result is sorted by set order of ``chars.json``
    / icon order.
    """
    wanted = set(subgroups)
    excl = _compile(exclude, iconset.prefix)
    known = _known_names(iconset)

    pairs: list[tuple[str, str]] = []  # (name, seq)
    if iconset.chars:
        pairs = [(name, _norm_hex(seq)) for seq, name in iconset.chars.items()]
    else:
        fallback = dict(table.by_slug())
        if name_to_seq:
            fallback.update({k: _norm_hex(v) for k, v in name_to_seq.items()})
        for name in iconset.icons.get("icons", {}):
            seq = fallback.get(name)
            if seq is not None:
                pairs.append((name, seq))

    out: list[Selected] = []
    seen: set[str] = set()
    for name, seq in pairs:
        if seq in seen or name not in known:
            continue
        hit = table.lookup(seq)
        if hit is None:
            continue
        subgroup, label = hit
        if subgroup not in wanted or any(p.search(label) for p in excl):
            continue
        seen.add(seq)
        out.append(Selected(iconset.prefix, name, seq, subgroup, label))
    return out


def _known_names(iconset: IconSet) -> set[str]:
    return set(iconset.icons.get("icons", {})) | set(iconset.icons.get("aliases", {}))


def _name_to_seq(sets: Iterable[IconSet]) -> dict[str, str]:
    """Icon name -> code points from all sets' chars.json (first set wins),
    plus the sets' plain aliases (old names such as ``dizzy-face``)."""
    sets = list(sets)
    out: dict[str, str] = {}
    for s in sets:
        for seq, name in s.chars.items():
            out.setdefault(name, _norm_hex(seq))
    for s in sets:
        for alias, data in s.icons.get("aliases", {}).items():
            if set(data) == {"parent"} and data["parent"] in out:
                out.setdefault(alias, out[data["parent"]])
    return out


# --------------------------------------------------------------------------
# SVG
# --------------------------------------------------------------------------

_DEFAULTS = {"left": 0, "top": 0, "width": 16, "height": 16, "rotate": 0,
             "hFlip": False, "vFlip": False}


def _resolve(icons: dict, name: str) -> dict:
    """Full icon data for ``name`` with aliases and transforms merged
    (Iconify semantics: flips XOR, rotations add, other props override)."""
    chain = []
    seen = set()
    cur = name
    table, aliases = icons.get("icons", {}), icons.get("aliases", {})
    while cur not in table:
        if cur not in aliases or cur in seen:
            raise KeyError(f"icon {name!r} not found in set {icons.get('prefix')!r}")
        seen.add(cur)
        chain.append(aliases[cur])
        cur = aliases[cur]["parent"]
    data = {k: icons.get(k, v) for k, v in _DEFAULTS.items()}
    data.update(table[cur])
    for alias in reversed(chain):  # parent first, then the aliases on top
        for k, v in alias.items():
            if k == "parent":
                continue
            if k in ("hFlip", "vFlip"):
                data[k] = bool(data.get(k)) != bool(v)
            elif k == "rotate":
                data[k] = (data.get(k, 0) + v) % 4
            else:
                data[k] = v
    return data


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def icon_svg(iconset: IconSet | dict, name: str, *, square: bool = True) -> str:
    """A standalone SVG document for one icon of an Iconify JSON set.

    With ``square`` the viewBox is padded symmetrically to a square so that
    rendering at ``size x size`` keeps the aspect ratio, centred.
    """
    icons = iconset.icons if isinstance(iconset, IconSet) else iconset
    d = _resolve(icons, name)
    left, top, width, height = (float(d[k]) for k in ("left", "top", "width", "height"))
    body = d["body"]
    transforms = []
    rot = int(d.get("rotate", 0)) % 4
    if d.get("hFlip"):
        transforms.append(f"translate({_fmt(width + left)} {_fmt(-top)}) scale(-1 1)")
    if d.get("vFlip"):
        transforms.append(f"translate({_fmt(-left)} {_fmt(height + top)}) scale(1 -1)")
    if rot == 1:
        c = height / 2 + top
        transforms.insert(0, f"rotate(90 {_fmt(c)} {_fmt(c)})")
    elif rot == 2:
        transforms.insert(0, f"rotate(180 {_fmt(width / 2 + left)} {_fmt(height / 2 + top)})")
    elif rot == 3:
        c = width / 2 + left
        transforms.insert(0, f"rotate(-90 {_fmt(c)} {_fmt(c)})")
    if rot % 2 == 1:
        left, top, width, height = top, left, height, width
    if transforms:
        body = f'<g transform="{" ".join(transforms)}">{body}</g>'
    if square and width != height:
        side = max(width, height)
        left -= (side - width) / 2
        top -= (side - height) / 2
        width = height = side
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{_fmt(width)}" height="{_fmt(height)}" '
        f'viewBox="{_fmt(left)} {_fmt(top)} {_fmt(width)} {_fmt(height)}">{body}</svg>'
    )


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def _rsvg() -> str:
    exe = shutil.which("rsvg-convert")
    if exe is None:
        raise MissingToolError(_RSVG_HINT)
    return exe


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """uint8 RGBA (straight alpha) -> uint8 RGB over a white background."""
    rgba = rgba.astype(np.float32)
    a = rgba[..., 3:4] / 255.0
    rgb = rgba[..., :3] * a + 255.0 * (1.0 - a)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def render_svg(svg: str, size: int = 64, *, rsvg: str | None = None,
               timeout: float = 60.0) -> np.ndarray:
    """Render an SVG document to uint8 RGB ``[size, size, 3]`` on white."""
    from PIL import Image

    exe = rsvg or _rsvg()
    proc = subprocess.run(
        [exe, "-w", str(size), "-h", str(size), "-f", "png"],
        input=svg.encode("utf-8"), capture_output=True, timeout=timeout,
    )
    if proc.returncode != 0 or not proc.stdout:
        raise BuildError(f"rsvg-convert failed: {proc.stderr.decode(errors='replace')[-500:]}")
    with Image.open(io.BytesIO(proc.stdout)) as im:
        im = im.convert("RGBA")
        if im.size != (size, size):
            im = im.resize((size, size), Image.LANCZOS)
        rgba = np.asarray(im, dtype=np.uint8)
    return composite_on_white(rgba)


class _Progress:
    def __init__(self, total: int, stream=None, label: str = "render"):
        self.total, self.done, self.label = total, 0, label
        self.stream = stream
        self.t0 = time.monotonic()
        self.last = 0.0
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.stream is None:
            return
        interval = 0.25 if self.tty else 10.0
        if self.done == self.total or now - self.last >= interval:
            self.last = now
            el = now - self.t0
            rate = self.done / el if el > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            msg = (f"[{self.label}] {self.done}/{self.total} "
                   f"({100.0 * self.done / max(self.total, 1):5.1f}%) "
                   f"{rate:6.1f} img/s  elapsed {el:6.1f}s  eta {eta:6.1f}s")
            end = "\n" if (self.done == self.total or not self.tty) else ""
            self.stream.write(("\r" if self.tty else "") + msg + end)
            self.stream.flush()


def render_many(svgs: Sequence[str], size: int = 64, workers: int = 2,
                progress=None) -> np.ndarray:
    """Render SVGs in parallel (threads driving rsvg-convert processes)."""
    exe = _rsvg()
    out = np.empty((len(svgs), size, size, 3), dtype=np.uint8)
    prog = _Progress(len(svgs), progress)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        futs = {ex.submit(render_svg, s, size, rsvg=exe): i for i, s in enumerate(svgs)}
        for fut in concurrent.futures.as_completed(futs):
            out[futs[fut]] = fut.result()
            prog.step()
    return out


# --------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------


def _attribution_md(per_set: list[dict], unicode_source: str, size: int, total: int,
                    subgroups: Sequence[str]) -> str:
    lines = [
        "# Emoji heads training data: attribution",
        "",
        f"The training images ({total} in all, {size}x{size} px) were rasterised from the "
        "following emoji artwork. Changes made: selected head-and-shoulders emoji, "
        f"rendered with rsvg-convert at {size}x{size} px and composited on a white background.",
        "",
        "| Set | npm package | Author | Licence | Images |",
        "| --- | --- | --- | --- | ---: |",
    ]
    for s in per_set:
        lic = f"[{s['license']}]({s['license_url']})" if s["license_url"] else s["license"]
        author = f"[{s['author']}]({s['url']})" if s["url"] else s["author"]
        lines.append(f"| {s['name']} | `{s['package']}@{s['version']}` | {author} | {lic} | {s['count']} |")
    lines += [
        "",
        "Notices:",
        "",
    ]
    for s in per_set:
        if s["license"] == "CC-BY-4.0":
            lines.append(f"- {s['name']}: graphics Copyright {s['author']} and other contributors, "
                         "licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).")
        elif s["license"] == "Apache-2.0":
            lines.append(f"- {s['name']}: Copyright {s['author']}, licensed under the Apache "
                         "License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).")
        elif s["license"] == "MIT":
            lines.append(f"- {s['name']}: Copyright (c) {s['author']}, licensed under the MIT "
                         "License.")
        else:
            lines.append(f"- {s['name']}: {s['license']}, see {s['license_url']}.")
    lines += [
        "",
        f"Emoji were selected by Unicode emoji subgroup ({', '.join(subgroups)}) using "
        f"{unicode_source or 'emojibase-data'} (MIT, derived from Unicode's emoji-test.txt); "
        "that data is not redistributed.",
        "",
    ]
    return "\n".join(lines)


def build_dataset(
    out: Path | str,
    packages: Path | str | None = None,
    *,
    size: int = 64,
    sets: Sequence[str] = tuple(ICON_SETS),
    subgroups: Sequence[str] = DEFAULT_SUBGROUPS,
    exclude: Mapping[str, Sequence[str]] | Sequence[str] = DEFAULT_EXCLUDE,
    workers: int = 2,
    allow_fetch: bool = True,
    attribution: Path | str | None = None,
    limit: int | None = None,
    progress=sys.stderr,
) -> dict:
    """Build the dataset and write ``out`` (.npz) and the attribution file.

    Returns a summary dict (counts per set, seconds, paths).
    """
    t0 = time.monotonic()
    log: Callable[[str], None] = (lambda m: (progress.write(m + "\n"), progress.flush())) \
        if progress is not None else (lambda m: None)
    out = Path(out)
    if size < 1:
        raise BuildError("size must be positive")
    _rsvg()  # fail early, before any download

    tmp: tempfile.TemporaryDirectory | None = None
    try:
        specs = _package_specs(sets)
        if packages is None:
            if not allow_fetch:
                raise BuildError("no --packages folder given and fetching is disabled")
            if shutil.which("npm") is None:
                raise MissingToolError(_NPM_HINT.format(pkgs=" ".join(specs)))
            tmp = tempfile.TemporaryDirectory(prefix="emoji-pkgs-")
            root = install_packages(tmp.name, specs, log=log)
        else:
            root = Path(packages)
            missing = [s for s in specs if find_package_dir(root, _package_name(s)) is None]
            if missing:
                if not allow_fetch:
                    raise BuildError(
                        f"packages missing in {root}: {', '.join(missing)} "
                        f"(install with: npm install --prefix {root} {' '.join(missing)})")
                install_packages(root, missing, log=log)

        ebd = find_package_dir(root, UNICODE_DATA_PACKAGE["package"])
        if ebd is None:
            raise BuildError(f"{UNICODE_DATA_PACKAGE['package']} not found in {root}")
        table = load_subgroup_table(ebd)

        loaded = []
        for prefix in sets:
            cfg = ICON_SETS.get(prefix, {})
            d = find_package_dir(root, cfg.get("package", f"@iconify-json/{prefix}"))
            if d is None:
                raise BuildError(f"icon set {prefix!r} not found in {root}")
            loaded.append(load_icon_set(d, prefix))
        n2s = _name_to_seq(loaded)

        selected: list[Selected] = []
        svgs: list[str] = []
        for s in loaded:
            sel = select_icons(s, table, subgroups, exclude, name_to_seq=n2s)
            if limit is not None:
                sel = sel[:limit]
            selected += sel
            svgs += [icon_svg(s, x.name) for x in sel]
            log(f"{s.prefix}: {len(sel)} icons selected")
        if not selected:
            raise BuildError("no icons selected: check the packages and subgroups")

        images = render_many(svgs, size=size, workers=workers, progress=progress)
    finally:
        if tmp is not None:
            tmp.cleanup()

    per_set = []
    for s in loaded:
        info = s.licence
        info["prefix"] = s.prefix
        info["count"] = sum(1 for x in selected if x.source == s.prefix)
        per_set.append(info)
    md = _attribution_md(per_set, table.source, size, len(selected), subgroups)
    meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "size": size,
        "count": len(selected),
        "sets": per_set,
        "unicode_data": table.source,
        "subgroups": list(subgroups),
        "exclude": {k: list(v) for k, v in exclude.items()} if isinstance(exclude, Mapping)
        else list(exclude),
        "background": "white",
        "renderer": "rsvg-convert",
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(
        tmp_out,
        images=images,
        names=np.array([f"{x.source}:{x.name}" for x in selected]),
        sources=np.array([x.source for x in selected]),
        codepoints=np.array([x.codepoints for x in selected]),
        subgroups=np.array([x.subgroup for x in selected]),
        labels=np.array([x.label for x in selected]),
        attribution=np.array(md),
        meta=np.array(json.dumps(meta)),
    )
    os.replace(tmp_out, out)
    att = Path(attribution) if attribution else out.with_suffix(".ATTRIBUTION.md")
    att.write_text(md, encoding="utf-8")
    seconds = time.monotonic() - t0
    log(f"wrote {out} ({len(selected)} images) and {att} in {seconds:.1f}s")
    return {
        "out": str(out),
        "attribution": str(att),
        "count": len(selected),
        "per_set": {s["prefix"]: s["count"] for s in per_set},
        "seconds": seconds,
    }


def contact_sheet(images: np.ndarray, n: int = 64, cols: int = 8, seed: int = 0,
                  pad: int = 2) -> np.ndarray:
    """A grid of ``n`` randomly chosen images (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(images), size=min(n, len(images)), replace=False)
    h, w = images.shape[1:3]
    rows = math.ceil(len(idx) / cols)
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 128, np.uint8)
    for k, i in enumerate(idx):
        r, c = divmod(k, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y:y + h, x:x + w] = images[i]
    return sheet


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m explorer.training.emoji_dataset",
        description="Build the emoji-heads dataset (.npz) from Iconify emoji sets.",
    )
    p.add_argument("--out", required=True, help="output .npz path, e.g. data/emoji64.npz")
    p.add_argument("--packages", metavar="DIR",
                   help="folder with the npm packages already installed (npm prefix or "
                        "node_modules); missing ones are installed there unless --no-fetch")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--workers", type=int, default=2, help="parallel renderers (default 2)")
    p.add_argument("--sets", default=",".join(ICON_SETS),
                   help=f"comma-separated Iconify prefixes (default {','.join(ICON_SETS)})")
    p.add_argument("--no-fetch", action="store_true", help="never run npm")
    p.add_argument("--attribution", metavar="PATH",
                   help="attribution Markdown path (default <out>.ATTRIBUTION.md)")
    p.add_argument("--sheet", metavar="PNG", help="also save a contact sheet of 64 random images")
    p.add_argument("--limit", type=int, help="at most this many icons per set (for quick tries)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.out.endswith(".npz"):
        args.out += ".npz"
    try:
        summary = build_dataset(
            args.out, args.packages, size=args.size,
            sets=[s.strip() for s in args.sets.split(",") if s.strip()],
            workers=args.workers, allow_fetch=not args.no_fetch,
            attribution=args.attribution, limit=args.limit,
            progress=None if args.quiet else sys.stderr,
        )
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.sheet:
        from PIL import Image

        with np.load(summary["out"]) as z:
            Image.fromarray(contact_sheet(z["images"])).save(args.sheet)
    if not args.quiet:
        counts = ", ".join(f"{k}={v}" for k, v in summary["per_set"].items())
        print(f"{summary['count']} images ({counts}) in {summary['seconds']:.1f}s -> {summary['out']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
