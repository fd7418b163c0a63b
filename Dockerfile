# syntax=docker/dockerfile:1
#
# aws-iam-key-exporter container image.
#
#   docker build -t aws-iam-key-exporter \
#     --build-arg REVISION="$(git rev-parse --short=12 HEAD)" .
#   docker run --rm -p 9781:9781 --read-only aws-iam-key-exporter
#
# Two stages: a Rust builder, and a distroless runtime holding nothing but the
# binary, glibc, libgcc and CA certificates (/etc/ssl/certs, which
# rustls-native-certs loads for the AWS endpoints). It runs as the image's
# nonroot user (65532), writes nothing to disk (the root filesystem may be
# read-only), and listens on :9781.
#
# No HEALTHCHECK: the distroless image has no shell and no HTTP client to run
# one with. Orchestrators probe /-/healthy and /-/ready over HTTP themselves
# (see deploy/kubernetes/base/deployment.yaml).
# checkov:skip=CKV_DOCKER_2:No shell or HTTP client in the distroless runtime to run a HEALTHCHECK; Kubernetes probes /-/healthy and /-/ready

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM docker.io/library/rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when Cargo.toml
# or Cargo.lock change, not when the sources do. The stand-in sources declare
# the same targets as Cargo.toml (a library, the binary, the bench).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/render.rs \
    && cargo build --release --locked --bin aws-iam-key-exporter \
    && rm -rf src benches

# The sources. build.rs reads the revision from git, which is not copied in
# (.dockerignore): pass it as REVISION. touch: the stand-ins above are newer
# than the copied files, and cargo compares modification times.
COPY build.rs ./
COPY src ./src
COPY benches ./benches
ARG REVISION=unknown
ENV AWS_IAM_KEY_EXPORTER_REVISION=${REVISION}
RUN touch build.rs src/lib.rs src/main.rs \
    && cargo build --release --locked --bin aws-iam-key-exporter \
    && ./target/release/aws-iam-key-exporter --version

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="aws-iam-key-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the age, last use and risk of every AWS IAM access key" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/aws-iam-key-exporter/aws-iam-key-exporter" \
      org.opencontainers.image.documentation="https://github.com/aws-iam-key-exporter/aws-iam-key-exporter/blob/main/README.md" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /src/target/release/aws-iam-key-exporter /usr/local/bin/aws-iam-key-exporter

# The distroless nonroot user, by number so that Kubernetes' runAsNonRoot can
# check it.
USER 65532:65532
EXPOSE 9781
ENTRYPOINT ["/usr/local/bin/aws-iam-key-exporter"]
