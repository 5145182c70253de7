"""reconcilers.crds: the CustomResourceDefinitions, as package data.

``agenticsessions.yaml`` and ``projectsettings.yaml`` ship in the wheel, so an installed
``ambient-ctrl demo`` can install them (``reconcilers.install``). In the source tree they are
links to ``config/crd/``, the kustomize source and the one copy anyone edits; a build copies
what they point at.
"""

__all__: list[str] = []
