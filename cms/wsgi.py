"""WSGI entry point: ``gunicorn cms.wsgi:app`` (configured from ``CMS_*``)."""

from cms.app import create_app

app = create_app()
