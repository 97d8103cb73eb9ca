"""A stand-in for one replica of the shipped Hub (PostgreSQL mode), for tests and benchmarks of the
convergence check: the Hub itself cannot be built or run here.

It behaves, on the wire, like one Hub process:
- one dedicated listener connection, `LISTEN "scion_ev_global"`, left idle (as the Hub's listener in
  `pkg/hub/events_postgres.go`), which also runs every `LISTEN`/`UNLISTEN` of a per-project channel
  (`scion_ev_g_<id>`, while someone watches that project: `POST /_standin/project?id=X&state=watch|unwatch`),
  applied within a second as the Hub's 1 s wait loop does; a notification on the global channel triggers a
  full refresh of the settings cache, and a poll backstop refreshes it anyway
  (`pkg/hub/operational_settings.go`: 60 s + jitter; configurable here);
- the settings cache is the project's reference listener (`table/listener.py`, scion profile), which applies a
  snapshot only when a section's revision changed, as the Hub does;
- `GET /api/v1/admin/server-config` with `Authorization: Bearer <token>` answers as the Hub's
  `handleGetServerConfigDB` (`pkg/hub/admin_settings_db.go`): `scion_version`, `scion_commit`,
  `settings_tier: "db"`, and `section_metadata` listing every section of *this replica's* registry
  (`--sections`, default the newest registry) and never another one: `{source: "db", revision}` for a section
  in its cache, `{source: "default"}` otherwise; empty fields are omitted, never null (the Hub's `omitempty`),
  and the reference cache keeps no row metadata, so `updated_at`/`updated_by`/`origin` are omitted;
- `GET /api/v1/admin/server-config/schema` answers as the Hub's `handleAdminServerConfigSchema`
  (`{"sections": {name: {"schema", "koanf_paths"}}}`, same auth) for the sections of its registry, from the
  generated facts of the Hub generation its `--version` has reached (`--no-schema`: 404, an older Hub);
- auth as the Hub's (`pkg/hub/auth.go`, `errors.go`): 401 `unauthorized` with the Hub's message for a missing
  header, a bad `scion_pat_`/`scion_dev_` token or any other bad token; a valid principal without
  `hub.config.read` (`--forbidden-token-file`) gets 403 `forbidden` "Insufficient permissions";
- it logs `Received settings update event` with section and revision on each reload that changed something.

Its database connections can leave from a chosen loopback address (`source_ip`, through a small TCP relay),
so `pg_stat_activity.client_addr` shows that address, as it shows a Hub pod's IP.

Test controls (same server, under /_standin/): stop/start the listener connection (`POST
/_standin/listener?state=off|on`), run the poll backstop now (`POST /_standin/poll`), make refreshes fail while keeping the old cache, as a Hub whose `Refresh`
errors does (`POST /_standin/refresh?state=fail|ok`), and `GET /_standin/state`.

Run: `python -m tests.support.hub_standin --dsn-file F --token-file T --host 127.0.0.3 --port P`
(`--version 0.2.4 --sections access,maintenance` for an older replica).

Over 400 lines: one replica's wire behaviour (listener connection, HTTP answers, auth, test switches) is kept
in one place so it can be read against the Hub's code it mirrors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from hubsettings_operator.redact import register_dsn, register_secret
from hubsettings_operator.spec import facts, versions
from hubsettings_operator.spec.live_schema import SCHEMA_PATH
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.spec.sections import SECTION_MODELS
from hubsettings_operator.table.layouts import layout_for
from hubsettings_operator.table.listener import SettingsCache

log = logging.getLogger("hub-standin")

SERVER_CONFIG_PATH = "/api/v1/admin/server-config"
PROJECT_CHANNEL_PREFIX = "scion_ev_g_"
LISTEN_POLL_S = 1.0  # the Hub's listenPollInterval: channel changes apply between waits
# By default a replica of the newest Hub generation the facts know, so its version and its registry agree.
DEFAULT_VERSION = str(facts.newest()["since"])


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def unauthorized_message(header: str) -> str | None:
    """The Hub's 401 message for an Authorization header it rejects (None: the header names a token)."""
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return "missing authorization header"
    token = presented.strip()
    if token.startswith("scion_dev_"):
        return "invalid development token"
    if token.startswith("scion_pat_"):
        return "invalid access token"
    return "invalid token"


class _ReplicaCache(SettingsCache):
    """The reference cache, refreshed by the stand-in's own listener; `failing` makes refreshes fail."""

    failing = False
    failed_refreshes = 0

    async def refresh(self) -> None:
        conn = self._conn
        if conn is not None and not conn.closed:
            await self._reload(conn)

    async def _reload(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.failing:
            self.failed_refreshes += 1
            log.warning("settings refresh failed (simulated): keeping the cached revisions")
            return
        await super()._reload(conn)


class _Relay:
    """A loopback TCP relay whose outgoing connections leave from `source_ip`."""

    def __init__(self, source_ip: str, target_host: str, target_port: int) -> None:
        self.source_ip = source_ip
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.source_ip, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target, local_addr=(self.source_ip, 0))
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass  # either side gone or shutting down: close the other
            finally:
                dst.close()

        with contextlib.suppress(asyncio.CancelledError):  # shutdown: the relay's tasks end with the process
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


class HubStandIn:
    """One stand-in replica (see the module docstring)."""

    def __init__(
        self,
        dsn: str,
        *,
        host: str,
        port: int,
        token: str,
        table: str = "hub_settings",
        channel: str = "",
        poll_interval: float = 60.0,
        source_ip: str | None = None,
        sections: list[str] | None = None,
        version: str = DEFAULT_VERSION,
        forbidden_token: str = "",
        serve_schema: bool = True,
    ) -> None:
        register_dsn(dsn)
        register_secret(token)
        self._dsn = dsn
        self.host = host
        self.port = port
        self._token = token
        self._forbidden_token = forbidden_token
        if forbidden_token:
            register_secret(forbidden_token)
        self.sections = sorted(sections) if sections is not None else sorted(SECTION_MODELS)
        self.version = version
        self.serve_schema = serve_schema  # False: a Hub before the schema endpoint (404)
        self.projects: set[str] = set()  # projects watched: their channels are LISTENed
        self.active: set[str] = set()  # channels LISTENed on the current listener connection
        self.table = table
        self.channel = channel or layout_for(Profile.SCION).channel
        self.poll_interval = poll_interval
        self.source_ip = source_ip
        self.cache: _ReplicaCache | None = None
        self._relay: _Relay | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.requests = 0
        self.schema_requests = 0

    async def start(self) -> None:
        dsn = self._dsn
        if self.source_ip:
            params = conninfo_to_dict(dsn)
            self._relay = _Relay(
                self.source_ip, str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
            )
            await self._relay.start()
            dsn = make_conninfo(dsn, host=self.source_ip, port=str(self._relay.port))
        self._dsn = dsn
        self.cache = _ReplicaCache(
            dsn,
            table=self.table,
            profile=Profile.SCION,
            listen=False,  # notifications arrive on the dedicated listener below, as in the Hub
            poll_interval=self.poll_interval,
            on_change=self._changed,
        )
        await self.cache.start()
        await self.start_listener()
        app = web.Application()
        app.router.add_get(SERVER_CONFIG_PATH, self._server_config)
        if self.serve_schema:
            app.router.add_get(SCHEMA_PATH, self._schema)
        app.router.add_post("/_standin/listener", self._control_listener)
        app.router.add_post("/_standin/refresh", self._control_refresh)
        app.router.add_post("/_standin/poll", self._control_poll)
        app.router.add_post("/_standin/project", self._control_project)
        app.router.add_get("/_standin/state", self._state)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        await self.stop_listener()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.cache is not None:
            await self.cache.stop()
        if self._relay is not None:
            await self._relay.stop()

    # ---- the listener connection ---------------------------------------------------------------------

    async def start_listener(self) -> None:
        if self._listener is None or self._listener.done():
            self._listening.clear()
            self._listener = asyncio.create_task(self._listen(), name="hub-standin-listener")
            await asyncio.wait_for(self._listening.wait(), 10)

    async def stop_listener(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        self._listening.clear()
        self.active = set()

    async def _listen(self) -> None:
        backoff = 0.25
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=5
                ) as conn:
                    self.active = set()
                    await self._apply_channels(conn)
                    self._listening.set()
                    backoff = 0.25
                    if self.cache is not None:
                        await self.cache.refresh()  # anything sent while away is lost: refresh on (re)connect
                    while True:
                        # As the Hub's listenLoop: wait up to a second, then apply LISTEN/UNLISTEN changes.
                        async for note in conn.notifies(timeout=LISTEN_POLL_S):
                            if note.channel == self.channel and self.cache is not None:
                                await self.cache.refresh()
                        await self._apply_channels(conn)
            except (psycopg.Error, OSError):
                self._listening.clear()
                self.active = set()
                await asyncio.sleep(backoff)
                backoff = min(10.0, backoff * 2)

    async def _apply_channels(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """LISTEN each desired channel not active yet (the global one first), UNLISTEN each one no longer
        wanted: the connection's last statement is whichever ran last, as on the Hub's listener."""
        desired = [self.channel, *sorted(PROJECT_CHANNEL_PREFIX + p for p in self.projects)]
        for channel in desired:
            if channel not in self.active:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                self.active.add(channel)
        for channel in sorted(self.active - set(desired)):
            await conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(channel)))
            self.active.discard(channel)

    def _changed(self, section: str, _old: Any, _new: Any) -> None:
        revision = self.cache.snapshot.revisions.get(section) if self.cache is not None else None
        log.info("Received settings update event section=%s revision=%s", section, revision)

    # ---- HTTP ------------------------------------------------------------------------------------------

    @staticmethod
    def _presented(request: web.Request) -> bytes:
        return request.headers.get("Authorization", "").partition(" ")[2].strip().encode()

    def _denied(self, request: web.Request) -> web.Response | None:
        presented = self._presented(request)
        if self._forbidden_token and hmac.compare_digest(presented, self._forbidden_token.encode()):
            return _error(403, "forbidden", "Insufficient permissions")
        if not hmac.compare_digest(presented, self._token.encode()):
            message = unauthorized_message(request.headers.get("Authorization", "")) or "invalid token"
            return _error(401, "unauthorized", message)
        return None

    async def _server_config(self, request: web.Request) -> web.Response:
        self.requests += 1
        denied = self._denied(request)
        if denied is not None:
            return denied
        revisions = self.cache.snapshot.revisions if self.cache is not None else {}
        # Every section of this replica's registry, none other; `omitempty` fields left out.
        meta: dict[str, dict[str, Any]] = {
            section: {"source": "db", "revision": revisions[section]}
            if revisions.get(section)
            else {"source": "default"}
            for section in self.sections
        }
        return web.json_response(
            {
                "scion_version": self.version,
                "scion_commit": "standin",
                "settings_tier": "db",
                "schema_version": "1",
                "section_metadata": meta,
            }
        )

    async def _schema(self, request: web.Request) -> web.Response:
        """As the Hub's `handleAdminServerConfigSchema`: `{"sections": {name: {schema, koanf_paths}}}` for every
        section of this replica's registry (the generated facts of the Hub generation its version has reached),
        behind the same auth as server-config (`hub.config.read`)."""
        self.schema_requests += 1
        denied = self._denied(request)
        if denied is not None:
            return denied
        found = facts.section_facts(versions.generation_for(self.version))
        return web.json_response(
            {
                "sections": {
                    name: {"schema": found[name]["schema"], "koanf_paths": list(found[name]["koanf_paths"])}
                    for name in self.sections
                    if name in found
                }
            }
        )

    async def _control_listener(self, request: web.Request) -> web.Response:
        if request.query.get("state") == "off":
            await self.stop_listener()
        else:
            await self.start_listener()
        return await self._state(request)

    async def _control_poll(self, request: web.Request) -> web.Response:
        """Run the poll backstop now (tests need it at a known moment, not up to 60 s later)."""
        if self.cache is not None:
            await self.cache.refresh()
        return await self._state(request)

    async def _control_project(self, request: web.Request) -> web.Response:
        """Someone starts or stops watching a project in the web UI: its channel is (UN)LISTENed."""
        project = request.query.get("id", "")
        if request.query.get("state") == "unwatch":
            self.projects.discard(project)
        elif project:
            self.projects.add(project)
        return await self._state(request)

    async def _control_refresh(self, request: web.Request) -> web.Response:
        if self.cache is not None:
            self.cache.failing = request.query.get("state") == "fail"
        return await self._state(request)

    async def _state(self, _request: web.Request) -> web.Response:
        cache = self.cache
        return web.json_response(
            {
                "listening": self._listening.is_set(),
                "revisions": dict(cache.snapshot.revisions) if cache is not None else {},
                "failing": bool(cache is not None and cache.failing),
                "failed_refreshes": cache.failed_refreshes if cache is not None else 0,
                "requests": self.requests,
                "schema_requests": self.schema_requests,
                "channels": sorted(self.active),
            }
        )


async def _main(args: argparse.Namespace, dsn: str, token: str, forbidden: str) -> None:
    standin = HubStandIn(
        dsn,
        host=args.host,
        port=args.port,
        token=token,
        table=args.table,
        poll_interval=args.poll_seconds,
        source_ip=args.source_ip or args.host,
        sections=[s for s in args.sections.split(",") if s] if args.sections else None,
        version=args.version,
        forbidden_token=forbidden,
        serve_schema=not args.no_schema,
    )
    await standin.start()
    print(f"ready http://{args.host}:{args.port}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await standin.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hub-standin", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--dsn-file", required=True, help="file holding the Hub database's DSN")
    parser.add_argument("--token-file", required=True, help="file holding the admin bearer token")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to serve on (the 'pod IP')")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--source-ip", default="", help="address database connections leave from (default --host)"
    )
    parser.add_argument("--table", default="hub_settings")
    parser.add_argument("--poll-seconds", type=float, default=60.0, help="poll backstop (the Hub: 60 s)")
    parser.add_argument(
        "--sections", default="", help="this replica's registry (comma-separated; default all)"
    )
    parser.add_argument("--version", default=DEFAULT_VERSION, help="scion_version it reports")
    parser.add_argument(
        "--forbidden-token-file", default="", help="a token of a principal without hub.config.read (403)"
    )
    parser.add_argument(
        "--no-schema", action="store_true", help="no schema endpoint (404), as a Hub before it"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s")
    dsn, token = Path(args.dsn_file).read_text().strip(), Path(args.token_file).read_text().strip()
    forbidden = Path(args.forbidden_token_file).read_text().strip() if args.forbidden_token_file else ""
    asyncio.run(_main(args, dsn, token, forbidden))
    return 0


if __name__ == "__main__":
    sys.exit(main())
