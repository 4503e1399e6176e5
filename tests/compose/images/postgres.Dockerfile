# Local stand-in for the official postgres:15 image, from Debian's postgresql-15:
# the same data directory, environment (POSTGRES_USER/PASSWORD/DB) and tools on PATH.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && pg_dropcluster 15 main \
    && mkdir -p /var/lib/postgresql/data /run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /run/postgresql \
    && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/
USER postgres
ENTRYPOINT ["postgres-entrypoint.sh"]
CMD ["postgres"]
