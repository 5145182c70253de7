"""metrics: Prometheus metric families on a project-owned registry, and their HTTP endpoint.

The bottom layer: it defines controller-runtime-compatible families and serves them; the layers
above record into them. It imports no other package of this project.
"""

__all__: list[str] = []
