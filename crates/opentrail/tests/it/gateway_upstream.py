"""A small HTTP API for the gateway's black-box tests (tests/it/gateway.rs): a pet store that checks
HS256 JWTs itself (as a real API would), echoes what it received, answers with a secret, sleeps on
/slow, counts bytes of uploads (Content-Length or chunked) without keeping them, and says how many
requests it served on /__count (never through the gateway). Prints its port on stdout."""

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = sys.argv[1].encode() if len(sys.argv) > 1 else b"jwt-secret"
COUNT = 0
LOCK = threading.Lock()


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_subject(auth):
    if not auth or not auth.lower().startswith("bearer "):
        return None
    try:
        h, p, sig = auth[7:].strip().split(".")
        want = hmac.new(SECRET, f"{h}.{p}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(want, b64d(sig)):
            return None
        return json.loads(b64d(p)).get("sub")
    except Exception:
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            n, digest = 0, hashlib.sha256()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return n, digest.hexdigest(), None
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    digest.update(chunk)
                    left -= len(chunk)
                n += size
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 20:
            n, digest, left = 0, hashlib.sha256(), length
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
                n += len(chunk)
            return n, digest.hexdigest(), None
        data = self.rfile.read(length) if length else b""
        return len(data), hashlib.sha256(data).hexdigest(), data

    def answer(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Id", "req-" + str(COUNT))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        global COUNT
        path = self.path.split("?")[0]
        if path == "/__count":
            return self.answer(200, {"count": COUNT})
        with LOCK:
            COUNT += 1
        n, digest, data = self.body()
        if path == "/slow":
            time.sleep(3)
            return self.answer(200, {"slow": True})
        if path.startswith("/upload"):
            return self.answer(200, {"bytes": n, "sha256": digest})
        if path.startswith("/pets"):
            sub = jwt_subject(self.headers.get("Authorization"))
            if sub is None:
                return self.answer(401, {"message": "invalid or missing token"})
            if self.command == "POST":
                pet = json.loads(data or b"{}")
                return self.answer(201, {"id": 7, "name": pet.get("name"), "owner": sub, "apiToken": "resp-secret-XYZ"})
            return self.answer(200, {"pets": [{"id": 7, "name": "Rex"}], "owner": sub})
        return self.answer(200, {"path": self.path, "method": self.command, "bytes": n,
                                 "xff": self.headers.get("X-Forwarded-For"), "host": self.headers.get("Host")})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
