# digest: one image for every role; the command picks it (serve, worker, beat, init).
# What runs is what `make smoke` checks: the wheel, with the locked runtime dependencies only.
FROM python:3.11-slim AS build
WORKDIR /src
COPY . /src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

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
# Exact versions with their hashes (requirements.lock; `make lock` refreshes it), then the wheel alone:
# templates, migrations and sample data are inside it, so nothing of the source tree is copied.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/digest-*.whl \
 && rm -rf /tmp/dist /tmp/requirements.lock \
 && mkdir -p /app/var /app/metrics \
 && chown -R digest:digest /app/var /app/metrics

USER digest
EXPOSE 8000
ENTRYPOINT ["digest"]
CMD ["serve", "--host", "0.0.0.0"]
