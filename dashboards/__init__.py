"""Grafana dashboards of shadow: `python -m dashboards.build` writes the JSON files here."""
