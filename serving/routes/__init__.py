"""The API's routers, one per resource; serving/app.py mounts them under /v1."""
