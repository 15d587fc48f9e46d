"""Fetching into caches: downloads, locks, integrity, offline mode, mirrors, the lock file."""
