#!/usr/bin/env python3
"""A webhook receiver for the events tests (tests/e2e/events_e2e.c).

It stands in for the operator's system that mdm-eventd POSTs to: it
checks every request the way README.md (Events) tells receivers to, with
Python's own hmac module (not our code), and records what it got.

    receiver.py DIR SECRET_FILE [PORT]
    receiver.py summary DIR

Listens on 127.0.0.1:PORT (0 or absent: any free port) and writes the
port to DIR/port once it accepts connections.  For every request it
appends one JSON line to DIR/received.jsonl:

    {"event_id": <X-MDM-Event-Id>, "sig_ok": bool, "status": <answered>,
     "attempt": <X-MDM-Delivery-Attempt>, "ts": <X-MDM-Timestamp>,
     "at": <unix time received>, "method": ..., "path": ...,
     "content_type": ..., "body": <the parsed JSON body, or null>}

DIR/fail, when it holds "N STATUS", makes the next N requests fail with
STATUS (N is counted down in the file); a request with a bad signature is
answered 401, anything else 204.

`summary DIR` prints one line per request recorded, tab-separated:
event id (header), signature ok (1/0), status answered, the body's
event_id, topic, udid, detail (a check-in's message_type, a result's
command_uuid/status/request_type), whether raw_payload decodes (1/0), the
delivery attempt (header), and the time it arrived.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def secret_of(path):
    with open(path, "rb") as f:
        data = f.read()
    return data.rstrip(b"\r\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test reads received.jsonl
        pass

    def do_POST(self):  # noqa: N802 (the http.server name)
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        sig = self.headers.get("X-MDM-Signature", "")
        want = "sha256=" + hmac.new(self.server.secret, body, hashlib.sha256).hexdigest()
        sig_ok = hmac.compare_digest(sig, want)
        status = 204 if sig_ok else 401
        with LOCK:
            fail = os.path.join(self.server.dir, "fail")
            try:
                with open(fail) as f:
                    left, code = f.read().split()
                if int(left) > 0:
                    status = int(code)
                    with open(fail, "w") as f:
                        f.write("%d %s\n" % (int(left) - 1, code))
            except (OSError, ValueError):
                pass
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            rec = {
                "event_id": self.headers.get("X-MDM-Event-Id"),
                "sig_ok": sig_ok,
                "status": status,
                "attempt": self.headers.get("X-MDM-Delivery-Attempt"),
                "ts": self.headers.get("X-MDM-Timestamp"),
                "at": time.time(),
                "method": self.command,
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": parsed,
            }
            with open(os.path.join(self.server.dir, "received.jsonl"), "a") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def summary(d):
    path = os.path.join(d, "received.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            b = r["body"] or {}
            ev = b.get("checkin_event") or b.get("acknowledge_event") or {}
            if "checkin_event" in b:
                detail = ev.get("message_type")
            else:
                detail = "%s/%s/%s" % (ev.get("command_uuid"), ev.get("status"),
                                       ev.get("request_type"))
            try:
                base64.b64decode(ev.get("raw_payload") or "", validate=True)
                raw_ok = 1
            except (binascii.Error, ValueError):
                raw_ok = 0
            print("\t".join(str(x) for x in (
                r["event_id"], int(r["sig_ok"]), r["status"], b.get("event_id"),
                b.get("topic"), ev.get("udid"), detail, raw_ok, r["attempt"],
                "%.6f" % r["at"])))
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "summary":
        return summary(sys.argv[2])
    if len(sys.argv) not in (3, 4):
        sys.stderr.write("usage: receiver.py DIR SECRET_FILE [PORT]\n")
        return 2
    port = int(sys.argv[3]) if len(sys.argv) == 4 else 0
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.dir = sys.argv[1]
    srv.secret = secret_of(sys.argv[2])
    tmp = os.path.join(srv.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, os.path.join(srv.dir, "port"))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
