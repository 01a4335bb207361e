"""One version and one licence: Cargo.toml's version is the Python package's, the C# package's and the header's, and
the LICENSE file is the MIT licence every manifest names."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
import xml.etree.ElementTree as ET

import xeroguard

from conftest import REPO, crate_version

CSPROJ = REPO / "bindings" / "csharp" / "XeroGuard.csproj"


def csproj_property(name: str) -> str:
    values = [e.text for e in ET.parse(CSPROJ).getroot().iter(name)]
    assert len(values) == 1 and values[0], "%s: %s %r" % (CSPROJ, name, values)
    return str(values[0])


def test_the_python_package_has_the_crates_version() -> None:
    pyproject = tomllib.loads((REPO / "bindings" / "python" / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    # The package installed from this checkout (setup.py read Cargo.toml), its module, and its library.
    assert importlib.metadata.version("xeroguard") == crate_version()
    assert xeroguard.__version__ == crate_version()
    assert xeroguard.library_version == crate_version()


def test_the_csharp_package_and_the_header_have_the_crates_version() -> None:
    assert csproj_property("Version") == crate_version()
    # The binding's own copy, which it compares with the loaded library's version.
    native = (REPO / "bindings" / "csharp" / "src" / "Native.cs").read_text()
    assert re.findall(r'const string BindingVersion = "([^"]+)";', native) == [crate_version()]
    header = (REPO / "include" / "xeroguard.h").read_text()
    parts = [re.search(r"#define XEROGUARD_VERSION_%s (\d+)" % part, header) for part in ("MAJOR", "MINOR", "PATCH")]
    assert ".".join(m.group(1) for m in parts if m) == crate_version()


def test_the_readmes_name_the_crates_version() -> None:
    # File names that carry the version (wheel, sdist, nupkg, installed library) in the READMEs' instructions.
    version = r"(\d+\.\d+\.\d+)"
    patterns = [r"xeroguard-" + version, r"XeroGuard\." + version + r"\.nupkg", r"libxeroguard\.so\." + version]
    found = []
    for doc in ("README.md", "bindings/python/README.md", "bindings/csharp/README.md"):
        text = (REPO / doc).read_text()
        found += [(doc, found_version) for pattern in patterns for found_version in re.findall(pattern, text)]
    assert len(found) >= 4, found
    assert [f for f in found if f[1] != crate_version()] == []


def test_one_mit_licence() -> None:
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License\n\nCopyright (c) 2026 the xeroguard authors\n"), licence[:80]
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in licence
    cargo = tomllib.loads((REPO / "Cargo.toml").read_text())["package"]
    pyproject = tomllib.loads((REPO / "bindings" / "python" / "pyproject.toml").read_text())["project"]
    assert cargo["license"] == pyproject["license"] == csproj_property("PackageLicenseExpression") == "MIT"
    # The Python project's licence file is the same text (a link in the checkout, a copy in the sdist).
    assert (REPO / "bindings" / "python" / pyproject["license-files"][0]).read_text() == licence
    assert "/LICENSE" in cargo["include"]
