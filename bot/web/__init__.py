"""The HTTP server: ingestion endpoints, health, and the Slack route mounted beside them."""
