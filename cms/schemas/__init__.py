"""Marshmallow schemas: the public contract. Unknown fields are rejected."""
