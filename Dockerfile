# One image for the API, the workers and the scheduler; they differ only by command
# (see docker-compose.yml). Slim, non-root, every dependency pinned (requirements.lock).
# PYTHON_IMAGE: any Python 3.11 image with `python` and `pip` on PATH (the compose test
# builds from a local one, since it cannot pull).
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CMS_VAR_DIR=/app/var

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN pip install --requirement requirements.lock

COPY pyproject.toml README.md ./
COPY cms ./cms
COPY workers ./workers
COPY migrations ./migrations
COPY examples ./examples
# Editable, so the migrations directory stays next to the package (cms/app.py finds it there).
RUN pip install --no-deps --editable . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin cms \
    && mkdir -p /app/var /tmp/prometheus \
    && chown cms /app/var /tmp/prometheus

USER cms
EXPOSE 8000 9100
CMD ["gunicorn", "--config", "python:cms.gunicorn_conf", "cms.wsgi:app"]
