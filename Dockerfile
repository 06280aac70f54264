# Production image. Migrations are a separate step, run before the new version serves:
#   docker run --rm -e PARTNERS_DATABASE_URL=... IMAGE partners migrate
# Python 3.11, as in the tests. The versions installed are the pins of pyproject.toml
# ([tool.uv] constraint-dependencies), which `uv sync` applies; uv.lock is not part of the context.
# The base image is a build argument: pin it by digest for a reproducible build, e.g.
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> .
# (`docker buildx imagetools inspect python:3.11-slim` prints the digest).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir "uv>=0.5,<1"
WORKDIR /src
# Dependencies first, in a layer of their own: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN uv sync --no-dev --no-install-project --no-cache
COPY app ./app
RUN uv sync --no-dev --no-editable --no-cache

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARTNERS_ENVIRONMENT=production \
    PARTNERS_HOST=0.0.0.0 \
    PARTNERS_PORT=8000 \
    PARTNERS_SERVER_PROCESSES=2
# Invoice PDFs: WeasyPrint lays pages out with Pango (and its fontconfig) in DejaVu Sans, and subsets
# the fonts with HarfBuzz (its fallback, fontTools, costs twice the time per invoice).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/partners --create-home partners
COPY --from=build /opt/venv /opt/venv
USER 10001
WORKDIR /var/lib/partners
EXPOSE 8000
# The probe asks the port the server listens on (PARTNERS_PORT), whatever it is set to at run time.
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PARTNERS_PORT', '8000'), timeout=2).status != 200)"]
# Port and workers come from PARTNERS_PORT and PARTNERS_SERVER_PROCESSES; the service writes its own
# request log (one JSON line per request in production), so uvicorn's access log is off.
CMD ["partners", "serve", "--no-access-log"]
