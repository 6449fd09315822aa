"""Secrets the run resolves, masked out of everything it writes.

A provider's error text may echo the key it was sent (a 401 often does) and an api_base may carry
a password (``http://user:pw@host/v1``); either would otherwise reach the terminal, the samples
file, the HTML page, junit XML or the leaderboard. Masked: every value registered here (router
``api_key`` literals and ``os.environ/`` references, URL userinfo) and every environment variable
whose name marks it as a credential, read when masking (a key set after start-up counts too).
"""

from __future__ import annotations

import functools
import json
import os
import urllib.parse

MASK = "***"
_NAME_MARKS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
_MIN_ENV_LENGTH = 8  # shorter environment values ("1", "true") are settings, not keys
_MIN_LENGTH = 4  # a registered value is a secret by origin; shorter ones would mask common words

_registered: set[str] = set()


def register(value: str | None) -> None:
    """Mask ``value`` from now on, in this process."""
    if value and len(value) >= _MIN_LENGTH:
        _registered.add(value)


def register_url(url: str | None) -> None:
    """Mask the userinfo of ``url`` (``user:pw``, and the password alone) from now on."""
    if not url:
        return
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    register(userinfo)
    register(urllib.parse.unquote(parts.password or ""))


def without_userinfo(url: str | None) -> str | None:
    """``url`` without ``user:pw@``, as the leaderboard records an api_base."""
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def secrets() -> list[str]:
    """Every value to mask, longest first (so a key containing another is masked whole)."""
    # scanning the environment's names costs 30 us (38 variables), and a failure message is masked
    # twice per failed item: the list is made again only when the environment or the registered
    # values have changed since (comparing the environment's raw mapping: 0.4 us)
    environment = os.environ._data  # type: ignore[attr-defined]  # the raw mapping os.environ keeps
    if _found["environment"] != environment or _found["registered"] != len(_registered):
        found = set(_registered)
        for name, value in os.environ.items():
            if len(value) >= _MIN_ENV_LENGTH and any(mark in name.upper() for mark in _NAME_MARKS):
                found.add(value)
        _found.update(
            environment=dict(environment),
            registered=len(_registered),
            values=sorted(found, key=len, reverse=True),
        )
    return _found["values"]


_found: dict = {"environment": None, "registered": -1, "values": []}  # what secrets() last made


@functools.cache
def _written_forms(secret: str) -> tuple[str, ...]:
    """A secret as an output may hold it: as is, escaped in JSON (the samples file and the
    leaderboard are masked once serialised) and in a Python repr (a failure message shows the parsed
    answer's), so a password with a quote or a backslash is masked in each."""
    in_repr = secret.replace("\\", "\\\\")
    forms = {
        secret,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1],
        in_repr,
        in_repr.replace("'", "\\'"),  # repr quotes with ' a text that holds both kinds of quote
    }
    return tuple(sorted(forms, key=len, reverse=True))


def mask(text: str) -> str:
    """``text`` with every secret, in every form an output writes it, replaced by ``***``."""
    for secret in secrets():
        for form in _written_forms(secret):
            if form in text:
                text = text.replace(form, MASK)
    return text
