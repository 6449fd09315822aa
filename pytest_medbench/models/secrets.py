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
from typing import Any

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
    # three times per failed item: the list is made again only when the environment or the registered
    # values have changed since (comparing a copy of the environment's raw mapping: 0.4 us). The copy
    # is taken before the scan and the scan reads the copy, so a variable set meanwhile (another
    # thread) makes the next call scan again; the three are kept as one tuple, replaced at once.
    registered = len(_registered)
    raw = getattr(os.environ, "_data", None)  # os.environ may have been replaced by a plain dict
    environment = dict(raw if raw is not None else os.environ)
    seen_environment, seen_registered, values = _found[0]
    if seen_environment != environment or seen_registered != registered:
        found = set(list(_registered))
        for name, value in environment.items() if raw is None else _decoded(environment):
            if len(value) >= _MIN_ENV_LENGTH and any(mark in name.upper() for mark in _NAME_MARKS):
                found.add(value)
        values = sorted(found, key=len, reverse=True)
        _found[0] = (environment, registered, values)
    return values


def _decoded(raw: dict) -> list[tuple[str, str]]:
    """os.environ's raw mapping as text, as os.environ itself decodes it."""
    return [(os.environ.decodekey(name), os.environ.decodevalue(value)) for name, value in raw.items()]


# (the environment's raw mapping, how many values were registered, the secrets): secrets()'s last list
_found: list[tuple[dict | None, int, list[str]]] = [(None, -1, [])]


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


def masked_json(data: Any, keep: tuple[str, ...] = (), **dumps: Any) -> str:
    """``data`` as JSON with every secret masked in its texts, never in its numbers or its syntax (a
    4-character password masked in the JSON text turned a latency of 0.1234 into ``0.***``, a line no
    reader could parse). The top-level fields named in ``keep`` are left as they are."""
    text = json.dumps(data, **dumps)
    if mask(text) == text:  # nothing to mask: most calls
        return text
    return json.dumps(_masked(data, keep), **dumps)


def _masked(value: Any, keep: tuple[str, ...] = ()) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {
            mask(k) if isinstance(k, str) else k: v if k in keep else _masked(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    return value
