"""The platform's models manifest (ConfigMap ``ambient-models``, key ``models.json``): the
Vertex AI id of a model, for the runner's ``LLM_MODEL_VERTEX_ID``."""

from __future__ import annotations

from typing import Any

import orjson


def models_vertex_id(manifest: Any, model: str) -> str:
    """The Vertex AI id of ``model`` in the models manifest (``models.json``), if available."""
    if not isinstance(manifest, str):
        return ""
    try:
        document = orjson.loads(manifest)
    except orjson.JSONDecodeError:
        return ""
    for entry in (document.get("models") or ()) if isinstance(document, dict) else ():
        if isinstance(entry, dict) and entry.get("id") == model and entry.get("available"):
            vertex = entry.get("vertexId")
            return vertex if isinstance(vertex, str) else ""
    return ""
