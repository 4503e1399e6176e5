"""Newsroom CMS: the Flask app and the domain.

Importing this package has no side effects; ``create_app`` builds everything.
"""

from cms.app import create_app

__all__ = ["create_app"]
