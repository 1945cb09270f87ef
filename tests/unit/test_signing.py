"""Signed download links: made by ``sign``, parsed back from the URL as a server would, verified."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.errors import ConveyorError
from conveyor.signing import LinkRefused, new_secret, sign, verify

SECRET = b"k" * 32
PATH = "/api/batches/3/files/17"
EXPIRES_AT = 1_767_225_600  # 2026-01-01 00:00:00 UTC
BEFORE = EXPIRES_AT - 1.5


def parts(url: str) -> tuple[str, str | None, str | None]:
    """The path and the two query parameters, as the server reads them from the request."""
    split = urlsplit(url)
    query = parse_qs(split.query, keep_blank_values=True)
    return split.path, query.get("expires", [None])[0], query.get("signature", [None])[0]


def refused(path: str, expires: str | None, signature: str | None, *, now: float = BEFORE) -> LinkRefused:
    with pytest.raises(LinkRefused) as caught:
        verify(path, expires=expires, signature=signature, secret=SECRET, now=now)
    return caught.value


def test_a_signed_link_round_trips_and_is_an_hmac_of_path_and_expiry() -> None:
    url = sign(PATH, secret=SECRET, expires_at=EXPIRES_AT)
    path, expires, signature = parts(url)
    assert path == PATH
    assert expires == str(EXPIRES_AT)
    expected = hmac.new(SECRET, f"{PATH}\n{EXPIRES_AT}".encode(), hashlib.sha256).hexdigest()
    assert url == f"{PATH}?expires={EXPIRES_AT}&signature={expected}"
    verify(path, expires=expires, signature=signature, secret=SECRET, now=BEFORE)


def test_another_path_is_refused() -> None:
    _, expires, signature = parts(sign(PATH, secret=SECRET, expires_at=EXPIRES_AT))
    for other in ("/api/batches/3/files/18", "/api/batches/4/files/17", PATH + "/", PATH.upper()):
        error = refused(other, expires, signature)
        assert error.reason == "mismatch"
        assert "signature does not match" in error.message


def test_a_longer_expiry_is_refused_as_tampering_not_as_expired() -> None:
    path, _, signature = parts(sign(PATH, secret=SECRET, expires_at=EXPIRES_AT))
    error = refused(path, str(EXPIRES_AT + 86_400), signature)
    assert error.reason == "mismatch"
    # Even once the original expiry has passed, the altered link is named as altered.
    assert refused(path, str(EXPIRES_AT + 86_400), signature, now=EXPIRES_AT + 10).reason == "mismatch"


def test_an_altered_signature_is_refused() -> None:
    path, expires, signature = parts(sign(PATH, secret=SECRET, expires_at=EXPIRES_AT))
    assert signature is not None
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert refused(path, expires, flipped).reason == "mismatch"


def test_a_link_signed_with_another_secret_is_refused() -> None:
    path, expires, signature = parts(sign(PATH, secret=new_secret(), expires_at=EXPIRES_AT))
    assert refused(path, expires, signature).reason == "mismatch"


def test_an_expired_link_is_refused_and_says_when_it_expired() -> None:
    path, expires, signature = parts(sign(PATH, secret=SECRET, expires_at=EXPIRES_AT))
    verify(path, expires=expires, signature=signature, secret=SECRET, now=EXPIRES_AT - 0.001)
    for now in (EXPIRES_AT, EXPIRES_AT + 3600.5):
        error = refused(path, expires, signature, now=now)
        assert error.reason == "expired"
        assert "2026-01-01 00:00:00 UTC" in error.message


@pytest.mark.parametrize(
    ("expires", "signature", "named"),
    [
        (None, None, "expires or signature"),
        ("", "", "expires or signature"),
        (str(EXPIRES_AT), None, "signature"),
        (None, "ab" * 32, "expires"),
        ("", "ab" * 32, "expires"),
    ],
)
def test_missing_parts_are_refused_by_name(expires: str | None, signature: str | None, named: str) -> None:
    error = refused(PATH, expires, signature)
    assert error.reason == "missing"
    assert f"has no {named}:" in error.message


@pytest.mark.parametrize(
    ("expires", "signature"),
    [
        ("12a", "ab" * 32),
        ("-5", "ab" * 32),
        ("1.5", "ab" * 32),
        ("\u0661\u0662", "ab" * 32),  # Arabic-Indic digits: str.isdigit() says yes, int() reads them
        ("9" * 13, "ab" * 32),
        (str(EXPIRES_AT), "ab" * 31),
        (str(EXPIRES_AT), "AB" * 32),
        (str(EXPIRES_AT), "zz" * 32),
        (str(EXPIRES_AT), "ab" * 32 + "\n"),
    ],
)
def test_malformed_parts_are_refused(expires: str, signature: str) -> None:
    assert refused(PATH, expires, signature).reason == "malformed"


def test_link_refused_is_a_conveyor_error_with_its_code() -> None:
    error = refused(PATH, None, None)
    assert isinstance(error, ConveyorError)
    assert error.code == "link_refused"
    assert error.retryable is False


def test_new_secrets_are_32_random_bytes() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert {len(secret) for secret in secrets} == {32}


def test_sign_takes_a_bare_path_only() -> None:
    with pytest.raises(ValueError, match="bare path"):
        sign(PATH + "?x=1", secret=SECRET, expires_at=EXPIRES_AT)


paths = st.text(st.characters(exclude_characters="?#", exclude_categories=["Cs"]), min_size=1).map(
    lambda text: "/" + text
)


@given(path=paths, other=paths, expires_at=st.integers(0, 10**12 - 1))
def test_any_path_round_trips_and_no_other_path_passes(path: str, other: str, expires_at: int) -> None:
    signature = sign(path, secret=SECRET, expires_at=expires_at).rsplit("&signature=", 1)[1]
    verify(path, expires=str(expires_at), signature=signature, secret=SECRET, now=expires_at - 1)
    if other != path:
        with pytest.raises(LinkRefused):
            verify(other, expires=str(expires_at), signature=signature, secret=SECRET, now=expires_at - 1)
