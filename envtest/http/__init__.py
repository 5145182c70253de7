"""HTTP: the asyncio HTTP/1.1 protocol, the router from URLs to verbs, and the Service proxy.
"""
