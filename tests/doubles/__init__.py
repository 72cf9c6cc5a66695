"""Test doubles for the edges we cannot run in CI (a live Kubernetes cluster)."""
