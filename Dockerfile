# The envd image, for CI (docs/container.md):
#
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock \
#     -v "$PWD":"$PWD" -w "$PWD" IMAGE up --once
#
# Built by scripts/build-envd-image.sh (offline, from a wheelhouse it fills on
# the host), or with plain `docker build .` where PyPI is reachable.
#
# BASE is any image with python3 >= 3.11 on a glibc userland with useradd
# (Debian, Ubuntu). Pin it by digest for real use, e.g.
#   --build-arg BASE=python:3.11-slim@sha256:<digest of the tag you tested>
# (`docker buildx imagetools inspect python:3.11-slim` prints the digest).
# The tests build on a debootstrap rootfs: --build-arg BASE=envd-local/debian:bookworm
ARG BASE=python:3.11-slim

# ---------------------------------------------------------------- build stage
# envd and its dependencies in a virtual environment, /opt/envd, which the
# final stage copies. The base need not have pip: when the build context has
# a wheelhouse/ (every dependency, pip and the build backend as wheels) pip
# runs from its own wheel and installs from the wheelhouse only, without the
# network; without one, the base's pip fetches from PyPI.
FROM ${BASE} AS build
ARG BASE
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    PYTHONPATH=/opt/pip
# `wheelhouse*` matches nothing in a plain checkout; then only pyproject.toml is copied.
COPY pyproject.toml wheelhouse* /build/
# Dependencies first, in a layer of their own: it is rebuilt only when
# pyproject.toml or the wheelhouse changes, not for every change to envd.
RUN set -eu; \
    python3 -m venv --without-pip /opt/envd; \
    /opt/envd/bin/python -c 'import sys, tomllib; \
        meta = tomllib.load(open("/build/pyproject.toml", "rb")); \
        open("/build/requirements.txt", "w").write("\n".join(meta["project"]["dependencies"])); \
        open("/build/build-requirements.txt", "w").write("\n".join(meta["build-system"]["requires"]))'; \
    set -- /build/pip-*.whl; \
    if [ -e "$1" ]; then \
        printf '[global]\nno-index = true\nfind-links = /build\n' >/opt/envd/pip.conf; \
        /opt/envd/bin/python "$1/pip" install --quiet --target /opt/pip pip; \
    elif python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip install --quiet --target /opt/pip pip; \
    else \
        echo "no wheelhouse/ in the build context and no pip in ${BASE}:" \
             "build with scripts/build-envd-image.sh" >&2; \
        exit 1; \
    fi; \
    /opt/envd/bin/python -m pip install --quiet --target /opt/pip \
        --requirement /build/build-requirements.txt; \
    /opt/envd/bin/python -m pip install --quiet --requirement /build/requirements.txt
COPY pyproject.toml README.md /src/
COPY envd /src/envd
# pip and the build backend live in /opt/pip, outside the virtual environment.
RUN set -eu; \
    /opt/envd/bin/python -m pip install --quiet --no-deps --no-build-isolation /src; \
    rm -f /opt/envd/pip.conf; \
    /opt/envd/bin/envd --version

# ---------------------------------------------------------------- final stage
FROM ${BASE}
# envd runs as `envd` (10001), or as the owner of the mounted project, with the
# Docker socket's group added: see docker/entrypoint.py. The image's user stays
# root only so that the entrypoint can pick that user at run time.
RUN groupadd --gid 10001 envd \
    && useradd --uid 10001 --gid 10001 --no-log-init --create-home --home-dir /home/envd \
       --shell /usr/sbin/nologin envd \
    && install -d -o envd -g envd -m 0755 /project
COPY --from=build /opt/envd /opt/envd
COPY docker/entrypoint.py /usr/local/bin/envd
COPY docker/healthcheck.py /usr/local/bin/envd-healthcheck
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
LABEL org.opencontainers.image.title="envd" \
      org.opencontainers.image.description="Declarative container environments that stay converged" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /project
# `docker stop`: envd (PID 1 runs its init, the daemon its child) gets SIGTERM,
# finishes the pass under way and exits 0.
STOPSIGNAL SIGTERM
# Meaningful for `envd daemon` containers: healthy while the project is
# converged. A one-shot `up --once` exits long before the first check (its
# exit code is the verdict), so the start period covers a slow first converge.
HEALTHCHECK --interval=30s --timeout=30s --start-period=2m --retries=3 \
    CMD ["/usr/local/bin/envd-healthcheck"]
ENTRYPOINT ["envd"]
CMD ["--help"]
