"""Federated training with Flower: sites (clients) that never share their rows, a server that
merges their statistics and aggregates their weights, on Flower's simulation and deployment
engines (docs/federated.md)."""
