"""`make install PREFIX=...` as a C user meets it: the files and links, the SONAME, the pkg-config file, a program
built with `pkg-config --cflags --libs xeroguard` that runs with only the prefix on the loader path (or an rpath),
a statically linked one that needs no libxeroguard at all, an install staged with DESTDIR before the library was
built, uninstall."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List

from conftest import REPO, crate_version, pkg_config, run

EXAMPLE = REPO / "examples" / "c" / "classify.c"
EXPECTED_OUTPUT = "category=rate_limited action=retry retry in 17000 ms"


def soname(library: Path) -> str:
    match = re.search(r"^\s*SONAME\s+(\S+)", run(["objdump", "-p", library]).stdout, re.M)
    assert match, "%s has no SONAME" % library
    return match.group(1)


def needed(program: Path) -> List[str]:
    return re.findall(r"^\s*NEEDED\s+(\S+)", run(["objdump", "-p", program]).stdout, re.M)


def test_installs_the_header_libraries_links_and_pkg_config_file(prefix: Path) -> None:
    version = crate_version()
    major, minor = version.split(".")[:2]
    lib = prefix / "lib"
    real = lib / ("libxeroguard.so." + version)
    assert real.is_file() and not real.is_symlink()
    name = soname(real)
    assert name == ("libxeroguard.so.0.%s" % minor if major == "0" else "libxeroguard.so.%s" % major)
    assert os.readlink(lib / name) == real.name  # the loader's name -> the real file
    assert os.readlink(lib / "libxeroguard.so") == name  # the linker's name -> the loader's
    assert (lib / "libxeroguard.a").is_file()
    assert (prefix / "include" / "xeroguard.h").read_bytes() == (REPO / "include" / "xeroguard.h").read_bytes()
    assert pkg_config(prefix, "--modversion") == [version]
    assert pkg_config(prefix, "--cflags") == ["-I%s" % (prefix / "include")]
    assert pkg_config(prefix, "--libs") == ["-L%s" % lib, "-lxeroguard"]


def test_release_libraries_carry_no_debug_info(prefix: Path) -> None:
    lib = prefix / "lib" / "libxeroguard.so"
    sections = run(["readelf", "-S", "-W", lib]).stdout
    assert ".debug_info" not in sections and ".symtab" not in sections, sections
    # Stripped, 2.8 MB: the Redis client with TLS and Cluster is most of it. Debug info would be several times that.
    assert lib.stat().st_size < 4_000_000, lib.stat().st_size
    exports = run(["nm", "-D", "--defined-only", lib]).stdout
    assert " T xg_classify_raw" in exports  # the exported functions stay
    assert ".debug_info" not in run(["readelf", "-S", "-W", prefix / "lib" / "libxeroguard.a"]).stdout


def test_a_program_built_with_pkg_config_runs_with_only_the_prefix_on_the_loader_path(prefix: Path,
                                                                                      tmp_path: Path) -> None:
    program = tmp_path / "classify"
    run(["cc", "-std=c99", EXAMPLE, *pkg_config(prefix, "--cflags", "--libs"), "-o", program])
    assert "libxeroguard.so.0.%s" % crate_version().split(".")[1] in needed(program)
    env = {key: value for key, value in os.environ.items() if key != "LD_LIBRARY_PATH"}
    missing = run([program], env=env, check=False)
    assert missing.returncode != 0 and "libxeroguard" in missing.stderr, missing.stderr
    out = run([program], env=dict(env, LD_LIBRARY_PATH=str(prefix / "lib"))).stdout
    assert EXPECTED_OUTPUT in out, out


def test_an_rpath_needs_no_loader_path(prefix: Path, tmp_path: Path) -> None:
    program = tmp_path / "classify"
    libdir = pkg_config(prefix, "--variable=libdir")[0]
    run(["cc", "-std=c99", EXAMPLE, *pkg_config(prefix, "--cflags", "--libs"), "-Wl,-rpath," + libdir, "-o", program])
    env = {key: value for key, value in os.environ.items() if key != "LD_LIBRARY_PATH"}
    assert EXPECTED_OUTPUT in run([program], env=env).stdout


def test_the_static_library_links_on_its_own(prefix: Path, tmp_path: Path) -> None:
    program = tmp_path / "classify-static"
    libdir = pkg_config(prefix, "--variable=libdir")[0]
    run(["cc", "-std=c99", EXAMPLE, *pkg_config(prefix, "--cflags"), Path(libdir) / "libxeroguard.a",
         *pkg_config(prefix, "--variable=static_deps"), "-o", program])
    assert not [lib for lib in needed(program) if "xeroguard" in lib], needed(program)
    env = {key: value for key, value in os.environ.items() if key != "LD_LIBRARY_PATH"}
    assert EXPECTED_OUTPUT in run([program], env=env).stdout
    # pkg-config --static lists the same system libraries (Libs.private).
    assert pkg_config(prefix, "--static", "--libs")[2:] == pkg_config(prefix, "--variable=static_deps")


def test_before_the_library_is_built_destdir_stages_and_uninstall_removes(tmp_path: Path) -> None:
    # The library not built yet, as in a fresh clone: make must read the SONAME only after cargo built it. (The dev
    # profile; the library and its SONAME link are removed first. Cargo puts the library back from its own cache
    # without rebuilding, so this costs no build.) Staged for a package.
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug"
    for built in target.glob("libxeroguard.so*"):
        built.unlink()
    stage = tmp_path / "stage"
    run(["make", "install", "PROFILE=dev", "DESTDIR=%s" % stage, "PREFIX=/usr"], cwd=REPO, timeout=1800)
    assert soname(stage / "usr" / "lib" / ("libxeroguard.so." + crate_version())).startswith("libxeroguard.so.")
    pc = (stage / "usr" / "lib" / "pkgconfig" / "xeroguard.pc").read_text()
    assert "prefix=/usr\n" in pc and "libdir=/usr/lib\n" in pc, pc  # the final paths, not the staging ones
    assert (stage / "usr" / "include" / "xeroguard.h").is_file()
    run(["make", "uninstall", "DESTDIR=%s" % stage, "PREFIX=/usr"], cwd=REPO)
    left = [str(p.relative_to(stage)) for p in stage.rglob("*") if not p.is_dir()]
    assert left == [], left
