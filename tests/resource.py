"""The baked README's "Adding a resource", followed step by step: an `invoices` table, its
migration, its router, its test, then `make check`."""

import re
import subprocess
from pathlib import Path

import httpx

from .conftest import run
from .served import running

MODEL = '''"""Invoices in the database: the table."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class InvoiceRow(Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(200))
'''
ROUTER = '''"""/api/v1/invoices: create an invoice, read one."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from ..db import SessionDep
from ..db_errors import DATABASE_RESPONSES
from ..domain.invoice_rows import InvoiceRow
from ..security.rate_limit import RATE_LIMITED, RateLimitedRoute
from . import API_PREFIX

InvoiceId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The invoice's id")]
router = APIRouter(
    prefix=f"{API_PREFIX}/invoices",
    route_class=RateLimitedRoute,
    tags=["invoices"],
    responses=RATE_LIMITED | DATABASE_RESPONSES,
)


class InvoiceIn(BaseModel):
    customer: str = Field(min_length=1, max_length=200)


class Invoice(InvoiceIn):
    id: int


@router.post("", status_code=201)
async def create_invoice(invoice: InvoiceIn, session: SessionDep) -> Invoice:
    row = InvoiceRow(customer=invoice.customer)
    session.add(row)
    await session.flush()  # the id
    return Invoice(id=row.id, customer=row.customer)


@router.get("/{invoice_id}", responses={404: {"description": "No invoice with that id"}})
async def get_invoice(invoice_id: InvoiceId, session: SessionDep) -> Invoice:
    row = await session.get(InvoiceRow, invoice_id)
    if row is None:
        raise HTTPException(404, "No invoice with that id.")
    return Invoice(id=row.id, customer=row.customer)
'''
TEST = """from fastapi.testclient import TestClient


def test_an_invoice_is_created_then_read(client: TestClient) -> None:
    created = client.post("/api/v1/invoices", json={"customer": "ACME"})
    assert created.status_code == 201
    invoice = created.json()
    assert client.get(f"/api/v1/invoices/{invoice['id']}").json() == invoice


def test_an_unknown_invoice_is_a_404(client: TestClient) -> None:
    assert client.get("/api/v1/invoices/999").status_code == 404
"""


def readme_steps(project: Path) -> list[tuple[str, str]]:
    """The steps of the README's "Adding a resource": each file or command, and its detail."""
    text = (project / "README.md").read_text()
    section = text.split("\n## Adding a resource\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    steps: list[tuple[str, str]] = []
    for line in block.splitlines():
        if numbered := re.fullmatch(r"\d+\. (.+)", line):
            steps.append((numbered[1], ""))
        else:
            steps[-1] = (steps[-1][0], f"{steps[-1][1]} {line.strip()}")
    return steps


def include_router(main: Path, detail: str) -> None:
    """main.py as the step says: the router's import after the package's own, its include
    below "Add your routers here"."""
    import_line, include = re.findall(r"`([^`]+)`", detail)
    lines = main.read_text().splitlines()
    last_import = max(i for i, line in enumerate(lines) if line.startswith("from ."))
    lines.insert(last_import + 1, import_line)
    marker = next(i for i, line in enumerate(lines) if "Add your routers here" in line)
    indent = lines[marker][: len(lines[marker]) - len(lines[marker].lstrip())]
    lines.insert(marker + 1, indent + include)
    main.write_text("\n".join(lines) + "\n")


def add_a_resource(project: Path, package: str) -> None:
    """Every step of the README, in its order: the files written, the commands run as typed."""
    model, router = f"src/{package}/domain/invoice_rows.py", f"src/{package}/api/invoices.py"
    steps = readme_steps(project)
    expected = [model, 'make migration name="create invoices"', "make migrate", router]
    expected += [f"src/{package}/main.py", "tests/test_invoices.py", "make check"]
    assert [what for what, _ in steps] == expected
    files = {model: MODEL, router: ROUTER, "tests/test_invoices.py": TEST}
    for what, detail in steps:
        if what.startswith("make "):
            run(["bash", "-c", what], project)
        elif what.endswith("/main.py"):
            include_router(project / what, detail)
        else:
            (project / what).write_text(files[what])
    migration = next((project / "src" / package / "migrations" / "versions").glob("*_invoices.py"))
    assert "op.create_table('invoices'" in migration.read_text()


def refused_without_a_model_change(project: Path, package: str) -> str:
    """What `make migration` says when no model changed."""
    empty = run_failing(["make", "migration", "name=nothing"], project)
    assert not list((project / "src" / package / "migrations" / "versions").glob("*_nothing.py"))
    return empty


def run_failing(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def serves_invoices(project: Path, package: str) -> None:
    """The service started as deployed, on the database `make migrate` migrated."""
    for service in running(project, package):
        created = httpx.post(f"{service.url}/api/v1/invoices", json={"customer": "ACME"})
        assert created.status_code == 201, created.text
        read = httpx.get(f"{service.url}/api/v1/invoices/{created.json()['id']}")
        assert read.json() == {"id": created.json()["id"], "customer": "ACME"}
