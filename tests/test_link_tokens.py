"""Unsubscribe tokens: made with the signing key derived once per secret, they are exactly
the tokens itsdangerous's ``Signer`` makes (what ``read_token`` verifies, and what links
in messages already sent carry), and any changed character breaks them."""

from __future__ import annotations

import hashlib

from itsdangerous import Signer

from regard.render.unsubscribe import SALT, make_token, read_token


def test_tokens_are_itsdangerous_signer_tokens() -> None:
    for n in range(200):
        secret = f"secret-{n}" * (n % 5 + 1)
        delivery_id = "d_" + hashlib.sha256(str(n).encode()).hexdigest()[:32]
        signer = Signer(secret, salt=SALT, digest_method=hashlib.sha256)
        token = make_token(secret, delivery_id)
        assert token == signer.sign(delivery_id).decode("ascii")
        assert read_token(secret, token) == delivery_id
        assert read_token(secret + "x", token) is None
        last = token[-1]
        assert read_token(secret, token[:-1] + ("A" if last != "A" else "B")) is None
