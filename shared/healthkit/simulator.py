"""The Health Kit simulator: a stand-in for the authority's system, reached over HTTP
exactly as the real one would be (through :class:`~shared.healthkit.client.HttpHealthKit`).

It keeps its own store of synthetic residents in PostgreSQL schema ``healthkit_sim``
(seeded by ``python -m shared.healthkit seed``) and serves:

==========================  ===========================================================
``POST /identity/match``    ``{name, id_type, id_number, phone}`` → ``{"result": ...}``
                            (``match`` / ``phone_mismatch`` / ``name_mismatch`` /
                            ``not_found``)
``POST /status/bulk``       ``{"id_numbers": [...]}`` (≤ 1000) → ``{"records": [...]}``;
                            unknown ids are absent; more than 1000 → 400
``GET  /changes``           ``?after=N&limit=M`` → ``{"changes": [{seq, id_number,
                            changed_at}], "next": cursor}``
``PUT  /residents/{id}``    create or update one resident (fields omitted keep their
                            value; new residents need ``name`` and ``phone``); records a
                            change; 400 names the bad field
``GET  /residents/{id}``    the resident or 404
``GET|PUT /switches``       ``{latency_ms, failure_rate}``: latency added to every data
                            call and the fraction of data calls failed with 503
``GET  /health``            ``{"ok": true, "residents": count}``
==========================  ===========================================================

"Data calls" are the three endpoints the real Health Kit has (identity match, bulk
status, change feed); the switches never touch the simulator's own admin endpoints, so
a demo can still set someone's health while the "Health Kit" is down.

Seeding does not write change rows (it is the initial state); every ``PUT`` does. Change
rows are written under a transaction-scoped advisory lock, so sequence numbers become
visible in order and a reader following ``next`` never skips one.

Error bodies are ``{"error": code, "message": ..., "field": ...}`` and never repeat a
value that was sent; the request log masks ID numbers in paths.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping
from urllib.parse import unquote_to_bytes

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from shared.db import array_literal, create_store
from shared.validation import (
    FieldError,
    validate_id_number,
    validate_id_type,
    validate_name,
    validate_phone,
)

from . import (
    CODE_STATUSES,
    MAX_BULK,
    TEST_RESULTS,
    VACCINATIONS,
    HealthRecord,
    IdentityMatch,
    _parse_time,
)

if TYPE_CHECKING:  # pragma: no cover
    from shared.config import Settings

log = logging.getLogger("shared.healthkit.simulator")

SCHEMA = "healthkit_sim"
MAX_CHANGES_PAGE = 1000
MAX_LATENCY_MS = 120_000
MAX_POPUP_LENGTH = 20

metadata = sa.MetaData(schema=SCHEMA)

residents = sa.Table(
    "residents",
    metadata,
    sa.Column("id_number", sa.Text, primary_key=True),
    sa.Column("id_type", sa.Text, nullable=False, server_default="resident_id"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("phone", sa.Text, nullable=False),
    sa.Column("code_status", sa.Text, nullable=False),
    sa.Column("popup", sa.Text),
    sa.Column("last_test_sampled_at", sa.DateTime(timezone=True)),
    sa.Column("last_test_result", sa.Text),
    sa.Column("vaccination", sa.Text, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("residents_phone_idx", "phone"),
)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=True),  # bigserial
    sa.Column("id_number", sa.Text, nullable=False),
    sa.Column(
        "changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

_CHANGES_LOCK = zlib.crc32(b"healthkit_sim:changes")

RECORD_COLUMNS = (
    residents.c.id_number,
    residents.c.code_status,
    residents.c.popup,
    residents.c.last_test_sampled_at,
    residents.c.last_test_result,
    residents.c.vaccination,
    residents.c.updated_at,
)
# the reads every call makes, built once (one built per call costs more CPU than running it)
IDENTITY_OF = sa.select(residents.c.id_type, residents.c.name, residents.c.phone).where(
    residents.c.id_number == sa.bindparam("id_number")
)
RECORDS_OF = sa.select(*RECORD_COLUMNS).where(  # ids: one array literal (array_literal)
    residents.c.id_number == sa.any_(sa.cast(sa.bindparam("ids", type_=sa.Text), postgresql.ARRAY(sa.Text)))
)


def ensure_schema(engine: Engine) -> None:
    """Create schema ``healthkit_sim`` and its tables if missing (safe from several
    processes at once)."""
    create_store(engine, SCHEMA, metadata)


def record_changes(conn: Connection, id_numbers: Iterable[str]) -> None:
    """Append change-feed rows, in the caller's transaction, in commit order."""
    rows = [{"id_number": value} for value in id_numbers]
    if not rows:
        return
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHANGES_LOCK})
    conn.execute(changes.insert(), rows)


def record_from_row(row: Mapping[str, Any]) -> HealthRecord:
    return HealthRecord(
        id_number=row["id_number"],
        code_status=row["code_status"],
        popup=row["popup"],
        last_test_sampled_at=row["last_test_sampled_at"],
        last_test_result=row["last_test_result"],
        vaccination=row["vaccination"],
        updated_at=row["updated_at"],
    )


def resident_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    data = record_from_row(row).to_dict()
    data.update(id_type=row["id_type"], name=row["name"], phone=row["phone"])
    return data


class ApiError(Exception):
    """An error answer: HTTP status, machine code, message (never echoing input)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.fields = field, dict(fields or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.fields:
            body["fields"] = self.fields
        return body


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/json; charset=utf-8",
    )


def _body(request: Request) -> dict[str, Any]:
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "The request body must be a JSON object.")
    return data


def _invalid(fields: Mapping[str, str]) -> ApiError:
    first = next(iter(fields))
    message = "; ".join(f"{name}: {reason}" for name, reason in fields.items())
    return ApiError(400, "invalid_input", message, field=first, fields=fields)


def _int_arg(request: Request, name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid({name: "must be an integer"}) from None
    if value < 0:
        raise _invalid({name: "must be zero or more"})
    return value


def _normalise_name(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


class HealthKitSimulator:
    """The simulator as a WSGI application over a SQLAlchemy engine."""

    DATA_ENDPOINTS = frozenset({"match", "bulk", "changes"})
    PUT_FIELDS = frozenset(
        {
            "name",
            "phone",
            "id_type",
            "code_status",
            "popup",
            "last_test_sampled_at",
            "last_test_result",
            "vaccination",
        }
    )

    def __init__(
        self,
        engine: Engine,
        latency_ms: int = 0,
        failure_rate: float = 0.0,
        *,
        create_schema: bool = True,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        reads: Engine | None = None,
    ) -> None:
        self.engine = engine
        self.reads = reads or engine  # one-statement reads; writes go through ``engine``
        if create_schema:
            ensure_schema(engine)
        self._lock = threading.Lock()
        self.latency_ms = 0
        self.failure_rate = 0.0
        self.data_calls = 0
        self.injected_failures = 0
        self.set_switches({"latency_ms": latency_ms, "failure_rate": failure_rate})
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.url_map = Map(
            [
                Rule("/identity/match", methods=["POST"], endpoint="match"),
                Rule("/status/bulk", methods=["POST"], endpoint="bulk"),
                Rule("/changes", methods=["GET"], endpoint="changes"),
                Rule("/residents/<id_number>", methods=["GET"], endpoint="get_resident"),
                Rule("/residents/<id_number>", methods=["PUT"], endpoint="put_resident"),
                Rule("/switches", methods=["GET"], endpoint="get_switches"),
                Rule("/switches", methods=["PUT"], endpoint="put_switches"),
                Rule("/health", methods=["GET"], endpoint="health"),
            ],
            strict_slashes=False,
        )

    # -- WSGI ---------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = 2 * 1024 * 1024
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        endpoint = "?"
        try:
            endpoint, args = adapter.match()
            if endpoint in self.DATA_ENDPOINTS:
                self._apply_switches()
            return getattr(self, "on_" + endpoint)(request, **args)
        except ApiError as exc:
            return _json(exc.body(), exc.status)
        except HTTPException as exc:
            code = (exc.name or "error").lower().replace(" ", "_")
            return _json({"error": code, "message": exc.name}, exc.code or 500)
        except sa.exc.DBAPIError as exc:
            # Only the class and SQLSTATE: SQLAlchemy's text would show the parameters.
            pgcode = getattr(exc.orig, "pgcode", None)
            log.error("store error in %s: %s (%s)", endpoint, type(exc.orig).__name__, pgcode)
            return _json({"error": "store_unavailable", "message": "The store failed."}, 503)
        except Exception as exc:  # noqa: BLE001 - answer 500, log without payload
            log.error("unexpected %s in %s", type(exc).__name__, endpoint)
            return _json({"error": "internal", "message": "Internal error."}, 500)

    def _apply_switches(self) -> None:
        with self._lock:
            self.data_calls += 1
            latency, rate = self.latency_ms, self.failure_rate
        if latency:
            self._sleep(latency / 1000.0)
        if rate and (rate >= 1.0 or self._rng.random() < rate):
            with self._lock:
                self.injected_failures += 1
            raise ApiError(503, "unavailable", "Simulated failure (failure_rate switch).")

    # -- switches -----------------------------------------------------------------------

    def switches(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency_ms": self.latency_ms,
                "failure_rate": self.failure_rate,
                "data_calls": self.data_calls,
                "injected_failures": self.injected_failures,
            }

    def set_switches(self, data: Mapping[str, Any]) -> dict[str, Any]:
        errors: dict[str, str] = {}
        unknown = sorted(set(data) - {"latency_ms", "failure_rate"})
        for name in unknown:
            errors[name] = "unknown switch"
        latency = data.get("latency_ms")
        if latency is not None and (
            isinstance(latency, bool)
            or not isinstance(latency, int)
            or not 0 <= latency <= MAX_LATENCY_MS
        ):
            errors["latency_ms"] = f"must be an integer from 0 to {MAX_LATENCY_MS}"
        rate = data.get("failure_rate")
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1
        ):
            errors["failure_rate"] = "must be a number from 0 to 1"
        if errors:
            raise _invalid(errors)
        with self._lock:
            if latency is not None:
                self.latency_ms = int(latency)
            if rate is not None:
                self.failure_rate = float(rate)
        return self.switches()

    def on_get_switches(self, request: Request) -> Response:
        return _json(self.switches())

    def on_put_switches(self, request: Request) -> Response:
        state = self.set_switches(_body(request))
        log.info(
            "switches now latency_ms=%s failure_rate=%s", state["latency_ms"], state["failure_rate"]
        )
        return _json(state)

    # -- data calls -----------------------------------------------------------------------

    def on_match(self, request: Request) -> Response:
        data = _body(request)
        errors = {
            name: "must be a non-empty string"
            for name in ("name", "id_number", "phone")
            if not isinstance(data.get(name), str) or not data[name].strip()
        }
        id_type = data.get("id_type", "resident_id")
        try:
            id_type = validate_id_type(id_type)
        except FieldError as exc:
            errors["id_type"] = exc.message
        if errors:
            raise _invalid(errors)
        id_number = data["id_number"].strip().upper()
        try:
            phone = validate_phone(data["phone"])
        except FieldError:
            phone = data["phone"].strip()  # cannot be anyone's phone: a mismatch
        with self.reads.connect() as conn:
            row = conn.execute(IDENTITY_OF, {"id_number": id_number}).mappings().first()
        if row is None or row["id_type"] != id_type:
            result = IdentityMatch.NOT_FOUND
        elif _normalise_name(row["name"]) != _normalise_name(data["name"]):
            result = IdentityMatch.NAME_MISMATCH
        elif row["phone"] != phone:
            result = IdentityMatch.PHONE_MISMATCH
        else:
            result = IdentityMatch.MATCH
        return _json({"result": result.value})

    def on_bulk(self, request: Request) -> Response:
        data = _body(request)
        ids = data.get("id_numbers")
        if not isinstance(ids, list) or not all(isinstance(v, str) and v for v in ids):
            raise _invalid({"id_numbers": "must be a list of non-empty strings"})
        if len(ids) > MAX_BULK:
            raise ApiError(
                400,
                "too_many_ids",
                f"At most {MAX_BULK} id_numbers per call; split the request.",
                field="id_numbers",
            )
        unique = list(dict.fromkeys(ids))
        if not unique:
            return _json({"records": []})
        # One statement per call, whatever the batch size.
        with self.reads.connect() as conn:
            rows = conn.execute(RECORDS_OF, {"ids": array_literal(unique)}).mappings().all()
        return _json({"records": [record_from_row(row).to_dict() for row in rows]})

    def on_changes(self, request: Request) -> Response:
        after = _int_arg(request, "after", 0)
        limit = min(_int_arg(request, "limit", MAX_CHANGES_PAGE), MAX_CHANGES_PAGE)
        if limit < 1:
            raise _invalid({"limit": "must be at least 1"})
        query = (
            sa.select(changes.c.seq, changes.c.id_number, changes.c.changed_at)
            .where(changes.c.seq > after)
            .order_by(changes.c.seq)
            .limit(limit)
        )
        with self.reads.connect() as conn:
            rows = conn.execute(query).mappings().all()
        items = [
            {
                "seq": row["seq"],
                "id_number": row["id_number"],
                "changed_at": row["changed_at"].isoformat(),
            }
            for row in rows
        ]
        return _json({"changes": items, "next": rows[-1]["seq"] if rows else after})

    # -- residents (simulator only) ---------------------------------------------------------

    def on_get_resident(self, request: Request, id_number: str) -> Response:
        with self.reads.connect() as conn:
            row = (
                conn.execute(
                    sa.select(residents).where(
                        residents.c.id_number == id_number.strip().upper()
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise ApiError(404, "not_found", "No such resident.")
        return _json(resident_from_row(row))

    def on_put_resident(self, request: Request, id_number: str) -> Response:
        data = _body(request)
        with self.engine.begin() as conn:
            existing = (
                conn.execute(
                    sa.select(residents).where(
                        residents.c.id_number == id_number.strip().upper()
                    )
                )
                .mappings()
                .first()
            )
            values = self._validate_resident(id_number, data, existing)
            stmt = postgresql.insert(residents).values(**values, updated_at=sa.func.now())
            stmt = stmt.on_conflict_do_update(
                index_elements=[residents.c.id_number],
                set_={
                    **{k: stmt.excluded[k] for k in values if k != "id_number"},
                    "updated_at": sa.func.now(),
                },
            ).returning(*residents.c)
            row = conn.execute(stmt).mappings().one()
            record_changes(conn, [row["id_number"]])
        return _json(resident_from_row(row))

    def _validate_resident(
        self, raw_id: str, data: Mapping[str, Any], existing: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Merge ``data`` over ``existing`` and validate; raise 400 naming bad fields."""
        errors: dict[str, str] = {}
        for name in sorted(set(data) - self.PUT_FIELDS):
            errors[name] = "unknown field"
        current = dict(existing) if existing else {}
        values: dict[str, Any] = {}

        def take(name: str, check: Callable[[Any], Any], default: Any = None) -> None:
            if name in data:
                try:
                    values[name] = check(data[name])
                except FieldError as exc:
                    errors[name] = exc.message
                except ValueError as exc:
                    errors[name] = str(exc)
            elif name in current:
                values[name] = current[name]
            elif default is not None:
                values[name] = default
            else:
                errors[name] = "required for a new resident"

        take("id_type", validate_id_type, "resident_id")
        if "id_type" in values:
            try:
                values["id_number"] = validate_id_number(values["id_type"], raw_id)
            except FieldError as exc:
                errors["id_number"] = exc.message
        take("name", validate_name)
        take("phone", validate_phone)
        take("code_status", _one_of("code_status", CODE_STATUSES), "green")
        take("vaccination", _one_of("vaccination", VACCINATIONS), "none_found")
        if "popup" in data:
            popup = data["popup"]
            if popup is None or (isinstance(popup, str) and not popup.strip()):
                values["popup"] = None
            elif isinstance(popup, str) and len(popup.strip()) <= MAX_POPUP_LENGTH:
                values["popup"] = popup.strip()
            else:
                errors["popup"] = f"must be null or text of at most {MAX_POPUP_LENGTH} characters"
        else:
            values["popup"] = current.get("popup")
        if "last_test_sampled_at" in data:
            try:
                values["last_test_sampled_at"] = _parse_time(
                    data["last_test_sampled_at"], "last_test_sampled_at"
                )
            except ValueError as exc:
                errors["last_test_sampled_at"] = str(exc)
        else:
            values["last_test_sampled_at"] = current.get("last_test_sampled_at")
        if "last_test_result" in data:
            result = data["last_test_result"]
            if result is None or result == "":
                values["last_test_result"] = None
            elif result in TEST_RESULTS:
                values["last_test_result"] = result
            else:
                errors["last_test_result"] = "must be null or one of " + ", ".join(TEST_RESULTS)
        else:
            values["last_test_result"] = current.get("last_test_result")
        if not errors and (values["last_test_sampled_at"] is None) != (
            values["last_test_result"] is None
        ):
            name = "last_test_result" if values["last_test_result"] is None else (
                "last_test_sampled_at"
            )
            errors[name] = "sample time and result are given together (or both null)"
        if errors:
            raise _invalid(errors)
        return values

    # -- health ---------------------------------------------------------------------------------

    def on_health(self, request: Request) -> Response:
        with self.reads.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(residents)).scalar_one()
        return _json({"ok": True, "residents": count})


def _one_of(name: str, allowed: Iterable[str]) -> Callable[[Any], str]:
    allowed = tuple(allowed)

    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError("must be one of " + ", ".join(allowed))
        return value

    return check


# -- serving ----------------------------------------------------------------------------------

_PATH_ID_RE = re.compile(r"(/residents/)[^/?#\s]+")
_LONG_NUMBER_RE = re.compile(r"[0-9]{6,}[0-9Xx]*")


def redact_path(path: str) -> str:
    """A request path fit for a log line: ID numbers and phones replaced by ``***``."""
    return _LONG_NUMBER_RE.sub("***", _PATH_ID_RE.sub(r"\1***", path))


MAX_REQUEST_BYTES = 2 * 1024 * 1024


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with kept-alive connections, for a WSGI app such as the simulator.

    werkzeug's development server closes every connection after one answer (and waits
    10 ms for stray request bytes before it does), so each Health Kit call cost a new TCP
    connection, a new server thread and that wait. Here a connection and its thread
    serve call after call: the request body is read in full (by its Content-Length)
    before the app runs, so the next request line starts clean, and the answer goes out
    with its Content-Length. Nagle is off, so an answer's body does not wait for the
    ACK of its headers. Paths are logged with ID numbers masked."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120  # an idle kept-alive connection (and its thread) ends after this

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "A request body needs a Content-Length")
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self.send_error(413 if length > 0 else 400, "Bad or too large Content-Length")
            self.close_connection = True  # the body is not read: the connection cannot go on
            return
        body = self.rfile.read(length) if length else b""
        answer: list = []

        def start_response(status: str, headers: list, exc_info=None):
            answer[:] = [status, headers]
            return None

        try:
            chunks = self.server.app(self._environ(body), start_response)
            try:
                content = b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        except Exception as exc:  # noqa: BLE001 - the type only: a message may quote input
            log.error("simulator: %s %s failed (%s)", self.command, redact_path(self.path), type(exc).__name__)
            self.send_error(500)
            return
        status, headers = answer
        self.send_response(int(status[:3]), status[4:])
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def _environ(self, body: bytes) -> dict:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info('"%s %s %s" %s %s', self.command, redact_path(self.path), self.request_version, code, size)

    def log_error(self, format: str, *args) -> None:  # http.server's own complaints (bad request lines)
        log.warning("simulator: %s", redact_path(format % args)[:200])


class SimulatorServer(ThreadingHTTPServer):
    """One thread per connection; ``app`` answers every request."""

    daemon_threads = True
    request_queue_size = 128  # a hundred clients connecting at once are all accepted

    def __init__(self, address: tuple[str, int], app) -> None:
        self.app = app
        super().__init__(address, KeepAliveHandler)


def parse_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:8010"`` / ``"[::1]:8010"`` / ``":8010"`` → (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("an address looks like host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def create_server(app: HealthKitSimulator, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
    """A threaded server for ``app`` with kept-alive connections (one thread per
    connection, listen backlog 128: copes with a hundred concurrent clients).
    ``port=0`` picks a free port; read it back from ``server.server_port``."""
    return SimulatorServer((host, port), app)


def make_store_engine(database_url: str, pool_size: int = 10, autocommit: bool = False) -> Engine:
    """The simulator's engine: a pool of ``pool_size`` (+ as many overflow), and SQL
    parameters hidden from error texts (they would hold ID numbers). Cooperative under
    eventlet when the process is monkey-patched. ``autocommit`` for the reads engine:
    every read is one statement, which needs no BEGIN and ROLLBACK around it."""
    from shared.db import make_engine

    return make_engine(
        database_url, pool_size, max_overflow=pool_size, autocommit=autocommit, pool_timeout=30, hide_parameters=True,
        application_name="healthkit-simulator",
    )


def serve(settings: "Settings | None" = None) -> None:
    """Run the simulator on ``settings.healthkit_sim_address`` until interrupted.

    Creates the store if missing and, when it is empty, seeds
    ``settings.demo_residents`` synthetic residents plus the demo people.
    """
    from shared.config import settings as load

    from .seed import seed_if_empty

    s = settings or load()
    engine = make_store_engine(s.database_url, pool_size=5)
    reads = make_store_engine(s.database_url, pool_size=5, autocommit=True)
    ensure_schema(engine)
    if s.demo_residents > 0:
        added = seed_if_empty(engine, s.demo_residents)
        if added:
            log.info("seeded an empty store with %d residents", added)
    app = HealthKitSimulator(
        engine,
        latency_ms=s.sim_latency_ms,
        failure_rate=s.sim_failure_rate,
        create_schema=False,
        reads=reads,
    )
    host, port = parse_address(s.healthkit_sim_address)
    server = create_server(app, host, port)
    log.info(
        "Health Kit simulator on http://%s:%d (latency_ms=%d, failure_rate=%s)",
        host, server.server_port, app.latency_ms, app.failure_rate,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.dispose()
        reads.dispose()
