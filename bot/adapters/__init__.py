"""Adapters to the outside world: the image API client, the store, safe fetching, media."""
