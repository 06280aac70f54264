# Production image. Migrations are a separate step, run before the new version serves:
#   docker run --rm -e PARTNERS_DATABASE_URL=... IMAGE partners migrate
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir "uv>=0.5,<1"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN uv venv /opt/venv && VIRTUAL_ENV=/opt/venv uv pip install --no-cache .

FROM python:3.12-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARTNERS_ENVIRONMENT=production \
    PARTNERS_HOST=0.0.0.0 \
    PARTNERS_PORT=8000
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/partners --create-home partners
COPY --from=build /opt/venv /opt/venv
USER 10001
WORKDIR /var/lib/partners
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready').status != 200)"]
CMD ["partners", "serve", "--workers", "2", "--no-access-log"]
