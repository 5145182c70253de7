"""HTTP: the asyncio HTTP/1.1 protocol, HTTPS (a CA made at start; the listener tells TLS from
plain HTTP), the router from URLs to verbs, and the Service proxy.
"""
