"""The ingress: the HTTP service messaging providers call with their delivery receipts.

A plain ASGI application (`worker.ingress.app:create_app`), served by uvicorn: `relay ingress`
for development, `uvicorn --factory worker.ingress.app:create_app --workers N` in production.
"""
