"""Offline vulnerability DBs for the test bed: known advisories, trivy's bbolt DB, grype's v6 SQLite DB, mirrors."""
