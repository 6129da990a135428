"""The layer library: one declaration per layer type (see ``registry``)."""
