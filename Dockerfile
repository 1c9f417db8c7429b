# spawnd: build on Debian 12, run on Debian 12 slim as a non-root user.
#
#   docker build -t spawnd .
#   docker run --rm --name spawnd -e SPAWND_TOKEN="$(openssl rand -hex 32)" -p 8080:8080 spawnd
#
# The image requires a token: without SPAWND_TOKEN or --token-file, spawnd
# refuses to start (exit 2), since it listens on all addresses. See the
# "Docker" section of README.md.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config libmicrohttpd-dev libjson-c-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DSPAWND_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j"$(nproc)" \
 && cmake --install build --prefix /out

FROM debian:bookworm-slim
# Runtime libraries only, plus curl for the health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjson-c5 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 spawnd \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/spawnd \
      --shell /usr/sbin/nologin spawnd
COPY --from=build /out/bin/spawnd /out/bin/spawnd-shim /usr/local/bin/
# Numeric, so "run as non-root" checks can verify it. Programs run by spawnd
# run as this user too; requests with uid/gid get 422 EPERM.
USER 10001:10001
# The children's default working directory.
WORKDIR /home/spawnd
EXPOSE 8080
# Inside a container spawnd must listen on all addresses for a published port
# to reach it; a non-loopback address needs a token (SPAWND_TOKEN, or
# --token-file FILE with one token per line), or spawnd exits 2 at start.
# Given as an environment setting rather than a flag, so that arguments to
# `docker run IMAGE ...` add options without repeating it (flags win).
ENV SPAWND_LISTEN=0.0.0.0:8080
# /healthz needs no token. Change the port here too if you change the listen
# address.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1
# spawnd runs as PID 1 and reaps every process: it is a child subreaper and
# reaps with waitpid(-1) on SIGCHLD. It handles SIGTERM itself (shutdown within
# --kill-grace-ms + 2 s). So `docker run --init` is unnecessary.
ENTRYPOINT ["/usr/local/bin/spawnd"]
