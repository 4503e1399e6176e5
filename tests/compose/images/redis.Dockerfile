# Local stand-in for the official redis:7 image, from Debian's redis-server (7.0):
# data in /data, and reachable from other containers (the official entrypoint also
# turns protected mode off when no configuration file is given).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/
WORKDIR /data
USER redis
ENTRYPOINT ["redis-entrypoint.sh"]
CMD ["redis-server"]
