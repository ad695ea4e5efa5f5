# quickthumb: one small container. Build:  docker build -t quickthumb .
# Run:  docker run -p 8080:8080 -v quickthumb-data:/data quickthumb
# Configure with QUICKTHUMB_* environment variables (QUICKTHUMB_PORT, QUICKTHUMB_BIND, ...) or flags after `serve`.

# ---------- build stage ----------
FROM debian:bookworm-slim AS build
WORKDIR /src
# The dependencies first, in their own layer, so a source change does not reinstall them.
COPY scripts/setup scripts/setup
RUN scripts/setup && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake --preset release -DQT_BUILD_TESTS=OFF \
 && cmake --build --preset release --target quickthumb \
 && strip build/release/quickthumb
# The Debian packages of the shared libraries the binary links, for the runtime stage (SQLiteCpp is a
# static library in Debian 12, so it needs only libsqlite3-0): the list follows the code's dependencies.
RUN ldd build/release/quickthumb | awk '$3 ~ /^\// { print $3 }' | while read -r lib; do \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")"; \
    done | cut -d: -f1 | sort -u >build/release/runtime-packages \
 && echo "runtime packages:" $(cat build/release/runtime-packages)

# ---------- runtime stage ----------
FROM debian:bookworm-slim
# Runtime libraries only (e.g. libjpeg62-turbo libwebp7 liblcms2-2 libsqlite3-0; libc and
# libstdc++ already in the base), plus curl for the health check.
COPY --from=build /src/build/release/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(cat /tmp/runtime-packages) curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
# A fixed numeric uid/gid, so host volumes can be chowned to it and USER is checkable as non-root (Kubernetes).
RUN groupadd --gid 10001 quickthumb \
 && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /data --shell /usr/sbin/nologin quickthumb \
 && mkdir -p /data && chown quickthumb:quickthumb /data && chmod 0750 /data
COPY --from=build /src/build/release/quickthumb /usr/local/bin/quickthumb
# Fail the build here, not at start-up, if a shared library is missing from the list above.
RUN ! ldd /usr/local/bin/quickthumb | grep -F 'not found' && /usr/local/bin/quickthumb --version

ENV QUICKTHUMB_DATA=/data
# Ownership is set above: changes to a volume's path after VOLUME would be discarded.
VOLUME /data
WORKDIR /data
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:${QUICKTHUMB_PORT:-8080}/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/quickthumb"]
CMD ["serve"]
