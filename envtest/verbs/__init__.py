"""The REST verbs: reads (get, list, watch), writes (create, update, patch, delete,
deletecollection) and server-side apply. Every write goes through ``envtest.commit``.
"""
