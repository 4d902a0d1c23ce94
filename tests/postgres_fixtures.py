"""A throwaway PostgreSQL server for the tests that need one (stores, the server on PostgreSQL).

``TAILOR_TEST_POSTGRES_URL`` (a ``postgresql://`` URL) names an existing one, on which each
test gets a schema of its own, dropped afterwards. Otherwise the PostgreSQL binaries on
this machine (``initdb`` on PATH, or Debian's /usr/lib/postgresql/N/bin) create a cluster
in a temporary directory and serve it on a unix socket in that directory only (no TCP
port, so test runs side by side never collide); it is stopped and deleted when the session
ends. PostgreSQL refuses to run as root, so under root the cluster belongs to the
``postgres`` system user and its commands run through ``runuser -u postgres --``. Without
any binaries the PostgreSQL tests skip, saying so, unless ``TAILOR_TEST_REQUIRE_POSTGRES=1``
(CI sets it), which turns the skip into a failure.

The fixtures are registered for every test folder by ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest

URL_VARIABLE = "TAILOR_TEST_POSTGRES_URL"
REQUIRE_VARIABLE = "TAILOR_TEST_REQUIRE_POSTGRES"
SYSTEM_USER = "postgres"


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0"):
        pytest.fail(f"{reason}, and {REQUIRE_VARIABLE} is set", pytrace=False)
    pytest.skip(reason)


def find_postgres_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``: the one ``initdb`` on PATH
    lives in, else the newest of Debian's /usr/lib/postgresql/N/bin; ``None`` without any."""
    candidates = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)  # Debian links it from its versioned dir
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0, reverse=True)
    candidates.extend(versions)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory, served on a unix socket there."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.directory = Path(tempfile.mkdtemp(prefix="tailor-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                shutil.rmtree(self.directory)
                raise RuntimeError(f"PostgreSQL will not run as root and there is no {SYSTEM_USER!r} system user "
                                   f"to run it as; create one, or set {URL_VARIABLE}") from None
            # mkdtemp's directory is private to root: hand it to the server's user.
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", SYSTEM_USER, "--"]
        self.url = f"postgresql://{SYSTEM_USER}@/postgres?host={quote(str(self.directory), safe='/')}"

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self.as_owner, *command], capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{shlex.join(command)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}{log}")

    def start(self) -> None:
        """Create the cluster (the first time) and start its server."""
        if not self.data.exists():
            self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-U", SYSTEM_USER, "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync")
        # Durability is worth nothing in a cluster deleted at the end of the session.
        options = (f"-k {shlex.quote(str(self.directory))} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")

    def halt(self) -> None:
        """Stop the server and keep the cluster, so that :meth:`start` restarts it (a fault test's outage)."""
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server for this test session (see the module's docstring)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'tailor-llm[postgres]')")
    given = os.environ.get(URL_VARIABLE)
    if given:
        yield given
        return
    binaries = find_postgres_binaries()
    if binaries is None:
        _unavailable(f"no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin, "
                     f"and {URL_VARIABLE} is not set")
        return  # for type checkers: _unavailable always raises
    server = ThrowawayPostgres(binaries)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


def url_with_schema(url: str, schema: str) -> str:
    """``url`` with ``schema`` first on the search path, where the store creates its tables."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = " ".join(value for key, value in query if key == "options")
    query = [(key, value) for key, value in query if key != "options"]
    query.append(("options", f"{options} -csearch_path={schema}".strip()))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote, safe="/")))


def _schema_of_its_own(server_url: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    schema = f"tailor_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield url_with_schema(server_url, schema)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A URL whose stores live in a schema of their own, dropped after the test."""
    yield from _schema_of_its_own(postgres_server_url)


@pytest.fixture
def other_postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A second such URL, beside :func:`postgres_url`'s (two stores to compare)."""
    yield from _schema_of_its_own(postgres_server_url)
