"""informers: the project's client-go.

REST access to the API server in raw JSON, the reflector (list then watch), a thread-safe indexed
store and shared informers. It builds on ``metrics`` only.
"""

__all__: list[str] = []
