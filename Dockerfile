# syntax=docker/dockerfile:1.7
# The image `make image` builds (hack/image), for people with docker or buildkit. It packs the same
# static binary, so build that first:
#   cargo build --locked --profile static --target x86_64-unknown-linux-musl --bin jobrelay
#   docker build -t jobrelay:0.1.0 .
# `make image` needs no container engine and gives a reproducible OCI archive instead.
FROM debian:trixie-slim AS certs
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title=jobrelay \
      org.opencontainers.image.description="Relay Kubernetes RemoteJobs to remote job platforms" \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.revision=$REVISION \
      org.opencontainers.image.licenses=Apache-2.0
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY <<PASSWD /etc/passwd
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
COPY <<GROUP /etc/group
root:x:0:
nonroot:x:65532:
GROUP
COPY --chmod=0755 target/x86_64-unknown-linux-musl/static/jobrelay /usr/local/bin/jobrelay
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/jobrelay"]
CMD ["run"]
