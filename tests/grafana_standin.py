"""A local stand-in for the parts of Grafana's HTTP API that `vigie dashboards push` uses.

Loopback only. It checks paths, the Bearer token and request bodies the way Grafana's HTTP API
documents them (folders, dashboards/db, dashboards/uid, annotations) and refuses the rest.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["GrafanaStandIn", "Request"]

_UID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")


@dataclasses.dataclass(frozen=True)
class Request:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorization: str | None


class _RefusedError(Exception):
    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.body = {"message": message, **extra}


class GrafanaStandIn:
    """In-memory Grafana: folders, dashboards and annotations of one organisation.

    Use as a context manager; `url` is its base address. `requests` records every call.
    """

    def __init__(self, token: str, *, version: str = "11.5.0", prefix: str = "") -> None:
        self.token = token
        self.version = version
        self.prefix = prefix.rstrip("/")
        self.requests: list[Request] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.annotations: dict[int, dict[str, Any]] = {}
        # When set, what GET /api/folders/:uid answers instead (a proxy, an older Grafana or
        # another application can answer a folder lookup with a list).
        self.folder_answer: Any = None
        self._next_id = 1
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def __enter__(self) -> GrafanaStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def do_PUT(self) -> None:
                standin._handle(self, "PUT")

            def do_PATCH(self) -> None:
                standin._handle(self, "PATCH")

            def do_DELETE(self) -> None:
                standin._handle(self, "DELETE")

            def log_message(self, fmt: str, *args: Any) -> None:
                """Quiet: the test reads `requests` instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        """Base address, e.g. ``http://127.0.0.1:41234`` (plus the sub-path prefix if any)."""
        assert self._server is not None
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}{self.prefix}"

    # -- helpers for tests --

    def seed_provisioned_dashboard(self, dashboard: dict[str, Any], folder_uid: str) -> None:
        """Pretend `dashboard` was provisioned from files (Grafana refuses to save over it)."""
        self.dashboards[dashboard["uid"]] = {
            "dashboard": {**dashboard, "id": self._new_id(), "version": 1},
            "folderUid": folder_uid,
            "provisioned": True,
        }

    def add_raw_annotation(self, body: dict[str, Any]) -> int:
        """Store an annotation directly (as if created earlier, e.g. by a crashed run)."""
        with self._lock:
            return self._store_annotation(body)

    def calls(self, method: str, path: str) -> list[Request]:
        """Recorded requests with this method and path (without the query string)."""
        return [r for r in self.requests if r.method == method and r.path == path]

    def writes(self) -> list[Request]:
        """Every request that changed something."""
        return [r for r in self.requests if r.method != "GET"]

    # -- HTTP --

    def _handle(self, http: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        body: Any = None
        status, answer = 200, {}
        try:
            if raw:
                if not (http.headers.get("Content-Type") or "").startswith("application/json"):
                    raise _RefusedError(415, "Content-Type must be application/json")
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise _RefusedError(400, "bad request data") from None
            path = parts.path
            if self.prefix:
                if not path.startswith(self.prefix + "/"):
                    raise _RefusedError(404, "Not found")
                path = path[len(self.prefix) :]
            request = Request(
                method, path, parse_qs(parts.query), body, http.headers.get("Authorization")
            )
            with self._lock:
                self.requests.append(request)
                answer = self._route(request)
        except _RefusedError as exc:
            status, answer = exc.code, exc.body
        data = json.dumps(answer).encode()
        http.send_response(status)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)

    def _route(self, r: Request) -> Any:
        if r.method == "GET" and r.path == "/api/health":
            return {"commit": "standin", "database": "ok", "version": self.version}
        if r.authorization != f"Bearer {self.token}":
            raise _RefusedError(401, "Unauthorized")
        segments = r.path.strip("/").split("/")
        match (r.method, segments):
            case ("GET", ["api", "folders", uid]):
                if self.folder_answer is not None:
                    return self.folder_answer
                return self._get_folder(uid)
            case ("POST", ["api", "folders"]):
                return self._create_folder(r.body)
            case ("PUT", ["api", "folders", uid]):
                return self._update_folder(uid, r.body)
            case ("GET", ["api", "dashboards", "uid", uid]):
                return self._get_dashboard(uid)
            case ("POST", ["api", "dashboards", "db"]):
                return self._save_dashboard(r.body)
            case ("GET", ["api", "annotations"]):
                return self._find_annotations(r.query)
            case ("POST", ["api", "annotations"]):
                return {"message": "Annotation added", "id": self._create_annotation(r.body)}
            case ("PUT", ["api", "annotations", ident]):
                self._update_annotation(ident, r.body)
                return {"message": "Annotation updated"}
            case ("DELETE", ["api", "annotations", ident]):
                self._annotation(ident)
                del self.annotations[int(ident)]
                return {"message": "Annotation deleted"}
        raise _RefusedError(404, "Not found")

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    # -- folders (POST /api/folders, GET|PUT /api/folders/:uid) --

    def _get_folder(self, uid: str) -> dict[str, Any]:
        if uid not in self.folders:
            raise _RefusedError(404, "folder not found", status="not-found")
        return self.folders[uid]

    def _create_folder(self, body: Any) -> dict[str, Any]:
        _require_object(body, {"title"}, {"uid", "title", "description", "parentUid"})
        title = body["title"]
        if not isinstance(title, str) or not title.strip():
            raise _RefusedError(400, "folder title cannot be empty")
        uid = body.get("uid") or f"f{self._next_id}"
        if not _UID.match(uid):
            raise _RefusedError(400, "uid contains illegal characters")
        if uid in self.folders:
            raise _RefusedError(409, "a folder with the same uid already exists")
        if any(f["title"] == title for f in self.folders.values()):
            raise _RefusedError(
                409, "a folder or dashboard in the general folder with the same name"
            )
        folder = {
            "id": self._new_id(),
            "uid": uid,
            "title": title,
            "url": f"/dashboards/f/{uid}/",
            "version": 1,
            "hasAcl": False,
            "canSave": True,
        }
        self.folders[uid] = folder
        return folder

    def _update_folder(self, uid: str, body: Any) -> dict[str, Any]:
        folder = self._get_folder(uid)
        _require_object(body, set(), {"title", "version", "overwrite", "uid", "description"})
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            raise _RefusedError(412, "the folder has been changed by someone else")
        if "title" in body:
            folder["title"] = body["title"]
        folder["version"] += 1
        return folder

    # -- dashboards (POST /api/dashboards/db, GET /api/dashboards/uid/:uid) --

    def _get_dashboard(self, uid: str) -> dict[str, Any]:
        if uid not in self.dashboards:
            raise _RefusedError(404, "Dashboard not found")
        stored = self.dashboards[uid]
        return {
            "dashboard": stored["dashboard"],
            "meta": {
                "folderUid": stored["folderUid"],
                "provisioned": stored["provisioned"],
                "version": stored["dashboard"]["version"],
                "slug": _slug(stored["dashboard"]["title"]),
                "url": f"/d/{uid}/{_slug(stored['dashboard']['title'])}",
            },
        }

    def _save_dashboard(self, body: Any) -> dict[str, Any]:
        _require_object(
            body, {"dashboard"}, {"dashboard", "folderUid", "folderId", "message", "overwrite"}
        )
        dashboard = body["dashboard"]
        if not isinstance(dashboard, dict):
            raise _RefusedError(400, "dashboard must be an object")
        title, uid = dashboard.get("title"), dashboard.get("uid")
        if not isinstance(title, str) or not title.strip():
            raise _RefusedError(400, "Dashboard title cannot be empty", status="empty-name")
        if not isinstance(uid, str) or not _UID.match(uid):
            raise _RefusedError(400, "uid contains illegal characters", status="bad-uid")
        folder_uid = body.get("folderUid") or ""
        if folder_uid and folder_uid not in self.folders:
            raise _RefusedError(400, "folder not found", status="folder-not-found")
        stored = self.dashboards.get(uid)
        if stored is not None:
            if stored["provisioned"]:
                raise _RefusedError(400, "Cannot save provisioned dashboard")
            same_version = dashboard.get("version") == stored["dashboard"]["version"]
            if not body.get("overwrite") and not same_version:
                raise _RefusedError(
                    412, "The dashboard has been changed by someone else", status="version-mismatch"
                )
            ident, version = stored["dashboard"]["id"], stored["dashboard"]["version"] + 1
        else:
            if dashboard.get("id") is not None:
                raise _RefusedError(404, "Dashboard not found", status="not-found")
            ident, version = self._new_id(), 1
        saved = {**dashboard, "id": ident, "version": version}
        self.dashboards[uid] = {"dashboard": saved, "folderUid": folder_uid, "provisioned": False}
        return {
            "id": ident,
            "uid": uid,
            "url": f"/d/{uid}/{_slug(title)}",
            "status": "success",
            "version": version,
            "slug": _slug(title),
            "folderUid": folder_uid,
        }

    # -- annotations (GET|POST /api/annotations, PUT|DELETE /api/annotations/:id) --

    def _find_annotations(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        allowed = {
            "from",
            "to",
            "limit",
            "alertId",
            "dashboardId",
            "dashboardUID",
            "panelId",
            "userId",
            "type",
            "tags",
            "matchAny",
        }
        unknown = set(query) - allowed
        if unknown:
            raise _RefusedError(400, f"unknown query parameter {min(unknown)}")
        tags = query.get("tags", [])
        match_any = query.get("matchAny", ["false"])[0] == "true"
        limit = int(query.get("limit", ["100"])[0])
        kind = query.get("type", [""])[0]
        found = []
        for ident in sorted(self.annotations, reverse=True):  # newest first, like Grafana
            note = self.annotations[ident]
            if kind == "alert":
                continue
            if tags:
                hits = [t in note["tags"] for t in tags]
                if not (any(hits) if match_any else all(hits)):
                    continue
            found.append(note)
        return found[:limit]

    def _create_annotation(self, body: Any) -> int:
        _require_object(
            body,
            {"text"},
            {"dashboardUID", "dashboardId", "panelId", "time", "timeEnd", "tags", "text"},
        )
        return self._store_annotation(body)

    def _store_annotation(self, body: dict[str, Any]) -> int:
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise _RefusedError(400, "Failed to save annotation: text is required")
        time_ms = _millis(body.get("time"))
        end_ms = _millis(body.get("timeEnd")) if body.get("timeEnd") else time_ms
        if end_ms < time_ms:
            raise _RefusedError(400, "timeEnd must not be before time")
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _RefusedError(400, "tags must be a list of strings")
        ident = self._new_id()
        self.annotations[ident] = {
            "id": ident,
            "alertId": 0,
            "dashboardId": 0,
            "dashboardUID": body.get("dashboardUID") or "",
            "panelId": body.get("panelId") or 0,
            "userId": 1,
            "login": "sa-vigie",
            "time": time_ms,
            "timeEnd": end_ms,
            "text": text,
            "tags": list(tags),
            "data": {},
            "type": "annotation",
        }
        return ident

    def _annotation(self, ident: str) -> dict[str, Any]:
        if not ident.isdigit() or int(ident) not in self.annotations:
            raise _RefusedError(404, "Annotation not found")
        return self.annotations[int(ident)]

    def _update_annotation(self, ident: str, body: Any) -> None:
        note = self._annotation(ident)
        _require_object(body, {"text"}, {"id", "time", "timeEnd", "tags", "text"})
        replacement = self._annotation_fields(body)
        note.update(replacement)

    def _annotation_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise _RefusedError(400, "Failed to update annotation: text is required")
        time_ms = _millis(body.get("time"))
        end_ms = _millis(body.get("timeEnd")) if body.get("timeEnd") else time_ms
        return {
            "time": time_ms,
            "timeEnd": end_ms,
            "text": text,
            "tags": list(body.get("tags") or []),
        }


def _require_object(body: Any, required: set[str], allowed: set[str]) -> None:
    if not isinstance(body, dict):
        raise _RefusedError(400, "bad request data: expected a JSON object")
    missing = required - body.keys()
    if missing:
        raise _RefusedError(400, f"bad request data: {min(missing)} is required")
    unknown = body.keys() - allowed - required
    if unknown:
        raise _RefusedError(400, f"bad request data: unknown field {min(unknown)}")


def _millis(value: Any) -> int:
    # Grafana stores epoch milliseconds; seconds (10 digits) would land in 1970.
    if not isinstance(value, int) or isinstance(value, bool) or value < 10**11:
        raise _RefusedError(400, f"time must be epoch milliseconds (got {value!r})")
    return value


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
