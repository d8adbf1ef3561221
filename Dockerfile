# The callsync worker image: cargo-chef caches the dependency build, the
# runtime stage holds the one binary and nothing else (Fly's Rust guide).
# The Rust image must support the crate's edition (2021) and be at least the
# newest rust-version in Cargo.toml and Cargo.lock (uuid needs 1.89);
# tests/deploy_files.rs checks both and the binary name.
# Build: docker build -t callsync .   Run: docker run --rm -e DATABASE_URL=... callsync worker

FROM rust:1.89-bookworm AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin callsync
COPY . .
RUN cargo build --release --locked --bin callsync

FROM debian:bookworm-slim AS run
# No ca-certificates needed: TLS roots are compiled in (webpki-roots) and
# Supabase's CA, when verifying, comes from sslrootcert in DATABASE_URL.
RUN useradd --system --uid 10001 --no-create-home callsync
COPY --from=build /src/target/release/callsync /usr/local/bin/callsync
USER callsync
# Exec form, so SIGTERM reaches the binary and not a shell.
ENTRYPOINT ["/usr/local/bin/callsync"]
CMD ["worker"]
