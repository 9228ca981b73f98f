"""The project's shape: what imports what, and what a plain install brings."""

from __future__ import annotations

import ast
import os
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
    """The vendors' stand-in must not know the client: no adapter, registry, status or policy,
    in its source and at run time (its package's ``__init__`` is all it loads of videojobs: that
    loaded the client's core, until every public name became lazy)."""
    for path in SANDBOX.glob("*.py"):
        for name in _imports(path):
            assert not name.startswith(".."), f"{path.name} imports {name} from the overlay"
            assert not name.startswith("videojobs"), f"{path.name} imports {name}"
            assert not name.endswith("_client"), f"{path.name} imports a generated client: {name}"
    code = (
        "import sys\n"
        "import videojobs.sandbox.__main__\n"
        "from videojobs.sandbox import Sandbox\n"
        "Sandbox().handle('GET', '/v1/video_generation/x', {}, {'authorization': 'Bearer sk-sandbox'}, b'')\n"
        "print(sorted(m for m in sys.modules if m.startswith('videojobs') and not m.startswith('videojobs.sandbox')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "['videojobs']", out.stdout


def test_the_client_and_the_sandbox_read_one_list_of_vendors() -> None:
    """pyproject.toml's entry points are the vendors: the registry's and (read by name, without the
    client) the sandbox's; the wheel names none of them (tests/test_sixth_vendor.py builds it)."""
    from videojobs import known_vendors
    from videojobs._registry import GROUP
    from videojobs.sandbox._spec import VENDOR_GROUP, installed_vendors

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = pyproject["project"]["entry-points"][GROUP]
    assert GROUP == VENDOR_GROUP
    assert tuple(sorted(listed)) == known_vendors() == installed_vendors()
    assert all(target.startswith(f"videojobs.vendors.{slug}:") for slug, target in listed.items())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert not [slug for slug in listed if slug in repr(wheel)], "the wheel's package list names a vendor"


def test_a_plain_install_brings_the_library_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {dep.split(">")[0].split("<")[0].split("=")[0].strip() for dep in project["dependencies"]}
    # aiohttp (under httpx-aiohttp) is the async client's default transport, in a plain install
    assert runtime == {"aiohttp", "attrs", "httpcore", "httpx", "httpx-aiohttp", "sniffio"}
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


LOADED_ON_FIRST_USE = (
    "attr", "attrs", "httpx", "httpcore", "h11", "anyio", "aiohttp", "ssl",
    "videojobs._adapter", "videojobs._status", "videojobs._policy", "videojobs._sessions", "videojobs._calls",
    "videojobs._exchange", "videojobs._translate", "videojobs._ratecontrol", "videojobs._batch",
    "videojobs._schedule",
    "videojobs._fetch", "videojobs._files", "videojobs._download", "videojobs.vendors",
)  # fmt: skip
"""What ``import videojobs`` and ``Client()`` leave out: the first status call loads it (the import
bench in scripts/bench.py compares ``import videojobs`` with ``import httpx``)."""


def test_import_and_a_new_client_leave_the_calls_code_attrs_and_httpx_for_the_first_call() -> None:
    code = (
        "import sys\n"
        f"lazy = {LOADED_ON_FIRST_USE!r}\n"
        "def loaded(): return sorted(m for m in sys.modules if m.startswith(lazy) or m.split('.')[0].endswith('_client'))\n"
        "before = loaded()\n"
        "import videojobs\n"
        "names = set(dir(videojobs))\n"
        "videojobs.Client(api_keys={'vozo': 'k'}).close(); videojobs.AsyncClient()\n"
        "print(sorted(set(loaded()) - set(before)))\n"
        "print(sorted(set(videojobs.__all__) - names))\n"
        "from videojobs.sandbox import Sandbox\n"
        "sb = Sandbox()\n"
        "with videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(),"
        " transport=sb.sync_transport()) as c:\n"
        "    status = c.status('vozo:x-q1-d9')\n"
        "print(type(status) is videojobs.JobStatus, status.state is videojobs.State.QUEUED)\n"
        "print([m for m in ('attrs', 'httpx', 'videojobs._sessions', 'videojobs._calls') if m not in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines() == ["[]", "[]", "True True", "[]"], out.stdout


def test_the_cli_names_the_extra_it_needs() -> None:
    code = (
        "import sys; sys.modules['rich'] = None\n"  # as if videojobs[cli] were not installed
        "from videojobs._cli import main\n"
        "sys.exit(main(['status', '--sandbox', 'vozo:x']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert "pip install 'videojobs[cli]'" in out.stderr


TYPED_SNIPPET = """\
from duomi_client import AuthenticatedClient
from duomi_client.api.tasks import get_video_task
from duomi_client.models import DuomiTask


def poll(typed: AuthenticatedClient) -> DuomiTask | None:  # typed: client.vendor("duomi").typed
    return get_video_task.sync("task-1", client=typed)  # Any would be an error


wrong: int = DuomiTask.from_dict({}).state
"""


def test_the_installed_generated_clients_are_typed_for_a_type_checker(tmp_path: Path) -> None:
    """The generated packages ship py.typed: mypy reads an installed client's annotations (without
    the marker it would skip the package, and ``wrong`` would pass as Any)."""
    (tmp_path / "snippet.py").write_text(TYPED_SNIPPET, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         "snippet.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")},
    )  # fmt: skip
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert errors == [
        'snippet.py:10: error: Incompatible types in assignment (expression has type "DuomiTaskState", '
        'variable has type "int")  [assignment]'
    ], out.stdout
