"""Webhook mechanics with no database and no Flask: signing, payload formats,
URL safety, the retry schedule and the asyncio sender."""
