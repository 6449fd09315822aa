"""``--model-router FILE``: one model served by several deployments (say vLLM replicas on many GPU
hosts), listed in litellm's Router format::

    model_list:
      - model_name: llama-70b
        litellm_params: {model: hosted_vllm/meta-llama/Llama-3.3-70B-Instruct, api_base: http://gpu1:8000/v1}
      - model_name: llama-70b
        litellm_params: {model: hosted_vllm/meta-llama/Llama-3.3-70B-Instruct, api_base: http://gpu2:8000/v1}
    router_settings: {cooldown_time: 30}

``--model llama-70b`` then sends each call to the deployment with the fewest calls in flight. A
deployment that fails with a dropped connection, a timeout or a 5xx is cooled down and the call moves
on to the next one at once, so a replica that dies mid-run costs no item. Each deployment takes the
lean HTTP path when it is OpenAI-compatible, else litellm: routing is ours rather than
``litellm.Router`` so that replicas keep the lean path. Read from each entry: ``model``,
``api_base`` and ``api_key`` (``os.environ/NAME`` is looked up); other keys are ignored.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .classify import classify
from .transport import Answer, Endpoint, Transport, transport_for

ENV_PREFIX = "os.environ/"
DEFAULT_COOLDOWN_S = 30.0


class RouterFileError(ValueError):
    """A router file that cannot be used; the message names the file and the place."""


@dataclass(frozen=True)
class RouterGroup:
    """The deployments behind one ``model_name``."""

    name: str
    endpoints: tuple[Endpoint, ...]
    cooldown_s: float = DEFAULT_COOLDOWN_S

    @property
    def model_id(self) -> str:
        """The id for the cache key: the deployments' model when they share one (any replica
        serves the same answers), else the group's name."""
        ids = {endpoint.model for endpoint in self.endpoints}
        return ids.pop() if len(ids) == 1 else f"router:{self.name}"


def load_router(path: Path) -> dict[str, RouterGroup]:
    """The file's model groups by ``model_name``."""
    import yaml

    from ..data.files import schema_error

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RouterFileError(f"{path}: cannot read the router file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RouterFileError(f"{path}: not valid YAML: {exc}") from exc
    if (problem := schema_error(document, "router.schema.json")) is not None:
        pointer, message = problem
        raise RouterFileError(f"{path} at {pointer}: {message}")
    cooldown = float((document.get("router_settings") or {}).get("cooldown_time", DEFAULT_COOLDOWN_S))
    endpoints: dict[str, list[Endpoint]] = {}
    for number, entry in enumerate(document["model_list"]):
        params = entry["litellm_params"]
        key = params.get("api_key")
        if key and key.startswith(ENV_PREFIX):
            key = os.environ.get(key[len(ENV_PREFIX) :])
            if key is None:
                raise RouterFileError(
                    f"{path} at /model_list/{number}/litellm_params/api_key: "
                    f"environment variable {params['api_key'][len(ENV_PREFIX) :]} is not set"
                )
        endpoint = Endpoint(params["model"], params.get("api_base"), key)
        endpoints.setdefault(entry["model_name"], []).append(endpoint)
    return {name: RouterGroup(name, tuple(group), cooldown) for name, group in endpoints.items()}


class _Deployment:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.in_flight = 0
        self.cool_until = 0.0


class RouterTransport:
    """Spreads calls over a group's deployments; fails over past those that are down."""

    def __init__(
        self, group: RouterGroup, clock: Any = time.monotonic, *, http_process: bool = False
    ) -> None:
        self.group = group
        self._deployments = [
            _Deployment(transport_for(endpoint, in_own_process=http_process)) for endpoint in group.endpoints
        ]
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._clock = clock

    def _pick(self, tried: list[_Deployment]) -> _Deployment:
        """The least busy deployment not yet tried for this call, preferring warm ones to cooling."""
        now = self._clock()
        with self._lock:
            left = [d for d in self._deployments if d not in tried]
            start = next(self._turn) % len(left)  # ties go round robin
            rotated = left[start:] + left[:start]
            chosen = min(rotated, key=lambda d: (d.cool_until > now, d.in_flight))
            chosen.in_flight += 1
            return chosen

    def send(
        self, messages: list[dict[str, str]], params: dict[str, Any], timeout_s: float, context: dict | None
    ) -> Answer:
        tried: list[_Deployment] = []
        while True:
            deployment = self._pick(tried)
            tried.append(deployment)
            try:
                answer = deployment.transport.send(messages, params, timeout_s, context)
            except Exception as exc:
                _, retryable, _ = classify(exc, self.group.name, 1)
                if not retryable:
                    raise
                with self._lock:
                    deployment.cool_until = self._clock() + self.group.cooldown_s
                if len(tried) == len(self._deployments):
                    raise  # every deployment failed this call: the client's retries take over
                continue
            finally:
                with self._lock:
                    deployment.in_flight -= 1
            with self._lock:
                deployment.cool_until = 0.0  # it answers again: back to full preference
            return answer
