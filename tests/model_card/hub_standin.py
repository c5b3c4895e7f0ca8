"""A local stand-in for the few Hub API endpoints that `create_repo`, `create_branch`, `upload_folder`, `whoami` and
`ModelCard.validate` call, so the whole push path runs offline against 127.0.0.1 (HF_ENDPOINT points at it).

Files committed through it are written to `root/<repo_id>/<revision>/`; every request is logged, and requests to
endpoints it does not implement are answered 404 and listed in `unhandled`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN = "hf_standin_write_token"
USER = "standin-user"


class HubStandIn:
    def __init__(self, root: Path, token: str = TOKEN, role: str = "write") -> None:
        self.root = root
        self.token = token
        self.role = role
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.repos: dict[str, dict] = {}
        self.branches: set[tuple[str, str]] = set()
        self.commit_messages: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        folder = self.root / repo_id / revision
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    def _handler_class(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, payload: dict | None = None) -> None:
                body = json.dumps(payload or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {hub.token}":
                    self._reply(401, {"error": "Invalid credentials in Authorization header"})
                    return False
                return True

            def do_GET(self) -> None:
                hub.requests.append(("GET", self.path))
                if self.path.startswith("/api/whoami-v2"):
                    if self._authorised():
                        self._reply(
                            200, {"type": "user", "name": USER, "orgs": [], "auth": {"accessToken": {"role": hub.role}}}
                        )
                    return
                hub.unhandled.append(("GET", self.path))
                self._reply(404, {"error": "not implemented by the stand-in"})

            def do_POST(self) -> None:
                hub.requests.append(("POST", self.path))
                body = self._body()
                path = self.path.split("?")[0]
                if path == "/api/validate-yaml":  # the Hub validates cards without authentication
                    return self._reply(200, {})
                if not self._authorised():
                    return
                if path == "/api/repos/create":
                    data = json.loads(body)
                    repo_id = f"{data.get('organization') or USER}/{data['name']}"
                    hub.repos[repo_id] = data
                    return self._reply(200, {"url": f"{hub.endpoint}/{repo_id}", "name": repo_id})
                match = re.fullmatch(r"/api/(?:models|spaces)/([^/]+/[^/]+)/(preupload|commit|branch)/(.+)", path)
                if match is None or match.group(1) not in hub.repos:
                    hub.unhandled.append(("POST", self.path))
                    return self._reply(404, {"error": "not implemented by the stand-in or unknown repo"})
                repo_id, action, revision = match.groups()
                if action == "branch":
                    hub.branches.add((repo_id, revision))
                    return self._reply(200, {})
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._reply(
                        200,
                        {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]},
                    )
                if revision != "main" and (repo_id, revision) not in hub.branches:
                    return self._reply(404, {"error": f"Revision {revision} does not exist"})
                for line in body.splitlines():
                    item = json.loads(line)
                    if item["key"] == "header":
                        hub.commit_messages.append(item["value"]["summary"])
                    elif item["key"] == "file":
                        target = hub.root / repo_id / revision / item["value"]["path"]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(base64.b64decode(item["value"]["content"]))
                    else:
                        hub.unhandled.append(("commit-op", item["key"]))
                oid = hashlib.sha1(body).hexdigest()
                self._reply(200, {"commitUrl": f"{hub.endpoint}/{repo_id}/commit/{oid}", "commitOid": oid})

        return Handler
