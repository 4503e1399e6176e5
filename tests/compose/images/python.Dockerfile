# Local stand-in for the official python:3.11-slim image, built from Debian's python3
# (3.11) on the debootstrapped base: the compose test cannot pull from a registry.
# `python` and `pip` are a virtualenv's, first on PATH, as in the official image.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/python
ENV PATH=/opt/python/bin:$PATH LANG=C.UTF-8
CMD ["python3"]
