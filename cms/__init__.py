"""Newsroom CMS. Importing this package loads nothing: ``cms.app.create_app`` builds the app."""
