"""Backup and restore: a consistent snapshot of the store and the home's key files, sealed
with a passphrase or a key file (``docs/backup.md``)."""
