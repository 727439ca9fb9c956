# syntax=docker/dockerfile:1
#
# Courier's container image.
#
#   docker build -t courier:0.1.0 .
#   docker run --rm courier:0.1.0 --help
#
# Stage 1 (build) compiles the native Kafka client (@confluentinc/kafka-javascript builds librdkafka
# from source, linked against Debian's compression, TLS and SASL libraries) and the TypeScript, then
# drops everything the runtime does not need. Stage 2 is distroless: Node.js and the few shared
# libraries librdkafka links, no shell, no package manager, a non-root numeric user. No HEALTHCHECK:
# in Kubernetes the kubelet probes GET /healthz and GET /readyz (deploy/), and Docker's HEALTHCHECK
# would need a shell or curl in the image.

ARG NODE_MAJOR=20

FROM node:${NODE_MAJOR}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends zlib1g-dev libssl-dev libzstd-dev liblz4-dev libsasl2-dev python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# CKJS_LINKING=dynamic: build librdkafka against the libraries above instead of downloading a
# prebuilt binary or bundled dependencies.
RUN CKJS_LINKING=dynamic npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund
# Keep only what the native client loads at run time: the addon and librdkafka's shared libraries
# (about 17 MB instead of 280 MB of sources and objects).
RUN set -eux; \
    cd node_modules/@confluentinc/kafka-javascript; \
    mkdir -p /tmp/keep/Release /tmp/keep/deps; \
    cp build/Release/*.node /tmp/keep/Release/; \
    cp -P build/deps/librdkafka*.so* /tmp/keep/deps/; \
    rm -rf build deps src; \
    mv /tmp/keep build; \
    cd /app; \
    node -e "require('@confluentinc/kafka-javascript')"; \
    node dist/main.js --version
# The shared libraries librdkafka links beyond glibc and libstdc++ (which the runtime image has):
# libssl/libcrypto, libsasl2, libz, libzstd, liblz4 — found by ldd, so the list cannot drift.
RUN set -eux; \
    mkdir -p /out/lib; \
    ldd node_modules/@confluentinc/kafka-javascript/build/Release/*.node node_modules/@confluentinc/kafka-javascript/build/deps/*.so.1 \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' \
      | grep -v '^/app/' \
      | grep -Ev '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' \
      | sort -u \
      | xargs -r cp -L -t /out/lib; \
    ls -l /out/lib; \
    test -f /out/lib/libssl.so.3 && test -f /out/lib/libsasl2.so.2 && test -f /out/lib/libzstd.so.1

# Debian 12 with Node.js 20, the same Debian as the build stage; user 65532 is its `nonroot`.
FROM gcr.io/distroless/nodejs20-debian12:nonroot
ENV NODE_ENV=production \
    LD_LIBRARY_PATH=/usr/local/lib/courier
WORKDIR /app
COPY --from=build /out/lib/ /usr/local/lib/courier/
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The example app (deploy/base runs it next to Courier); 2 kB.
COPY examples ./examples
USER 65532:65532
EXPOSE 8080
# `docker run courier:0.1.0` runs the sidecar; `... inject` the admission webhook; `... --help`.
ENTRYPOINT ["/nodejs/bin/node", "dist/main.js"]
