# syntax=docker/dockerfile:1
# streamrec's one image: the entry point is `streamrec`, the command picks the component
# (consume, serve, train, infra apply). ECS runs it from the rendered template
# (`streamrec infra render`), docker-compose.localstack.yml runs it locally.
#
#   docker build -t streamrec .
#   docker run --rm streamrec --help
#
# Two stages: the first installs the package and its dependencies (all wheels: nothing is
# compiled) into a virtualenv; the second copies only that virtualenv onto a fresh slim base,
# without pip, setuptools or the sources. The KCL extra (Java) is not in the image: the ECS
# consumers run the embedded runner.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/streamrec
WORKDIR /src
COPY pyproject.toml README.md ./
COPY producers/ producers/
COPY consumers/ consumers/
COPY feature_store/ feature_store/
COPY models/ models/
COPY infra/ infra/
COPY streamrec/ streamrec/
RUN /opt/streamrec/bin/pip install --prefer-binary . \
    && /opt/streamrec/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE} AS runtime
# a fixed numeric uid, so orchestrators can check runAsNonRoot without reading /etc/passwd
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin streamrec
COPY --from=build /opt/streamrec /opt/streamrec
ENV PATH=/opt/streamrec/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMREC_API_HOST=0.0.0.0 \
    STREAMREC_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["streamrec"]
CMD ["serve"]
