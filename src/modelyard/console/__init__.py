"""The web console: server-rendered pages over the same data the JSON API returns."""
