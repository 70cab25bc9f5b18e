"""Each combination bakes, passes its own `make check`, and serves real HTTP."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_spec_validator import validate
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from .combinations import (
    COMBINATIONS,
    first_with_examples,
    first_with_messaging,
    first_with_realtime,
)
from .conftest import Baked, Publisher, once_per, run
from .resource import readme_steps
from .served import Service, free_port, running, start_service
from .settings_source import settings_fields as source_fields
from .test_template import commands_with_placeholders, shell_commands

TEMPLATE_SEAMS = ("{{ cookiecutter", "{{cookiecutter", "{%", "%}", "{#")
# The OpenTelemetry SDK's own environment variables (its specification) that the docs may name.
OTEL_VARIABLES = {
    "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_PROPAGATORS",
    "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
}  # fmt: skip
# {name}: a bare identifier in braces, what str.format() and its kind leave when a value is missed.
BRACED_NAME = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


def test_the_bake_is_named_after_the_slug(baked: Baked) -> None:
    assert baked.path.name == baked.context["project_slug"]
    assert (baked.path / "src" / baked.package / "main.py").is_file()


def test_no_template_syntax_is_left(baked: Baked) -> None:
    leftovers = [
        f"{path.relative_to(baked.path)}: {seam}"
        for path in baked.text_files()
        for seam in TEMPLATE_SEAMS
        if seam in path.read_text(encoding="utf-8")
    ]
    assert leftovers == []


def test_the_readme_has_no_angle_bracket_placeholder_in_a_shell_command(baked: Baked) -> None:
    readme = (baked.path / "README.md").read_text()
    assert len(shell_commands(readme)) > 5
    assert commands_with_placeholders(readme) == []


def test_the_readmes_adding_a_resource_names_folders_and_lines_that_exist(baked: Baked) -> None:
    """Its files go in folders of the bake (domain/ is kept with a database, for the models), and
    main.py has the line below which a router is included."""
    steps = [what for what, _ in readme_steps(baked.path) if not what.startswith("make ")]
    folders = {(baked.path / what).parent for what in steps}
    if baked.context["database"] == "none":  # the README says to create domain/ if missing
        folders.discard(baked.path / "src" / baked.package / "domain")
    assert [folder for folder in folders if not folder.is_dir()] == []
    main = (baked.path / "src" / baked.package / "main.py").read_text()
    assert "Add your routers here" in main


def settings_fields(baked: Baked) -> set[str]:
    """The fields of the generated Settings class and of the groups it is composed of."""
    return source_fields(baked.path / "src" / baked.package)


def leftover_placeholders(text: str) -> list[str]:
    """Lines with a `{name}` that is neither a path parameter (right after a '/', as in
    /api/v1/articles/{article_id}) nor a field of a Python f-string (after f" or f' on its line,
    as in f"{API_PREFIX}/..."). JSON examples ({"id": 1}, {}) have no bare name in braces."""
    found = []
    for line in text.splitlines():
        for match in BRACED_NAME.finditer(line):
            before = line[: match.start()]
            if not before.endswith("/") and not re.search(r"""\bf["'][^"']*$""", before):
                found.append(line.strip())
    return found


@pytest.mark.parametrize("name", ["README.md", ".env.example", "docs/*.md"])
def test_the_docs_name_only_real_settings_and_leave_no_placeholder(baked: Baked, name: str) -> None:
    """Every PREFIX_* variable named is a field of Settings (PREFIX_UPSTREAM_* a family of them),
    every OTEL_* one a standard OpenTelemetry variable, and no {placeholder} is left."""
    text = "\n".join(path.read_text() for path in sorted(baked.path.glob(name)))
    fields = settings_fields(baked)
    assert {"service_name", "trusted_proxies", "access_log"} <= fields
    named = list(re.finditer(rf"\b{baked.package.upper()}_([A-Z][A-Z0-9_]*)(\*?)", text))
    assert len(named) > 10 or name == "README.md"  # the README names a few, its docs/ the rest
    unknown = []
    for match in named:
        setting, family = match[1].lower(), match[2] == "*" or match[1].endswith("_")
        if not (any(f.startswith(setting) for f in fields) if family else setting in fields):
            unknown.append(match[0])
    otel = re.findall(r"\bOTEL_[A-Z0-9_]*[A-Z0-9]", text)
    unknown += [variable for variable in otel if variable not in OTEL_VARIABLES]
    assert unknown == []
    assert leftover_placeholders(text) == []


def test_the_env_example_lists_every_setting(baked: Baked) -> None:
    """As settings.py says it does."""
    text = (baked.path / ".env.example").read_text()
    listed = set(re.findall(rf"^{baked.package.upper()}_([A-Z0-9_]+)=", text, re.MULTILINE))
    assert {name.lower() for name in listed} == settings_fields(baked)


def test_every_file_ends_its_lines_with_lf(baked: Baked) -> None:
    assert [p.name for p in baked.text_files() if b"\r\n" in p.read_bytes()] == []
    attributes = (baked.path / ".gitattributes").read_text()
    assert "* text=auto eol=lf" in attributes


def test_every_config_file_parses(baked: Baked) -> None:
    parsed = 0
    for path in baked.text_files():
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            list(yaml.safe_load_all(text))  # a manifest may hold several documents
        elif path.suffix == ".json":
            json.loads(text)
        else:
            continue
        parsed += 1
    assert parsed >= 2  # pyproject.toml and .pre-commit-config.yaml at least
    project = tomllib.loads((baked.path / "pyproject.toml").read_text())["project"]
    assert project["description"] == baked.context["description"]
    assert project["authors"] == [
        {"name": baked.context["author_name"], "email": baked.context["author_email"]}
    ]


def test_unselected_features_leave_no_trace(baked: Baked) -> None:
    words = []  # names only the unselected feature's own code would use
    if not baked.context["include_examples"]:
        words += ["articles", "Article", "characters_api", "Character", "cache_redis", "CACHE_URL"]
    if not baked.context["include_realtime"]:
        words += ["realtime", "broadcast", "Broadcaster"]
    if baked.context["auth"] != "api_key":
        words += ["api_keys", "X-API-Key", "hash_api_key"]
    if baked.context["auth"] != "jwt":
        words += ["jwt", "pwdlib", "argon2"]
    if baked.context["auth"] == "none":
        words += ["require_principal", "security.principal", "auth_headers"]
    if baked.context["database"] == "none":
        words += ["sqlalchemy", "alembic", "SessionDep", "DATABASE_URL", "database_url"]
    if baked.context["database"] != "postgresql":
        words += ["asyncpg", "PRODUCTION_DATABASE_URL"]
    if baked.context["messaging"] == "none":
        # The router's ArticleEvents is in every bake (a no-op here); what sends them is not.
        words += ["aio_pika", "broker_url", "BROKER_URL", "article_event(", "outbox", "Outbox"]
        words += ["Publisher", "messaging."]
    code = [p for p in baked.text_files() if p.suffix == ".py"]
    mentions = [
        f"{p.relative_to(baked.path)}: {word}" for p in code for word in words if word in p.read_text()
    ]
    assert mentions == []


# Internals of the libraries the service depends on (and the idioms they were reached by): each
# Dependabot bump could break them unseen. The service uses public, documented APIs only.
PRIVATE_NAMES = re.compile(
    r"effective_route_context|scope\[\"fastapi\"\]|\._transport\b|\.expirations\b"
    r"|\b_storage\b|\b_limiter\b|encode_basestring|DEFAULT_TEXT_MIME_TYPES|copy\.copy\("
    r"|\brequest_response\b|dependency_overrides_provider|get_bound_for_rate|TRACE_ID_LIMIT"
    r"|def __exit__|def __hash__|\(CORSMiddleware\)|\(MemoryStorage\)|\(Resource\)"
    r"|BaseHTTPMiddleware|@app\.middleware"
)
# In the service's own code: no underscore name imported from, or read off, a library object.
PRIVATE_ACCESS = re.compile(r"from [\w.]+ import _[a-zA-Z]|\b(?!self\b)[a-z]\w*\._[a-z]\w*")


def test_the_service_uses_public_library_apis_only(baked: Baked) -> None:
    src = baked.path / "src"
    code = [p for p in baked.text_files() if p.suffix == ".py"]
    found = [
        f"{path.relative_to(baked.path)}:{number}: {line.strip()}"
        for path in code
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE_NAMES.search(line) or (src in path.parents and PRIVATE_ACCESS.search(line))
    ]
    assert found == [], "\n".join(found)


def test_main_shows_the_whole_application(baked: Baked) -> None:
    """The middleware stack, the routers and the lifespan are in main.py and nowhere else."""
    package = baked.path / "src" / baked.package
    main = (package / "main.py").read_text()
    assert "middleware=[" in main and "lifespan=lifespan" in main
    assert main.count("app.include_router(") >= 2
    elsewhere = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "main.py"
        and re.search(r"add_middleware|include_router|app\.state\.\w+ =", path.read_text())
    ]
    assert elsewhere == []


def test_make_check_passes(installed: Baked, request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params["baked"] == COMBINATIONS["default"]:
        # tests/test_upgrade.py: a 0.2.0 bake updated to this tree has exactly a new default
        # bake's files (plus a team's), then a resource added and the README's `make check`.
        pytest.skip("default's make check runs in the upgrade test, on the same files and more")
    result = run(["make", "check"], installed.path)
    assert "Required test coverage of 90" in result.stdout
    assert (installed.path / "uv.lock").is_file()


def interrupt_make_run(
    project: Path, ready: Path | str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`make run` in its own process group, Ctrl-C (SIGINT to the group, as a terminal sends it)
    once `ready` (a file, or a URL answering 200) is; returns what make printed and its status.

    Run as from a terminal: not as a sub-make of the suite's own `make test`, whose variables
    would make it print "Entering directory" around the recipe's own `$(MAKE)`."""
    outer = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")
    env = {k: v for k, v in (env or os.environ).items() if k not in outer}
    make = subprocess.Popen(
        ["make", "run"], cwd=project, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and make.poll() is None:
        if isinstance(ready, Path) and ready.exists():
            break
        if isinstance(ready, str):
            try:
                if httpx.get(ready, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    os.killpg(make.pid, signal.SIGINT)
    output, _ = make.communicate(timeout=30)
    return subprocess.CompletedProcess(make.args, make.returncode, output)


def test_a_busy_port_is_one_line_naming_its_setting(
    request: pytest.FixtureRequest, installed: Baked
) -> None:
    """The service's port held by the service already running; the worker's metrics port by
    another program (9100, its default, is node_exporter's). Once without messaging, once with."""
    firsts = [COMBINATIONS["default"], COMBINATIONS.get(first_with_messaging("none") or "")]
    if request.node.callspec.params["baked"] not in firsts:
        pytest.skip("runs in the default combination and the first with messaging")
    prefix, python = installed.package.upper(), str(installed.path / ".venv" / "bin" / "python")
    service = start_service(installed.path, installed.package)
    port = service.url.rsplit(":", 1)[1]
    try:
        env = {**os.environ, f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": port}
        again = subprocess.run([python, "-m", installed.package], cwd=installed.path, env=env,
                               capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        service.stop()
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
    assert again.stderr.splitlines()[-1] == (
        f"ERROR: port {port} on 127.0.0.1: address already in use; "
        f"set {prefix}_PORT to a free port or stop what listens on it"
    )
    if installed.context["messaging"] != "rabbitmq":
        return
    with socket.socket() as exporter:
        exporter.bind(("127.0.0.1", 0))
        exporter.listen()
        env[f"{prefix}_WORKER_METRICS_PORT"] = str(exporter.getsockname()[1])
        worker = subprocess.run([python, "-m", f"{installed.package}.worker"], cwd=installed.path,
                                env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert worker.returncode == 1 and "Traceback" not in worker.stderr, worker.stderr
    assert f"set {prefix}_WORKER_METRICS_PORT to a free port or to 0" in worker.stderr
    assert len(worker.stderr.splitlines()) == 1, worker.stderr


def test_make_run_stopped_with_ctrl_c_exits_quietly(baked: Baked, tmp_path: Path) -> None:
    """Whatever status the server ends with on SIGINT (uv passes on 130 when uvicorn's reloader
    dies of it: seen one stop in five), make says nothing; it dies of the SIGINT as any program
    stopped with Ctrl-C does. A stand-in for uv that always exits 130 makes it certain."""
    ready = tmp_path / "ready"
    uv = tmp_path / "uv"
    uv.write_text(
        f"#!{sys.executable}\nimport pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(130))\n"
        f"pathlib.Path({str(ready)!r}).touch()\ntime.sleep(60)\n"
    )
    uv.chmod(0o755)
    stopped = interrupt_make_run(baked.path, ready, env={**os.environ, "UV": str(uv)})
    assert "***" not in stopped.stdout, stopped.stdout
    assert stopped.returncode in (0, -signal.SIGINT)


def test_make_run_serves_and_stops_quietly_with_ctrl_c(
    installed: Baked, request: pytest.FixtureRequest
) -> None:
    once_per(request, "database", "make run migrates the database first, if there is one")
    port = free_port()
    env = {**os.environ, f"{installed.package.upper()}_PORT": str(port)}
    stopped = interrupt_make_run(installed.path, f"http://127.0.0.1:{port}/health/live", env)
    # Development logs one readable line per record: time, level, logger, message; the
    # reloader's and the migrations' lines too, in the same format.
    readable = r"^\d\d:\d\d:\d\d\.\d{3} INFO +uvicorn\.error  Application startup complete\.$"
    assert re.search(readable, stopped.stdout, re.MULTILINE), stopped.stdout
    logged = [line for line in stopped.stdout.splitlines() if not line.startswith(("trap", "uv "))]
    other = [line for line in logged if not re.match(r"\d\d:\d\d:\d\d\.\d{3} [A-Z]+ ", line)]
    assert other == [] and "Will watch for changes" in stopped.stdout, stopped.stdout
    assert "***" not in stopped.stdout and "Traceback" not in stopped.stdout, stopped.stdout
    assert stopped.returncode in (0, -signal.SIGINT)


@pytest.fixture(scope="module")
def service(installed: Baked, publisher: Publisher, broker: dict[str, str]) -> Iterator[Service]:
    json_logs = {f"{installed.package.upper()}_LOG_FORMAT": "json"}  # read as data below
    settings = {**publisher.settings, **json_logs, **broker}
    yield from running(installed.path, installed.package, settings)


def test_the_service_answers_health_and_a_valid_openapi(service: Service) -> None:
    live = httpx.get(f"{service.url}/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert "server" not in live.headers
    assert httpx.get(f"{service.url}/health/ready").status_code == 200
    validate(httpx.get(f"{service.url}/openapi.json").json())


def test_the_service_answers_errors_as_problems(service: Service) -> None:
    missing = httpx.get(f"{service.url}/no/such/thing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["request_id"] == missing.headers["x-request-id"]


def test_the_service_serves_the_articles_example(installed: Baked, service: Service) -> None:
    if not installed.context["include_examples"]:
        pytest.skip("include_examples is off")
    if installed.context["auth"] != "none":
        pytest.skip("auth is on: tests/test_auth.py writes articles with credentials")
    url = f"{service.url}/api/v1/articles"
    created = httpx.post(url, json={"name": "Artículo 1", "price": 10.0})
    assert created.status_code == 201
    assert httpx.get(url).json() == [created.json()]
    article = f"{service.url}{created.headers['location']}"
    cached = httpx.get(article, headers={"If-None-Match": created.headers["etag"]})
    assert (cached.status_code, cached.content) == (304, b"")
    assert httpx.get(article, headers={"If-None-Match": '"0"'}).json() == created.json()
    invalid = httpx.post(url, json={"name": "", "price": -1})
    assert invalid.status_code == 422
    # A 405's Allow lists every method of the resource (RFC 9110), not the first route's only.
    assert httpx.request("OPTIONS", url).headers["allow"] == "GET, POST"
    assert httpx.patch(article, json={}).headers["allow"] == "GET, PUT, DELETE"
    assert [e["loc"] for e in invalid.json()["errors"]] == [["body", "name"], ["body", "price"]]


def children(pid: int) -> list[int]:
    """The processes `pid` started that still run (Linux: /proc)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]


def test_cpu_heavy_work_leaves_the_service_responsive(installed: Baked, service: Service) -> None:
    """No process runs beside the service until the first job opens the pool. While a process
    computes the millionth prime, the live probe is answered: first the baseline latency, then
    the latency with the work running (printed), and the probe's answer comes before the
    prime's."""
    if not installed.context["include_examples"]:
        pytest.skip("include_examples is off")
    live = f"{service.url}/health/live"
    # The pool opens with the first job: no process before it, not even a resource tracker.
    assert children(service.process.pid) == []
    # Its processes start then: on a busy machine that alone takes seconds.
    pool_up = httpx.get(f"{service.url}/api/v1/primes/1000", timeout=60)
    assert pool_up.json()["prime"] == 7919
    assert children(service.process.pid)  # the pool's processes, the resource tracker
    started = time.monotonic()
    assert httpx.get(live).status_code == 200
    idle_ms = (time.monotonic() - started) * 1000
    with ThreadPoolExecutor(1) as thread:
        prime = thread.submit(httpx.get, f"{service.url}/api/v1/primes/1000000", timeout=60)
        time.sleep(0.1)  # the job is in the pool
        started = time.monotonic()
        assert httpx.get(live).status_code == 200
        busy_ms = (time.monotonic() - started) * 1000
        assert not prime.done()  # answered while the CPU work still ran
        assert prime.result().json() == {"n": 1000000, "prime": 15485863}
    print(f"\n/health/live: {idle_ms:.1f} ms idle, {busy_ms:.1f} ms beside the CPU work")


def test_a_start_with_the_cache_and_counters_in_memory_imports_no_redis(
    request: pytest.FixtureRequest, installed: Baked
) -> None:
    """Once, in the first combination with the examples (the characters' cache): started the
    production way, the service imports redis only for a Redis store (the import log, read up
    to its first answer, from `python -X importtime`)."""
    if request.node.callspec.params["baked"] != COMBINATIONS[first_with_examples()]:
        pytest.skip(f"runs once, in {first_with_examples()}")
    prefix = installed.package.upper()
    settings = {
        f"{prefix}_CACHE_URL": "memory://",
        f"{prefix}_RATE_LIMIT_STORAGE_URI": "memory://",
        "PYTHONPROFILEIMPORTTIME": "1",
    }
    service = start_service(installed.path, installed.package, settings)
    output = service.stop()
    imported = re.findall(r"^import time: .*\| +([\w.]+)$", output, re.M)
    assert f"{installed.package}.settings" in imported  # the log is the service's,
    assert "Application startup complete." in output  # its lifespan's imports included
    assert [name for name in imported if name.split(".")[0] == "redis"] == []


def handshake_status(url: str, **options: Any) -> int:
    """The HTTP status of a WebSocket handshake the service refuses (fails when it accepts)."""
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10, **options).close()
    return refused.value.response.status_code


def test_the_service_serves_websocket_and_sse(
    installed: Baked, service: Service, publisher: Publisher
) -> None:
    if not installed.context["include_realtime"]:
        pytest.skip("include_realtime is off")
    base = f"{service.url}/api/v1/realtime"
    ws = base.replace("http://", "ws://") + "/ws"
    # A browser's handshake, its credential offered as a subprotocol (headers it cannot set).
    browser = {"subprotocols": publisher.protocols or None, "origin": service.url}
    accepted = publisher.protocols[0] if publisher.protocols else None  # never the secret
    with connect(ws, open_timeout=10, **browser) as socket:
        assert socket.subprotocol == accepted
        socket.send("hello")
        assert json.loads(socket.recv(timeout=10))["text"] == "hello"
    assert handshake_status(ws, **{**browser, "origin": "https://evil.example"}) == 403
    if installed.context["auth"] != "none":
        assert handshake_status(ws) == 403  # anonymous
    with httpx.stream("GET", f"{base}/events", params={"limit": 1}, timeout=10) as stream:
        lines = stream.iter_lines()  # read anonymously, like every read
        assert [next(lines), next(lines)] == ["retry: 3000", ": connected"]
        text = {"text": "over the wire"}
        posted = httpx.post(f"{base}/messages", json=text, headers=publisher.headers)
        assert posted.status_code == 202
        data = [line for line in lines if line.startswith("data: ")]
    assert json.loads(data[0].removeprefix("data: "))["text"] == "over the wire"
    if installed.context["auth"] != "none":
        assert httpx.post(f"{base}/messages", json=text).status_code == 401


def read_stream(lines: Iterator[str]) -> list[str]:
    """The lines left; raises when the response is torn rather than ended."""
    return list(lines)


def close_code(socket: Any) -> int | None:
    try:
        while True:
            socket.recv(timeout=60)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_ends_open_streams_and_sockets_and_exits_promptly(
    request: pytest.FixtureRequest, installed: Baked, publisher: Publisher, workers: int
) -> None:
    """Once, in the first combination with the realtime endpoints: 10 event streams and 10
    WebSockets open, the service exits within 10 s of SIGTERM, every stream ends cleanly and
    every socket is closed with 1001 (going away), with one worker process or several."""
    if request.node.callspec.params["baked"] != COMBINATIONS[first_with_realtime()]:
        pytest.skip(f"runs once, in {first_with_realtime()}")
    prefix = installed.package.upper()
    settings = {
        **publisher.settings,
        f"{prefix}_WORKERS": str(workers),
        f"{prefix}_REALTIME_MAX_CONNECTIONS_PER_CLIENT": "10",
        f"{prefix}_REALTIME_MAX_STREAMS_PER_CLIENT": "10",
    }
    service = start_service(installed.path, installed.package, settings)
    base = f"{service.url}/api/v1/realtime"
    ws = base.replace("http://", "ws://") + "/ws"
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=20) as pool:
        stack.callback(service.process.kill)  # whatever failed
        streams = []
        for _ in range(10):
            response = stack.enter_context(httpx.stream("GET", f"{base}/events", timeout=60))
            lines = response.iter_lines()
            assert next(lines) == "retry: 3000"
            streams.append(pool.submit(read_stream, lines))
        options = {"additional_headers": publisher.headers, "open_timeout": 10}
        sockets = [stack.enter_context(connect(ws, **options)) for _ in range(10)]
        codes = [pool.submit(close_code, socket) for socket in sockets]
        started = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        service.process.wait(timeout=60)
        took = time.monotonic() - started
        ends = [stream.result(timeout=10)[-1:] for stream in streams]
        closes = [code.result(timeout=10) for code in codes]
    assert took < 10, f"exited {took:.1f} s after SIGTERM"
    assert ends == [[""]] * 10  # the last frame's blank line, then the end of the response
    assert closes == [1001] * 10


def test_the_service_logs_json_and_stops_cleanly_on_sigterm(service: Service) -> None:
    assert httpx.get(f"{service.url}/no/such/page").status_code == 404  # an access line at least
    output = service.stop()
    entries = [json.loads(line) for line in output.splitlines()]
    messages = [entry["message"] for entry in entries]
    assert "Application shutdown complete." in messages
    assert any(entry.get("logger") == "access" for entry in entries)  # flushed at shutdown
