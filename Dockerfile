# digest: one image for every role; the command picks it (serve, worker, beat, init).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DIGEST_VAR_DIR=/app/var \
    DIGEST_METRICS_DIR=/app/metrics

RUN groupadd --system digest \
 && useradd --system --gid digest --home-dir /app --no-create-home --shell /usr/sbin/nologin digest

WORKDIR /app
COPY . /app
# Installed in place (-e): the email templates live beside the package, in /app/templates.
RUN pip install -e . \
 && mkdir -p /app/var /app/metrics \
 && chown -R digest:digest /app/var /app/metrics

USER digest
EXPOSE 8000
ENTRYPOINT ["digest"]
CMD ["serve", "--host", "0.0.0.0"]
