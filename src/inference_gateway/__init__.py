"""inference-gateway: a model-aware Endpoint Picker for Envoy (Gateway API Inference Extension)."""

__version__ = "0.1.0"
