"""A throwaway OpenID Connect issuer on 127.0.0.1 (discovery, JWKS, RS256 tokens) with a GitHub-like token endpoint."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

GITHUB_EXCHANGE_PATH = "/_apis/distributedtask/idtoken"  # where ACTIONS_ID_TOKEN_REQUEST_URL points
AUDIENCE = "sigstore"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class GitHubExchange:
    """How the fake ACTIONS_ID_TOKEN_REQUEST_URL endpoint behaves (change it between requests)."""

    request_token: str  # the bearer the runner gives the job (ACTIONS_ID_TOKEN_REQUEST_TOKEN)
    claims: dict[str, Any] = field(default_factory=dict)  # claims of the tokens it mints
    failures: list[int] = field(default_factory=list)  # statuses to answer first, one per request
    requests: list[dict[str, str]] = field(default_factory=list)  # what each request carried
    minted: list[str] = field(default_factory=list)  # every token handed out, in order


class OIDCIssuer:
    """An OIDC issuer at http://127.0.0.1:PORT[path] that Fulcio can verify tokens against.

    `mint(claims)` signs a JWT with the issuer's RSA key; `/.well-known/openid-configuration` and the
    JWKS are served under the issuer URL. `github_exchange(request_token, claims)` also serves
    GitHub Actions' token request (`GET URL&audience=A`, `Authorization: bearer T` → `{"value": JWT}`).
    """

    def __init__(self, *, path: str = "") -> None:
        self.path = "/" + path.strip("/") if path.strip("/") else ""
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:16]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.exchange: GitHubExchange | None = None
        self.served: list[str] = []  # request paths, in order

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> OIDCIssuer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> OIDCIssuer:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
            self._server.daemon_threads = True
            server = self._server
            self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05),
                                            name="oidc-issuer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the issuer is not running")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The issuer identifier: the `iss` of every token, exactly (no trailing slash)."""
        return self.origin + self.path

    # -- tokens ---------------------------------------------------------------------------------

    def mint(self, claims: Mapping[str, Any] | None = None, *, audience: str | list[str] = AUDIENCE,
             lifetime: int = 300, issued_at: float | None = None, issuer: str | None = None) -> str:
        """A signed RS256 JWT with `claims` plus iss/aud/iat/nbf/exp/jti (claims may override them)."""
        now = int(time.time() if issued_at is None else issued_at)
        payload: dict[str, Any] = {"iss": issuer or self.url, "aud": audience, "iat": now, "nbf": now,
                                   "exp": now + lifetime, "jti": uuid.uuid4().hex}
        payload.update(claims or {})
        payload.setdefault("sub", "sc-ci-test")
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = ".".join(b64url(json.dumps(p, separators=(",", ":")).encode()) for p in (header, payload))
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": _uint(numbers.n), "e": _uint(numbers.e)}]}

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": f"{self.url}/.well-known/jwks",
                "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "claims_supported": ["sub", "aud", "iss"]}

    def github_exchange(self, request_token: str, claims: Mapping[str, Any]) -> GitHubExchange:
        """Serve GitHub's token request; returns the (mutable) behaviour. Its URL is `exchange_url`."""
        self.exchange = GitHubExchange(request_token, dict(claims))
        return self.exchange

    @property
    def exchange_url(self) -> str:
        """What a runner puts in ACTIONS_ID_TOKEN_REQUEST_URL (already has a query string)."""
        return f"{self.origin}{GITHUB_EXCHANGE_PATH}?api-version=2.0"

    # -- serving --------------------------------------------------------------------------------

    def respond(self, method: str, target: str, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        self.served.append(parts.path)
        if method == "GET" and parts.path == f"{self.path}/.well-known/openid-configuration":
            return 200, self.discovery()
        if method == "GET" and parts.path == f"{self.path}/.well-known/jwks":
            return 200, self.jwks()
        if parts.path == GITHUB_EXCHANGE_PATH and self.exchange is not None:
            return self._github(method, parts.query, headers, self.exchange)
        return 404, {"message": "not found"}

    def _github(self, method: str, query: str, headers: Mapping[str, str],
                exchange: GitHubExchange) -> tuple[int, dict[str, Any]]:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        auth = headers.get("Authorization", "")
        exchange.requests.append({"method": method, "audience": params.get("audience", ""),
                                  "api-version": params.get("api-version", ""),
                                  "authorized": str(auth.lower() == f"bearer {exchange.request_token}".lower())})
        if exchange.failures:
            status = exchange.failures.pop(0)
            return status, {"message": f"scripted failure {status}"}
        if method != "GET":
            return 405, {"message": "method not allowed"}
        if auth.lower() != f"bearer {exchange.request_token}".lower():
            return 401, {"message": "Unauthorized: invalid or expired ACTIONS_ID_TOKEN_REQUEST_TOKEN"}
        audience = params.get("audience") or "https://github.com/OWNER"
        token = self.mint(exchange.claims, audience=audience)
        exchange.minted.append(token)
        return 200, {"count": 1, "value": token}


def _handler(issuer: OIDCIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sc-ci-oidc/1"

        def _serve(self) -> None:
            status, body = issuer.respond(self.command, self.path, {k: v for k, v in self.headers.items()})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
