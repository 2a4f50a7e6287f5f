"""A minimal Django project served by real servers (uvicorn for ASGI, the
standard library's wsgiref for WSGI) in a child process, and the helpers that
start it and read the child's peak memory. Used by tests/test_serving.py and
by benchmarks/run.py (the ASGI/WSGI download rows)."""
