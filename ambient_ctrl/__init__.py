"""ambient_ctrl: a Kubernetes reconciler framework in the style of controller-runtime.

It holds what an operator author programs against (reconcile contract, workqueue, controllers,
cached client, manager) and ``envtest``, a local Kubernetes API server for tests, benchmarks and
the demo. It builds on ``informers`` and ``metrics`` and never imports ``reconcilers``.
"""

__all__: list[str] = []
