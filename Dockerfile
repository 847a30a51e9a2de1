# syntax=docker/dockerfile:1
# Build: a static binary, no cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is not sent to the build (.dockerignore), so the commit is given:
#   docker build --build-arg VERSION="$(git describe --always --dirty)" .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/forgetmenot/forgetmenot/internal/version.Build=${VERSION}" -o /out/forgetmenot ./cmd/forgetmenot

# Run: distroless static, as a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/forgetmenot /usr/local/bin/forgetmenot
COPY configs/*.yaml /app/configs/
COPY configs/email-templates /app/configs/email-templates
ENV FORGETMENOT_LOG_FORMAT=json \
    FORGETMENOT_HTTP_ADDR=:8080
EXPOSE 8080
USER nonroot:nonroot
# Distroless has no shell or curl: the binary checks itself. `health --ready`
# asks GET /readyz on loopback at the port of FORGETMENOT_HTTP_ADDR and exits
# 0 (ready: Redis reachable) or 1; it gives up after 3 s.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/forgetmenot", "health", "--ready", "--timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/forgetmenot"]
CMD ["serve"]
