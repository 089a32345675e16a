# syntax=docker/dockerfile:1
# Phasegate behind gunicorn. The database is $PHASEGATE_DATABASE_URL: by default a SQLite
# file on the /data volume; for production point it at PostgreSQL, e.g.
#   docker run -p 8000:8000 -e PHASEGATE_DATABASE_URL=postgresql://user:pw@db:5432/phasegate phasegate
# Every start runs `phasegate db upgrade` first (idempotent; concurrent starts on PostgreSQL
# serialize on an advisory lock), then the command: gunicorn unless you give another one,
# e.g. `docker run ... phasegate phasegate deploy /app/processes --user admin`.

# --- browser libraries (bpmn-js, htmx, swagger-ui) from npm, pinned by package-lock.json: the
# same files `make assets` vendors into web/static/vendor (not committed)
FROM node:22-slim AS assets
WORKDIR /frontend
COPY web/frontend/package.json web/frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund \
 && mkdir -p /vendor/bpmn-js/assets /vendor/htmx /vendor/swagger-ui \
 && cp node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js /vendor/bpmn-js/ \
 && cp -r node_modules/bpmn-js/dist/assets/. /vendor/bpmn-js/assets/ \
 && cp node_modules/htmx.org/dist/htmx.min.js /vendor/htmx/ \
 && cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js \
       node_modules/swagger-ui-dist/swagger-ui.css /vendor/swagger-ui/

# --- build: a wheel, so the runtime image holds the installed package and no source tree
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY web ./web
COPY --from=assets /vendor ./web/static/vendor
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# All dependencies ship manylinux wheels (lxml, psycopg[binary], argon2-cffi): no compiler.
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

RUN groupadd --system --gid 10001 phasegate \
 && useradd --system --uid 10001 --gid phasegate --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin phasegate \
 && mkdir -p /data \
 && chown phasegate:phasegate /data

# Example process packages and forms, for `phasegate deploy /app/processes`.
WORKDIR /app
COPY processes ./processes
COPY forms ./forms

ENV PHASEGATE_DATABASE_URL=sqlite:////data/phasegate.sqlite
VOLUME ["/data"]
USER phasegate
EXPOSE 8000

ENTRYPOINT ["/bin/sh", "-c", "phasegate db upgrade && exec \"$@\"", "phasegate-entrypoint"]
# Extra gunicorn options without rebuilding: -e GUNICORN_CMD_ARGS="--timeout 60 --log-level debug"
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-", "web.app:create_app()"]
