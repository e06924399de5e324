"""Hostile registries and Docker configs: credentials stay with their registry, digests of every
algorithm are verified, malformed configs and indexes never crash."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
import responses

from sc_ci import imageref, secrets
from sc_ci.errors import ScError
from sc_ci.sanitize import is_command_line
from sc_ci.services import dockerconfig
from sc_ci.services.dockerconfig import Credential
from sc_ci.services.registry import RegistryClient, index_entries, realm_hosts_from_env

PLANTED = "PLANTED-registry-pw-9f8e7d"
BODY = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
SHA256 = "sha256:" + hashlib.sha256(BODY).hexdigest()
SHA512 = "sha512:" + hashlib.sha512(BODY).hexdigest()
URL = "https://reg.example.com/v2/team/app/manifests/1.0"
REF = "reg.example.com/team/app:1.0"


@pytest.fixture(autouse=True)
def _clean() -> None:
    secrets.reset_for_tests()


def assert_clean(exc: BaseException, code: int = 1) -> str:
    assert isinstance(exc, ScError), type(exc)
    assert exc.exit_code == code
    text = exc.diagnostics()
    assert len(text.splitlines()) < 25, text
    assert not any(is_command_line(line) for line in text.splitlines()), text
    assert PLANTED not in text
    return text


def creds(host: str = "reg.example.com") -> dict[str, Credential]:
    return {host: Credential("bob", secrets.Secret(PLANTED))}


def basic() -> str:
    return "Basic " + base64.b64encode(f"bob:{PLANTED}".encode()).decode()


def no_credential_sent() -> None:
    for call in responses.calls:
        assert PLANTED not in (call.request.headers.get("Authorization") or "")
        assert basic() != call.request.headers.get("Authorization")


# ---------------------------------------------------------------------------------------------- explicit creds


def test_explicit_credentials_only_for_the_named_host() -> None:
    env = {"SC_CI_REGISTRY_USERNAME": "ci", "SC_CI_REGISTRY_PASSWORD": PLANTED,
           "SC_CI_REGISTRY_HOST": "reg.example.com"}
    got = dockerconfig.explicit_credentials(env, {"reg.example.com", "evil.example.net", "docker.io"})
    assert set(got) == {"reg.example.com"}


@pytest.mark.parametrize(("env", "host"), [
    ({"SC_CI_REGISTRY": "registry.example.com/team/sub"}, "registry.example.com"),
    ({"SC_CI_REGISTRY": "https://Registry.Example.com:5000/team"}, "registry.example.com:5000"),
    ({"INPUT_REGISTRY": "ghcr.io/acme"}, "ghcr.io"),
    ({"GITLAB_CI": "true", "CI_REGISTRY": "registry.gitlab.example.com"}, "registry.gitlab.example.com"),
    ({"GITHUB_ACTIONS": "true"}, "ghcr.io"),
    ({"GITHUB_ACTIONS": "true", "SC_CI_REGISTRY_HOST": "index.docker.io"}, "docker.io"),
], ids=["sc-ci-registry", "scheme-port", "input", "gitlab", "github", "hub-alias"])
def test_credential_host_sources(env: dict[str, str], host: str) -> None:
    full = {"SC_CI_REGISTRY_USERNAME": "ci", "SC_CI_REGISTRY_PASSWORD": PLANTED, **env}
    assert set(dockerconfig.explicit_credentials(full, {"a.example.com"})) == {host}


def test_credentials_without_a_host_are_a_config_error() -> None:
    env = {"SC_CI_REGISTRY_USERNAME": "ci", "SC_CI_REGISTRY_PASSWORD": PLANTED}
    with pytest.raises(ScError) as info:
        dockerconfig.explicit_credentials(env, {"reg.example.com"})
    assert "SC_CI_REGISTRY_HOST" in assert_clean(info.value, code=2)


@pytest.mark.parametrize("host", ["reg.example.com:99999", "evil.com/\n::error::x", "[::g]", "a b"])
def test_bad_registry_host_is_a_config_error(host: str) -> None:
    env = {"SC_CI_REGISTRY_USERNAME": "ci", "SC_CI_REGISTRY_PASSWORD": PLANTED, "SC_CI_REGISTRY_HOST": host}
    with pytest.raises(ScError) as info:
        dockerconfig.explicit_credentials(env, set())
    assert_clean(info.value, code=2)


def test_private_config_holds_the_credential_only_under_its_host(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "auths": {"https://reg.example.com/v1/": {"auth": "b2xkOm9sZA=="}, "other.io": {"auth": "eDp5"}},
        "credHelpers": {"reg.example.com": "ecr-login"}}))
    env = {"DOCKER_CONFIG": str(tmp_path), "SC_CI_REGISTRY_USERNAME": "ci", "SC_CI_REGISTRY_PASSWORD": PLANTED,
           "SC_CI_REGISTRY_HOST": "reg.example.com"}
    explicit = dockerconfig.explicit_credentials(env, {"reg.example.com", "other.io"})
    with dockerconfig.private_docker_config(explicit, env) as directory:
        assert directory is not None
        data = json.loads((Path(directory) / "config.json").read_text())
    hits = [k for k, v in data["auths"].items() if PLANTED in base64.b64decode(v["auth"]).decode()]
    assert hits == ["reg.example.com"]
    assert "https://reg.example.com/v1/" not in data["auths"]
    assert data["credHelpers"] == {}
    assert data["auths"]["other.io"] == {"auth": "eDp5"}


def test_private_config_uses_the_docker_hub_key(tmp_path: Path) -> None:
    cred = {"docker.io": Credential("ci", secrets.Secret(PLANTED))}
    with dockerconfig.private_docker_config(cred, {"DOCKER_CONFIG": str(tmp_path)}) as directory:
        assert directory is not None
        data = json.loads((Path(directory) / "config.json").read_text())
    assert list(data["auths"]) == ["https://index.docker.io/v1/"]


# ---------------------------------------------------------------------------------------------- malformed config


MALFORMED = [
    "[]", "42", "null", '"auths"', '{"auths": []}', '{"auths": "x"}', '{"auths": {"h": 5}}',
    '{"auths": {"h": {"auth": 12345}}}', '{"auths": {"h": {"auth": "!!!not-base64!!!"}}}',
    '{"auths": {"h": {"auth": "' + base64.b64encode(b"\xff\xfe").decode() + '"}}}',
    '{"auths": {"h": {"auth": "' + base64.b64encode(b"no-colon").decode() + '"}}}',
    '{"auths": {"h": {"username": 1, "password": ["x"]}}}',
    '{"auths": {"bad host\\n::error::x": {"username": "u", "password": "p"}}}',
    "{" * 100000, "\x00\x01binary", '{"auths": {"h": {"auth": null}}, "credHelpers": []}',
]


@pytest.mark.parametrize("content", MALFORMED, ids=[f"cfg{i}" for i in range(len(MALFORMED))])
def test_malformed_docker_config_never_raises(tmp_path: Path, content: str) -> None:
    (tmp_path / "config.json").write_text(content)
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert dockerconfig.read_credentials(env) == {}
    with dockerconfig.private_docker_config(creds(), env) as directory:
        assert directory is not None
        data = json.loads((Path(directory) / "config.json").read_text())
    mine = base64.b64decode(data["auths"]["reg.example.com"]["auth"]).decode()
    assert mine == f"bob:{PLANTED}"
    for entry in data["auths"].values():  # what is left is something the tools can unmarshal
        assert isinstance(entry, dict)
        assert all(isinstance(v, str) for v in entry.values())
    assert isinstance(data.get("credHelpers", {}), dict)


def test_docker_config_fifo_or_directory_never_blocks(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "config.json")
    assert dockerconfig.read_credentials({"DOCKER_CONFIG": str(tmp_path)}) == {}
    other = tmp_path / "d"
    (other / "config.json").mkdir(parents=True)
    assert dockerconfig.read_credentials({"DOCKER_CONFIG": str(other)}) == {}


def test_hub_aliases_are_one_host(tmp_path: Path) -> None:
    auth = base64.b64encode(b"u:pw-hub-12345").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": auth}}}))
    assert set(dockerconfig.read_credentials({"DOCKER_CONFIG": str(tmp_path)})) == {"docker.io"}


# ---------------------------------------------------------------------------------------------- token realms


def challenge(realm: str) -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'}


@responses.activate
def test_basic_credentials_sent_to_realm_on_same_host() -> None:
    responses.get(URL, status=401, headers=challenge("https://reg.example.com/token"))
    responses.get("https://reg.example.com/token", json={"token": "tok"})
    responses.get(URL, body=BODY, headers={"Docker-Content-Digest": SHA256})
    RegistryClient(credentials=creds()).resolve(imageref.parse(REF))
    assert responses.calls[1].request.headers["Authorization"] == basic()


@pytest.mark.parametrize("realm", [
    "https://evil.example.net/token",
    "https://reg.example.com.evil.net/token",
    "http://reg.example.com/token",
    "https://auth.example.com/token",
], ids=["other-host", "suffix-trick", "plain-http", "sibling"])
@responses.activate
def test_credentials_never_go_to_a_foreign_or_plain_realm(realm: str) -> None:
    responses.get(URL, status=401, headers=challenge(realm))
    responses.get(realm.split("?")[0], json={"token": "anon"})
    responses.get(URL, status=401, headers=challenge(realm))
    with pytest.raises(ScError) as info:
        RegistryClient(credentials=creds()).resolve(imageref.parse(REF))
    no_credential_sent()
    text = assert_clean(info.value)
    assert "access denied" in text


@responses.activate
def test_configured_realm_host_is_trusted() -> None:
    realm = "https://auth.example.com/token"
    responses.get(URL, status=401, headers=challenge(realm))
    responses.get(realm, json={"token": "tok"})
    responses.get(URL, body=BODY, headers={"Docker-Content-Digest": SHA256})
    env = {"SC_CI_REGISTRY_TOKEN_REALM_HOSTS": " auth.example.com , other.example.com"}
    client = RegistryClient.from_env(env, creds())
    assert client.token_realm_hosts == {"auth.example.com", "other.example.com"}
    client.resolve(imageref.parse(REF))
    assert responses.calls[1].request.headers["Authorization"] == basic()


def test_gitlab_server_is_a_trusted_realm() -> None:
    assert realm_hosts_from_env({"GITLAB_CI": "true", "CI_SERVER_HOST": "gitlab.example.com"}) == {
        "gitlab.example.com"}
    assert realm_hosts_from_env({"CI_SERVER_HOST": "gitlab.example.com"}) == frozenset()


@responses.activate
def test_docker_hub_realm_is_known() -> None:
    url = "https://registry-1.docker.io/v2/library/alpine/manifests/3"
    responses.get(url, status=401, headers=challenge("https://auth.docker.io/token"))
    responses.get("https://auth.docker.io/token", json={"token": "tok"})
    responses.get(url, body=BODY, headers={"Docker-Content-Digest": SHA256})
    RegistryClient(credentials=creds("docker.io")).resolve(imageref.parse("alpine:3"))
    assert responses.calls[1].request.headers["Authorization"] == basic()


@responses.activate
def test_redirect_to_another_host_drops_authorization() -> None:
    """requests strips Authorization when a redirect changes host (should_strip_auth); checked here."""
    responses.get(URL, status=401, headers=challenge("https://reg.example.com/token"))
    responses.get("https://reg.example.com/token", status=302,
                  headers={"Location": "https://evil.example.net/steal"})
    responses.get("https://evil.example.net/steal", json={"token": "tok"})
    responses.get(URL, status=307, headers={"Location": "https://cdn.example.org/blob"})
    responses.get("https://cdn.example.org/blob", body=BODY)
    RegistryClient(credentials=creds()).resolve(imageref.parse(REF))
    evil = [c for c in responses.calls if "evil" in (c.request.url or "") or "cdn" in (c.request.url or "")]
    assert len(evil) == 2
    for call in evil:
        assert "Authorization" not in call.request.headers


@responses.activate
def test_basic_scheme_over_plain_http_is_refused() -> None:
    url = "http://reg.example.com/v2/team/app/manifests/1.0"
    responses.get(url, status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    client = RegistryClient(credentials=creds(), insecure=frozenset({"reg.example.com"}))
    with pytest.raises(ScError) as info:
        client.resolve(imageref.parse(REF))
    no_credential_sent()
    assert "plain http" in assert_clean(info.value)


@pytest.mark.parametrize("token_body", [b"not json", b"[1,2]", b'{"token": 5}', b'{"token": "a\\nb"}', b"{" * 5000])
@responses.activate
def test_bad_token_responses_are_access_denied(token_body: bytes) -> None:
    responses.get(URL, status=401, headers=challenge("https://reg.example.com/token"))
    responses.get("https://reg.example.com/token", body=token_body)
    with pytest.raises(ScError) as info:
        RegistryClient(credentials=creds()).resolve(imageref.parse(REF))
    assert "access denied" in assert_clean(info.value)


# ---------------------------------------------------------------------------------------------- digests


@responses.activate
def test_sha512_header_is_verified_and_accepted() -> None:
    responses.get(URL, body=BODY, headers={"Docker-Content-Digest": SHA512})
    assert RegistryClient().resolve(imageref.parse(REF)).digest == SHA512


@pytest.mark.parametrize("header", [
    "sha512:" + "0" * 128, "sha256:" + "0" * 64, "sha384:" + "0" * 96, "md5:" + "0" * 32,
    "sha256:short", "SHA256:" + SHA256[7:], "sha256:" + SHA256[7:] + "\n::error::x", "garbage",
], ids=["sha512-wrong", "sha256-wrong", "sha384", "md5", "short", "upper", "injected", "garbage"])
@responses.activate
def test_bad_digest_header_is_refused(header: str) -> None:
    responses.get(URL, body=BODY, headers={"Docker-Content-Digest": header.replace("\n", "")})
    with pytest.raises(ScError) as info:
        RegistryClient().resolve(imageref.parse(REF))
    assert "digest" in assert_clean(info.value)


@responses.activate
def test_requested_digest_is_verified_without_a_header() -> None:
    wrong = "sha512:" + "1" * 128
    responses.get(f"https://reg.example.com/v2/team/app/manifests/{wrong}", body=BODY)
    with pytest.raises(ScError) as info:
        RegistryClient().resolve(imageref.parse(f"reg.example.com/team/app@{wrong}"))
    assert "mismatch" in assert_clean(info.value)


@responses.activate
def test_oversized_manifest_is_refused() -> None:
    responses.get(URL, body=b"x" * (4 * 1024 * 1024 + 10))
    with pytest.raises(ScError) as info:
        RegistryClient().resolve(imageref.parse(REF))
    assert "larger than" in assert_clean(info.value)


@responses.activate
def test_error_body_is_bounded_and_inert() -> None:
    responses.get(URL, status=418, body=("::error::pwned\n" * 1000) + PLANTED)
    with pytest.raises(ScError) as info:
        RegistryClient(credentials=creds()).resolve(imageref.parse(REF))
    assert len(assert_clean(info.value)) < 600


# ---------------------------------------------------------------------------------------------- indexes


def _index(*entries: object) -> bytes:
    return json.dumps({"schemaVersion": 2, "manifests": list(entries)}).encode()


def test_index_platform_that_is_not_a_mapping_is_unknown() -> None:
    found = index_entries(_index(
        {"digest": SHA256, "mediaType": "m", "platform": "linux/amd64"},
        {"digest": SHA256, "platform": ["linux"]},
        {"digest": SHA256, "platform": {"os": 1, "architecture": "amd64"}},
        {"digest": SHA512, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ), "src")
    assert [e.platform for e in found] == [None, None, None, "linux/arm64/v8"]


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"manifests": {}}', _index("a-string"), _index({"digest": "sha256:x;rm -rf /"}),
    _index({"digest": 5}), _index({"mediaType": "m"}), b"[" * 100000,
], ids=["text", "list", "dict", "entry-str", "digest-inject", "digest-int", "no-digest", "deep"])
def test_malformed_index_is_a_registry_error(body: bytes) -> None:
    with pytest.raises(ScError) as info:
        index_entries(body, "reg.example.com/team/app@" + SHA256)
    assert_clean(info.value)
