"""A local stand-in for HubSpot's CRM API, so tests drive the real hubspot-api-client over real HTTP on loopback.

    with HubSpotStandIn(owners=[("1", "ana@acme.com", "Ana", "Ruiz")]) as hubspot:
        hub = HubSpot("pat-test", hubspot.url)
        ...
        assert hubspot.objects["tasks"]["1"]["hubspot_owner_id"] == "1"

It answers the documented REST paths pqlbot uses, as HubSpot shapes them: crm/v3/objects/{type} (create, get page,
update, search with EQ filters), crm/v4 default associations, crm/v3/properties/{type} (and its groups), crm/v3/owners.
Objects are kept per type in `.objects` (id -> properties), associations in `.associations`, every request in
`.calls`. A property HubSpot would not know (a pql_* one on contacts or companies before `pqlbot crm setup` made it)
is refused with HubSpot's 400 PROPERTY_DOESNT_EXIST. Faults on demand: `fail(status, times, retry_after=...)` answers
the next requests with that status (`times=None`: until `heal()`); a wrong bearer token gets 401.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "pat-na1-test"
#: HubSpot's own properties, which always exist; custom ones are created through the properties API.
BUILT_IN = {"contacts": {"email", "firstname", "lastname", "jobtitle", "numberofemployees", "industry",
                         "hubspot_owner_id", "company"},
            "companies": {"domain", "name", "numberofemployees", "industry", "hubspot_owner_id"}}


@dataclass(slots=True)
class Call:
    method: str
    path: str
    body: dict | None
    status: int


class HubSpotStandIn:
    def __init__(self, *, owners: list[tuple[str, str, str, str]] = ()) -> None:
        self.objects: dict[str, dict[str, dict]] = defaultdict(dict)
        self.associations: set[tuple[str, str, str, str]] = set()
        self.properties: dict[str, dict[str, dict]] = defaultdict(dict)  # custom ones, per object type
        self.groups: dict[str, set[str]] = defaultdict(set)
        self.owners = [{"id": i, "email": e, "firstName": f, "lastName": last} for i, e, f, last in owners]
        self.calls: list[Call] = []
        self._faults: list[list] = []
        self._ids = itertools.count(101)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> HubSpotStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, status: int, times: int | None = 1, *, retry_after: int | None = None,
             after: bool = False, only: str | None = None) -> None:
        """The next `times` requests (to the path `only`, when given) answered `status`; `after`: HubSpot acts first,
        then the answer is an error (a 5xx after it acted: the caller cannot know it did)."""
        with self._lock:
            self._faults.append([status, times, retry_after, after, only])

    def heal(self) -> None:
        with self._lock:
            self._faults.clear()

    def setup_done(self) -> None:
        """The pql_* properties exist, as `pqlbot crm setup` leaves them."""
        from bot.integrations.hubspot import PROPERTIES

        for object_type in ("contacts", "companies"):
            for name in PROPERTIES:
                self.properties[object_type][name] = {"name": name}

    def made(self, path_part: str) -> list[Call]:
        """Successful creating calls whose path contains `path_part`."""
        return [c for c in self.calls if c.method == "POST" and c.status == 201 and c.path.endswith(path_part)]

    def of(self, object_type: str) -> list[dict]:
        return list(self.objects[object_type].values())

    # -- answering

    def answer(self, method: str, path: str, query: dict, body: dict | None, token: str | None) -> tuple[int, dict,
                                                                                                            dict]:
        with self._lock:
            if self._faults and self._faults[0][4] in (None, path):
                status, times, retry_after, after, _ = self._faults[0]
                if times is not None:
                    self._faults[0][1] -= 1
                    if self._faults[0][1] <= 0:
                        self._faults.pop(0)
                if after and token == TOKEN:
                    self._route(method, path, query, body or {})
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                return status, {"status": "error", "message": "stand-in fault", "category": "RATE_LIMITS"
                                if status == 429 else "ERROR"}, headers
            if token != TOKEN:
                return 401, {"status": "error", "message": "Authentication credentials not found.",
                             "category": "INVALID_AUTHENTICATION"}, {}
            return self._route(method, path, query, body or {})

    def _route(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict, dict]:
        if m := re.fullmatch(r"/crm/v3/objects/(\w+)/search", path):
            return self._search(m[1], body)
        if m := re.fullmatch(r"/crm/v3/objects/(\w+)", path):
            return self._create(m[1], body) if method == "POST" else self._page(m[1], query)
        if m := re.fullmatch(r"/crm/v3/objects/(\w+)/(\d+)", path):
            return self._update(m[1], m[2], body) if method == "PATCH" else self._get(m[1], m[2])
        if m := re.fullmatch(r"/crm/v4/objects/(\w+)/(\d+)/associations/default/(\w+)/(\d+)", path):
            return self._associate(*m.groups())
        if m := re.fullmatch(r"/crm/v3/properties/(\w+)/groups", path):
            return self._groups(m[1], method, body)
        if m := re.fullmatch(r"/crm/v3/properties/(\w+)", path):
            return self._properties(m[1], method, body)
        if re.fullmatch(r"/crm/v3/owners/?", path):
            return 200, {"results": [self._owner(o) for o in self.owners]}, {}
        return 404, {"status": "error", "message": f"no route {method} {path}", "category": "OBJECT_NOT_FOUND"}, {}

    @staticmethod
    def _stamp() -> str:
        return datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def _object(self, object_type: str, object_id: str) -> dict:
        now = self._stamp()
        return {"id": object_id, "properties": self.objects[object_type][object_id], "createdAt": now,
                "updatedAt": now, "archived": False}

    def _unknown(self, object_type: str, properties: dict) -> tuple[int, dict, dict] | None:
        if object_type not in BUILT_IN:
            return None
        unknown = [n for n in properties if n not in BUILT_IN[object_type] and n not in self.properties[object_type]]
        if not unknown:
            return None
        errors = [{"isValid": False, "message": f'Property "{n}" does not exist', "error": "PROPERTY_DOESNT_EXIST",
                   "name": n} for n in unknown]
        return 400, {"status": "error", "message": f"Property values were not valid: {json.dumps(errors)}",
                     "category": "VALIDATION_ERROR"}, {}

    def _create(self, object_type: str, body: dict) -> tuple[int, dict, dict]:
        properties = body.get("properties") or {}
        if refused := self._unknown(object_type, properties):
            return refused
        object_id = str(next(self._ids))
        self.objects[object_type][object_id] = dict(properties)
        return 201, self._object(object_type, object_id), {}

    def _update(self, object_type: str, object_id: str, body: dict) -> tuple[int, dict, dict]:
        if object_id not in self.objects[object_type]:
            return 404, {"status": "error", "message": "resource not found", "category": "OBJECT_NOT_FOUND"}, {}
        properties = body.get("properties") or {}
        if refused := self._unknown(object_type, properties):
            return refused
        self.objects[object_type][object_id].update(properties)
        return 200, self._object(object_type, object_id), {}

    def _get(self, object_type: str, object_id: str) -> tuple[int, dict, dict]:
        if object_id not in self.objects[object_type]:
            return 404, {"status": "error", "message": "resource not found", "category": "OBJECT_NOT_FOUND"}, {}
        return 200, self._object(object_type, object_id), {}

    def _page(self, object_type: str, query: dict) -> tuple[int, dict, dict]:
        ids = sorted(self.objects[object_type], key=int)
        after = int(query.get("after", ["0"])[0])
        limit = int(query.get("limit", ["10"])[0])
        chosen = [i for i in ids if int(i) > after][:limit]
        page = {"results": [self._object(object_type, i) for i in chosen]}
        if chosen and chosen[-1] != ids[-1]:
            page["paging"] = {"next": {"after": chosen[-1]}}
        return 200, page, {}

    def _search(self, object_type: str, body: dict) -> tuple[int, dict, dict]:
        def matches(properties: dict) -> bool:
            return any(all(str(properties.get(f["propertyName"], "")).lower() == str(f["value"]).lower()
                           for f in group.get("filters", []) if f.get("operator") == "EQ")
                       for group in body.get("filterGroups") or [{}])

        found = [i for i, p in self.objects[object_type].items() if matches(p)]
        return 200, {"total": len(found), "results": [self._object(object_type, i) for i in found[:1]]}, {}

    def _associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> tuple[int, dict, dict]:
        if from_id not in self.objects[from_type] or to_id not in self.objects[to_type]:
            return 404, {"status": "error", "message": "object not found", "category": "OBJECT_NOT_FOUND"}, {}
        self.associations.add((from_type, from_id, to_type, to_id))
        now = self._stamp()
        return 200, {"status": "COMPLETE", "startedAt": now, "completedAt": now, "results": [
            {"from": {"id": from_id}, "to": {"id": to_id},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}}]}, {}

    def _groups(self, object_type: str, method: str, body: dict) -> tuple[int, dict, dict]:
        if method == "POST":
            self.groups[object_type].add(body["name"])
            return 201, self._group(body["name"], body.get("label", body["name"])), {}
        return 200, {"results": [self._group(name, name) for name in sorted(self.groups[object_type])]}, {}

    @staticmethod
    def _group(name: str, label: str) -> dict:
        return {"name": name, "label": label, "displayOrder": -1, "archived": False}

    def _properties(self, object_type: str, method: str, body: dict) -> tuple[int, dict, dict]:
        if method == "POST":
            if body["name"] in self.properties[object_type]:
                return 409, {"status": "error", "message": "Property already exists", "category": "CONFLICT"}, {}
            self.properties[object_type][body["name"]] = body
            return 201, self._property(body), {}
        custom = [self._property(p) for p in self.properties[object_type].values()]
        built_in = [self._property({"name": n}) for n in sorted(BUILT_IN.get(object_type, ()))]
        return 200, {"results": built_in + custom}, {}

    @staticmethod
    def _property(p: dict) -> dict:
        return {"name": p["name"], "label": p.get("label", p["name"]), "type": p.get("type", "string"),
                "fieldType": p.get("fieldType", "text"), "groupName": p.get("groupName", "contactinformation"),
                "description": p.get("description", ""), "options": []}

    @staticmethod
    def _owner(o: dict) -> dict:
        return {**o, "type": "PERSON", "userId": int(o["id"]), "createdAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z", "archived": False}


def _handler(standin: HubSpotStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            status, answer, headers = standin.answer(method, parts.path, parse_qs(parts.query), body, token)
            with standin._lock:
                standin.calls.append(Call(method, parts.path, body, status))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_PATCH(self) -> None:  # noqa: N802
            self._serve("PATCH")

        def do_PUT(self) -> None:  # noqa: N802
            self._serve("PUT")

        def log_message(self, *args) -> None:
            pass

    return Handler
