"""Delivery files of each combination, proven offline: the CI workflow, dependabot and compose
validate against their schemas and zizmor finds nothing; the workflow's offline `run:` steps run
green in the baked project; the Dockerfile passes hadolint and its start command serves; real
nginx proxies HTTPS to the running service; the Kubernetes manifests pass strict validation; the
Lambda handler answers an API Gateway event."""

import getpass
import json
import os
import re
import shlex
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from websockets.sync.client import connect

from .combinations import COMBINATIONS, first_with_messaging
from .conftest import TEMPLATE, Baked, Publisher, run
from .served import Service, free_port, otlp_receiver, running
from .test_template import tool

PINNED_ACTION = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
SCHEMAS = {
    ".github/workflows/ci.yml": "vendor.github-workflows",
    ".github/dependabot.yml": "vendor.dependabot",
    "compose.yaml": "vendor.compose-spec",
}
# `run:` steps the offline test does not execute, and why (matched on the step's command).
OFFLINE_SKIPS = {
    "docker ": "needs a Docker daemon: the Dockerfile's CMD and HEALTHCHECK run here instead",
    "pip-audit": "queries a vulnerability database (PyPI advisories / OSV)",
}


def workflow(baked: Baked) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((baked.path / ".github/workflows/ci.yml").read_text())
    return loaded


# The pipeline files


@pytest.mark.parametrize("path", SCHEMAS)
def test_the_pipeline_and_compose_files_match_their_schemas(baked: Baked, path: str) -> None:
    command = [tool("check-jsonschema"), "--builtin-schema", SCHEMAS[path], path]
    run(command, baked.path)


def test_zizmor_finds_nothing_in_the_generated_pipeline_even_pedantic(baked: Baked) -> None:
    result = run([tool("zizmor"), "--offline", "--persona=pedantic", ".github"], baked.path)
    assert "No findings to report" in result.stdout + result.stderr


def test_the_workflow_is_locked_down(baked: Baked) -> None:
    text = (baked.path / ".github/workflows/ci.yml").read_text()
    uses = [line for line in text.splitlines() if "uses:" in line]
    assert uses and [line for line in uses if not PINNED_ACTION.match(line)] == []
    ci = workflow(baked)
    assert ci["permissions"] == {"contents": "read"}
    assert ci["concurrency"]["cancel-in-progress"] is True
    assert list(ci["jobs"]) == ["lint", "types", "security", "tests", "container"]
    checkouts = [
        step for job in ci["jobs"].values() for step in job["steps"]
        if step.get("uses", "").startswith("actions/checkout@")
    ]  # fmt: skip
    assert len(checkouts) == 5
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_the_tests_run_on_every_supported_python_from_the_baked_one(baked: Baked) -> None:
    versions = workflow(baked)["jobs"]["tests"]["strategy"]["matrix"]["python-version"]
    baked_version = baked.context["python_version"]
    assert versions[0] == baked_version
    assert versions == [v for v in ("3.11", "3.12", "3.13") if v >= baked_version]


def test_pre_commit_runs_the_workflow_tools_from_the_same_lock(baked: Baked) -> None:
    hooks = yaml.safe_load((baked.path / ".pre-commit-config.yaml").read_text())["repos"][0]
    commands = " ".join(
        str(step["run"]) for job in workflow(baked)["jobs"].values() for step in job["steps"]
        if "run" in step
    )  # fmt: skip
    for hook in hooks["hooks"]:
        assert hook["entry"].startswith("uv run "), hook  # the tool version comes from uv.lock
        assert f"uv run {hook['entry'].split()[2]}" in commands, f"{hook['id']} not in CI"


# The workflow's commands, run for real


@dataclass
class Step:
    job: str
    name: str
    script: str
    env: dict[str, str]
    python: str | None  # the test job's matrix Python


# The test job's pytest step runs once per matrix Python. On the baked Python it is the very
# command `make check` runs (test_make_check_passes); on the others, one bake runs it for all.
EVERY_PYTHON_IN = "py3.11-lambda-no_examples-no_realtime"
MAKE_CHECK_RUNS_IT = "the baked Python's tests: the same command runs in `make check`"
# Likewise a lint, type or security step that is one of `make check`'s own commands (or one of
# its targets): test_make_check_passes runs it in this bake, on this Python.
IN_MAKE_CHECK = "one of `make check`'s own commands, which test_make_check_passes runs"
ONE_BAKE_RUNS_IT = f"another Python's tests: the {EVERY_PYTHON_IN} bake runs every Python's"
# There, the newest other Python's tests run (the matrix's step under another interpreter); the
# one between runs its tests in the combination baked with it, whose `make check` runs them.
BAKED_WITH_IT = "another Python's tests: the combination baked with it runs them in make check"


def expand(value: object, matrix: dict[str, str]) -> str:
    """A `${{ }}` expression as the runner would see it here: matrix values, secrets unset."""
    text = str(value)
    for key, item in matrix.items():
        text = text.replace(f"${{{{ matrix.{key} }}}}", item)
    return re.sub(r"\$\{\{ secrets\.\w+ \}\}", "", text)


def workflow_steps(baked: Baked, venvs: Path) -> Iterator[Step]:
    """Every `run:` step in order, a test job's steps once per matrix Python version."""
    for job_id, job in workflow(baked)["jobs"].items():
        matrix = job.get("strategy", {}).get("matrix", {})
        for combination in [dict(zip(matrix, v)) for v in zip(*matrix.values())] or [{}]:
            env = {k: expand(v, combination) for k, v in job.get("env", {}).items()}
            # The job's PostgreSQL service container is not here: the tests use SQLite files
            # (tests/test_database.py runs them on a real PostgreSQL). Its RabbitMQ neither.
            env.pop("TEST_DATABASE_URL", None)
            env.pop("TEST_BROKER_URL", None)  # nor its RabbitMQ (tests/test_messaging.py)
            python = combination.get("python-version")
            if python and python != baked.context["python_version"]:
                # Another interpreter gets its own virtualenv: the baked .venv stays as it is.
                env["UV_PROJECT_ENVIRONMENT"] = str(venvs / python)
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    step_env = {k: expand(v, combination) for k, v in step.get("env", {}).items()}
                    name = step.get("name") or step["run"].splitlines()[0]
                    label = f"{job_id}[{python}]" if python else job_id
                    yield Step(label, f"{index}: {name}", step["run"], {**env, **step_env}, python)


def make_check_commands(installed: Baked) -> set[str]:
    """What `make check` runs, as `make -n` prints it, and `make <target>` for its targets."""
    makefile = installed.path / "Makefile"
    dry = subprocess.run(["make", "-n", "check", "UV=uv"], cwd=installed.path,
                         capture_output=True, text=True, check=True)  # fmt: skip
    check = next(line for line in makefile.read_text().splitlines() if line.startswith("check:"))
    targets = check.split(":", 1)[1].split("#", 1)[0].split()
    return {line.strip() for line in dry.stdout.splitlines()} | {f"make {t}" for t in targets}


def why_not_run(step: Step, installed: Baked, every_python: bool, newest: str) -> str | None:
    offline = next((why for key, why in OFFLINE_SKIPS.items() if key in step.script), None)
    if offline:
        return offline
    if step.python is None:
        return IN_MAKE_CHECK if step.script.strip() in make_check_commands(installed) else None
    if step.python != installed.context["python_version"]:
        if not every_python:
            return ONE_BAKE_RUNS_IT  # the whole job, its uv sync too
        return BAKED_WITH_IT if "pytest" in step.script and step.python != newest else None
    if "pytest" not in step.script:
        return None
    make_test = (installed.path / "Makefile").read_text().replace("$(UV)", "uv")
    assert f"\t{step.script.strip()}\n" in make_test  # `make test`'s recipe, the same
    return MAKE_CHECK_RUNS_IT


def test_the_workflow_offline_steps_run_green_in_order(
    installed: Baked, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    every_python = request.node.callspec.params["baked"] == COMBINATIONS[EVERY_PYTHON_IN]
    pythons = workflow(installed)["jobs"]["tests"]["strategy"]["matrix"]["python-version"]
    others = [p for p in pythons if p != installed.context["python_version"]]
    newest = max(others, key=lambda version: tuple(map(int, version.split("."))), default="")
    default = json.loads((TEMPLATE / "cookiecutter.json").read_text())["python_version"]
    baked_pythons = {c.get("python_version", default) for c in COMBINATIONS.values()}
    assert set(pythons) <= baked_pythons  # each Python's tests run in some bake's make check
    ran: list[str] = []
    skipped: list[tuple[str, str]] = []
    in_make_check: list[str] = []
    for step in workflow_steps(installed, tmp_path):
        reason = why_not_run(step, installed, every_python, newest)
        if reason:
            skipped.append((f"{step.job} {step.name}", reason))
            in_make_check += [step.script] if reason == IN_MAKE_CHECK else []
            continue
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.script],
            cwd=installed.path,
            env={**os.environ, **step.env},
            capture_output=True,
            text=True,
            timeout=900,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{step.job} {step.name} failed:\n{output[-6000:]}"
        ran.append(f"{step.job} {step.name}")
        if "SAFETY_API_KEY" in step.script:
            assert "safety scan skipped" in output  # no secret here, as on a fork's pull request
    (installed.path / "requirements-audit.txt").unlink(missing_ok=True)
    print("\nran:", *ran, "skipped:", *(f"{n}: {why}" for n, why in skipped), sep="\n  ")
    covered_tools = ["flake8", "black", "mypy", "bandit"]
    if installed.context["database"] != "none":
        covered_tools.append("migrations-check")
    assert all(name in " ".join(in_make_check) for name in covered_tools), in_make_check
    assert len([name for name in ran if "pytest" in name]) == every_python  # the newest other
    # Besides those, exactly the Docker and vulnerability-database steps are left out.
    covered = (MAKE_CHECK_RUNS_IT, ONE_BAKE_RUNS_IT, IN_MAKE_CHECK, BAKED_WITH_IT)
    reasons = [why for _, why in skipped if why not in covered]
    assert reasons == [OFFLINE_SKIPS["pip-audit"]] + [OFFLINE_SKIPS["docker "]] * 3


# The image


@dataclass
class FinalStage:
    env: dict[str, str]
    cmd: list[str]
    healthcheck: list[str]


def final_stage(dockerfile: Path) -> FinalStage:
    """ENV, CMD and HEALTHCHECK of the Dockerfile's last stage (line continuations joined)."""
    text = re.sub(r"\\\n", "", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    stage = FinalStage({}, [], [])
    for line in lines[last_from:]:
        instruction, _, rest = line.partition(" ")
        if instruction == "ENV":
            stage.env.update(item.split("=", 1) for item in shlex.split(rest))
        elif instruction == "CMD":
            stage.cmd = json.loads(rest)
        elif instruction == "HEALTHCHECK":
            stage.healthcheck = json.loads(rest.split(" CMD ", 1)[1])
    return stage


def test_hadolint_finds_nothing_in_the_dockerfile(baked: Baked) -> None:
    run([tool("hadolint"), "Dockerfile"], baked.path)


def test_the_image_is_non_root_and_keeps_dev_tools_out(baked: Baked) -> None:
    dockerfile = (baked.path / "Dockerfile").read_text()
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert dockerfile.count("--no-dev") == 2
    assert re.search(r"^FROM python:3\.\d+\.\d+-slim-bookworm$", dockerfile, re.M)
    assert re.search(r"^FROM ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+ AS uv$", dockerfile, re.M)
    ignored = (baked.path / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*" and "!src/" in ignored  # everything else stays out of the context


def test_the_dockerfile_start_command_serves_and_its_healthcheck_passes(
    installed: Baked, tmp_path: Path
) -> None:
    """Docker cannot run here: run the image's CMD and HEALTHCHECK with the image's environment,
    the project's .venv standing in for /app/.venv, on a free loopback port."""
    stage = final_stage(installed.path / "Dockerfile")
    prefix = installed.package.upper()
    assert stage.cmd == ["python", "-m", installed.package]
    assert stage.env[f"{prefix}_HOST"] == "0.0.0.0"
    port = free_port()
    venv_bin = str(installed.path / ".venv" / "bin")
    env = {**os.environ, **stage.env, f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(port)}
    path = stage.env["PATH"].replace("/app/.venv/bin", venv_bin)
    env["PATH"] = path.replace("$PATH", os.environ["PATH"])
    process = subprocess.Popen(
        stage.cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        live = wait_for(f"http://127.0.0.1:{port}/health/live", process)
        assert live.status_code == 200
        assert "server" not in live.headers
        check = subprocess.run(stage.healthcheck, env=env, capture_output=True, timeout=10)
        assert check.returncode == 0, check.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def wait_for(url: str, process: "subprocess.Popen[bytes]", **kwargs: Any) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return httpx.get(url, timeout=2, **kwargs)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


# Compose


def test_compose_pins_every_image_and_checks_every_service(baked: Baked) -> None:
    services = yaml.safe_load((baked.path / "compose.yaml").read_text())["services"]
    redis = baked.context["rate_limit_storage"] == "redis"
    database = {"postgresql": ["migrate", "postgres"], "sqlite": ["migrate"], "none": []}
    expected = ["service", "prometheus", "jaeger", "grafana"] + ["redis"] * redis
    messaging = ["rabbitmq", "worker"] if baked.context["messaging"] == "rabbitmq" else []
    assert sorted(services) == sorted(expected + database[baked.context["database"]] + messaging)
    assert services["service"]["build"] == "."
    for name, service in services.items():
        if name == "migrate":  # runs once, before the service (which waits for it to succeed)
            assert services["service"]["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"
            }
            continue
        assert "healthcheck" in service, name
        if name == "postgres":  # PostgreSQL's releases are major.minor
            assert re.fullmatch(r"postgres:\d+\.\d+-alpine", service["image"])
        elif name not in ("service", "worker"):  # those two run the service's own image
            pinned = r"[\w./-]+:v?\d+\.\d+\.\d+(-alpine|-management)?"
            assert re.fullmatch(pinned, service["image"]), name
    assert services["prometheus"]["volumes"] == ["./deploy/prometheus:/etc/prometheus:ro"]


def test_compose_mounts_the_prometheus_config_it_names(baked: Baked) -> None:
    if not (baked.path / "deploy" / "prometheus").is_dir():
        pytest.skip("deploy/prometheus/ comes with the observability work")
    assert (baked.path / "deploy" / "prometheus" / "prometheus.yml").is_file()


def test_prometheus_scrapes_the_service_by_its_compose_name(baked: Baked) -> None:
    services = yaml.safe_load((baked.path / "compose.yaml").read_text())["services"]
    config = yaml.safe_load((baked.path / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {baked.context["project_slug"]: "service"}
    if baked.context["messaging"] == "rabbitmq":
        expected[f"{baked.context['project_slug']}-worker"] = "worker"
    assert set(jobs) == set(expected)
    for name, service in expected.items():
        [static] = jobs[name]["static_configs"]
        host, port = static["targets"][0].rsplit(":", 1)
        assert host == service
        if service == "service":  # the worker's metrics port is published to Prometheus only
            container_ports = [published.rsplit(":", 1)[1] for published in services[host]["ports"]]
            assert port in container_ports


# nginx

# Mozilla's "intermediate" TLS profile (ssl-config.mozilla.org, guidelines 6.0) for nginx 1.22
# with OpenSSL 3.0 (OpenSSL 3.5+ would add X25519MLKEM768 first).
MOZILLA_INTERMEDIATE = {
    "ssl_protocols": "TLSv1.2 TLSv1.3",
    "ssl_ecdh_curve": "X25519:prime256v1:secp384r1",
    "ssl_ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
    "ssl_prefer_server_ciphers": "off",
    "ssl_session_timeout": "1d",
    "ssl_session_cache": "shared:MozSSL:10m",
    "ssl_session_tickets": "off",
}
MOZILLA_HSTS = "max-age=63072000; includeSubDomains"
SSL_FILES = {"ssl_certificate", "ssl_certificate_key"}


@pytest.fixture(scope="module")
def proxied(installed: Baked, publisher: Publisher) -> Iterator[Service]:
    prefix = installed.package.upper()
    # As docs/deployment.md says to run it behind the shipped nginx, which compresses.
    settings = {
        f"{prefix}_TRUSTED_PROXIES": "127.0.0.1",
        f"{prefix}_GZIP_ENABLED": "false",
        **publisher.settings,
    }
    yield from running(installed.path, installed.package, settings)


@dataclass
class Nginx:
    http: str
    https: str
    cafile: str  # the self-signed certificate nginx serves

    @property
    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)


def nginx_site(baked: Baked, service: Service, tmp: Path, http: int, https: int) -> str:
    """The shipped site config, on free loopback ports, proxying to the running service."""
    [site] = (baked.path / "deploy" / "nginx").glob("*.conf")
    text = site.read_text()
    replacements = {
        "server 127.0.0.1:8000;": f"server {service.url.removeprefix('http://')};",
        "listen 80;": f"listen 127.0.0.1:{http};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
        "/etc/nginx/tls/": f"{tmp}/",
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return "\n".join(line for line in text.splitlines() if "listen [::]" not in line)


@contextmanager
def nginx_in_front(service: Service, baked: Baked, tmp: Path) -> Iterator[Nginx]:
    """Real nginx with the shipped config and a self-signed certificate made here."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", tmp / "privkey.pem", "-out", tmp / "fullchain.pem"],
        check=True, capture_output=True,
    )  # fmt: skip
    http, https = free_port(), free_port()
    (tmp / "site.conf").write_text(nginx_site(baked, service, tmp, http, https))
    temp_paths = "".join(
        f"  {kind}_temp_path {tmp}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Run as root (CI), nginx would switch its workers to `nobody`: keep them as this user.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {tmp}/nginx.pid;\n"
        f"error_log {tmp}/error.log warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  access_log {tmp}/access.log;\n{temp_paths}"
        f"  include {tmp}/site.conf;\n}}\n"
    )
    command = [tool("nginx"), "-p", f"{tmp}/", "-e", f"{tmp}/error.log", "-c", f"{tmp}/nginx.conf"]
    run([*command, "-t"], tmp)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{http}/", process)
        cafile = str(tmp / "fullchain.pem")
        yield Nginx(f"http://127.0.0.1:{http}", f"https://127.0.0.1:{https}", cafile)
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful shutdown
        process.communicate(timeout=30)


@pytest.fixture(scope="module")
def nginx(
    installed: Baked, proxied: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nginx]:
    with nginx_in_front(proxied, installed, tmp_path_factory.mktemp("nginx")) as nginx:
        yield nginx


@pytest.fixture(scope="module")
def nginx_production(
    installed: Baked, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nginx]:
    """nginx in front of the service in production, which sends its own HSTS header."""
    prefix = installed.package.upper()
    settings = {
        **installed.production_secrets(),
        f"{prefix}_ENVIRONMENT": "production",
        f"{prefix}_TRUSTED_PROXIES": "127.0.0.1",
    }
    for service in running(installed.path, installed.package, settings):
        with nginx_in_front(service, installed, tmp_path_factory.mktemp("nginx")) as nginx:
            yield nginx


def test_nginx_serves_the_service_over_https_without_its_version(nginx: Nginx) -> None:
    with httpx.Client(verify=nginx.tls) as client:
        response = client.get(f"{nginx.https}/health/live")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert response.headers["server"] == "nginx"  # server_tokens off: no version
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert response.headers["x-request-id"]  # the service answered


def test_nginx_redirects_http_to_https(nginx: Nginx) -> None:
    response = httpx.get(f"{nginx.http}/health/live?x=1")
    assert response.status_code == 301
    assert response.headers["location"].startswith("https://127.0.0.1")
    assert response.headers["location"].endswith("/health/live?x=1")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_nginx_speaks_only_tls_1_2_and_1_3_with_modern_ciphers(nginx: Nginx) -> None:
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cafile=nginx.cafile)
        context.minimum_version = context.maximum_version = version
        assert httpx.get(f"{nginx.https}/health/live", verify=context).status_code == 200
    # A client willing to use TLS 1.1 (security level 0 lets this OpenSSL offer it) is refused,
    # and so is a TLS 1.2 client offering only a legacy cipher (RSA key exchange, CBC).
    tls11 = ssl.create_default_context(cafile=nginx.cafile)
    tls11.set_ciphers("DEFAULT:@SECLEVEL=0")
    tls11.minimum_version = tls11.maximum_version = ssl.TLSVersion.TLSv1_1
    legacy = ssl.create_default_context(cafile=nginx.cafile)
    legacy.maximum_version = ssl.TLSVersion.TLSv1_2
    legacy.set_ciphers("AES128-SHA")
    for refused in (tls11, legacy):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{nginx.https}/health/live", verify=refused)


def test_behind_nginx_hsts_is_sent_once_by_nginx(nginx_production: Nginx) -> None:
    with httpx.Client(verify=nginx_production.tls) as client:
        served = client.get(f"{nginx_production.https}/health/live")
        refused = client.get(f"{nginx_production.https}/metrics")  # answered by nginx itself
    assert served.headers["x-request-id"]  # the service answered, with its own HSTS
    for response in (served, refused):
        assert response.headers.get_list("strict-transport-security") == [MOZILLA_HSTS]


def test_nginx_compresses_json_that_the_service_sends_uncompressed(
    nginx: Nginx, proxied: Service
) -> None:
    gzip = {"accept-encoding": "gzip"}
    with httpx.Client(verify=nginx.tls) as client:
        through_nginx = client.get(f"{nginx.https}/openapi.json", headers=gzip)
    direct = httpx.get(f"{proxied.url}/openapi.json", headers=gzip)
    assert through_nginx.status_code == direct.status_code == 200
    assert through_nginx.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in through_nginx.headers["vary"]
    assert "content-encoding" not in direct.headers  # GZIP_ENABLED=false: no work done twice
    assert through_nginx.json() == direct.json()


def test_nginx_does_not_route_metrics(nginx: Nginx) -> None:
    with httpx.Client(verify=nginx.tls) as client:
        for path in ("/metrics", "/metrics?format=text", "/%6Detrics", "//metrics"):
            response = client.get(f"{nginx.https}{path}")
            assert response.status_code == 404, path
            assert "x-request-id" not in response.headers, path  # never reached the service


def ssl_directives(baked: Baked) -> dict[str, str]:
    [site] = (baked.path / "deploy" / "nginx").glob("*.conf")
    found = re.findall(r"^\s*(ssl_\w+)\s+([^;]+);", site.read_text(), re.MULTILINE)
    return {name: value for name, value in found if name not in SSL_FILES}


def test_nginx_tls_is_mozillas_intermediate_profile(baked: Baked) -> None:
    assert ssl_directives(baked) == MOZILLA_INTERMEDIATE
    [site] = (baked.path / "deploy" / "nginx").glob("*.conf")
    hsts = r'add_header Strict-Transport-Security "([^"]+)" always;'
    assert re.findall(hsts, site.read_text()) == [MOZILLA_HSTS]


def handshake(nginx: Nginx, *options: str) -> bool:
    """Whether `openssl s_client` completes a handshake with nginx offering only `options`."""
    address = nginx.https.removeprefix("https://")
    result = subprocess.run(
        ["openssl", "s_client", "-connect", address, "-CAfile", nginx.cafile, *options],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return result.returncode == 0


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_nginx_agrees_only_on_the_intermediate_key_exchange_groups(
    nginx: Nginx, version: str
) -> None:
    for group in MOZILLA_INTERMEDIATE["ssl_ecdh_curve"].split(":"):
        assert handshake(nginx, version, "-groups", group), group
    for group in ("secp521r1", "X448", "ffdhe2048"):
        assert not handshake(nginx, version, "-groups", group), group


def test_nginx_refuses_an_oversized_body_itself(nginx: Nginx) -> None:
    response = httpx.post(f"{nginx.https}/health/live", content=b"x" * (2 << 20), verify=nginx.tls)
    assert response.status_code == 413


def test_nginx_passes_websockets_through(
    installed: Baked, nginx: Nginx, publisher: Publisher
) -> None:
    if not installed.context["include_realtime"]:
        pytest.skip("include_realtime is off")
    url = nginx.https.replace("https://", "wss://") + "/api/v1/realtime/ws"
    headers = publisher.headers  # with auth on, a publisher's credentials
    with connect(url, ssl=nginx.tls, open_timeout=30, additional_headers=headers) as socket:
        socket.send("through nginx")
        assert json.loads(socket.recv(timeout=10))["text"] == "through nginx"


# Kubernetes


def test_the_kubernetes_manifests_pass_strict_validation(baked: Baked) -> None:
    manifests = sorted(str(p) for p in (baked.path / "deploy" / "k8s").glob("*.yaml"))
    # The migration Job with PostgreSQL, the worker's Deployment with RabbitMQ.
    extra = (baked.context["database"] == "postgresql") + (baked.context["messaging"] == "rabbitmq")
    assert len(manifests) == 6 + extra
    run([tool("kubernetes-validate"), "--strict", *manifests], baked.path)


def test_the_network_policies_deny_by_default_and_open_only_what_is_baked(baked: Baked) -> None:
    text = (baked.path / "deploy/k8s/networkpolicy.yaml").read_text()
    policies = {p["metadata"]["name"]: p["spec"] for p in yaml.safe_load_all(text)}
    slug = baked.context["project_slug"]
    postgresql = baked.context["database"] == "postgresql"
    messaging = baked.context["messaging"] == "rabbitmq"
    expected = {slug, f"{slug}-migrate", f"{slug}-worker"}
    expected -= {f"{slug}-migrate"} if not postgresql else set()
    expected -= {f"{slug}-worker"} if not messaging else set()
    assert set(policies) == expected
    for spec in policies.values():
        assert spec["policyTypes"] == ["Ingress", "Egress"]  # all else denied

    def ports(spec: dict[str, Any], way: str) -> set[int]:
        return {port["port"] for rule in spec.get(way, []) for port in rule["ports"]}

    service = policies[slug]
    assert ports(service, "ingress") == {8000}
    assert (5432 in ports(service, "egress")) == postgresql
    assert (5672 in ports(service, "egress")) == messaging
    assert (6379 in ports(service, "egress")) == (baked.context["rate_limit_storage"] == "redis")
    assert (443 in ports(service, "egress")) == baked.context["include_examples"]
    if messaging:
        assert ports(policies[f"{slug}-worker"], "ingress") == {9100}
        assert (5432 in ports(policies[f"{slug}-worker"], "egress")) == postgresql


def test_checkov_finds_nothing_but_the_choices_the_bake_names(
    baked: Baked, request: pytest.FixtureRequest
) -> None:
    """Once, in the bake with the most manifests: the Kubernetes, Dockerfile and secret checks
    pass but those .checkov.yaml skips, each with its reason there and in docs/deployment.md."""
    if request.node.callspec.params["baked"] != COMBINATIONS[first_with_messaging("postgresql")]:
        pytest.skip("runs once, in the first bake with PostgreSQL and RabbitMQ")
    config = (baked.path / ".checkov.yaml").read_text()
    skipped = yaml.safe_load(config)["skip-check"]
    deployment_doc = (baked.path / "docs" / "deployment.md").read_text()
    assert all(check in deployment_doc for check in skipped), skipped
    checkov = [tool("uv"), "tool", "run", "--from", "checkov==3.3.30", "checkov"]
    result = subprocess.run([*checkov, "--config-file", ".checkov.yaml", "-d", ".", "--compact"],
                            cwd=baked.path, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout and "kubernetes scan results" in result.stdout


def test_the_deployment_probes_the_health_routes_and_drops_privileges(baked: Baked) -> None:
    deployment = yaml.safe_load((baked.path / "deploy/k8s/deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert set(container["resources"]) == {"requests", "limits"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    configmap = yaml.safe_load((baked.path / "deploy/k8s/configmap.yaml").read_text())
    prefix = baked.package.upper()
    assert configmap["data"][f"{prefix}_PORT"] == str(container["ports"][0]["containerPort"])


def test_the_configmap_names_real_settings_with_valid_values(installed: Baked) -> None:
    data = yaml.safe_load((installed.path / "deploy/k8s/configmap.yaml").read_text())["data"]
    script = (
        f"from {installed.package}.settings import ENV_PREFIX, Settings; import json, os; "
        "names = {ENV_PREFIX + name.upper() for name in Settings.model_fields}; "
        "print(json.dumps(sorted(set(json.loads(os.environ['CONFIGMAP'])) - names))); "
        "Settings(_env_file=None)"
    )
    python = str(installed.path / ".venv" / "bin" / "python")
    # The auth secret comes from a Secret beside the ConfigMap, never from the ConfigMap.
    secrets = installed.production_secrets()
    env = {**os.environ, **data, **secrets, "CONFIGMAP": json.dumps(data)}
    result = subprocess.run(
        [python, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr  # the values pass the settings' own checks
    assert json.loads(result.stdout) == []  # no key the service would ignore


def test_the_configmap_lets_the_ingress_host_probes_and_prometheus_in(installed: Baked) -> None:
    """Production with the ConfigMap: its ALLOWED_HOSTS name reaches the routes, and probes and
    Prometheus, which name the pod by its address, reach theirs."""
    prefix = installed.package.upper()
    data = yaml.safe_load((installed.path / "deploy/k8s/configmap.yaml").read_text())["data"]
    hosts = data[f"{prefix}_ALLOWED_HOSTS"].split(",")
    assert "*" not in hosts and "localhost" not in hosts
    address = (f"{prefix}_HOST", f"{prefix}_PORT")  # the test's own: a free local port
    settings = {name: value for name, value in data.items() if name not in address}
    secrets = installed.production_secrets()
    token = {"authorization": f"Bearer {secrets[f'{prefix}_METRICS_TOKEN']}"}
    pod = {"host": "10.1.2.3:8000"}
    for service in running(installed.path, installed.package, {**settings, **secrets}):
        routed = httpx.get(f"{service.url}/no/such/route", headers={"host": hosts[0]})
        foreign = httpx.get(f"{service.url}/no/such/route", headers=pod)
        live = httpx.get(f"{service.url}/health/live", headers=pod)
        metrics = httpx.get(f"{service.url}/metrics", headers={**pod, **token})
        anonymous = httpx.get(f"{service.url}/metrics", headers=pod)
    assert (routed.status_code, foreign.status_code) == (404, 400)
    assert (live.status_code, metrics.status_code, anonymous.status_code) == (200, 200, 401)


# AWS Lambda


def test_the_lambda_handler_answers_api_gateway_events_and_starts_the_app_once(
    installed: Baked,
) -> None:
    handler = installed.path / "src" / installed.package / "lambda_handler.py"
    if not installed.context["aws_lambda"]:
        assert not handler.exists()
        mentions = [
            p.name for p in installed.text_files()
            if b"mangum" in p.read_bytes().lower()
        ]  # fmt: skip
        assert mentions == []
        pytest.skip("aws_lambda is off")
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/health/live",
        "rawQueryString": "",
        "headers": {"host": "api.example.com"},
        "requestContext": {
            "http": {"method": "GET", "path": "/health/live", "sourceIp": "203.0.113.9"}
        },
        "isBase64Encoded": False,
    }
    http = {**event["requestContext"]["http"], "path": "/no/such/route"}
    traced = {**event, "rawPath": http["path"], "headers": {"host": "localhost"}}
    traced["requestContext"] = {"http": http}
    # A fresh process, as a container's cold start, then three invocations in it, and a traced
    # one after which the container is frozen for good (the process ends without a flush).
    script = (
        f"import json, os, sys; from {installed.package}.lambda_handler import handler\n"
        "event, traced = map(json.loads, sys.argv[1:])\n"
        "for _ in range(3): print(json.dumps({'response': handler(event, object())}))\n"
        "print(json.dumps({'response': handler(traced, object())}), flush=True)\n"
        "os._exit(0)"
    )
    python = str(installed.path / ".venv" / "bin" / "python")
    with otlp_receiver() as (endpoint, spans):
        env = {
            f"{installed.package.upper()}_LOG_FORMAT": "json",
            f"{installed.package.upper()}_TRACE_SAMPLE_RATIO": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "600000",  # only a flush sends them
        }
        arguments = [json.dumps(event), json.dumps(traced)]
        result = run([python, "-c", script, *arguments], installed.path, env=env)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    responses = [line["response"] for line in lines if "response" in line]
    assert [r["statusCode"] for r in responses] == [200, 200, 200, 404]
    assert json.loads(responses[0]["body"]) == {"status": "ok"}
    assert [line.get("message") for line in lines].count("starting") == 1
    assert [span.name for span in spans] == ["GET"]  # sent before the handler returned
