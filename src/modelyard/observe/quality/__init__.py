"""Live quality: a share of a route's answers scored by a judge in the background, stored
per request and version, and read by metrics, alerts and release analyses."""
