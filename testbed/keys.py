"""Throwaway cosign key pairs, made by the real `cosign generate-key-pair`, for the demo, tests and benchmarks."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sc_ci import runner
from sc_ci.errors import ToolError


@dataclass(frozen=True)
class KeyPair:
    """cosign.key (encrypted with `password`) and cosign.pub in one directory."""

    private: Path
    public: Path
    password: str

    @property
    def pem(self) -> str:
        return self.private.read_text()


def generate_keypair(cosign: Path | str, directory: Path, password: str | None = None) -> KeyPair:
    """A new key pair in `directory` (created 0700 if missing); a random password unless one is given."""
    password = password or "pw-" + secrets.token_hex(12)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    done = runner.run([cosign, "generate-key-pair"], cwd=directory,
                      env={**runner.base_env(), "COSIGN_PASSWORD": password}, timeout=60)
    if not done.ok:
        raise ToolError("cosign generate-key-pair failed", why=done.tail())
    return KeyPair(directory / "cosign.key", directory / "cosign.pub", password)
