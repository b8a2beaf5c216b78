"""The emoji dataset builder, on a tiny fake Iconify package folder (no network)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.training import emoji_dataset as ed

# CI installs librsvg2-bin, so there a missing rsvg-convert is a failure, not a skip.
needs_rsvg = pytest.mark.skipif(shutil.which("rsvg-convert") is None and os.environ.get("CI") != "true",
                                reason="rsvg-convert (librsvg2-bin) is not installed")

RED_SQUARE = '<rect x="4" y="4" width="8" height="8" fill="#ff0000"/>'
LEFT_BLUE = '<path fill="#0000ff" d="M0 0h8v16H0z"/>'
GREEN_FULL = '<rect x="0" y="0" width="32" height="16" fill="#00ff00"/>'
DOT = '<circle cx="8" cy="8" r="6" fill="#000"/>'

# code points -> (label, subgroup id); the subgroup names are Unicode's.
SUBGROUPS = {"0": "face-smiling", "9": "face-concerned", "12": "cat-face", "23": "person",
             "25": "person-role", "42": "food-fruit"}
EMOJIBASE = [
    {"label": "grinning face", "hexcode": "1F600", "group": 0, "subgroup": 0},
    {"label": "frowning face", "hexcode": "2639", "group": 0, "subgroup": 9},
    {"label": "grinning cat", "hexcode": "1F63A", "group": 0, "subgroup": 12},
    {"label": "man", "hexcode": "1F468", "group": 1, "subgroup": 23, "skins": [
        {"label": "man: light skin tone", "hexcode": "1F468-1F3FB", "group": 1, "subgroup": 23},
        {"label": "man: dark skin tone", "hexcode": "1F468-1F3FF", "group": 1, "subgroup": 23},
    ]},
    {"label": "pregnant woman", "hexcode": "1F930", "group": 1, "subgroup": 25},
    {"label": "red apple", "hexcode": "1F34E", "group": 4, "subgroup": 42},
    {"label": "regional indicator A", "hexcode": "1F1E6"},  # no subgroup at all
]


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def make_packages(root: Path, prefix: str = "fake", chars: bool = True) -> Path:
    """An npm prefix with one Iconify set and a minimal emojibase-data."""
    nm = root / "node_modules"
    _write(nm / "emojibase-data" / "package.json", {"name": "emojibase-data", "version": "0.0.1"})
    _write(nm / "emojibase-data" / "en" / "data.json", EMOJIBASE)
    _write(nm / "emojibase-data" / "meta" / "groups.json", {"groups": {}, "subgroups": SUBGROUPS})
    d = nm / "@iconify-json" / prefix
    _write(d / "package.json", {"name": f"@iconify-json/{prefix}", "version": "9.9.9"})
    _write(d / "info.json", {"name": "Fake Emoji", "author": {"name": "Fake Author", "url": ""},
                             "license": {"title": "MIT", "spdx": "MIT", "url": ""}})
    _write(d / "icons.json", {
        "prefix": prefix, "width": 16, "height": 16,
        "icons": {
            "grinning-face": {"body": RED_SQUARE},
            "frowning-face": {"body": GREEN_FULL, "width": 32},  # 32x16: padded to a square
            "man": {"body": LEFT_BLUE},
            "grinning-cat": {"body": DOT},
            "pregnant-woman": {"body": DOT},
            "red-apple": {"body": DOT},
        },
        "aliases": {
            "man-light-skin-tone": {"parent": "man", "hFlip": True},
            "old-man-name": {"parent": "man"},
        },
    })
    _write(d / "chars.json", {
        "1f600": "grinning-face", "2639-fe0f": "frowning-face", "1f63a": "grinning-cat",
        "1f468": "man", "1f468-1f3fb": "man-light-skin-tone", "1f930": "pregnant-woman",
        "1f34e": "red-apple",
        "1f468-1f3ff": "man-dark-skin-tone",  # listed but absent from icons.json: skipped
    } if chars else {})
    return root


@pytest.fixture
def packages(tmp_path):
    return make_packages(tmp_path / "pkgs")


def _load(root: Path, prefix: str = "fake"):
    table = ed.load_subgroup_table(ed.find_package_dir(root, "emojibase-data"))
    iconset = ed.load_icon_set(ed.find_package_dir(root, f"@iconify-json/{prefix}"), prefix)
    return table, iconset


# ---------------------------------------------------------------- selection


def test_subgroup_table_includes_skin_tones_and_ignores_fe0f(packages):
    table, _ = _load(packages)
    assert table.lookup("1F468-1F3FB") == ("person", "man: light skin tone")
    assert table.lookup("2639-FE0F") == ("face-concerned", "frowning face")
    assert table.lookup("1f1e6") is None
    assert table.source == "emojibase-data 0.0.1"


def test_select_keeps_heads_only(packages):
    table, iconset = _load(packages)
    sel = ed.select_icons(iconset, table)
    assert [(s.name, s.subgroup) for s in sel] == [
        ("grinning-face", "face-smiling"),
        ("frowning-face", "face-concerned"),
        ("man", "person"),
        ("man-light-skin-tone", "person"),  # skin-tone variant, an alias in the set
    ]
    assert {s.source for s in sel} == {"fake"}
    assert sel[3].codepoints == "1f468-1f3fb" and sel[3].label == "man: light skin tone"


def test_select_exclusions_and_subgroups(packages):
    table, iconset = _load(packages)
    names = lambda **kw: [s.name for s in ed.select_icons(iconset, table, **kw)]  # noqa: E731
    # The default exclusions drop pregnant-woman even though person-role is selected ...
    assert "pregnant-woman" not in names(subgroups=["person-role"])
    # ... and without exclusions it is there.
    assert names(subgroups=["person-role"], exclude=()) == ["pregnant-woman"]
    assert names(subgroups=["cat-face"]) == ["grinning-cat"]
    # a custom exclusion replaces the defaults; per-set ones apply only to their set
    assert names(exclude={"other": [r"^man\b"]}) == names(exclude=())
    assert names(exclude={"fake": [r"^man\b", "pregnant"]}) == ["grinning-face", "frowning-face"]
    assert names(exclude={"*": [r"skin tone", "pregnant"]}) == [
        "grinning-face", "frowning-face", "man"]


def test_select_without_chars_maps_names(tmp_path):
    root = make_packages(tmp_path / "p", chars=False)
    table, iconset = _load(root)
    # From label slugs alone ("man: light skin tone" -> man-light-skin-tone) ...
    assert [s.name for s in ed.select_icons(iconset, table)] == [
        "grinning-face", "frowning-face", "man"]
    # ... plus names known from other sets; old-man-name duplicates "man" and is dropped.
    sel = ed.select_icons(iconset, table, name_to_seq={"man-light-skin-tone": "1f468-1f3fb",
                                                       "old-man-name": "1f468"})
    assert [s.name for s in sel] == ["grinning-face", "frowning-face", "man"]


def test_name_to_seq_uses_chars_and_plain_aliases(packages):
    _, iconset = _load(packages)
    n2s = ed._name_to_seq([iconset])
    assert n2s["frowning-face"] == "2639"
    assert n2s["old-man-name"] == "1f468"  # plain alias of "man"


# ---------------------------------------------------------------- svg + render


def test_icon_svg_resolves_alias_and_pads_to_square(packages):
    _, iconset = _load(packages)
    svg = ed.icon_svg(iconset, "man-light-skin-tone")
    assert 'viewBox="0 0 16 16"' in svg and "scale(-1 1)" in svg and LEFT_BLUE in svg
    svg = ed.icon_svg(iconset, "frowning-face")
    assert 'viewBox="0 -8 32 32"' in svg
    with pytest.raises(KeyError):
        ed.icon_svg(iconset, "nope")


def test_composite_on_white():
    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 255, 128]]], np.uint8)
    rgb = ed.composite_on_white(rgba)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    assert rgb[0, 2].tolist() == [127, 127, 255]


@needs_rsvg
def test_build_dataset_real_pixels(packages, tmp_path):
    out = tmp_path / "out" / "emoji.npz"
    summary = ed.build_dataset(out, packages, sets=["fake"], allow_fetch=False, progress=None)
    assert summary["count"] == 4 and summary["per_set"] == {"fake": 4}
    with np.load(out) as z:
        images = z["images"]
        names = z["names"].tolist()
        assert z["sources"].tolist() == ["fake"] * 4
        assert z["subgroups"].tolist() == ["face-smiling", "face-concerned", "person", "person"]
        meta = json.loads(str(z["meta"]))
        assert "Fake Emoji" in str(z["attribution"])
    assert images.shape == (4, 64, 64, 3) and images.dtype == np.uint8
    assert names == ["fake:grinning-face", "fake:frowning-face", "fake:man", "fake:man-light-skin-tone"]
    assert meta["count"] == 4 and meta["size"] == 64

    face, frown, man, man_flipped = images
    white, red, blue, green = [255, 255, 255], [255, 0, 0], [0, 0, 255], [0, 255, 0]
    # red 8x8 square in a 16x16 box -> pixels 16..47 red, transparent rest white
    assert (face[18:46, 18:46] == red).all()
    assert (face[:14] == white).all() and (face[50:] == white).all()
    assert (face[:, :14] == white).all() and (face[:, 50:] == white).all()
    # left half blue; the hFlip alias draws it on the right
    assert (man[:, :30] == blue).all() and (man[:, 34:] == white).all()
    assert (man_flipped[:, 34:] == blue).all() and (man_flipped[:, :30] == white).all()
    # 32x16 icon centred in a square: a green band across the middle
    assert (frown[:14] == white).all() and (frown[50:] == white).all()
    assert (frown[18:46] == green).all()

    md = Path(summary["attribution"])
    assert md == out.with_suffix(".ATTRIBUTION.md") and md.is_file()
    text = md.read_text()
    assert "Fake Emoji" in text and "MIT" in text and "| 4 |" in text


@needs_rsvg
def test_cli_main(packages, tmp_path, capsys):
    out = tmp_path / "d.npz"
    sheet = tmp_path / "sheet.png"
    rc = ed.main(["--out", str(out), "--packages", str(packages), "--sets", "fake", "--size", "32",
                  "--no-fetch", "--sheet", str(sheet), "--attribution", str(tmp_path / "A.md")])
    assert rc == 0
    err = capsys.readouterr().err
    assert "[render] 4/4" in err and "fake: 4 icons selected" in err
    with np.load(out) as z:
        assert z["images"].shape == (4, 32, 32, 3)
    assert (tmp_path / "A.md").is_file()
    from PIL import Image

    with Image.open(sheet) as im:
        assert im.mode == "RGB" and im.size[0] > 32


@needs_rsvg
def test_module_runs_as_script(packages, tmp_path):
    out = tmp_path / "m.npz"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "explorer.training.emoji_dataset", "--out", str(out),
         "--packages", str(packages), "--sets", "fake", "--no-fetch", "-q"],
        cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()


# ---------------------------------------------------------------- errors


def test_missing_rsvg_is_a_clear_error(packages, tmp_path, monkeypatch, capsys):
    real = shutil.which
    monkeypatch.setattr(ed.shutil, "which", lambda n: None if n == "rsvg-convert" else real(n))
    with pytest.raises(ed.MissingToolError, match="rsvg-convert.*librsvg2-bin"):
        ed.build_dataset(tmp_path / "x.npz", packages, sets=["fake"], progress=None)
    assert ed.main(["--out", str(tmp_path / "x.npz"), "--packages", str(packages), "-q"]) == 2
    assert "rsvg-convert" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_missing_npm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(ed.shutil, "which", lambda n: "/bin/true" if n == "rsvg-convert" else None)
    with pytest.raises(ed.MissingToolError, match="npm not found"):
        ed.build_dataset(tmp_path / "x.npz", None, progress=None)
    # and when packages are missing from a given folder and npm would be needed
    with pytest.raises(ed.MissingToolError, match="npm not found"):
        ed.build_dataset(tmp_path / "x.npz", tmp_path / "empty", progress=None)


def test_missing_packages_without_fetch(packages, tmp_path, monkeypatch):
    monkeypatch.setattr(ed.shutil, "which", lambda n: "/bin/true" if n == "rsvg-convert" else None)
    with pytest.raises(ed.BuildError, match=r"npm install --prefix .*@iconify-json/noto@"):
        ed.build_dataset(tmp_path / "x.npz", packages, allow_fetch=False, progress=None)


def test_contact_sheet_shape():
    imgs = np.zeros((100, 8, 8, 3), np.uint8)
    sheet = ed.contact_sheet(imgs, n=64, cols=8, pad=2)
    assert sheet.shape == (8 * 10 + 2, 8 * 10 + 2, 3) and sheet.dtype == np.uint8
