"""Every fenced code block of README.md and the bindings' READMEs runs, or compiles and runs, or is marked as a
fragment and is checked for syntax. The rules (README, "Code blocks in the READMEs run"):

- the info string is a language, optionally followed by `fragment`: ```sh, ```python fragment, ```text;
- `python` runs with this interpreter (the package installed), `sh` runs with bash from a scratch directory that
  mirrors the checkout and a scratch $HOME, `c`/`cpp` compile against the installed library (pkg-config) and run,
  `csharp` compiles with mcs against the binding and runs under mono, `js` runs with node (an ES module, or CommonJS
  when it calls require()) and `ts` compiles with tsc --strict to an ES module that node runs, both in a project where
  the npm tarball (scripts/build-node-package.sh) is installed;
- `sh` and `python` blocks may be fragments (bash -n, compile()); a `csharp fragment` (a recipe for packages
  this machine lacks, e.g. Microsoft.Extensions.Http, Xero-NetStandard) is compiled by the C# suite's docs test
  against stand-ins with those packages' signatures (bindings/csharp/tests/DocsTests.cs); a `js fragment` is checked
  with node --check and a `ts fragment` (it needs a Redis server, say) is type-checked by the Node suite's docs test
  (bindings/node/test/docs.test.mjs); `text` is not code.
Examples that call Xero read XERO_API_URL, which points at the local Xero-like server: they must reach it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from conftest import MCS_REFERENCES, REPO, XeroServer, pkg_config, run

DOCS = ("README.md", "bindings/python/README.md", "bindings/csharp/README.md", "bindings/node/README.md")
RUNNABLE = {"sh", "python", "c", "cpp", "csharp", "js", "ts"}
MAY_BE_FRAGMENT = {"sh", "python", "csharp", "js", "ts"}
FENCE = re.compile(r"^```(.*)$")


@dataclasses.dataclass(frozen=True)
class Block:
    doc: str
    line: int
    info: str
    code: str

    @property
    def words(self) -> List[str]:
        return self.info.split()

    @property
    def lang(self) -> str:
        return self.words[0] if self.words else ""

    @property
    def fragment(self) -> bool:
        return self.words[1:] == ["fragment"]

    @property
    def name(self) -> str:
        return "%s:%d:%s" % (self.doc, self.line, self.info.replace(" ", "-"))


def read_blocks(doc: str) -> List[Block]:
    blocks: List[Block] = []
    opened: Optional[Tuple[int, str]] = None
    code: List[str] = []
    for number, line in enumerate((REPO / doc).read_text().splitlines(), start=1):
        fence = FENCE.match(line)
        if opened is None and fence:
            opened, code = (number, fence.group(1).strip()), []
        elif opened is not None and line == "```":
            blocks.append(Block(doc, opened[0], opened[1], "\n".join(code) + "\n"))
            opened = None
        elif opened is not None:
            code.append(line)
    assert opened is None, "%s: the block opened at line %d is never closed" % (doc, opened[0])
    return blocks


BLOCKS = [block for doc in DOCS for block in read_blocks(doc)]
CODE_BLOCKS = [block for block in BLOCKS if block.lang != "text"]


def test_every_block_says_what_it_is() -> None:
    assert len(CODE_BLOCKS) >= 15, [b.name for b in BLOCKS]
    for block in BLOCKS:
        assert block.lang in RUNNABLE | {"text"}, "%s: name the language (%s) or text" % (block.name, RUNNABLE)
        assert block.words[1:] in ([], ["fragment"]), "%s: only `fragment` may follow the language" % block.name
        assert not block.fragment or block.lang in MAY_BE_FRAGMENT, "%s: %s blocks must be complete programs" % (
            block.name, block.lang)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory whose entries link to the checkout's: shell blocks run their repository-relative commands
    there, and whatever they write (a compiled program, a response saved by curl) stays out of the checkout."""
    path = tmp_path_factory.mktemp("checkout")
    for entry in REPO.iterdir():
        if entry.name != ".git":
            (path / entry.name).symlink_to(entry)
    return path


def git_status() -> str:
    return run(["git", "status", "--porcelain"], cwd=REPO).stdout


def run_sh(block: Block, script: Path, mirror: Path, env: Dict[str, str], scratch: Path) -> None:
    home, cargo_root = scratch / "home", scratch / "cargo"
    home.mkdir(exist_ok=True)
    real_home = Path.home()
    env = dict(
        env,
        HOME=str(home),
        # The toolchain and crate cache stay the real ones; `cargo install` goes to the scratch root.
        CARGO_HOME=os.environ.get("CARGO_HOME", str(real_home / ".cargo")),
        RUSTUP_HOME=os.environ.get("RUSTUP_HOME", str(real_home / ".rustup")),
        CARGO_INSTALL_ROOT=str(cargo_root),
        CARGO_TARGET_DIR=str(REPO / "target"),
        PATH=os.pathsep.join([str(cargo_root / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]]),
    )
    before = git_status()
    run(["bash", "-euo", "pipefail", script], cwd=mirror, env=env, timeout=1800)
    assert git_status() == before, "%s changed the checkout" % block.name


def run_c(block: Block, source: Path, prefix: Path, env: Dict[str, str]) -> None:
    compiler, flags = ("g++", ["-std=c++17"]) if block.lang == "cpp" else ("cc", ["-std=c99", "-pedantic"])
    exe = source.with_suffix("")
    run([compiler, *flags, "-Wall", "-Wextra", "-Werror", source, *pkg_config(prefix, "--cflags", "--libs"),
         "-o", exe])
    run([exe], env=dict(env, LD_LIBRARY_PATH=str(prefix / "lib")))


def run_csharp(block: Block, source: Path, binding: Path, env: Dict[str, str]) -> None:
    exe = binding / (source.stem + ".exe")
    run(["mcs", "-nologo", "-warnaserror+", "-target:exe", "-out:%s" % exe, *MCS_REFERENCES,
         "-r:%s" % (binding / "XeroGuard.dll"), source])
    run(["mono", "--debug", exe], cwd=binding, env=env, timeout=120)


NODE_PACKAGE = REPO / "bindings" / "node"


@pytest.fixture(scope="session")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An npm project with the package's tarball installed (built as scripts/build-node-package.sh builds it) and the
    tools and packages the README blocks use, at the versions bindings/node/package.json pins."""
    for tool in ("node", "npm"):
        assert shutil.which(tool), "%s is missing: install Node.js 18 or later (apt-get install -y nodejs npm)" % tool
    built = os.environ.get("XEROGUARD_NODE_TARBALL")  # the test command builds the package once for every suite
    if built and Path(built).is_file():
        tarball = Path(built)
    else:
        dist = tmp_path_factory.mktemp("node-dist")
        run(["bash", REPO / "scripts" / "build-node-package.sh", dist], cwd=REPO, timeout=1800)
        (tarball,) = dist.glob("xeroguard-*.tgz")
    project = tmp_path_factory.mktemp("node-project")
    pins = json.loads((NODE_PACKAGE / "package.json").read_text())["devDependencies"]
    (project / "package.json").write_text(json.dumps({"name": "readme-blocks", "private": True, "dependencies": dict(
        pins, xeroguard="file:%s" % tarball)}))
    run(["npm", "install", "--no-audit", "--no-fund"], cwd=project, timeout=900)
    return project


def run_node(block: Block, source: Path, project: Path, env: Dict[str, str]) -> None:
    """js: node runs it (CommonJS when it calls require(), else an ES module); ts: tsc --strict, then node."""
    if block.lang == "js":
        script = project / ("block_%d.%s" % (block.line, "cjs" if "require(" in block.code else "mjs"))
        script.write_text(block.code)
    else:
        (project / "src").mkdir(exist_ok=True)
        (project / "src" / ("block_%d.mts" % block.line)).write_text(block.code)
        (project / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
            "target": "ES2022", "module": "nodenext", "moduleResolution": "nodenext", "strict": True, "types": ["node"],
            "outDir": "out", "rootDir": "src"}, "include": ["src/block_%d.mts" % block.line]}))
        run([project / "node_modules" / ".bin" / "tsc", "-p", project], cwd=project)
        script = project / "out" / ("block_%d.mjs" % block.line)
    run(["node", script], cwd=project, env=env, timeout=300)


SUFFIX = {"sh": ".sh", "python": ".py", "c": ".c", "cpp": ".cpp", "csharp": ".cs", "js": ".js", "ts": ".mts"}


@pytest.mark.parametrize("block", CODE_BLOCKS, ids=[block.name for block in CODE_BLOCKS])
def test_block_runs(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    source = tmp_path / ("block_%d%s" % (block.line, SUFFIX[block.lang]))
    source.write_text(block.code)
    if block.fragment:
        if block.lang == "sh":
            run(["bash", "-n", source])
        elif block.lang == "python":
            compile(block.code, block.name, "exec")
        elif block.lang == "js":
            run(["node", "--check", source])
        # ts fragments: type-checked by bindings/node/test/docs.test.mjs; csharp fragments: compiled by
        # bindings/csharp/tests/DocsTests.cs, with stand-ins for their packages.
        return
    env: Dict[str, str] = request.getfixturevalue("example_env")
    server: XeroServer = request.getfixturevalue("xero_server")
    calls_before = server.admitted()
    if block.lang == "sh":
        run_sh(block, source, request.getfixturevalue("mirror"), env, tmp_path)
    elif block.lang == "python":
        run([sys.executable, source], cwd=tmp_path, env=env, timeout=300)
    elif block.lang in ("c", "cpp"):
        run_c(block, source, request.getfixturevalue("prefix"), env)
    elif block.lang in ("js", "ts"):
        run_node(block, source, request.getfixturevalue("node_project"), env)
    else:
        run_csharp(block, source, request.getfixturevalue("csharp_binding"), env)
    if "XERO_API_URL" in block.code:
        assert server.admitted() > calls_before, "%s did not reach the server at XERO_API_URL" % block.name


def test_shell_fragments_name_files_that_exist() -> None:
    # Fragments are not run, so a renamed script they start would go unnoticed without this.
    fragments = [block for block in CODE_BLOCKS if block.lang == "sh" and block.fragment]
    assert fragments
    for block in fragments:
        for path in re.findall(r"^\s*((?:scripts|bindings)/\S+)", block.code, re.M):
            assert (REPO / path).exists(), "%s: %s does not exist" % (block.name, path)
