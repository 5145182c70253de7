"""``python -m envtest.discovery.regenerate``: write ``descriptions.json.gz`` from the installed
kubernetes client's models, for every message of the protobuf field tables (run it when the
client's minor version moves; ``tests/envtest/test_openapi.py`` says when the data falls behind).
"""

from __future__ import annotations

from envtest.discovery import descriptions
from envtest.discovery.openapi import packages_of_messages


def main() -> None:
    described = descriptions.write(packages_of_messages())
    print(f"{described} types described in {descriptions.DATA}")


if __name__ == "__main__":
    main()
