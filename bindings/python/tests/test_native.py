"""The ctypes layer against the header: struct layouts, the declaration table, vocabulary, library loading."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import xeroguard
from xeroguard import _native, _vocabulary
from conftest import REPO

HEADER = REPO / "include" / "xeroguard.h"

STRUCTS = {
    "xg_header": _native.XgHeader,
    "xg_response": _native.XgResponse,
    "xg_classification": _native.XgClassification,
    "xg_retry_policy": _native.XgRetryPolicy,
    "xg_backoff_decision": _native.XgBackoffDecision,
    "xg_window_limit": _native.XgWindowLimit,
    "xg_limits": _native.XgLimits,
    "xg_decision": _native.XgDecision,
    "xg_reservation": _native.XgReservation,
    "xg_tenant_limits": _native.XgTenantLimits,
}


def test_structs_match_the_c_compiler(tmp_path: Path) -> None:
    """Compiles a probe against the header and compares every size and field offset with ctypes."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert cc, "a C compiler is needed for this test (Rust needs one too)"
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "xeroguard.h"', "int main(void) {"]
    for cname, py in STRUCTS.items():
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (cname, cname))
        for field, _ in py._fields_:
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (cname, field, cname, field))
    lines.append("return 0; }")
    src = tmp_path / "probe.c"
    src.write_text("\n".join(lines))
    subprocess.run([cc, "-std=c99", "-I", str(HEADER.parent), str(src), "-o", str(tmp_path / "probe")], check=True)
    out = subprocess.run([str(tmp_path / "probe")], check=True, capture_output=True, text=True).stdout
    c_layout = dict(line.rsplit(" ", 1) for line in out.splitlines())
    py_layout = {}
    for cname, py in STRUCTS.items():
        py_layout[cname] = str(ctypes.sizeof(py))
        for field, _ in py._fields_:
            py_layout["%s.%s" % (cname, field)] = str(getattr(py, field).offset)
    assert py_layout == c_layout


def test_struct_fields_are_the_headers() -> None:
    text = HEADER.read_text()
    for cname, py in STRUCTS.items():
        body = re.search(r"typedef struct \{([^{}]*)\} %s;" % cname, text)
        assert body, cname
        fields = re.findall(r"(\w+);\s*$", re.sub(r"//.*", "", body.group(1)), re.M)
        assert [f for f, _ in py._fields_] == fields, cname


def test_declaration_table_covers_every_function() -> None:
    declared = set(re.findall(r"^[\w\s\*]*?\b(xg_\w+)\(", HEADER.read_text(), re.M))
    assert declared == {name for name, *_ in _native.DECLARATIONS}
    for name, restype, argtypes, _ in _native.DECLARATIONS:
        fn = getattr(_native.lib, name)
        assert fn.argtypes == argtypes and fn.restype == restype, name


@pytest.mark.parametrize("struct_type", [_native.XgClassification, _native.XgDecision])
def test_field_reader_reads_what_ctypes_reads(struct_type: type) -> None:
    """The bulk reader (struct.unpack_from) against ctypes' own field access, every field set to a distinct
    value."""
    value = struct_type()
    for i, (field, ctype) in enumerate(struct_type._fields_):
        setattr(value, field, True if ctype is ctypes.c_bool else -(i + 2) if ctype is ctypes.c_int64 else i + 7)
    assert _native.field_reader(struct_type)(value) == tuple(getattr(value, f) for f, _ in struct_type._fields_)


def test_struct_size_is_set_on_construction() -> None:
    assert _native.XgDecision().struct_size == ctypes.sizeof(_native.XgDecision)
    assert _native.XgLimits().struct_size == ctypes.sizeof(_native.XgLimits)


def test_versions() -> None:
    assert _native.abi_version == _native.EXPECTED_ABI_VERSION == 1
    assert re.fullmatch(r"\d+\.\d+\.\d+", xeroguard.library_version)
    header_version = ".".join(re.findall(r"#define XEROGUARD_VERSION_(?:MAJOR|MINOR|PATCH) (\d+)", HEADER.read_text()))
    assert xeroguard.library_version == header_version


# Words this package knows before the library it was built with has them; the tie test tolerates exactly
# these missing from the library (with the code they will have).
AWAITED_WORDS = {"payload_too_large": 16}  # xero-reference §4 and §6 (413); the Rust side is adding it


@pytest.mark.parametrize("enum_cls, fn", [
    (xeroguard.Category, "xg_category_name"),
    (xeroguard.Action, "xg_action_name"),
    (xeroguard.RateLimitProblem, "xg_rate_limit_problem_name"),
    (xeroguard.AuthProblem, "xg_auth_problem_name"),
    (xeroguard.Reason, "xg_reason_name"),
])
def test_enums_are_the_library_vocabulary(enum_cls: type, fn: str) -> None:
    """The enums' words are written out in Python (for type checkers); this ties them to the library's."""
    library = {getattr(_native.lib, fn)(code): code for code in range(256)}
    library.pop(None, None)
    words = {m.value for m in enum_cls}
    missing = words - set(library)
    assert set(library) - words == set(), "the library has words this package lacks"
    assert missing <= set(AWAITED_WORDS), "this package has words the library lacks"
    for word in missing:
        assert AWAITED_WORDS[word] not in library.values(), "code %d is taken by another word" % AWAITED_WORDS[word]
    for word, code in AWAITED_WORDS.items():
        if word in library:
            assert library[word] == code


def test_header_constants_are_the_packages() -> None:
    """The constants the package copies from the header, and the give-up codes (no name function for them)."""
    defines = {name: int(value) for name, value in
               re.findall(r"^#define (XG_\w+) (-?\d+)$", HEADER.read_text(), re.M)}
    for name in ("XG_NONE", "XG_UNKNOWN", "XG_CLOCK_MONOTONIC", "XG_CLOCK_MANUAL", "XG_STATUS_OK",
                 "XG_STATUS_BUFFER_TOO_SMALL", "XG_MAX_TENANT_ID_BYTES"):
        assert getattr(_native, name) == defines[name], name
    give_up = {int(v): name for name, v in defines.items() if name.startswith("XG_GIVE_UP_")}
    assert {code: "XG_GIVE_UP_" + member.name for code, member in _vocabulary.GIVE_UP_BY_CODE.items()} == give_up


def test_status_names() -> None:
    assert _native.status_name(0) == "ok"
    for status, cls in xeroguard.errors.STATUS_ERRORS.items():
        assert _native.status_name(status) != "unknown_status", cls
        assert issubclass(cls, xeroguard.XeroGuardError)


def test_bundled_library_is_loaded_from_the_package() -> None:
    assert Path(xeroguard.library_path).parent == Path(xeroguard.__file__).parent


def _import_in_subprocess(env_library: str, package_copy: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, XEROGUARD_LIBRARY=env_library, PYTHONPATH=str(package_copy))
    code = "import warnings; warnings.simplefilter('error'); import xeroguard; print(xeroguard.library_path)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=package_copy)


def test_library_override_and_errors(tmp_path: Path) -> None:
    pkg = tmp_path / "site" / "xeroguard"
    shutil.copytree(Path(xeroguard.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    bundled = pkg / Path(xeroguard.library_path).name
    moved = tmp_path / "elsewhere" / bundled.name
    moved.parent.mkdir()
    shutil.move(str(bundled), moved)

    ok = _import_in_subprocess(str(moved), pkg.parent)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(moved)

    missing = tmp_path / "nowhere" / "libxeroguard.so"
    bad = _import_in_subprocess(str(missing), pkg.parent)
    assert bad.returncode != 0
    assert "ImportError" in bad.stderr
    assert str(missing) in bad.stderr and str(bundled) in bad.stderr  # every path tried is named

    # A broken override next to a bundled library: it loads the bundled one, with a warning.
    shutil.copy(moved, bundled)
    warned = _import_in_subprocess(str(missing), pkg.parent)
    assert warned.returncode != 0 and "RuntimeWarning" in warned.stderr and "XEROGUARD_LIBRARY" in warned.stderr
