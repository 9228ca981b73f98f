"""The project's shape: what imports what, and what a plain install brings."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "overlay" / "videojobs" / "sandbox"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_the_sandbox_imports_nothing_of_the_client() -> None:
    """The vendors' stand-in must not know the client: no adapter, registry, status or policy."""
    for path in SANDBOX.glob("*.py"):
        for name in _imports(path):
            assert not name.startswith(".."), f"{path.name} imports {name} from the overlay"
            assert not name.startswith("videojobs"), f"{path.name} imports {name}"
            assert not name.endswith("_client"), f"{path.name} imports a generated client: {name}"


def test_a_plain_install_brings_the_library_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {dep.split(">")[0].split("<")[0].split("=")[0].strip() for dep in project["dependencies"]}
    # aiohttp (under httpx-aiohttp) is the async client's default transport, in a plain install
    assert runtime == {"aiohttp", "attrs", "httpx", "httpx-aiohttp", "sniffio"}
    assert any(dep.startswith("rich") for dep in project["optional-dependencies"]["cli"])
    assert any(dep.startswith("uvicorn") for dep in project["optional-dependencies"]["sandbox"])


def test_using_the_sync_library_loads_neither_the_cli_nor_the_server_nor_aiohttp() -> None:
    # httpx itself imports its CLI (click, rich) when they are installed, as in this dev venv:
    # what counts is what videojobs adds on top of `import httpx`
    code = (
        "import sys, httpx\n"
        "before = {m.split('.')[0] for m in sys.modules}\n"
        "import videojobs\n"
        "from videojobs.sandbox import Sandbox\n"
        "sb = Sandbox()\n"
        "with videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(),"
        " transport=sb.sync_transport()) as c:\n"
        "    c.status('vozo:x-q1-d9')\n"
        "added = {m.split('.')[0] for m in sys.modules} - before\n"
        "print(sorted(added & {'rich', 'uvicorn', 'click', 'pygments', 'stamina', 'tenacity', 'aiohttp'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_the_cli_names_the_extra_it_needs() -> None:
    code = (
        "import sys; sys.modules['rich'] = None\n"  # as if videojobs[cli] were not installed
        "from videojobs._cli import main\n"
        "sys.exit(main(['status', '--sandbox', 'vozo:x']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert "pip install 'videojobs[cli]'" in out.stderr
