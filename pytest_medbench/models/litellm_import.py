"""litellm, imported on first need only (it costs seconds) and set up for offline use."""

from __future__ import annotations

import os
from typing import Any


def import_litellm() -> Any:
    """Import litellm configured for offline use: the cost map from the package, no hub downloads."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm
