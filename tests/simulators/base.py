"""What the array API simulators share: an HTTPS server on a loopback
address, HTTP Basic authentication, JSON in and out, a lock around the
in-memory state, a throwaway self-signed certificate and a small CLI.

Each simulator is an ``ArrayAPI`` subclass whose ``handle()`` answers one
authenticated request; everything else (TLS, auth, parsing, errors the API
itself has no say in) is here.

Faults: ``api.inject(Fault(...))`` makes the API misbehave on the requests
that match: answer late, answer an HTTP error such as 500 or 503, drop the
connection without an answer (before or after doing the work, the second
being a lost answer), or hold the request far longer than a client waits.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime
import hmac
import ipaddress
import json
import os
import re
import signal
import ssl
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


class ApiError(Exception):
    """An error answer of the API: HTTP status and JSON body."""

    def __init__(self, status: int, body: dict) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


@dataclasses.dataclass
class Fault:
    """A misbehaviour of the API on the requests that match ``method`` (any
    when empty) and ``path`` (a regular expression searched in the path).

    ``kind``:
      - ``latency``: answer normally after ``seconds``;
      - ``status``: answer HTTP ``status`` with a JSON error body (its
        ``message``: ``message``, by default "simulated HTTP <status>"), doing
        nothing;
      - ``drop``: close the connection without an answer, doing nothing, or,
        with ``after_work``, after doing the work (the answer is lost);
      - ``hang``: hold the request for ``seconds``, then drop it, doing nothing.

    ``times`` is how many matching requests it applies to (None: all of them);
    ``hits`` counts those it applied to.
    """

    kind: str
    method: str = ''
    path: str = ''
    times: int | None = 1
    seconds: float = 0.0
    status: int = 503
    message: str = ''
    after_work: bool = False
    hits: int = 0

    KINDS = ('latency', 'status', 'drop', 'hang')

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError('fault kind must be one of %s, not %r' % (', '.join(self.KINDS), self.kind))

    def matches(self, method: str, path: str) -> bool:
        return ((self.times is None or self.hits < self.times)
                and (not self.method or self.method == method)
                and (not self.path or re.search(self.path, path) is not None))


class ArrayAPI:
    """In-memory state of one array and the answers of its API."""

    product = 'array'

    def __init__(self, login: str, password: str) -> None:
        self.login = login
        self.password = password
        self.lock = threading.RLock()
        # (method, path) of every request, authenticated or not: tests read it.
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []

    def inject(self, fault: Fault) -> Fault:
        """Make the API misbehave from now on (see Fault); returns ``fault``."""
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first injected fault that applies to this request, counted as applied."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Options of this simulator's CLI beyond the common ones."""

    @classmethod
    def options(cls, args: argparse.Namespace) -> dict:
        """Keyword arguments of the constructor from those options."""
        return {}

    def close(self) -> None:
        """Release what the simulator holds outside this process (a data path's exports)."""

    def unauthorized(self) -> ApiError:
        """The answer to missing or wrong credentials."""
        raise NotImplementedError

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        """(status, JSON-able body or None) for an authenticated request."""
        raise NotImplementedError

    def check_credentials(self, header: str | None) -> bool:
        if not header or not header.startswith('Basic '):
            return False
        try:
            user, _sep, password = base64.b64decode(header[6:]).decode('utf-8').partition(':')
        except (ValueError, UnicodeDecodeError):
            return False
        return (hmac.compare_digest(user.encode(), self.login.encode())
                and hmac.compare_digest(password.encode(), self.password.encode()))


class _Handler(BaseHTTPRequestHandler):
    server_version = 'ArraySimulator/1'
    protocol_version = 'HTTP/1.1'

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        return  # quiet: tests read api.requests instead

    def _answer(self) -> None:
        api: ArrayAPI = self.server.api  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        with api.lock:
            api.requests.append((self.command, parts.path))
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        if not api.check_credentials(self.headers.get('Authorization')):
            error = api.unauthorized()
            self._send(error.status, error.body, {'WWW-Authenticate': 'Basic realm="%s"' % api.product})
            return
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            self._send(400, {'message': 'request body is not JSON', 'error_code': 400})
            return
        fault = api.take_fault(self.command, parts.path)
        if fault is not None and fault.kind in ('latency', 'hang'):
            time.sleep(fault.seconds)  # outside the API's lock: other requests go on
        if fault is not None and fault.kind == 'status':
            self._send(fault.status, {'message': fault.message or 'simulated HTTP %d' % fault.status,
                                      'error_code': fault.status})
            return
        if fault is not None and (fault.kind == 'hang' or (fault.kind == 'drop' and not fault.after_work)):
            self.close_connection = True  # no answer at all
            return
        try:
            with api.lock:
                status, payload = api.handle(self.command, parts.path, parse_qs(parts.query), body)
        except ApiError as error:
            status, payload = error.status, error.body
        if fault is not None and fault.kind == 'drop':
            self.close_connection = True  # the work is done, its answer is lost
            return
        self._send(status, payload)

    def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
        data = b'' if payload is None else json.dumps(payload).encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: ArrayAPI, host: str, port: int, certfile: str, keyfile: str) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError('simulators listen on loopback addresses only, not %s' % host)
        super().__init__((host, port), _Handler)
        self.api = api
        self.certfile = certfile
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def address(self) -> str:
        """host:port, as the drivers' san_ip takes it."""
        host, port = self.server_address[:2]
        return '%s:%d' % (host, port)


def make_certificate(directory: str | os.PathLike, host: str = '127.0.0.1') -> tuple[str, str]:
    """A throwaway self-signed certificate for ``host`` (and localhost): (certfile, keyfile)."""
    # Imported here: only the simulators need it (cryptography comes with the test venv).
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'cinderlib-storage array simulator')])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)),
                                                        x509.DNSName('localhost')]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = directory / 'simulator.crt', directory / 'simulator.key'
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.touch(mode=0o600)
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(certfile), str(keyfile)


def start(api: ArrayAPI, cert_dir: str | os.PathLike, host: str = '127.0.0.1', port: int = 0) -> SimulatorServer:
    """Serve ``api`` in a background thread; stop it with ``server.shutdown(); server.server_close()``."""
    certfile, keyfile = make_certificate(cert_dir, host)
    server = SimulatorServer(api, host, port, certfile, keyfile)
    threading.Thread(target=server.serve_forever, name='%s-simulator' % api.product, daemon=True).start()
    return server


def main(api_class: type[ArrayAPI], argv: list[str] | None = None) -> int:
    """The CLI: serve until SIGTERM/SIGINT; the chosen port goes to --port-file once listening."""
    parser = argparse.ArgumentParser(description='Serve a simulated %s management API over HTTPS (tests only).'
                                     % api_class.product)
    parser.add_argument('--host', default='127.0.0.1', help='a loopback address (default 127.0.0.1)')
    parser.add_argument('--port', type=int, default=0, help='0 picks a free port (default)')
    parser.add_argument('--port-file', help='write the port here once listening')
    parser.add_argument('--cert-dir', help='where the throwaway certificate goes (default: a temporary directory)')
    parser.add_argument('--login', required=True)
    parser.add_argument('--password-env', default='SIMULATOR_PASSWORD',
                        help='environment variable holding the password (kept off the command line)')
    api_class.add_arguments(parser)
    args = parser.parse_args(argv)
    password = os.environ.get(args.password_env)
    if not password:
        parser.error('set the password in the environment variable %s' % args.password_env)
    cert_dir = args.cert_dir or tempfile.mkdtemp(prefix='%s-simulator-' % api_class.product)
    api = None
    try:
        api = api_class(args.login, password, **api_class.options(args))
        server = start(api, cert_dir, args.host, args.port)
    except Exception as error:  # pylint: disable=broad-except  # a data path's rtslib errors too
        if api is not None:
            api.close()
        print('%s simulator: %s' % (api_class.product, error), file=sys.stderr)
        return 1
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_args: stopped.set())
    signal.signal(signal.SIGINT, lambda *_args: stopped.set())
    if args.port_file:
        tmp = args.port_file + '.tmp'
        Path(tmp).write_text('%d\n' % server.server_address[1], encoding='utf-8')
        os.replace(tmp, args.port_file)
    print('%s simulator listening on https://%s' % (api_class.product, server.address), flush=True)
    stopped.wait()
    server.shutdown()
    server.server_close()
    api.close()
    return 0
