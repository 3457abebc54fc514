# Vigie's container image: the service plus Debian's Chromium for the browser journeys.
#
#   docker build -t vigie:local .        (docker-compose.yml builds it for you)
#
# Browser journeys: Chromium runs in a network namespace whose only way out is Vigie's read-only
# proxy. No package is needed for it (Vigie calls unshare(2) itself), but the container must be
# allowed to create an unprivileged user namespace: docker-compose.yml adds SYS_ADMIN to the
# capability set (for Docker's seccomp profile; the `vigie` user never holds it) with
# no-new-privileges. Without it Vigie refuses browser journeys rather than run them unguarded.
#
# Runs as the unprivileged user `vigie`; everything Vigie keeps (evidence ledger, artifacts,
# signing key) lives in the volume /var/lib/vigie. The configuration is /etc/vigie/vigie.yaml
# (mounted by docker-compose.yml; without it the built-in ANEF configuration is used).

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Chromium's headless shell from Debian (not a browser download at build time), fonts so that
# screenshots of French pages render accents, tini to reap the browser's child processes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        chromium-headless-shell ca-certificates fonts-dejavu-core fonts-liberation tini tzdata \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 vigie \
    && useradd --system --uid 10001 --gid vigie --home-dir /var/lib/vigie --create-home \
        --shell /usr/sbin/nologin vigie \
    && mkdir -p /etc/vigie /var/lib/vigie/artifacts \
    && chown -R vigie:vigie /var/lib/vigie

WORKDIR /opt/vigie
COPY pyproject.toml README.md ./
COPY config ./config
COPY probes ./probes
COPY exporter ./exporter
COPY evidence ./evidence
COPY simulator ./simulator
COPY dashboards ./dashboards
RUN pip install . && cp config/vigie.default.yaml /etc/vigie/vigie.yaml

# Container defaults; any key of vigie.yaml can be overridden the same way (VIGIE_<KEY>__<SUB>).
ENV TZ=Europe/Paris \
    VIGIE_LISTEN=0.0.0.0:9188 \
    VIGIE_LEDGER__URL=sqlite:////var/lib/vigie/ledger.db \
    VIGIE_LEDGER__ARTIFACTS=/var/lib/vigie/artifacts \
    VIGIE_SIGNING__KEY=/var/lib/vigie/vantage.key \
    VIGIE_BROWSER__EXECUTABLE=/usr/bin/chromium-headless-shell

USER vigie
WORKDIR /var/lib/vigie
VOLUME ["/var/lib/vigie"]
EXPOSE 9188

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9188/healthz', timeout=4)"]

ENTRYPOINT ["tini", "--", "vigie"]
CMD ["run", "--config", "/etc/vigie/vigie.yaml"]
