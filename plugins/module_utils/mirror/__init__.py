"""The offline mirror: what the platform downloads (plan), fetching it (build), the manifest,
URL rewriting for a mirror, and the mirror's HTTP server (server.py, standalone stdlib)."""
