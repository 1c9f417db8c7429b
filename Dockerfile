# spawnd: build on Debian 12, run on Debian 12 slim as a non-root user.
#
#   docker build -t spawnd .
#   docker run --rm --name spawnd -p 127.0.0.1:8080:8080 spawnd
#
# See the "Docker" section of README.md.

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
COPY --from=build /out/bin/spawnd /usr/local/bin/spawnd
# Numeric, so "run as non-root" checks can verify it. Programs run by spawnd
# run as this user too; requests with uid/gid get 422 EPERM.
USER 10001:10001
# The children's default working directory.
WORKDIR /home/spawnd
EXPOSE 8080
# Change the port here too if you change --listen.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1
# spawnd runs as PID 1 and reaps every process: it is a child subreaper and
# reaps with waitpid(-1) on SIGCHLD. It handles SIGTERM itself (shutdown within
# --kill-grace-ms + 2 s). So `docker run --init` is unnecessary.
ENTRYPOINT ["/usr/local/bin/spawnd"]
# Inside a container spawnd must listen on all addresses for a published port
# to reach it. --insecure is needed until token support lands: without a token
# spawnd refuses a non-loopback listen address (exit 2). Publish the port on
# the host's loopback only (-p 127.0.0.1:8080:8080): anyone who can connect
# can run programs.
CMD ["--listen", "0.0.0.0:8080", "--insecure"]
