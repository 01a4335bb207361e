"""The ctypes layer against the header: struct layouts, the declaration table, vocabulary, library loading."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

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
    "xg_request": _native.XgRequest,
    "xg_redis_options": _native.XgRedisOptions,
    "xg_wait_step": _native.XgWaitStep,
    "xg_stats": _native.XgStats,
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
        fields = re.findall(r"(\w+)(?:\[\w+\])?;\s*$", re.sub(r"//.*", "", body.group(1)), re.M)
        assert [f for f, _ in py._fields_] == fields, cname


def test_declaration_table_covers_every_function() -> None:
    declared = set(re.findall(r"^[\w\s\*]*?\b(xg_\w+)\(", HEADER.read_text(), re.M))
    assert declared == {name for name, *_ in _native.DECLARATIONS}
    for name, restype, argtypes, _ in _native.DECLARATIONS:
        fn = getattr(_native.lib, name)
        assert fn.argtypes == argtypes and fn.restype == restype, name


@pytest.mark.parametrize("struct_type", [_native.XgClassification, _native.XgDecision, _native.XgWaitStep])
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
    header_abi = re.search(r"#define XG_ABI_VERSION (\d+)", HEADER.read_text())
    assert header_abi and _native.abi_version == _native.EXPECTED_ABI_VERSION == int(header_abi.group(1))
    assert _native.lib.xg_abi_oldest_version() <= _native.EXPECTED_ABI_VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", xeroguard.library_version)
    header_version = ".".join(re.findall(r"#define XEROGUARD_VERSION_(?:MAJOR|MINOR|PATCH) (\d+)", HEADER.read_text()))
    assert xeroguard.library_version == header_version


def test_a_library_is_used_only_when_it_serves_this_package() -> None:
    package = _native.PACKAGE_VERSION
    major, minor, patch = (int(part) for part in package.split("."))
    newer, older = "%d.%d.%d" % (major, minor + 1, 0), "%d.%d.%d" % (major, minor, patch - 1) if patch else "0.0.1"
    abi = _native.EXPECTED_ABI_VERSION
    assert _native.refusal("lib.so", package, abi, abi) is None
    assert _native.refusal("lib.so", newer, abi + 1, abi - 1) is None, "a newer library still serving this ABI"
    gone = _native.refusal("lib.so", newer, abi + 1, abi + 1)
    assert gone and "serves ABI %d but this package needs ABI %d" % (abi + 1, abi) in gone
    behind = _native.refusal("lib.so", package, abi - 1, abi - 1)
    assert behind and "needs ABI %d" % abi in behind and "XEROGUARD_LIBRARY" in behind
    stale = _native.refusal("lib.so", older, abi, abi)
    assert stale and "older than this package" in stale


@pytest.mark.parametrize("enum_cls, fn", [
    (xeroguard.Category, "xg_category_name"),
    (xeroguard.Action, "xg_action_name"),
    (xeroguard.RateLimitProblem, "xg_rate_limit_problem_name"),
    (xeroguard.AuthProblem, "xg_auth_problem_name"),
    (xeroguard.Reason, "xg_reason_name"),
    (xeroguard.GiveUp, "xg_give_up_name"),
    (xeroguard.FailurePolicy, "xg_failure_policy_name"),
    (xeroguard.StoreFailureKind, "xg_store_failure_kind_name"),
])
def test_enums_are_the_library_vocabulary(enum_cls: type, fn: str) -> None:
    """The enums' words are written out in Python (for type checkers); this ties them to the library's."""
    library = {getattr(_native.lib, fn)(code) for code in range(256)} - {None}
    assert {m.value for m in enum_cls} == library


def header_enum(prefix: str) -> Dict[str, int]:
    """The members of a header enum (`XG_WAIT_OUTCOME_GRANTED = 1,`) whose names start with `prefix`."""
    return {name: int(value) for name, value in
            re.findall(r"^\s*(%s\w+) = (\d+),$" % prefix, HEADER.read_text(), re.M)}


def test_header_constants_are_the_packages() -> None:
    """The constants the package copies from the header, and the codes of the enums without name functions."""
    defines = {name: int(value) for name, value in
               re.findall(r"^#define (XG_\w+) (-?\d+)$", HEADER.read_text(), re.M)}
    for name in ("XG_NONE", "XG_UNKNOWN", "XG_CLOCK_MONOTONIC", "XG_CLOCK_MANUAL", "XG_STORED_LIMITS_MUST_MATCH",
                 "XG_STORED_LIMITS_REPLACE", "XG_STORED_LIMITS_ADOPT", "XG_STATUS_OK",
                 "XG_STATUS_BUFFER_TOO_SMALL", "XG_MAX_TENANT_ID_BYTES", "XG_MAX_STORE_DEADLINE_MS",
                 "XG_MAX_KEY_PREFIX_BYTES", "XG_STATS_REASONS", "XG_STATS_FAILURE_POLICIES", "XG_STATS_WAIT_BUCKETS",
                 "XG_STATS_CATEGORIES", "XG_STATS_RATE_LIMIT_PROBLEMS", "XG_STATS_STORE_FAILURE_KINDS"):
        assert getattr(_native, name) == defines[name], name
    assert "#define XG_NO_DEADLINE UINT64_MAX" in HEADER.read_text() and _native.XG_NO_DEADLINE == 2**64 - 1
    outcomes = header_enum("XG_WAIT_OUTCOME_")
    assert outcomes == {name: getattr(_native, name) for name in outcomes} and len(outcomes) == 3
    failures = header_enum("XG_TRANSPORT_FAILURE_")
    assert {"XG_TRANSPORT_FAILURE_" + member.name: code
            for member, code in _vocabulary.TRANSPORT_FAILURE_CODE.items()} == failures
    assert set(_vocabulary.TRANSPORT_FAILURE_CODE) == set(xeroguard.TransportFailure)


def test_every_status_has_its_exception() -> None:
    statuses = {name: int(value) for name, value in
                re.findall(r"^#define XG_STATUS_(\w+) (\d+)$", HEADER.read_text(), re.M)}
    statuses.pop("OK")
    assert set(xeroguard.errors.STATUS_ERRORS) == set(statuses.values())
    assert xeroguard.errors.STATUS_ERRORS[statuses["INTERRUPTED"]] is xeroguard.LimiterInterrupted
    assert xeroguard.errors.STATUS_ERRORS[statuses["STORE_UNAVAILABLE"]] is xeroguard.StoreUnavailableError
    assert issubclass(xeroguard.StoreUnavailableError, (xeroguard.StoreError, ConnectionError))


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
