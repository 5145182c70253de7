"""Storage and watch: objects as compact JSON bytes with one revision counter and an event
history, and the watch streams that filter it for each client.
"""
