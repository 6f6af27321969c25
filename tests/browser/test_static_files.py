"""The dashboard's files without a browser: catalogs complete, vendored copies intact, no CDN."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from startos.webui.app import STATIC

LANGUAGES = ("en", "fr", "de", "pl", "es")
# Keys built at run time: t(`nav.${page.id}`) and the like, with every value they can take.
DYNAMIC_KEYS = {
    "nav": ["services", "marketplace", "sideload", "updates", "system", "notifications"],
    "live": ["connecting", "live", "reconnecting"],
}


def catalog(lang: str) -> dict[str, str]:
    data = json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def scripts() -> list[Path]:
    return sorted((STATIC / "js").rglob("*.js"))


def test_every_key_the_code_uses_is_in_the_english_catalog() -> None:
    english = catalog("en")
    used: set[str] = set()
    for path in scripts():
        used |= set(re.findall(r"""\bt\(\s*"([\w.]+)\"""", path.read_text(encoding="utf-8")))
    for prefix, values in DYNAMIC_KEYS.items():
        used |= {f"{prefix}.{value}" for value in values}
    assert used, "no t(...) calls found"
    assert sorted(used - set(english)) == []
    assert sorted(set(english) - used) == [], "catalog entries no code uses"


@pytest.mark.parametrize("lang", LANGUAGES[1:])
def test_each_catalog_translates_every_message(lang: str) -> None:
    english, other = catalog("en"), catalog(lang)
    assert sorted(set(english) ^ set(other)) == []
    for key, text in other.items():
        assert text.strip(), f"{lang}: {key} is empty"
        params = set(re.findall(r"\{(\w+)\}", english[key]))
        assert set(re.findall(r"\{(\w+)\}", text)) == params, f"{lang}: {key} has other {{params}}"
    # Real translations, not English copies: only names and cognates may stay the same.
    same = [key for key in english if other[key] == english[key]]
    assert len(same) <= 6, f"{lang} leaves these in English: {same}"


def test_vendored_packages_match_their_recorded_hashes() -> None:
    vendor = STATIC / "vendor"
    versions = (vendor / "VERSIONS.md").read_text(encoding="utf-8")
    lines = re.findall(r"^([0-9a-f]{64})  (\S+)$", versions, flags=re.MULTILINE)
    recorded = {name: digest for digest, name in lines}
    assert recorded, "VERSIONS.md lists no hashes"
    for name, digest in recorded.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    for folder in (p for p in vendor.iterdir() if p.is_dir()):
        assert any(f.name.startswith("LICENSE") for f in folder.iterdir()), f"{folder.name} has no licence"
        assert f"| {folder.name.rsplit('-', 1)[0]} | {folder.name.rsplit('-', 1)[1]} |" in versions, folder.name


def test_nothing_is_loaded_from_another_origin() -> None:
    pages = [STATIC / "index.html", *scripts(), STATIC / "css" / "app.css"]
    for path in pages:
        text = path.read_text(encoding="utf-8")
        imports = re.findall(r"""(?:from\s+|import\s*\(\s*|src=|href=)["']([^"']+)["']""", text)
        imports += re.findall(r"""url\(["']?(https?:[^"')]+)""", text)
        remote = [ref for ref in imports if re.match(r"^(https?:)?//", ref)]
        assert remote == [], f"{path.name} loads {remote}"
    assert "://" not in (STATIC / "index.html").read_text(encoding="utf-8"), "index.html names another origin"
